"""Many real peers over the in-memory network, in virtual time.

Every test runs under ``MockClock(autojump_threshold=0)`` with seeded
generators (see ``tests/sim.py``), so each run is the same run. Where the
design makes a time exact (a scan is seen at the next scan tick; an origin is
reaped exactly ``reap`` seconds after the last news of it) the test asserts
that time; elsewhere it asserts a bound in push rounds.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable
from typing import Any

import attrs
import pytest
import trio
import trio.testing
from sim import GENERATION, Folder, Sim, files_of, handle, make_config, open_sim

from trio_gossip import Entry, Intervals, Line, Peer, format_info
from trio_gossip.codec import BadDatagram, decode_untrusted, encode
from trio_gossip.digests import Roster
from trio_gossip.infoserver import INFO_BURST, INFO_RATE
from trio_gossip.limits import MAX_COUNTER, MAX_DATAGRAM, MIN_DATAGRAM
from trio_gossip.memory import MemoryNetwork, TaskRandom
from trio_gossip.messages import Digest, Info, InfoRequest, Message, Part, Want
from trio_gossip.node import WINDOW
from trio_gossip.state import FileMeta
from trio_gossip.transfer import prepare
from trio_gossip.transport import Address

ROUND = 1.0  # the push interval open_sim uses by default
SCAN = 5.0
REAP = 30.0
SIX = "ABCDEF"
EIGHT = "ABCDEFGH"
NOWHERE: Address = ("10.9.9.9", 7000)  # an address no peer is configured at
SECOND = 10**9  # of the wall clock, in nanoseconds


async def at(when: float) -> None:
    """Sleep until virtual time ``when`` and let everything due then run."""
    await trio.sleep_until(when)
    await trio.testing.wait_all_tasks_blocked()


def without_statistics(snapshot: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in snapshot.items() if k != "statistics"}


def rounds_to_spread(peers: int, loss: float = 0.0) -> int:
    """Push rounds within which news reaches every one of ``peers``.

    A push-pull epidemic doubles the informed peers each round, relays add
    more: log2(n) rounds, two more for the last peer and the transfer. With a
    fifth of the datagrams lost, an exchange of digest, want and part gets
    through about half the time: twice the rounds, and a margin.
    """
    rounds = math.ceil(math.log2(peers)) + 2
    return rounds if loss == 0 else 3 * rounds


# -- convergence ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("names", "seed", "loss", "duplicate", "delay"),
    [
        pytest.param(SIX[:5], 1, 0.0, 0.0, (0.0, 0.0), id="5-peers"),
        pytest.param(EIGHT, 2, 0.0, 0.0, (0.0, 0.0), id="8-peers"),
        pytest.param(EIGHT, 3, 0.0, 0.0, (0.0, 0.0), id="8-peers-again"),
        pytest.param(EIGHT, 4, 0.2, 0.0, (0.0, 0.0), id="20%-loss"),
        pytest.param(EIGHT, 5, 0.2, 0.0, (0.0, 0.0), id="20%-loss-again"),
        pytest.param(EIGHT, 6, 0.2, 0.1, (0.0, 0.3), id="loss-dup-reorder"),
    ],
)
async def test_peers_converge_from_nothing_within_a_few_rounds(
    autojump_clock: trio.testing.MockClock,
    *,
    names: str,
    seed: int,
    loss: float,
    duplicate: float,
    delay: tuple[float, float],
) -> None:
    rounds = rounds_to_spread(len(names), loss)
    async with open_sim(names, seed=seed, loss=loss, duplicate=duplicate, delay=delay) as sim:
        start = trio.current_time()
        assert not sim.converged()  # each peer knows only itself
        done = await sim.wait_until(sim.converged, within=rounds * ROUND)
        assert done - start <= rounds * ROUND
        for name in names:
            for origin in names:
                assert sim.shows_folder(name, origin), (name, origin)
            assert not sim.peers[name].reaped()
        # Converged stays converged: nothing changes, nobody is reaped.
        await trio.sleep(10 * ROUND)
        assert sim.converged()
        assert all(p.statistics().reaped == 0 for p in sim.peers.values())
        # The network did lose and copy datagrams as asked: each datagram arrives
        # 0, 1 or 2 times; the mean over all of them is within four standard errors.
        sent, delivered = sim.network.sent, sim.network.delivered
        once, twice = (1 - loss) * (1 - duplicate), (1 - loss) * duplicate
        mean = once + 2 * twice
        error = math.sqrt((once + 4 * twice - mean**2) / sent)
        assert sent > 150
        assert abs(delivered / sent - mean) <= 4 * error


@pytest.mark.parametrize(
    ("seed", "loss", "rounds"),
    [
        (11, 0.0, rounds_to_spread(6)),
        (12, 0.2, rounds_to_spread(6, 0.2)),
        (13, 0.2, rounds_to_spread(6, 0.2)),
    ],
)
async def test_a_new_file_is_seen_at_the_next_scan_tick_and_reaches_all_in_a_few_rounds(
    autojump_clock: trio.testing.MockClock, seed: int, loss: float, rounds: int
) -> None:
    async with open_sim(SIX, seed=seed, loss=loss) as sim:
        await sim.wait_until(sim.converged, within=30)
        await trio.sleep(1.37)  # somewhere between two scan ticks
        c = sim.peers["C"]
        before = c.view()["C"]
        others_before = {n: p.view()[n].content for n, p in sim.peers.items()}
        sim.folders["C"]["report.pdf"] = (12_345, 1_700_000_000_123_456_789)
        tick = sim.next_scan("C", trio.current_time())
        assert tick - trio.current_time() > 0.01  # the test means to wait for a tick

        await at(tick - 1e-6)
        assert c.view()["C"].content == before.content
        await at(tick)
        after = c.view()["C"]
        assert after.content == (before.generation, before.version + 1)
        assert files_of(after) == sim.folders["C"]
        assert c.snapshot(tick)["origins"]["C"]["changed_ago"] == 0.0
        # The other peers' folders did not change: their versions stay.
        assert {n: p.view()[n].content for n, p in sim.peers.items() if n != "C"} == {
            n: v for n, v in others_before.items() if n != "C"
        }

        done = await sim.wait_until(lambda: sim.everyone_holds("C"), within=rounds * ROUND)
        assert done - tick <= rounds * ROUND
        assert all(sim.shows_folder(n, "C") for n in sim.peers)


@pytest.mark.parametrize(
    ("seed", "loss", "reap", "rounds"),
    [
        (21, 0.0, REAP, 10),
        # Some 80 parts, a window of 16, a fifth of them lost: the fetch takes longer
        # than ``reap``, and the origin, alive and beating, must not be reaped.
        (22, 0.2, 15.0, 40),
        (23, 0.2, 15.0, 40),
    ],
)
async def test_ten_thousand_files_arrive_whole_and_never_in_part(
    autojump_clock: trio.testing.MockClock, seed: int, loss: float, reap: float, rounds: int
) -> None:
    names = SIX[:5]
    intervals = Intervals(scan=SCAN, push=ROUND, relay=ROUND, reap=reap)
    async with open_sim(names, seed=seed, loss=loss, intervals=intervals) as sim:
        await sim.wait_until(sim.converged, within=30)
        a = sim.peers["A"]
        old_entry = a.view()["A"]
        old = dict(sim.folders["A"])
        new = old | {
            f"big/dir{i // 100:03}/file{i:05}.dat": (i * 7 + 1, 1_600_000_000_000_000_000 + i)
            for i in range(10_000)
        }
        checked: dict[int, tuple[tuple[FileMeta, ...], bool]] = {}  # holds the tuples: ids stay
        samples = 0

        def whole(entry: Entry) -> bool:
            """Whether ``entry`` is the old version or the whole new one."""
            seen = checked.get(id(entry.files))
            if seen is None:
                files = files_of(entry)
                if entry.content == old_entry.content:
                    ok = files == old
                else:
                    ok = entry.content == (old_entry.generation, old_entry.version + 1)
                    ok = ok and files == new
                seen = checked[id(entry.files)] = (entry.files, ok)
            return seen[1]

        async def sample() -> None:
            nonlocal samples
            while True:
                for name, peer in sim.peers.items():
                    entry = peer.view().get("A")
                    assert entry is not None, f"{name} reaped A at {trio.current_time()}"
                    assert whole(entry), (name, entry.content, len(entry.files))
                samples += 1
                await trio.sleep(0.05)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(sample)
            sim.folders["A"] = new
            tick = sim.next_scan("A", trio.current_time())
            done = await sim.wait_until(
                lambda: sim.everyone_holds("A") and a.view()["A"].version == old_entry.version + 1,
                within=SCAN + rounds * ROUND,
            )
            await trio.sleep(1)
            nursery.cancel_scope.cancel()

        assert done - tick <= rounds * ROUND
        assert samples >= (done - tick) / 0.05
        for name in names:
            assert sim.shows_folder(name, "A"), name
        # The list took many datagrams, and more than one window of them.
        assert len(prepare("A", a.view()["A"], -1, sim.config.max_datagram).parts) > 2 * WINDOW


# -- repeatability ---------------------------------------------------------------


def outcome(generator: Callable[[str], random.Random]) -> tuple[object, ...]:
    """What twenty seconds of a lossy, duplicating cluster of eight end with:
    every view, every peer's counters and the network's."""

    async def main() -> tuple[object, ...]:
        async with open_sim(EIGHT, seed=31, loss=0.3, duplicate=0.1, generator=generator) as sim:
            await trio.sleep(20)
            return (
                {name: peer.view() for name, peer in sim.peers.items()},
                {name: peer.statistics() for name, peer in sim.peers.items()},
                (sim.network.sent, sim.network.delivered, sim.network.bytes_sent),
            )

    return trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def test_a_simulation_does_not_depend_on_the_scheduler() -> None:
    # trio runs the tasks that are ready together in an order drawn from its
    # own generator, which nothing here seeds: each run below is scheduled
    # differently, and still ends the same.
    outcomes = [outcome(TaskRandom) for _ in range(4)]
    assert all(o == outcomes[0] for o in outcomes[1:])
    # The control: a generator shared by a peer's tasks, and the order shows
    # (each of the eight peers' push and relay loops draw their first
    # deadlines in the order trio starts them: four equal runs would be a
    # chance of 2**-24).
    shared = [outcome(random.Random) for _ in range(4)]
    assert any(o != shared[0] for o in shared[1:])


# -- restarts ------------------------------------------------------------------


@pytest.mark.parametrize(("seed", "loss"), [(31, 0.0), (32, 0.2), (33, 0.2)])
async def test_a_restarted_peer_with_a_new_generation_is_accepted_at_once(
    autojump_clock: trio.testing.MockClock, seed: int, loss: float
) -> None:
    async with open_sim(SIX, seed=seed, loss=loss) as sim:
        await sim.wait_until(sim.converged, within=30)
        await sim.stop("D")
        stopped_at = trio.current_time()
        await trio.sleep(5 * ROUND)
        old = sim.peers["A"].view()["D"]
        sim.folders["D"] = {"after-restart.txt": (77, 1_700_000_001_000_000_000)}
        generation = GENERATION + 60 * SECOND
        await sim.restart("D", generation=generation)

        done = await sim.wait_until(
            lambda: sim.everyone_holds("D"), within=rounds_to_spread(6, loss) * ROUND
        )
        assert done < stopped_at + REAP  # long before the old generation could be reaped
        for name, peer in sim.peers.items():
            entry = peer.view()["D"]
            assert entry.generation == generation > old.generation
            assert sim.shows_folder(name, "D")
            assert not peer.reaped()
            assert peer.statistics().reaped == 0


@pytest.mark.parametrize(("seed", "loss"), [(41, 0.0), (42, 0.2), (43, 0.2)])
async def test_a_restart_with_the_clock_set_back_wins_by_refutation(
    autojump_clock: trio.testing.MockClock, seed: int, loss: float
) -> None:
    async with open_sim(SIX, seed=seed, loss=loss) as sim:
        await sim.wait_until(sim.converged, within=30)
        remembered = sim.peers["A"].view()["D"]
        await sim.stop("D")
        await trio.sleep(3 * ROUND)
        sim.folders["D"] = {"after-restart.txt": (77, 1_700_000_001_000_000_000)}
        d = await sim.restart("D", generation=GENERATION - 3600 * SECOND)
        assert d.view()["D"].generation < remembered.generation

        # A few rounds: hear what the cluster holds about us, outdo it, spread it.
        await sim.wait_until(
            lambda: sim.everyone_holds("D"),
            within=(rounds_to_spread(6, loss) + 2) * ROUND,
        )
        assert d.statistics().refuted >= 1
        own = d.view()["D"]
        assert own.generation > remembered.generation
        for name, peer in sim.peers.items():
            assert peer.view()["D"].content == own.content
            assert sim.shows_folder(name, "D")
            assert not peer.reaped()


# -- reaping -------------------------------------------------------------------


async def test_a_peer_whose_folder_never_changes_is_never_reaped(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_sim(SIX, seed=51, loss=0.2) as sim:
        await sim.wait_until(sim.converged, within=30)
        contents = {n: p.view()[n].content for n, p in sim.peers.items()}
        beats = {n: p.view()[n].heartbeat for n, p in sim.peers.items()}
        end = trio.current_time() + 4 * REAP
        while trio.current_time() < end:
            await trio.sleep(ROUND / 4)
            for name, peer in sim.peers.items():
                assert not peer.reaped(), name
                assert set(peer.view()) == set(SIX), name
        for name, peer in sim.peers.items():
            assert peer.statistics().reaped == 0
            assert peer.view()[name].content == contents[name]  # the folders never changed
            assert peer.view()[name].heartbeat >= beats[name] + 4 * REAP / ROUND - 1
        assert sim.converged()


def reaped_everywhere(sim: Sim, origin: str) -> bool:
    return all(origin in peer.reaped() and origin not in peer.view() for peer in sim.peers.values())


@pytest.mark.parametrize(("seed", "loss"), [(61, 0.0), (62, 0.2), (63, 0.2)])
async def test_a_stopped_peer_is_reaped_everywhere_and_never_comes_back(
    autojump_clock: trio.testing.MockClock, seed: int, loss: float
) -> None:
    async with open_sim(SIX, seed=seed, loss=loss) as sim:
        await sim.wait_until(sim.converged, within=30)
        await trio.sleep(2.71)
        await sim.stop("E")
        stopped_at = trio.current_time()

        # Nobody reaps E while its last heartbeats are still fresh...
        await at(stopped_at + REAP - 4 * ROUND)
        assert not any("E" in p.reaped() for p in sim.peers.values())
        assert all("E" in p.view() for p in sim.peers.values())
        # ... and everyone has reaped it soon after ``reap`` seconds of silence.
        done = await sim.wait_until(lambda: reaped_everywhere(sim, "E"), within=10 * ROUND)
        assert done - stopped_at <= REAP + 4 * ROUND

        # An old copy never brings it back: sample for three more reap periods.
        end = trio.current_time() + 3 * REAP
        while trio.current_time() < end:
            await trio.sleep(0.05)
            assert reaped_everywhere(sim, "E")
        for peer in sim.peers.values():
            assert set(peer.view()) == set(SIX) - {"E"}
            assert set(peer.reaped()) == {"E"}
        assert sim.converged()


async def test_the_reaper_reaps_exactly_reap_seconds_after_the_last_news(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_sim("ABCD", seed=71) as sim:
        await sim.wait_until(sim.converged, within=30)
        await sim.stop("D")
        await trio.sleep(3 * ROUND)  # the cluster agrees on D's last heartbeat
        last = max((p.view()["D"] for p in sim.peers.values()), key=lambda e: e.key)
        assert all(p.view()["D"].key == last.key for p in sim.peers.values())

        # One more heartbeat of D, straight to A at a known time: A's last news of D.
        await trio.sleep(0.123)
        heard_at = trio.current_time()
        news = Digest("D", False, (Line("D", last.generation, last.version, last.heartbeat + 1),))
        sim.network.route(encode(news), sim.address("D"), sim.address("A"))
        await trio.testing.wait_all_tasks_blocked()
        a = sim.peers["A"]
        assert a.view()["D"].heartbeat == last.heartbeat + 1
        assert a.snapshot(heard_at)["origins"]["D"]["heard_ago"] == 0.0

        await at(heard_at + REAP - 1e-6)
        assert "D" in a.view()
        await at(heard_at + REAP)
        assert "D" not in a.view()
        assert a.reaped()["D"].key == (last.generation, last.version, last.heartbeat + 1, True)
        assert a.snapshot(heard_at + REAP)["reaped"]["D"]["reaped_ago"] == 0.0
        assert a.statistics().reaped == 1
        # A's tombstone, at the greatest key, ends up everywhere.
        await sim.wait_until(lambda: reaped_everywhere(sim, "D"), within=5 * ROUND)
        assert all(p.reaped()["D"] == a.reaped()["D"] for p in sim.peers.values())


async def test_a_tombstone_at_a_key_at_least_ours_reaps_at_once_and_an_older_one_does_not(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_sim("ABCD", seed=75) as sim:
        await sim.wait_until(sim.converged, within=30)
        await trio.sleep(3 * ROUND)
        b = sim.peers["B"]
        held = b.view()["C"]
        g, v, h = held.generation, held.version, held.heartbeat
        assert h >= 1

        def tell_b(*lines: Line) -> None:
            handle(b, encode(Digest("A", False, lines)), sim.address("A"), now)
            assert not b.statistics().rejected

        now = trio.current_time()
        tell_b(Line("C", g, v, h - 1, reaped=True))  # reaped at a key below ours: stale
        assert b.view()["C"] == held
        assert not b.reaped()
        tell_b(Line("C", g, v, h, reaped=True))  # at our very key, dead beats alive
        assert "C" not in b.view()
        assert b.reaped()["C"].key == (g, v, h, True)
        assert b.snapshot(now)["reaped"]["C"]["reaped_ago"] == 0.0
        assert b.statistics().reaped == 0  # taken from A, not reaped by B's reaper


async def test_fresh_news_is_relayed_between_push_rounds(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # Pushes ten times rarer than relays: only relaying spreads news within a push round.
    intervals = Intervals(scan=SCAN, push=10 * ROUND, relay=ROUND, reap=10 * REAP)
    async with open_sim(EIGHT, seed=76, intervals=intervals) as sim:
        await sim.wait_until(sim.converged, within=100)
        await trio.sleep(0.5)
        sim.folders["B"]["news.txt"] = (1, 1)
        await sim.wait_until(lambda: sim.shows_folder("B", "B"), within=SCAN)

        # B's own push (or a pull from B) hands it to a first peer; the relays take over.
        def holders() -> int:
            return sum(sim.shows_folder(n, "B") for n in sim.peers)

        first = await sim.wait_until(lambda: holders() >= 2, within=3 * intervals.push)
        done = await sim.wait_until(lambda: holders() == len(EIGHT), within=30)
        # Each peer relays a fresh version log2(n) + 1 times: an epidemic that
        # (about 98 runs in 100, over seeds) reaches all eight within a push round.
        assert done - first < intervals.push


@pytest.mark.parametrize(("seed", "loss"), [(81, 0.0), (82, 0.2), (83, 0.2)])
async def test_a_peer_that_comes_back_after_being_reaped_is_accepted_at_once(
    autojump_clock: trio.testing.MockClock, seed: int, loss: float
) -> None:
    async with open_sim(SIX, seed=seed, loss=loss) as sim:
        await sim.wait_until(sim.converged, within=30)
        await sim.stop("B")
        await sim.wait_until(lambda: reaped_everywhere(sim, "B"), within=REAP + 10 * ROUND)
        await trio.sleep(2 * ROUND)
        sim.folders["B"] = {"back.txt": (5, 1_700_000_002_000_000_000)}
        generation = GENERATION + 120 * SECOND
        await sim.start("B", generation=generation)

        await sim.wait_until(
            lambda: sim.everyone_holds("B"), within=rounds_to_spread(6, loss) * ROUND
        )
        for name, peer in sim.peers.items():
            assert peer.view()["B"].generation == generation
            assert "B" not in peer.reaped()
            assert sim.shows_folder(name, "B")


# -- untrusted input -------------------------------------------------------------


def _forgeries(sim: Sim) -> list[tuple[str, Address, Message]]:
    """Datagrams to A that a careless peer would act on: reason, source, message."""
    view = sim.peers["A"].view()
    b, c = view["B"], view["C"]
    news = (
        Line("B", b.generation, b.version, b.heartbeat + 5),
        Line("C", c.generation, c.version + 1, c.heartbeat),
    )
    part = Part("B", "Zed", 1, 1, 1, 0, -1, 0, 1, 1, (FileMeta("evil.txt", 1, 1, 1),))
    want = Want("B", "Zed", 1, 1, -1, -1, -1, ())
    return [
        ("wrong address", NOWHERE, Digest("B", True, news)),  # from an unconfigured address
        ("wrong address", sim.address("C"), Digest("B", True, news)),  # a forged sender
        ("wrong address", sim.address("A"), Digest("A", True, news)),  # ourselves
        ("unknown sender", NOWHERE, Digest("Mallory", True, news)),
        ("unknown sender", sim.address("B"), Digest("Mallory", True, news)),
        ("unknown origin", sim.address("B"), Digest("B", True, (*news, Line("Zed", 1, 1, 1)))),
        ("unknown origin", sim.address("B"), part),
        ("unknown origin", sim.address("B"), want),
        ("wrong address", NOWHERE, attrs.evolve(part, origin="C", generation=c.generation + 1)),
        ("unexpected", sim.address("B"), Info("B", 1, 0, 1, "{}")),
    ]


async def test_forged_datagrams_are_rejected_by_reason_and_change_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_sim("ABCD", seed=91) as sim:
        await sim.wait_until(sim.converged, within=30)
        a = sim.peers["A"]
        for reason, source, message in _forgeries(sim):
            now = trio.current_time()
            before = without_statistics(a.snapshot(now))
            rejected = dict(a.statistics().rejected)
            assert handle(a, encode(message), source, now) == []
            assert without_statistics(a.snapshot(now)) == before, (reason, message)
            rejected[reason] = rejected.get(reason, 0) + 1
            assert a.statistics().rejected == rejected, message

        # The same digest from the right peer does change things: the above was no accident.
        now = trio.current_time()
        _, _, digest = _forgeries(sim)[0]
        assert isinstance(digest, Digest)
        replies = handle(a, encode(digest), sim.address("B"), now)
        assert a.view()["B"].heartbeat == digest.lines[0].heartbeat
        assert any(isinstance(m, Want) and m.origin == "C" for m in replies)
        assert any(isinstance(m, Digest) for m in replies)
        _, _, part = _forgeries(sim)[8]
        assert isinstance(part, Part)
        assert handle(a, encode(part), sim.address("B"), now) == []
        assert files_of(a.view()["C"]) == {"evil.txt": (1, 1)}  # B is trusted, and lied


async def test_forged_datagrams_through_the_network_are_rejected_and_answered_by_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_sim("ABCD", seed=92) as sim:
        await sim.wait_until(sim.converged, within=30)
        a = sim.peers["A"]
        await trio.sleep(0.5)
        for reason, source, message in _forgeries(sim):
            now = trio.current_time()
            before = without_statistics(a.snapshot(now))
            stats = a.statistics()
            sim.network.route(encode(message), source, sim.address("A"))
            await trio.testing.wait_all_tasks_blocked()
            assert trio.current_time() == now
            after = a.statistics()
            assert after.datagrams_in == stats.datagrams_in + 1
            assert after.datagrams_out == stats.datagrams_out  # no answer
            assert after.rejected[reason] == stats.rejected.get(reason, 0) + 1
            assert without_statistics(a.snapshot(now)) == before


def _valid_datagrams(sim: Sim) -> list[bytes]:
    """One of each kind of message, as the peers send them, to mutate."""
    a = sim.peers["A"]
    view = a.view()
    b = view["B"]
    transfer = prepare("B", b, -1, sim.config.max_datagram)
    roster = Roster.of(sim.config.peers)
    messages: list[Message] = [
        Digest("B", True, tuple(Line.of(o, e) for o, e in view.items())),
        Digest("B", False, (), roster.fingerprint, roster.summary(roster.bits("AB"))),
        Want("B", "A", *view["A"].content, -1, -1, -1, ()),
        Want("B", "A", *view["A"].content, -1, -1, -1, (0, 1, 2)),
        transfer.part("B", b.heartbeat, 0),
        attrs.evolve(transfer.part("B", b.heartbeat, 0), version=b.version + 1, base=b.version),
        InfoRequest(42, ()),
        InfoRequest(42, (0, 3)),
        Info("B", 42, 0, 1, "{}"),
    ]
    return [encode(m) for m in messages]


_ODD_VALUES: list[Any] = [
    None,
    True,
    False,
    -1,
    -2,
    0,
    1,
    2**31,
    2**63 - 1,
    2**63,
    -(2**63) - 1,
    10**40,
    1.5,
    -0.0,
    1e308,
    "",
    "1",
    "A",
    "Zed",
    "x" * 300,
    "a/../b",
    "\x00",
    "\ud800",
    [],
    [1],
    [[]],
    ["A", 1, 1, 1, False],
    ["f", 1, 1, 1, False, 7],
    {},
    {"a": 1},
]


def _mutate(data: bytes, rng: random.Random) -> bytes:
    """``data`` with one random change: to its bytes, or to one value of its JSON."""
    kind = rng.randrange(6)
    if kind == 0:
        return data[: rng.randrange(len(data))]
    if kind == 1:
        i = rng.randrange(len(data))
        return data[:i] + bytes([data[i] ^ (1 << rng.randrange(8))]) + data[i + 1 :]
    if kind == 2:
        i = rng.randrange(len(data))
        return data[:i] + rng.randbytes(rng.randrange(1, 8)) + data[i:]
    try:
        body = json.loads(data)
    except ValueError:  # an earlier mutation broke the JSON: break it some more
        return _mutate(data, rng) if rng.random() < 0.5 else data + b"}"
    if not isinstance(body, dict):
        return data[::-1]
    # Pick a container inside the message and a place in it.
    containers: list[Any] = [body]
    stack: list[Any] = [body]
    while stack:
        node = stack.pop()
        children = node.values() if isinstance(node, dict) else node
        for child in children:
            if isinstance(child, dict | list) and child:
                containers.append(child)
                stack.append(child)
    node = rng.choice(containers)
    if not node:
        node["extra"] = rng.choice(_ODD_VALUES)
    elif isinstance(node, dict):
        key: Any = rng.choice(list(node))
        if kind == 3:
            del node[key]
        elif kind == 4:
            node[rng.choice(["extra", "proto", "type", key])] = rng.choice(_ODD_VALUES)
        else:
            node[key] = rng.choice(_ODD_VALUES)
    else:
        i = rng.randrange(len(node))
        if kind == 3:
            del node[i]
        elif kind == 4:
            node.insert(i, rng.choice(_ODD_VALUES))
        else:
            node[i] = rng.choice(_ODD_VALUES)
    return json.dumps(body).encode()


def _garbage(sim: Sim, rng: random.Random, count: int) -> list[bytes]:
    valid = _valid_datagrams(sim)
    out: list[bytes] = [
        b"",
        b"\xff\xfe",
        b"null",
        b"[]",
        b"7",
        b'"digest"',
        b"[" * 100_000,
        b'{"proto":1,"type":"digest","sender":"B","reply":true,"lines":' + b"[" * 50_000,
        b"1" * 5_000,
        b'{"proto":1,"type":"info?","nonce":1,"parts":[' + b"9," * 63 + b"9]}",
        b"x" * 70_000,
    ]
    for _ in range(count):
        if rng.random() < 0.2:
            out.append(rng.randbytes(rng.randrange(1, 300)))
        else:
            data = rng.choice(valid)
            for _ in range(rng.choice((1, 1, 2, 3))):
                data = _mutate(data, rng) or b"{"
            out.append(data)
    return out


def _check_replies(peer: Peer, replies: list[Message]) -> None:
    # The receive loop sends every reply: each must encode and fit a datagram.
    for reply in replies:
        assert len(encode(reply)) <= peer.config.max_datagram


async def test_garbage_from_an_unconfigured_address_is_rejected_and_changes_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_sim("ABCD", seed=101) as sim:
        await sim.wait_until(sim.converged, within=30)
        a = sim.peers["A"]
        rng = random.Random(101)
        now = trio.current_time()
        before = without_statistics(a.snapshot(now))
        requests = 0
        for data in _garbage(sim, rng, 3_000):
            rejected = sum(a.statistics().rejected.values())
            replies = handle(a, data, NOWHERE, now)
            _check_replies(a, replies)
            try:
                message: Message | None = decode_untrusted(data)
            except BadDatagram:
                message = None
            if isinstance(message, InfoRequest):  # anyone may ask for a snapshot
                assert all(isinstance(m, Info) for m in replies)
                requests += 1
            else:
                assert replies == []
                assert sum(a.statistics().rejected.values()) == rejected + 1, data[:200]
        assert without_statistics(a.snapshot(now)) == before
        assert requests > 0  # the mutations kept some requests valid
        assert a.statistics().rejected.keys() >= {"not json", "malformed", "wrong address"}


async def test_garbage_never_crashes_a_receiver(autojump_clock: trio.testing.MockClock) -> None:
    async with open_sim("ABCD", seed=102) as sim:
        await sim.wait_until(sim.converged, within=30)
        a = sim.peers["A"]
        rng = random.Random(102)
        sources = [NOWHERE, sim.address("A"), sim.address("B"), sim.address("C")]
        garbage = _garbage(sim, rng, 3_000)
        # Straight into the receiver's decisions: nothing raises, every reply fits.
        for data in garbage:
            _check_replies(a, handle(a, data, rng.choice(sources), trio.current_time()))
        # Through the network, at the running receive loops of every peer.
        for i, data in enumerate(d for d in garbage if len(d) <= MAX_DATAGRAM):
            target = rng.choice("ABCD")
            source = rng.choice([NOWHERE, *(sim.address(n) for n in "ABCD" if n != target)])
            sim.network.route(data, source, sim.address(target))
            if i % 50 == 0:
                await trio.sleep(0.01)
        # The peers still run and still gossip: a new file of D reaches everyone.
        await trio.sleep(3 * ROUND)
        sim.folders["D"]["after-the-storm.txt"] = (1, 2)
        await sim.wait_until(lambda: sim.shows_folder("D", "D"), within=SCAN + 0.1)
        await sim.wait_until(
            lambda: all(sim.shows_folder(n, "D") for n in sim.peers), within=30 * ROUND
        )


# -- what --info shows -----------------------------------------------------------


async def test_snapshot_has_what_info_documents(autojump_clock: trio.testing.MockClock) -> None:
    folders: dict[str, Folder] = {
        "A": {"a.txt": (1, 11), "sub/b.bin": (2_000, 22)},
        "B": {"c.txt": (3, 33)},
        "C": {},
        "D": {"d": (4, 44)},
    }
    async with open_sim("ABCD", seed=111, folders=folders) as sim:
        await sim.wait_until(sim.converged, within=30)
        await sim.stop("D")
        await sim.wait_until(lambda: reaped_everywhere(sim, "D"), within=REAP + 10 * ROUND)
        a = sim.peers["A"]
        now = trio.current_time()
        snapshot = a.snapshot(now)
        assert json.loads(json.dumps(snapshot)) == snapshot  # it travels as JSON

        assert snapshot.keys() == {
            "peer",
            "address",
            "folder",
            "skipped",
            "origins",
            "reaped",
            "statistics",
        }
        assert snapshot["skipped"] == 0
        assert snapshot["peer"] == "A"
        assert snapshot["address"] == "10.0.0.1:7000"
        assert list(snapshot["origins"]) == ["A", "B", "C"]  # in name order, D reaped
        assert list(snapshot["reaped"]) == ["D"]
        for origin, shown in snapshot["origins"].items():
            entry = a.view()[origin]
            assert shown.keys() == {
                "generation",
                "version",
                "heartbeat",
                "changed_ago",
                "heard_ago",
                "status",
                "status_ago",
                "file_count",
                "files",
            }
            assert shown["status"] == "alive"
            assert shown["version"] == entry.version
            assert shown["heartbeat"] == entry.heartbeat
            assert shown["generation"] == entry.generation
            assert shown["files"] == [
                {"name": name, "size": size, "mtime_ns": mtime}
                for name, (size, mtime) in sorted(folders[origin].items())
            ]
            assert shown["file_count"] == len(folders[origin])
            assert shown["changed_ago"] is not None
            assert 0 <= shown["changed_ago"] <= now
            assert 0 <= shown["heard_ago"] < REAP  # alive: heard of within ``reap``
        assert snapshot["origins"]["A"]["heard_ago"] == 0.0
        assert snapshot["origins"]["A"]["changed_ago"] == round(now - sim.started["A"], 3)

        tombstone = a.reaped()["D"]
        assert snapshot["reaped"]["D"].keys() == {"generation", "version", "reaped_ago", "status"}
        assert snapshot["reaped"]["D"]["version"] == tombstone.version
        assert snapshot["reaped"]["D"]["generation"] == tombstone.generation
        assert 0 <= snapshot["reaped"]["D"]["reaped_ago"] <= 10 * ROUND

        statistics = snapshot["statistics"]
        assert statistics.keys() == {
            "datagrams_in",
            "datagrams_out",
            "bytes_in",
            "bytes_out",
            "rejected",
            "accepted",
            "reaped",
            "refuted",
            "scans",
            "scan_failures",
        }
        assert statistics == attrs.asdict(a.statistics())
        assert statistics["datagrams_in"] > 0
        assert statistics["datagrams_out"] > 0
        assert statistics["scans"] == 1 + math.floor((now - sim.started["A"]) / SCAN)

        text = format_info(snapshot)
        for needle in ("peer A", "sub/b.bin", "B:", "C:", "reaped: D"):
            assert needle in text


async def test_a_generation_far_ahead_of_the_wall_clock_is_refused(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # One forged line at a huge generation used to freeze an origin: refuting
    # it needs a generation the wire cannot carry, and nothing else outdoes it.
    # A generation more than a year ahead of our wall clock is no restart:
    # refused and counted (Cassandra's MAX_GENERATION_DIFFERENCE).
    year = 365 * 24 * 3600 * SECOND
    async with open_sim("ABC", seed=93) as sim:
        await sim.wait_until(sim.converged, within=30)
        a = sim.peers["A"]
        before = a.view()
        now = trio.current_time()
        for origin in "AC":
            for generation in (MAX_COUNTER, GENERATION + year + 1):
                forged = Digest("B", False, (Line(origin, generation, 1, 1),))
                assert handle(a, encode(forged), sim.address("B"), now) == []
        c = before["C"]
        part = prepare("C", attrs.evolve(c, generation=GENERATION + 2 * year), -1, 8192)
        assert handle(a, encode(part.part("B", 0, 0)), sim.address("B"), now) == []
        assert a.view() == before
        assert a.statistics().rejected == {"generation ahead": 5}
        # Within the year, it is a restart we did not make: outdone at once.
        ahead = GENERATION + year - 1
        forged = Digest("B", False, (Line("A", ahead, 1, 1),))
        handle(a, encode(forged), sim.address("B"), now)
        assert a.view()["A"].generation == ahead + 1
        assert a.statistics().refuted == 1


async def test_info_answers_are_rate_limited(autojump_clock: trio.testing.MockClock) -> None:
    async with open_sim("AB", seed=94) as sim:
        a = sim.peers["A"]
        now = trio.current_time()
        sent = 0
        for nonce in range(INFO_BURST + 5):
            sent += len(handle(a, encode(InfoRequest(nonce, ())), NOWHERE, now))
        assert sent == INFO_BURST  # one part each: the snapshot of two empty folders is small
        assert a.statistics().rejected == {"info rate": 5}
        # Then INFO_RATE a second: one part after 1 / INFO_RATE seconds, not before.
        later = now + 1 / INFO_RATE
        assert handle(a, encode(InfoRequest(0, ())), NOWHERE, later - 1e-6) == []
        assert len(handle(a, encode(InfoRequest(0, ())), NOWHERE, later + 1e-6)) == 1
        after_a_second = later + 1e-6 + 1  # a second after that part: INFO_RATE more
        sent = sum(
            len(handle(a, encode(InfoRequest(n, ())), NOWHERE, after_a_second))
            for n in range(INFO_RATE + 5)
        )
        assert sent == INFO_RATE


async def test_a_digest_naming_an_origin_twice_is_refused_whole(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_sim("ABC", seed=95) as sim:
        await sim.wait_until(sim.converged, within=30)
        a = sim.peers["A"]
        c = a.view()["C"]
        news = Line("C", c.generation, c.version + 1, c.heartbeat + 1)
        # The last line wins in a dict: [tombstone, live] would lose the tombstone.
        dead = attrs.evolve(news, reaped=True)
        for lines in [(news,) * 50, (dead, news)]:
            replies = handle(
                a, encode(Digest("B", False, lines)), sim.address("B"), trio.current_time()
            )
            assert replies == []
        assert a.view()["C"] == c
        assert a.statistics().rejected == {"out of bounds": 2}


# -- summaries: who holds what, one bit per peer -----------------------------------


@pytest.mark.parametrize("seed", [97, 98])
async def test_sixty_peers_at_the_smallest_datagram_converge_through_the_summaries(
    autojump_clock: trio.testing.MockClock, seed: int
) -> None:
    # A digest holds 27 lines of 60. By random samples alone a peer waits for
    # the last origins to be drawn (6.5 and 7.4 rounds for these seeds, with
    # summaries ignored); the summaries name them: 3.7 and 4.2 rounds.
    names = [f"p{i:02d}" for i in range(60)]
    async with open_sim(names, seed=seed, max_datagram=MIN_DATAGRAM) as sim:
        start = trio.current_time()
        done = await sim.wait_until(sim.converged, within=5 * ROUND)
        assert done - start <= 5 * ROUND


async def test_a_summary_makes_the_answer_name_what_its_sender_lacks(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # Sixty peers at the smallest datagram: a digest carries 27 lines,
    # so what a digest names is a choice, not the whole view.
    names = [f"p{i:02d}" for i in range(60)]
    async with open_sim(names, seed=96, max_datagram=MIN_DATAGRAM) as sim:
        await sim.wait_until(sim.converged, within=60)
        a = sim.peers["p00"]
        roster = Roster.of(names)
        lacks = set(names[40:50])  # what p01 will say it does not hold
        summary = roster.summary(roster.bits(set(names) - lacks))
        own = a.entry("p01")
        assert own is not None
        line = Line.of("p01", own)

        def answer(reply: bool, fingerprint: int = roster.fingerprint) -> list[Message]:
            digest = Digest("p01", reply, (line,), fingerprint, summary)
            return handle(a, encode(digest), sim.address("p01"), trio.current_time())

        # A push: the answer names every origin the pusher lacks, and summarises
        # what p00 holds: everyone.
        (pull,) = answer(reply=True)
        assert isinstance(pull, Digest)
        assert not pull.reply
        assert lacks <= {x.origin for x in pull.lines}
        assert 20 < len(pull.lines) < 60  # a choice: 27 of 60
        assert roster.read(pull.roster, pull.held) == roster.bits(names)
        # The answer to our push: a third leg names what its sender lacks.
        (third,) = answer(reply=False)
        assert isinstance(third, Digest)
        assert (third.reply, third.held) == (False, "")
        assert lacks <= {x.origin for x in third.lines}
        # A summary against another roster (another config) is ignored.
        assert answer(reply=False, fingerprint=roster.fingerprint ^ 1) == []
        # Nothing lacking: no third leg.
        summary = roster.summary(roster.bits(names))
        assert answer(reply=False) == []


async def test_a_peer_whose_own_summary_would_not_fit_still_reads_others(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # 3,700 configured peers: a summary takes 620 bytes, more than half of the
    # smallest datagram, so A sends none. A summary that does arrive (from a
    # peer with a larger datagram) is still read against what A holds.
    names = ["A", "B", "C", *(f"x{i:04d}" for i in range(3_697))]
    config = make_config(names, max_datagram=MIN_DATAGRAM)
    network = MemoryNetwork(seed=98)
    async with trio.open_nursery() as nursery:
        await nursery.start(network.run)
        sim = Sim(config, network, nursery, {"A": {"a.txt": (1, 1)}}, seed=98)
        a = await sim.start("A")
        now = trio.current_time()
        c = Entry(GENERATION + 2, 1, 1, 0, (FileMeta("c.txt", 1, 1, 1),))
        part = prepare("C", c, -1, MIN_DATAGRAM).part("C", c.heartbeat, 0)
        assert handle(a, encode(part), sim.address("C"), now) == []
        assert a.entry("C") == c

        roster = Roster.of(names)
        push = Digest("B", True, (Line("B", GENERATION + 1, 1, 1),))
        replies = handle(a, encode(push), sim.address("B"), now)
        assert [(type(m), getattr(m, "held", None)) for m in replies] == [
            (Want, None),
            (Digest, ""),
        ]
        # B's answer to a push of A's says B holds A and B, not C: A names C.
        answer = attrs.evolve(
            push, reply=False, roster=roster.fingerprint, held=roster.summary(roster.bits("AB"))
        )
        *_, third = handle(a, encode(answer), sim.address("B"), now)
        assert isinstance(third, Digest)
        assert "C" in {line.origin for line in third.lines}
        nursery.cancel_scope.cancel()
