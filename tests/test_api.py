"""The library's view of a peer: events, members, hooks, watchers and ``open_peer``.

The events and members run in virtual time over the in-memory network (see
``tests/sim.py``) and assert exact times where the design makes them exact;
``open_peer``, the hooks and the example of ``docs/api.md`` run in real time
(real sockets, real processes), each bounded by ``fail_after``.
"""

from __future__ import annotations

import contextlib
import json
import re
import shlex
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import attrs
import pytest
import trio
import trio.testing
from ports import free_udp_ports
from sim import GENERATION, INTERVALS, Folder, make_config, open_sim
from test_udp import until

import trio_gossip.hooks
from trio_gossip import (
    Config,
    Event,
    FileInfo,
    Intervals,
    MemoryNetwork,
    Peer,
    PeerConfig,
    Scan,
    StartupError,
    Subscription,
    load_config,
    open_peer,
)
from trio_gossip.codec import decode_untrusted, encode
from trio_gossip.events import Kind
from trio_gossip.hooks import HOOK_QUEUE
from trio_gossip.limits import MAX_COUNTER, MAX_NAME, MIN_DATAGRAM, SEAL_OVERHEAD
from trio_gossip.messages import EventNote, WatchRequest
from trio_gossip.sizes import MAX_PATH, name_size
from trio_gossip.state import live_files
from trio_gossip.transport import Address, Transport
from trio_gossip.watchers import MAX_WATCHERS, NOTE_RATE, WATCH_TTL, Watchers

SECOND = 10**9  # of the wall clock, in nanoseconds: generations
REAP = INTERVALS.reap
ROOT = Path(__file__).resolve().parent.parent


@contextlib.asynccontextmanager
async def collecting(subscription: Subscription) -> AsyncIterator[list[Event]]:
    """Every event of ``subscription`` appended to a list, as it comes."""
    seen: list[Event] = []

    async def read() -> None:
        async for event in subscription:
            seen.append(event)

    async with trio.open_nursery() as nursery, subscription:
        nursery.start_soon(read)
        yield seen
        nursery.cancel_scope.cancel()


def about(events: list[Event], origin: str) -> list[Event]:
    return [e for e in events if e.origin == origin]


def files(event: Event) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    return event.added, event.removed, event.changed


# -- events, in virtual time -----------------------------------------------------


