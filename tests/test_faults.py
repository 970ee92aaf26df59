"""Faults in the deterministic simulation, each with a stated bound.

Heavy loss with duplication, reordering and delay; a partition lasting
several reap periods, then healed; restarts within the same nanosecond and
with the clock set back; folders that vanish, turn unreadable or are replaced
while their peer runs.
"""

from __future__ import annotations

import logging
import math

import pytest
import trio
import trio.testing
from sim import GENERATION, INTERVALS, Sim, open_sim

from trio_gossip import Intervals

PUSH = INTERVALS.push
REAP = INTERVALS.reap


def _rounds(n: int) -> float:
    """log2 N + ln N push rounds: what push gossip needs to reach N peers."""
    return math.log2(n) + math.log(n)


async def test_thirty_percent_loss_with_duplicates_reordering_and_delay_converges(
    autojump_clock: trio.testing.MockClock,
) -> None:
    names = "ABCDEFGH"
    async with open_sim(
        names, seed=11, loss=0.3, duplicate=0.1, delay=(0.0, 0.4), intervals=INTERVALS
    ) as sim:
        # Bound: three times the loss-free epidemic, as each exchange has three legs to lose.
        start = trio.current_time()
        done = await sim.wait_until(sim.converged, within=3 * _rounds(len(names)) * PUSH)
        sim.folders["C"]["late.txt"] = (9, 9)
        published = sim.next_scan("C", done)
        arrived = await sim.wait_until(
            lambda: all(sim.shows_folder(n, "C") for n in names),
            within=published - trio.current_time() + 3 * _rounds(len(names)) * PUSH,
        )
        assert arrived >= published
        assert done - start <= 3 * _rounds(len(names)) * PUSH
        # The faults really happened.
        assert sim.network.delivered != sim.network.sent


async def test_a_partition_of_several_reap_periods_heals(
    autojump_clock: trio.testing.MockClock,
) -> None:
    names = "ABCDEF"
    left, right = set("ABC"), set("DEF")
    async with open_sim(names, seed=12) as sim:
        await sim.wait_until(sim.converged, within=3 * _rounds(6) * PUSH)
        side = {sim.address(n): (n in left) for n in names}
        sim.network.partition(lambda a, b: side[a] != side[b])
        cut = trio.current_time()

        def each_side_reaped_the_other() -> bool:
            return all(set(sim.peers[n].reaped()) == (right if n in left else left) for n in names)

        reaped = await sim.wait_until(each_side_reaped_the_other, within=REAP + 5 * PUSH)
        assert reaped - cut >= REAP  # not before the reap time
        sim.folders["A"]["during.txt"] = (1, 2)  # news on one side while cut off
        await trio.sleep(3 * REAP - (trio.current_time() - cut))
        assert each_side_reaped_the_other()  # nothing leaked across the cut

        sim.network.partition(None)
        healed = trio.current_time()
        done = await sim.wait_until(sim.converged, within=3 * _rounds(6) * PUSH)
        assert all(not sim.peers[n].reaped() for n in names)
        assert all(sim.shows_folder(n, "A") for n in names)
        # Nobody restarted: the same generations, no refutation needed.
        assert all(sim.peers[n].view()[n].generation == GENERATION for n in names)
        assert done - healed <= 3 * _rounds(6) * PUSH


@pytest.mark.parametrize("generation", [GENERATION, GENERATION + 1, GENERATION - 10**12])
async def test_a_restart_with_a_changed_folder_wins_everywhere(
    autojump_clock: trio.testing.MockClock, generation: int
) -> None:
    # The same nanosecond (a coarse clock), the next one, and a clock set back
    # 1,000 s: each time the new folder must win, by generation or refutation.
    names = "ABCDE"
    async with open_sim(names, seed=13) as sim:
        await sim.wait_until(sim.converged, within=3 * _rounds(5) * PUSH)
        await trio.sleep(20 * PUSH)  # versions and heartbeats well past a fresh start's
        await sim.stop("B")
        sim.folders["B"] = {"after-restart.txt": (5, 5)}
        await sim.start("B", generation=generation)
        await sim.wait_until(
            lambda: all(sim.shows_folder(n, "B") for n in names), within=3 * _rounds(5) * PUSH
        )
        assert "B" not in sim.peers["A"].reaped()


async def _settle(sim: Sim) -> None:
    await sim.wait_until(sim.converged, within=3 * _rounds(len(sim.peers)) * PUSH)


async def test_a_folder_that_turns_unreadable_keeps_its_last_good_version(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    intervals = Intervals(scan=2.0, push=1.0, relay=1.0, reap=30.0)
    async with open_sim("ABC", seed=14, intervals=intervals) as sim:
        await _settle(sim)
        before = sim.peers["A"].view()["A"]
        sim.unreadable.add("A")
        sim.folders["A"]["unseen.txt"] = (1, 1)
        with caplog.at_level(logging.WARNING, logger="trio_gossip"):
            await trio.sleep(5 * intervals.scan)
        assert sim.peers["A"].view()["A"].content == before.content
        assert sim.peers["B"].view()["A"].content == before.content
        assert sim.peers["A"].statistics().scan_failures == 5
        assert any("scan failed, keeping version" in r.getMessage() for r in caplog.records)
        # Readable again: the next scan publishes the whole folder, once.
        sim.unreadable.discard("A")
        await sim.wait_until(lambda: sim.shows_folder("B", "A"), within=10 * PUSH)
        assert sim.peers["A"].view()["A"].version == before.version + 1


async def test_a_replaced_folder_is_published_whole(
    autojump_clock: trio.testing.MockClock,
) -> None:
    intervals = Intervals(scan=2.0, push=1.0, relay=1.0, reap=30.0)
    async with open_sim("ABC", seed=15, intervals=intervals) as sim:
        await _settle(sim)
        sim.folders["A"] = {f"new-{i}.txt": (i, i) for i in range(500)}  # rm -rf, then a new tree
        await sim.wait_until(lambda: all(sim.shows_folder(n, "A") for n in "ABC"), within=20)
        sim.folders["A"] = {}  # and then emptied
        await sim.wait_until(lambda: all(sim.shows_folder(n, "A") for n in "ABC"), within=20)
        assert sim.peers["C"].view()["A"].files != ()  # deletion records: a delta could follow
