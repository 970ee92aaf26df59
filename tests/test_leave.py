"""Leaving, suspecting and coming back, in virtual time over the in-memory network.

Every test runs under ``MockClock(autojump_threshold=0)`` with seeded
generators (see ``tests/sim.py``). Where the design makes a time exact (the
first peers told of a leave hear it as the peer stops; an origin is suspect
exactly ``suspect_after`` seconds after the last news of it) the test asserts
that time; elsewhere a bound in push rounds.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import random
from collections import deque
from collections.abc import Iterator

import attrs
import pytest
import trio
import trio.testing
from sim import GENERATION, Folder, Sim, make_config, open_sim

from trio_gossip import Intervals
from trio_gossip.codec import _TAGS, BadDatagram, decode_untrusted, encode
from trio_gossip.events import Kind
from trio_gossip.memory import MemoryNetwork
from trio_gossip.messages import Leave, Message
from trio_gossip.node import LEAVE_FANOUT, Node, Send
from trio_gossip.transport import Address

ROUND = 1.0  # the push and relay interval open_sim uses by default
REAP = 30.0
SIX = "ABCDEF"
EIGHT = "ABCDEFGH"
TWELVE = "ABCDEFGHIJKL"
SECOND = 10**9  # of the wall clock, in nanoseconds


async def at(when: float) -> None:
    """Sleep until virtual time ``when`` and let everything due then run."""
    await trio.sleep_until(when)
    await trio.testing.wait_all_tasks_blocked()


def rounds_to_hear_of_a_leave(peers: int, loss: float = 0.0) -> int:
    """Push rounds within which every other one of ``peers`` shows a leaver as left.

    The leave reaches LEAVE_FANOUT peers at once; from then on it spreads as an
    epidemic (each told peer relays it, pushes it while it is news, and hands
    it to whoever pushes to it), doubling the told peers each round:
    log2(N / fanout) rounds, one more for the last peer. With a fifth of the
    datagrams lost, one leave or one digest's answer in five is lost, and so
    is a first leave now and then: twice the rounds.
    """
    rounds = max(1, math.ceil(math.log2(peers / LEAVE_FANOUT))) + 1
    return rounds if loss == 0 else 2 * rounds


def left_everywhere(sim: Sim, origin: str) -> bool:
    return all(
        origin not in peer.view() and peer.node.replica.status.get(origin) == "left"
        for peer in sim.peers.values()
    )


@pytest.mark.parametrize(
    ("names", "seed", "loss"),
    [
        pytest.param(SIX, 1, 0.0, id="6-peers"),
        pytest.param(SIX, 2, 0.0, id="6-peers-again"),
        pytest.param(TWELVE, 3, 0.0, id="12-peers"),
        pytest.param(TWELVE, 4, 0.0, id="12-peers-again"),
        pytest.param(SIX, 5, 0.2, id="6-peers-20%-loss"),
        pytest.param(TWELVE, 6, 0.2, id="12-peers-20%-loss"),
        pytest.param(TWELVE, 7, 0.2, id="12-peers-20%-loss-again"),
    ],
)
async def test_a_leave_reaches_everyone_within_a_few_rounds_and_stays(
    autojump_clock: trio.testing.MockClock, names: str, seed: int, loss: float
) -> None:
    async with open_sim(names, seed=seed, loss=loss) as sim:
        await sim.wait_until(sim.converged, within=60)
        await trio.sleep(0.37)  # between ticks
        await sim.stop("B", leave=True)
        stopped = trio.current_time()
        await trio.testing.wait_all_tasks_blocked()
        told = {n for n, p in sim.peers.items() if p.node.replica.status.get("B") == "left"}
        if loss == 0:
            # The leave goes to four peers as the peer stops: they hear it then.
            assert len(told) == LEAVE_FANOUT
            for name in told:
                replica = sim.peers[name].node.replica
                assert replica.status_since["B"] == stopped
                assert replica["B"].reaped
        rounds = rounds_to_hear_of_a_leave(len(names), loss)
        done = await sim.wait_until(lambda: left_everywhere(sim, "B"), within=rounds * ROUND)
        assert done - stopped <= rounds * ROUND

        # Left stays left: not reaped later, not back, the others converged.
        end = trio.current_time() + 2 * REAP
        while trio.current_time() < end:
            await trio.sleep(0.25)
            assert left_everywhere(sim, "B")
        assert sim.converged()
        for peer in sim.peers.values():
            assert peer.statistics().reaped == 0
            assert set(peer.node.replica.status.values()) == {"alive", "left"}


# -- suspect and alive again -----------------------------------------------------


def status_lines(records: list[logging.LogRecord], origin: str) -> dict[str, list[str]]:
    """Each peer's logged events about ``origin`` that are a status: peer -> kinds
    (from the fields an event's log line carries, see trio_gossip/logs.py)."""
    out: dict[str, list[str]] = {}
    for record in records:
        fields = getattr(record, "fields", {})
        if fields.get("origin") == origin and fields.get("event") in STATUSES:
            out.setdefault(fields["peer"], []).append(fields["event"])
    return out


STATUSES = ("suspect", "alive", "left", "reaped")


async def test_a_partitioned_peer_is_suspect_exactly_after_suspect_after_and_alive_when_healed(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="trio_gossip")
    intervals = Intervals(scan=5.0, push=ROUND, relay=ROUND, reap=60.0)
    async with open_sim(EIGHT, seed=91, intervals=intervals) as sim:
        await sim.wait_until(sim.converged, within=60)
        d = sim.peers["D"]
        suspect_after = d.node.suspect_after
        # Eight peers: 3 (log2 8 + 2) rounds, below reap / 2.
        assert suspect_after == 15 * ROUND < intervals.reap / 2
        await trio.sleep(0.41)
        here = sim.address("D")
        sim.network.partition(lambda a, b: here in (a, b))
        cut = trio.current_time()
        caplog.clear()

        others = [p for n, p in sim.peers.items() if n != "D"]
        await sim.wait_until(
            lambda: all(p.node.replica.status["D"] == "suspect" for p in others),
            within=suspect_after + 5 * ROUND,
        )
        for peer in others:
            replica = peer.node.replica
            # The reaper wakes at the first time one is due: exactly then.
            assert replica.status_since["D"] == replica.heard["D"] + suspect_after
            # D's last heartbeat, still spreading among the others for a round or two.
            assert cut - 3 * ROUND <= replica.heard["D"] <= cut + 3 * ROUND
            assert "D" in peer.view()  # suspect, not gone
        # D, cut off, suspects everyone else, and says it hears no one.
        assert all(d.node.replica.status[n] == "suspect" for n in sim.peers if n != "D")
        assert any("heard from no other peer" in r.getMessage() for r in caplog.records)

        await at(cut + suspect_after + 5 * ROUND)
        sim.network.partition(None)
        healed = trio.current_time()
        assert healed + 3 * ROUND < cut + intervals.reap - 3 * ROUND  # far from reaping
        done = await sim.wait_until(
            lambda: (
                all(p.node.replica.status["D"] == "alive" for p in others)
                and all(s == "alive" for s in d.node.replica.status.values())
            ),
            within=3 * ROUND,
        )
        await trio.sleep(intervals.reap)
        assert sim.converged()
        for peer in sim.peers.values():
            assert peer.statistics().reaped == 0
            assert not peer.reaped()
            assert set(peer.node.replica.status.values()) == {"alive"}
        assert done > healed
        # Each other peer's events about D: suspect, then alive; nothing else.
        assert status_lines(caplog.records, "D") == {p.name: ["suspect", "alive"] for p in others}


# -- leaving and coming back -----------------------------------------------------


@pytest.mark.parametrize(
    ("seed", "loss", "generation"),
    [
        pytest.param(101, 0.0, GENERATION, id="same-generation"),
        pytest.param(102, 0.2, GENERATION, id="same-generation-loss"),
        pytest.param(103, 0.0, GENERATION - 3600 * SECOND, id="clock-set-back"),
        pytest.param(104, 0.2, GENERATION - 3600 * SECOND, id="clock-set-back-loss"),
    ],
)
async def test_a_peer_that_left_and_restarts_wins_at_once(
    autojump_clock: trio.testing.MockClock, seed: int, loss: float, generation: int
) -> None:
    async with open_sim(SIX, seed=seed, loss=loss) as sim:
        await sim.wait_until(sim.converged, within=60)
        await sim.stop("D", leave=True)
        await sim.wait_until(lambda: left_everywhere(sim, "D"), within=10 * ROUND)
        tomb = sim.peers["A"].node.replica["D"]
        await trio.sleep(2.3)
        sim.folders["D"] = {"back.txt": (9, 1_700_000_003_000_000_000)}
        d = await sim.start("D", generation=generation)
        started = trio.current_time()
        # Its start is below the tombstone the cluster holds: it must outdo it.
        assert d.view()["D"].key < tomb.key

        rounds = rounds_to_hear_of_a_leave(6, loss) + 3  # hear, outdo, spread
        done = await sim.wait_until(
            lambda: (
                sim.converged()
                and all(p.node.replica.status["D"] == "alive" for p in sim.peers.values())
            ),
            within=rounds * ROUND,
        )
        assert done - started <= rounds * ROUND
        assert d.statistics().refuted >= 1
        assert d.view()["D"].generation > tomb.generation
        for name, peer in sim.peers.items():
            assert sim.shows_folder(name, "D")
            assert not peer.reaped()


@attrs.define
class RecordingNetwork(MemoryNetwork):
    """The in-memory network, keeping every datagram it is given."""

    seen: list[tuple[bytes, Address, Address]] = attrs.field(init=False, factory=list)

    def route(self, data: bytes, source: Address, destination: Address) -> None:
        self.seen.append((data, source, destination))
        super().route(data, source, destination)


async def test_what_a_left_peer_sent_before_never_brings_it_back(
    autojump_clock: trio.testing.MockClock,
) -> None:
    folders: dict[str, Folder] = {n: {f"{n}.txt": (1, 1)} for n in SIX}
    # Enough files for a transfer of several parts: old parts to replay too.
    folders["B"] = {f"dir/file{i:04}.dat": (i, 1_700_000_000_000_000_000 + i) for i in range(300)}
    async with open_sim(SIX, seed=111, folders=folders, network_type=RecordingNetwork) as sim:
        assert isinstance(sim.network, RecordingNetwork)
        seen = sim.network.seen
        await sim.wait_until(sim.converged, within=60)
        await trio.sleep(3 * ROUND)
        b = sim.address("B")
        old = [(data, source) for data, source, _ in seen if source == b]
        kinds = {json.loads(data)["type"] for data, _ in old}
        assert {"digest", "want", "part"} <= kinds  # B's pushes, its asks, its files
        # And what the others said about B, at B's old keys.
        about_b = [(d, s) for d, s, _ in seen if s != b and b"B" in d]
        await sim.stop("B", leave=True)
        await sim.wait_until(lambda: left_everywhere(sim, "B"), within=10 * ROUND)
        tomb = sim.peers["A"].node.replica["B"]

        # Replayed to every peer, from B's address and from the others'.
        for data, source in [*old, *about_b]:
            for name in sim.peers:
                if sim.address(name) != source:
                    sim.network.route(data, source, sim.address(name))
            await trio.sleep(0.01)
        end = trio.current_time() + 2 * REAP
        while trio.current_time() < end:
            await trio.sleep(0.25)
            assert left_everywhere(sim, "B")
        for peer in sim.peers.values():
            assert peer.node.replica["B"] == tomb
            assert peer.statistics().refuted == 0


# -- older peers -------------------------------------------------------------------


def test_a_type_the_decoder_does_not_know_is_refused_cleanly() -> None:
    # What an older peer's decoder does with "leave": the tag is not in its table.
    leave = json.loads(encode(Leave("B", "B", GENERATION, 3, 17)))
    leave["type"] = "farewell"  # a tag no version of today knows
    with pytest.raises(BadDatagram) as info:
        decode_untrusted(json.dumps(leave).encode())
    assert info.value.reason == "unknown type"


@contextlib.contextmanager
def without_leave() -> Iterator[None]:
    """The tag table of a peer from before ``leave``: the tags are only ever appended."""
    cls = _TAGS.pop("leave")
    try:
        yield
    finally:
        _TAGS["leave"] = cls


async def test_a_peer_that_does_not_know_leave_counts_it_and_drops_the_peer_anyway(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_sim(SIX, seed=121) as sim:
        await sim.wait_until(sim.converged, within=60)
        old = sim.peers["C"].node
        handle = old._handle_untrusted

        def as_old(data: bytes, source: Address, now: float) -> list[Message]:
            with without_leave():  # no await inside: only C's decoding is old
                return handle(data, source, now)

        old._handle_untrusted = as_old  # type: ignore[method-assign]
        assert "leave" in _TAGS
        await sim.stop("B", leave=True)
        stopped = trio.current_time()
        # The others take the tombstone from the leave; C from their digests'
        # tombstone lines, as a peer reaped elsewhere: its status says reaped.
        done = await sim.wait_until(
            lambda: all("B" not in p.view() for p in sim.peers.values()), within=5 * ROUND
        )
        assert done - stopped <= 5 * ROUND
        await trio.sleep(5 * ROUND)
        for name, peer in sim.peers.items():
            assert peer.node.replica.status["B"] == ("reaped" if name == "C" else "left")
        rejected = old.statistics().rejected
        assert set(rejected) == {"unknown type"} and rejected["unknown type"] >= 1
        for name, peer in sim.peers.items():
            if name != "C":
                assert not peer.statistics().rejected


# -- the event stream, node by node ------------------------------------------------


class Cluster:
    """Nodes without a shell, driven by hand: each datagram delivered at once."""

    def __init__(self, names: str, seed: int) -> None:
        self.config = make_config(names)
        self.nodes = {
            n: Node(n, self.config, rng=random.Random(f"{seed}/{n}"), wall_clock=lambda: GENERATION)
            for n in names
        }
        self.now = 0.0
        for i, node in enumerate(self.nodes.values()):
            node.start({f"{node.name}.txt": (i, 1)}, self.now)

    def deliver(self, sender: str, sends: list[Send]) -> None:
        """Deliver ``sends`` and every answer, until there are none."""
        queue = deque((sender, send) for send in sends)
        by_address = {self.config.address(n): n for n in self.config.peers}
        while queue:
            source, send = queue.popleft()
            to = self.nodes.get(by_address[send.address])
            if to is not None:
                address = self.config.address(source)
                queue.extend(
                    (to.name, s) for s in to.receive_untrusted(send.data, address, self.now)
                )

    def round(self) -> None:
        """One push round: everyone pushes, then relays, then reaps."""
        self.now += ROUND
        for tick in (Node.push, Node.relay):
            for name, node in list(self.nodes.items()):
                self.deliver(name, tick(node, self.now))
        for node in self.nodes.values():
            node.reap(self.now)

    def events(self) -> dict[str, list[tuple[Kind, str]]]:
        return {
            n: [(e.kind, e.origin) for e in node.take_events()] for n, node in self.nodes.items()
        }


@pytest.mark.parametrize("seed", [131, 132, 133])
def test_a_leave_is_one_left_event_at_every_peer(seed: int) -> None:
    cluster = Cluster(TWELVE, seed)
    for _ in range(10):
        cluster.round()
    assert all(len(node.view()) == len(TWELVE) for node in cluster.nodes.values())
    cluster.events()
    leaving = cluster.nodes.pop("B")
    cluster.deliver("B", leaving.leave(cluster.now))
    for _ in range(int(2 * REAP / ROUND)):
        cluster.round()
    # Its own leave is one event of its own: its subscribers and watchers hear it stop.
    assert [(e.kind, e.origin) for e in leaving.take_events()] == [("left", "B")]
    # Exactly one event about B at every other peer, and nothing else happened.
    assert cluster.events() == {n: [("left", "B")] for n in cluster.nodes}