async def test_every_kind_of_event_in_order(autojump_clock: trio.testing.MockClock) -> None:
    folders: dict[str, Folder] = {
        "A": {"a": (1, 1)},
        "B": {"b1": (1, 1), "b2": (2, 1)},
        "C": {"c": (3, 1)},
    }
    async with open_sim("ABC", seed=7, folders=folders, running="AC") as sim:
        a = sim.peers["A"]
        async with collecting(a.events()) as seen:
            expected: list[str] = []

            async def then(kind: str) -> Event:
                """Wait until A's next event about B, which must be ``kind``; that event."""
                expected.append(kind)
                await sim.wait_until(
                    lambda: [e.kind for e in about(seen, "B")] == expected,
                    within=2 * REAP,
                    what=f"B: {expected}",
                )
                return about(seen, "B")[-1]

            # Another origin joins: its files are added.
            await sim.wait_until(lambda: "C" in a.view(), within=10)
            await sim.start("B")
            joined = await then("joined")
            assert files(joined) == (("b1", "b2"), (), ())
            assert (joined.generation, joined.version) == (GENERATION, 1)

            # It changes: one file added, one modified, one removed -- one event.
            sim.folders["B"].update({"b3": (3, 1), "b1": (10, 2)})
            del sim.folders["B"]["b2"]
            sim.peers["B"].rescan_now()
            changed = await then("changed")
            assert sim.shows_folder("A", "B")
            assert files(changed) == (("b3",), ("b2",), ("b1",))
            assert (changed.generation, changed.version) == (GENERATION, 2)

            # It restarts (a crash, then a later generation): against what we held.
            sim.folders["B"]["b4"] = (4, 1)
            await sim.restart("B", generation=GENERATION + SECOND)
            restarted = await then("restarted")
            assert files(restarted) == (("b4",), (), ())
            assert (restarted.generation, restarted.version) == (GENERATION + SECOND, 1)

            # It leaves.
            await sim.stop("B", leave=True)
            assert files(await then("left")) == ((), (), ())
            assert "B" not in a.view()

            # It comes back: after a tombstone, that is a join again, every file added.
            await sim.start("B", generation=GENERATION + 2 * SECOND)
            back = await then("joined")
            assert files(back) == (("b1", "b3", "b4"), (), ())
            assert back.generation == GENERATION + 2 * SECOND

            # It falls silent behind a partition: suspect, then alive once healed.
            b_address = sim.address("B")
            sim.network.partition(lambda x, y: b_address in (x, y))
            cut = trio.current_time()
            suspect = await then("suspect")
            heard = a.node.replica.heard["B"]
            assert suspect.at == heard + a.node.suspect_after
            assert cut - 2 * INTERVALS.push <= heard <= cut
            await trio.sleep(REAP - a.node.suspect_after - 2)  # still not reaped
            sim.network.partition(None)
            alive = await then("alive")
            assert (alive.generation, alive.added) == (GENERATION + 2 * SECOND, ())

            # It crashes: suspect, then reaped, at times set by the last news of it.
            await sim.stop("B")
            crash = trio.current_time()
            suspect = await then("suspect")
            heard = a.node.replica.heard["B"]
            assert crash - 2 * INTERVALS.push <= heard <= crash
            assert suspect.at == heard + a.node.suspect_after
            reaped = await then("reaped")
            assert reaped.at == heard + REAP
            assert a.node.suspect_after == 12.0  # 3 * (ceil(log2 3) + 2) rounds of 1 s

            # Nothing else happened: C joined once; A's own folder did not change.
            assert [e.kind for e in about(seen, "C")] == ["joined"]
            assert about(seen, "A") == []
            assert [e.at for e in seen] == sorted(e.at for e in seen)


async def test_own_changes_are_events_of_its_own_name(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_sim("AB", seed=3) as sim:
        a = sim.peers["A"]
        await sim.wait_until(sim.converged, within=10)
        async with collecting(a.events()) as seen:
            sim.folders["A"]["new"] = (5, 5)
            del sim.folders["A"]["A.txt"]
            edited = trio.current_time()
            await sim.wait_until(lambda: bool(seen), within=10)
            assert seen == [
                Event(
                    "changed", "A", sim.next_scan("A", edited), GENERATION, 2, ("new",), ("A.txt",)
                )
            ]


async def change_reaches_everyone(slow: bool) -> tuple[float, list[Event], int, list[Event]]:
    """With or without a slow subscriber at A: how long B's change takes to
    reach everyone, A's events, what the slow one dropped and kept."""
    async with open_sim("ABCDEF", seed=21) as sim:
        a = sim.peers["A"]
        lagging = a.events(buffer=2) if slow else None
        async with collecting(a.events(buffer=1000)) as seen:
            await sim.wait_until(sim.converged, within=20)
            sim.folders["B"]["new"] = (1, 1)
            sim.peers["B"].rescan_now()
            begin = trio.current_time()
            await sim.wait_until(
                lambda: sim.peers["B"].node.own.version == 2 and sim.everyone_holds("B"),
                within=20,
            )
            took = trio.current_time() - begin
            events = list(seen)
        kept: list[Event] = []
        if lagging is not None:
            while True:
                try:
                    kept.append(lagging.receive_nowait())
                except trio.WouldBlock:
                    break
        return took, events, lagging.dropped if lagging is not None else 0, kept


def test_a_slow_subscriber_loses_events_and_slows_nothing() -> None:
    def run(slow: bool) -> tuple[float, list[Event], int, list[Event]]:
        clock = trio.testing.MockClock(autojump_threshold=0)
        return trio.run(change_reaches_everyone, slow, clock=clock)

    took_fast, events_fast, _, _ = run(slow=False)
    took, events, dropped, kept = run(slow=True)
    assert took == took_fast
    assert events == events_fast  # the same events, at the same times
    assert [e.kind for e in events] == ["joined"] * 5 + ["changed"]
    assert dropped == len(events) - 2
    assert kept == events[:2]


async def test_a_subscription_ends_when_its_peer_stops(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_sim("AB", seed=1) as sim:
        with pytest.raises(ValueError, match="bounded"):
            sim.peers["A"].events(buffer=-1)
        events = sim.peers["A"].events()
        await sim.stop("A")
        with trio.fail_after(1):  # the loop ends: it does not wait for more
            assert [e async for e in events] == []


async def test_members_match_the_view(autojump_clock: trio.testing.MockClock) -> None:
    async with open_sim("ABC", seed=5) as sim:
        a = sim.peers["A"]
        await sim.wait_until(sim.converged, within=10)
        await sim.stop("B", leave=True)
        await sim.wait_until(lambda: a.members()["B"].status == "left", within=10)
        await sim.stop("C")
        await sim.wait_until(lambda: a.members()["C"].status == "suspect", within=REAP)
        now = trio.current_time()
        members = a.members()
        assert set(members) == {"A", "B", "C"}
        view = a.view()
        assert set(view) == {"A", "C"}
        for name, entry in view.items():
            member = members[name]
            assert member.files == tuple(
                FileInfo(f.name, f.size, f.mtime_ns) for f in live_files(entry)
            )
            assert (member.generation, member.version, member.heartbeat) == (
                entry.generation,
                entry.version,
                entry.heartbeat,
            )
        assert members["A"].status == "alive"
        assert members["A"].heard_ago == 0.0
        assert members["C"].status == "suspect"
        assert members["C"].files == (FileInfo("C.txt", 1, 1_002),)
        assert members["C"].heard_ago == now - a.node.replica.heard["C"]
        suspect_since = a.node.replica.heard["C"] + a.node.suspect_after
        assert members["C"].status_ago == now - suspect_since
        left = members["B"]
        assert (left.status, left.files) == ("left", ())
        left_since = a.node.replica.status_since["B"]
        assert a.members(now + 5)["B"].status_ago == now + 5 - left_since
        await sim.wait_until(lambda: a.members()["C"].status == "reaped", within=REAP)
        assert a.members()["C"].files == ()


# -- open_peer, over real loopback UDP ---------------------------------------------


def loopback(tmp_path: Path, names: str = "AB", **intervals: float) -> Config:
    """A cluster of ``names`` on free loopback ports, a folder each under ``tmp_path``."""
    ports = free_udp_ports(len(names))
    peers = {}
    for name, port in zip(names, ports, strict=True):
        (tmp_path / name).mkdir()
        peers[name] = PeerConfig("127.0.0.1", port, name)
    # The periodic scan is too slow to matter: only the watcher can find a write in time.
    times = {"scan": 600.0, "push": 0.05, "relay": 0.05, "reap": 30.0, **intervals}
    return Config(peers=peers, intervals=Intervals(**times), base=tmp_path)


@pytest.mark.slow
async def test_open_peer_runs_a_peer_for_the_block(tmp_path: Path) -> None:
    config = loopback(tmp_path)
    with trio.fail_after(20):
        async with open_peer(config, "B") as b:
            async with open_peer(config, "A") as a:
                assert a.folder == tmp_path / "A"
                await until(lambda: "A" in b.view() and "B" in a.view())
                await trio.sleep(0.3)  # the watcher is set up in its own task
                (tmp_path / "A" / "hello.txt").write_text("hi")
                await until(lambda: [f.name for f in b.members()["A"].files] == ["hello.txt"])
                assert b.members()["A"].status == "alive"
            # Leaving the block leaves the cluster.
            await until(lambda: b.members()["A"].status == "left")
            assert b.members()["A"].files == ()
            assert "A" not in b.view()


@pytest.mark.slow
async def test_open_peer_raises_what_ends_it_not_a_group(tmp_path: Path) -> None:
    config = loopback(tmp_path)
    with trio.fail_after(10):
        # The peer cannot start: its port is taken.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
            taken.bind(config.address("A"))
            with pytest.raises(StartupError, match=r"^peer A: cannot listen on 127\.0\.0\.1:"):
                async with open_peer(config, "A"):
                    pass  # pragma: no cover
        # The block fails: its exception comes out as it is, after the peer left.
        async with open_peer(config, "B") as b:
            with pytest.raises(KeyError, match="mine"):
                async with open_peer(config, "A"):
                    await until(lambda: "A" in b.view())
                    raise KeyError("mine")
            await until(lambda: b.members()["A"].status == "left")


class _BrokenTransport:
    """A socket that fails on its first receive: an error inside one of the peer's tasks."""

    def __init__(self, inner: Transport) -> None:
        self._inner = inner

    @property
    def address(self) -> Address:
        return self._inner.address

    async def send(self, data: bytes, address: Address) -> bool:
        return await self._inner.send(data, address)

    async def receive(self) -> tuple[bytes, Address]:
        await trio.lowlevel.checkpoint()
        raise RuntimeError("boom")

    def close(self) -> None:
        self._inner.close()


class _BrokenNetwork(MemoryNetwork):
    async def bind(self, address: Address) -> Transport:
        return _BrokenTransport(await super().bind(address))


async def test_open_peer_raises_an_error_of_the_peers_own_tasks_as_it_is(tmp_path: Path) -> None:
    # Nested twice (the peer's nursery, then open_peer's): still the error itself,
    # as Ctrl-C landing in one of the peer's tasks must come out as KeyboardInterrupt.
    config = make_config("AB")
    with pytest.raises(RuntimeError, match=r"^boom$"):
        async with open_peer(config, "A", folder=tmp_path, network=_BrokenNetwork()):
            await trio.sleep_forever()


async def test_open_peer_needs_a_peer_of_the_config_and_a_folder(tmp_path: Path) -> None:
    config = make_config("AB")
    # One clear line, not a KeyError from inside the config.
    with pytest.raises(ValueError, match=r"^peer Z: not in the config \(its peers: A, B\)$"):
        async with open_peer(config, "Z", folder=tmp_path, network=MemoryNetwork()):
            pass  # pragma: no cover
    with pytest.raises(ValueError, match="peer A: no folder in the config; pass folder="):
        async with open_peer(config, "A", network=MemoryNetwork()):
            pass  # pragma: no cover
    async with open_peer(config, "A", folder=tmp_path, network=MemoryNetwork()) as a:
        assert a.folder == tmp_path
        assert list(a.members()) == ["A"]


# -- hooks, in real time -------------------------------------------------------------


@attrs.frozen
class Pair:
    """Peers A (with a hook) and B, the folders they scan, and how to stop B."""

    a: Peer
    b: Peer
    folders: dict[str, Folder]
    stop_b: Callable[[], None]


@contextlib.asynccontextmanager
async def hooked_pair(command: str) -> AsyncIterator[Pair]:
    """Peers A (with ``command`` as its hook) and B over the in-memory network,
    in real time, their folders dicts that the test changes."""
    config = make_config("AB", Intervals(scan=600.0, push=0.02, relay=0.02, reap=30.0))
    folders: dict[str, Folder] = {"A": {"a": (1, 1)}, "B": {"b": (2, 2)}}
    network = MemoryNetwork()

    def peer(name: str, on_change: str | None) -> Peer:
        return Peer(
            name,
            config,
            network=network,
            folder=Path(name),
            scanner=lambda folder: Scan(dict(folders[folder.name])),
            scan_in_thread=False,
            watch=False,
            on_change=on_change,
        )

    a, b = peer("A", command), peer("B", None)
    b_scope = trio.CancelScope()

    async def run_b(*, task_status: trio.TaskStatus[Address]) -> None:
        with b_scope:
            await b.run(task_status=task_status)

    async with trio.open_nursery() as nursery:
        await nursery.start(a.run)
        await nursery.start(run_b)
        yield Pair(a, b, folders, b_scope.cancel)
        nursery.cancel_scope.cancel()


async def rescan(peer: Peer) -> None:
    """Have ``peer`` scan its folder now, and wait for the new version."""
    version = peer.node.own.version
    peer.rescan_now()
    await until(lambda: peer.node.own.version == version + 1, step=0.001)


def hook_of(peer: Peer) -> trio_gossip.hooks.Hook:
    assert peer.hook is not None
    return peer.hook


@pytest.mark.slow
async def test_a_hook_gets_each_event_as_a_json_line(tmp_path: Path) -> None:
    out = tmp_path / "events.jsonl"
    with trio.fail_after(10):
        async with hooked_pair(f"cat >> {shlex.quote(str(out))}") as pair:
            a, b, hook = pair.a, pair.b, hook_of(pair.a)
            async with collecting(a.events()) as seen:
                await until(lambda: "B" in a.view())
                pair.folders["B"]["b2"] = (3, 3)
                await rescan(b)
                await until(lambda: len(seen) == 2)
                pair.stop_b()  # B leaves
                await until(lambda: hook.ran == 3)
                lines = [json.loads(line) for line in out.read_text().splitlines()]
                assert [e.kind for e in seen] == ["joined", "changed", "left"]
                assert lines == [{"peer": "A", **e.as_json()} for e in seen]
            generation = b.node.own.generation
            assert lines == [
                {
                    "peer": "A",
                    "event": "joined",
                    "origin": "B",
                    "generation": generation,
                    "version": 1,
                    "added": ["b"],
                    "removed": [],
                    "changed": [],
                },
                {
                    "peer": "A",
                    "event": "changed",
                    "origin": "B",
                    "generation": generation,
                    "version": 2,
                    "added": ["b2"],
                    "removed": [],
                    "changed": [],
                },
                {
                    "peer": "A",
                    "event": "left",
                    "origin": "B",
                    "generation": generation,
                    "version": 2,
                },
            ]
            assert (hook.failed, hook.dropped) == (0, 0)


@pytest.mark.slow
async def test_a_failing_hook_is_counted_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    with trio.fail_after(10):
        async with hooked_pair("exit 1") as pair:
            await until(lambda: hook_of(pair.a).failed == 1)
            assert hook_of(pair.a).ran == 0
    assert "A: hook exited with status 1" in caplog.messages


@pytest.mark.slow
async def test_a_slow_hook_is_killed_and_counted(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(trio_gossip.hooks, "HOOK_TIME", 0.3)
    with trio.fail_after(10):
        async with hooked_pair("exec sleep 100") as pair:
            hook = hook_of(pair.a)
            await until(lambda: bool(pair.a.view().get("B")))
            began = trio.current_time()
            await until(lambda: hook.failed == 1)
            # Killed at its time limit (the event came a little before we looked).
            assert trio.current_time() - began <= 0.3 + 0.5
            pair.folders["B"]["b2"] = (3, 3)
            await rescan(pair.b)
            await until(lambda: hook.failed == 2)  # the next event runs it again
            assert hook.ran == 0
    assert caplog.messages.count("A: hook took more than 0.3 s: killed") == 2


@pytest.mark.slow
async def test_a_flood_of_events_fills_the_hooks_queue_and_slows_nothing() -> None:
    with trio.fail_after(20):
        # The hook's first run lasts the whole test: every later event waits or is dropped.
        async with hooked_pair("exec sleep 100") as pair:
            a, b, hook = pair.a, pair.b, hook_of(pair.a)
            counted = a.events(buffer=10_000)
            flood = 2 * HOOK_QUEUE + 10
            await until(lambda: "B" in a.view())  # the first event: the hook runs it
            for i in range(flood):
                pair.folders["A"][f"f{i}"] = (i, i)
                await rescan(a)
            final = a.node.own
            assert final.version == 1 + flood
            # The peer went on gossiping: B holds A's last version.
            await until(
                lambda: (entry := b.view().get("A")) is not None and entry.content == final.content
            )
            assert (hook.ran, hook.failed) == (0, 0)
            events = []
            with contextlib.suppress(trio.WouldBlock):
                while True:
                    events.append(counted.receive_nowait())
            assert [e.kind for e in events] == ["joined"] + ["changed"] * flood
            # One event runs, HOOK_QUEUE wait, the rest are dropped.
            assert hook.dropped == len(events) - 1 - HOOK_QUEUE


# -- watchers: pure, and through a node --------------------------------------------

WATCHER: Address = ("192.0.2.1", 9000)  # an outside address: no peer of the config


def watcher(i: int) -> Address:
    return ("192.0.2.1", 9000 + i)


def event(kind: Kind = "changed", *, added: tuple[str, ...] = ()) -> Event:
    return Event(kind, "B", 0.0, GENERATION, 3, added)


def test_a_watcher_registers_renews_and_expires() -> None:
    watchers = Watchers("A", 8_000)
    assert watchers.notes([event()], 0.0) == []  # nobody watches
    hello = watchers.register(WATCHER, 5, 10.0)
    assert hello == EventNote("A", 5, 1, "watching", "A", 0, 0, (), (), (), 0)
    assert watchers.notes([], 11.0) == []
    notes = watchers.notes([event(added=("x",)), event("left")], 11.0)
    assert notes == [
        (EventNote("A", 5, 2, "changed", "B", GENERATION, 3, ("x",), (), (), 0), WATCHER),
        (EventNote("A", 5, 3, "left", "B", GENERATION, 3, (), (), (), 0), WATCHER),
    ]
    # Renewed (a new nonce) before it expires: WATCH_TTL from the renewal.
    renewed = watchers.register(WATCHER, 6, 10.0 + WATCH_TTL - 1)
    assert renewed is not None
    assert (renewed.nonce, renewed.seq) == (6, 4)
    until = 10.0 + 2 * WATCH_TTL - 1
    assert [n.seq for n, _ in watchers.notes([event()], until - 0.001)] == [5]
    assert watchers.notes([event()], until) == []
    assert len(watchers) == 0
    # Back after expiring: a new registration, counting from one again.
    again = watchers.register(WATCHER, 7, until + 1)
    assert again is not None
    assert again.seq == 1


def test_at_most_max_watchers() -> None:
    watchers = Watchers("A", 8_000)
    for i in range(MAX_WATCHERS):
        assert watchers.register(watcher(i), i, float(i)) is not None
    assert watchers.register(watcher(MAX_WATCHERS), 99, 20.0) is None
    assert watchers.register(watcher(3), 3, 20.0) is not None  # a renewal still is
    assert len(watchers.notes([event()], 21.0)) == MAX_WATCHERS
    # The first registration expires: a place is free.
    assert watchers.register(watcher(MAX_WATCHERS), 99, WATCH_TTL) is not None
    assert watcher(0) not in {a for _, a in watchers.notes([event()], WATCH_TTL)}


def test_a_watcher_gets_note_rate_notes_a_second_and_sees_the_gap() -> None:
    watchers = Watchers("A", 8_000)
    watchers.register(WATCHER, 1, 0.0)
    burst = [event(added=(f"f{i}",)) for i in range(NOTE_RATE + 44)]
    notes = [note for note, _ in watchers.notes(burst, 5.2)]
    assert [n.seq for n in notes] == list(range(2, NOTE_RATE + 2))
    assert [n.added for n in notes] == [e.added for e in burst[:NOTE_RATE]]
    assert watchers.notes([event()], 5.9) == []  # still the same second
    # The next second: notes again, after a gap of every note lost.
    ((note, _),) = watchers.notes([event()], 6.0)
    assert note.seq == 1 + len(burst) + 1 + 1


def widest_event(kind: Kind, names: tuple[str, ...]) -> Event:
    return Event(kind, "o" * MAX_NAME, 0.0, MAX_COUNTER, MAX_COUNTER, names, names, names)


@pytest.mark.parametrize("room", [MIN_DATAGRAM - SEAL_OVERHEAD, 1_500, 8_192, 65_507])
@pytest.mark.parametrize("name", ["x", "é" * 300, '"' * 100, "d/" * 30 + "f"])
def test_a_note_takes_the_names_that_fit_and_counts_the_rest(room: int, name: str) -> None:
    watchers = Watchers("s" * MAX_NAME, room)
    watchers.register(WATCHER, MAX_COUNTER, 0.0)
    # The widest numbers a note can carry.
    watchers._by_address[WATCHER].seq = MAX_COUNTER - 2 * NOTE_RATE
    for count in (0, 1, 5, 3_000):
        names = tuple(f"{name}{i}" for i in range(count))
        for kind in ("restarted", "joined"):
            ((note, _),) = watchers.notes([widest_event(kind, names)], 0.0)
            data = encode(note)
            assert len(data) <= room
            assert decode_untrusted(data) == note
            kept = (note.added, note.removed, note.changed)
            for names_kept in kept:
                assert names_kept == names[: len(names_kept)]
            assert sum(map(len, kept)) + note.more == 3 * count
            if sum(name_size(n) + 1 for n in names) * 3 + ENVELOPE <= room:
                assert note.more == 0  # all fit
    assert note.more > 0  # 9,000 names do not


#: A note's bytes besides its names, at the widest (names and numbers).
ENVELOPE = len(
    encode(
        EventNote(
            "s" * MAX_NAME,
            MAX_COUNTER,
            MAX_COUNTER,
            "restarted",
            "o" * MAX_NAME,
            MAX_COUNTER,
            MAX_COUNTER,
            (),
            (),
            (),
            MAX_COUNTER,
        )
    )
)


def test_a_note_carries_the_longest_name_at_the_smallest_datagram() -> None:
    longest = "x" * (MAX_PATH - 2)
    assert name_size(longest) == MAX_PATH
    watchers = Watchers("s" * MAX_NAME, MIN_DATAGRAM - SEAL_OVERHEAD)
    watchers.register(WATCHER, 1, 0.0)
    ((note, _),) = watchers.notes([widest_event("joined", (longest,))], 0.0)
    assert (note.added, note.removed, note.changed, note.more) == ((longest,), (), (), 2)
    assert ENVELOPE + MAX_PATH <= MIN_DATAGRAM - SEAL_OVERHEAD


def node_and_peers() -> tuple[Peer, Config]:
    config = make_config("AB")
    return Peer("A", config, network=MemoryNetwork(), folder=Path("A")), config


def test_a_node_answers_watch_requests_from_outside() -> None:
    peer, _ = node_and_peers()
    node = peer.node
    node.start({"a": (1, 1)}, 0.0)
    for i in range(MAX_WATCHERS):
        (send,) = node.receive_untrusted(encode(WatchRequest(100 + i)), watcher(i), 1.0)
        assert send.address == watcher(i)
        assert send.message == EventNote("A", 100 + i, 1, "watching", "A", 0, 0, (), (), (), 0)
        assert decode_untrusted(send.data) == send.message
    assert node.receive_untrusted(encode(WatchRequest(1)), watcher(99), 1.0) == []
    assert node.statistics().rejected == {"watchers full": 1}
    # What the node does next goes to every watcher: here, B joins.
    node.take_events()
    events = [event("joined", added=("b",))]
    sends = node.to_watchers(events, 2.0)
    assert sorted(s.address for s in sends) == sorted(watcher(i) for i in range(MAX_WATCHERS))
    notes = [s.message for s in sends if isinstance(s.message, EventNote)]
    assert len(notes) == len(sends)
    assert {(n.kind, n.seq, n.added) for n in notes} == {("joined", 2, ("b",))}
    # A note sent to a peer is refused: notes are for watchers.
    note = EventNote("B", 1, 1, "joined", "B", 1, 1, (), (), (), 0)
    assert node.receive_untrusted(encode(note), ("10.0.0.2", 7000), 3.0) == []
    assert node.statistics().rejected == {"watchers full": 1, "unexpected": 1}


# -- the examples of docs/api.md run as they are -----------------------------------

API_DOCS = ROOT / "docs" / "api.md"


def docs_block(name: str) -> str:
    """The code block of docs/api.md marked ``<!-- tested: name -->``."""
    marked = rf"<!-- tested: {re.escape(name)} -->\n```python\n(.*?)```"
    found = re.search(marked, API_DOCS.read_text(encoding="utf-8"), re.DOTALL)
    assert found is not None, f"no block {name} in docs/api.md"
    return found.group(1)


def test_the_two_nodes_example_prints_what_the_docs_say() -> None:
    code = docs_block("two_nodes.py")
    printed = re.search(
        r"It prints:\n\n```\n(.*?)```", API_DOCS.read_text(encoding="utf-8"), re.DOTALL
    )
    assert printed is not None
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout == printed.group(1)


class Lines:
    """The lines of a process's output, one at a time."""

    def __init__(self, stream: trio.abc.ReceiveStream) -> None:
        self._stream = stream
        self._buffer = b""

    async def next(self) -> str:
        while b"\n" not in self._buffer:
            chunk = await self._stream.receive_some()
            if not chunk:
                raise EOFError(f"the process ended; it wrote {self._buffer!r}")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line.decode()


@pytest.mark.slow
async def test_the_example_program_prints_each_event(tmp_path: Path) -> None:
    script = tmp_path / "watch_events.py"
    script.write_text(docs_block("watch_events.py"), encoding="utf-8")
    config = loopback(tmp_path)
    (tmp_path / "B" / "b.txt").write_text("b")
    config_file = tmp_path / "config.json"
    peers = {
        name: {"host": p.host, "port": p.port, "folder": p.folder}
        for name, p in config.peers.items()
    }
    intervals = {"scan": 600, "push": 0.05, "relay": 0.05, "reap": 30}
    config_file.write_text(json.dumps({"peers": peers, "intervals": intervals}))
    with trio.fail_after(30):
        async with open_peer(load_config(config_file), "B") as b:
            process = await trio.lowlevel.open_process(
                [sys.executable, str(script), str(config_file), "A"],
                stdout=subprocess.PIPE,
                cwd=tmp_path,
            )
            try:
                assert process.stdout is not None
                out = Lines(process.stdout)
                joined = json.loads(await out.next())
                assert joined == {
                    "event": "joined",
                    "origin": "B",
                    "generation": b.node.own.generation,
                    "version": 1,
                    "added": ["b.txt"],
                    "removed": [],
                    "changed": [],
                }
                await until(lambda: "A" in b.view())
                (tmp_path / "B" / "new.txt").write_text("new")
                b.rescan_now()  # not waiting for B's watcher: this test is about A
                changed = json.loads(await out.next())
                assert (changed["event"], changed["added"]) == ("changed", ["new.txt"])
                # Ctrl-C: the program ends quietly, and its peer leaves the cluster.
                process.send_signal(signal.SIGINT)
                assert await process.wait() == 0
                await until(lambda: b.members()["A"].status == "left")
            finally:
                if process.returncode is None:  # pragma: no cover -- a failure above
                    process.kill()
