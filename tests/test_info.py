"""The ``--info`` client: which parts it asks for and when, against a fake peer
on the in-memory network under a MockClock; and what it makes of a snapshot."""

from __future__ import annotations

import json
import math
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import attrs
import pytest
import trio
import trio.testing

from trio_gossip import MemoryNetwork, NoAnswer, query
from trio_gossip.codec import decode_untrusted, encode
from trio_gossip.info import (
    FIRST_ANSWER,
    FIRST_PARTS,
    RETRY,
    WINDOW,
    Assembly,
    files_matching,
    snapshot_problem,
    unheard_for,
)
from trio_gossip.messages import Info, InfoRequest
from trio_gossip.transport import Address

PEER: Address = ("10.0.0.1", 9101)


def snapshot(files: int = 0) -> dict[str, Any]:
    """A well-formed snapshot; ``files`` of them make it large."""
    return {
        "peer": "A",
        "address": f"{PEER[0]}:{PEER[1]}",
        "folder": "/srv/A",
        "origins": {
            "A": {
                "generation": 1,
                "version": 2,
                "heartbeat": 100,
                "changed_ago": 3.0,
                "heard_ago": 0.0,
                "file_count": files,
                "files": [
                    {"name": f"dir/file-{i:06d}.dat", "size": i, "mtime_ns": 10**18 + i}
                    for i in range(files)
                ],
            },
            "B": {
                "generation": 1,
                "version": 1,
                "heartbeat": 99,
                "changed_ago": 40.0,
                "heard_ago": 0.5,
                "file_count": 0,
                "files": [],
            },
        },
        "reaped": {},
        "statistics": {
            "datagrams_in": 1,
            "datagrams_out": 2,
            "bytes_in": 3,
            "bytes_out": 4,
            "rejected": {},
            "accepted": 0,
            "reaped": 0,
            "refuted": 0,
            "scans": 1,
            "scan_failures": 0,
        },
    }


@attrs.define
class FakePeer:
    """Answers ``info?`` as section 14 of docs/protocol.md says a peer does:
    the first ``FIRST_PARTS`` parts for a request without ``parts``, else the
    parts listed; at most ``rate`` parts per second of the clock, dropping
    requests beyond it; and ``drop(index)`` leaves a part unsent."""

    text: str
    #: Parts to cut the text in (a real peer cuts it by its datagram size).
    count: int = 0
    rate: int = 10**9
    drop: Callable[[int], bool] = lambda index: False
    requests: list[tuple[float, tuple[int, ...]]] = attrs.field(factory=list)
    sent: int = 0
    _second: tuple[int, int] = (0, 0)

    def __attrs_post_init__(self) -> None:
        if not self.count:
            self.count = max(1, math.ceil(len(self.text) / 1000))

    def chunk(self, i: int) -> str:
        n = len(self.text)
        return self.text[i * n // self.count : (i + 1) * n // self.count]

    def answer(self, request: InfoRequest, now: float) -> list[Info]:
        self.requests.append((now, request.parts))
        second = math.floor(now)
        if self._second[0] != second:
            self._second = (second, 0)
        budget = self.rate - self._second[1]
        if budget <= 0:
            return []
        indexes = list(request.parts or range(min(FIRST_PARTS, self.count)))[:budget]
        self._second = (second, self._second[1] + len(indexes))
        return [
            Info("A", request.nonce, i, self.count, self.chunk(i))
            for i in indexes
            if i < self.count and not self.drop(i)
        ]

    async def serve(self, network: MemoryNetwork, *, task_status: trio.TaskStatus[None]) -> None:
        transport = await network.bind(PEER)
        task_status.started()
        while True:
            data, source = await transport.receive()
            request = decode_untrusted(data)
            assert isinstance(request, InfoRequest)
            for part in self.answer(request, trio.current_time()):
                self.sent += 1
                await transport.send(encode(part), source)


@asynccontextmanager
async def serving(peer: FakePeer) -> AsyncIterator[MemoryNetwork]:
    network = MemoryNetwork()
    async with trio.open_nursery() as nursery:
        await nursery.start(peer.serve, network)
        yield network
        nursery.cancel_scope.cancel()


def text_of(files: int) -> str:
    return json.dumps(snapshot(files), separators=(",", ":"))


# -- when the parts come -------------------------------------------------------------


async def test_a_large_view_comes_without_waiting(autojump_clock: trio.testing.MockClock) -> None:
    peer = FakePeer(text_of(6_000))
    assert peer.count > FIRST_PARTS + 5 * WINDOW
    async with serving(peer) as network:
        start = trio.current_time()
        got = await query(PEER, network=network)
        # Nothing was lost, so no retry timer ran: every window at once.
        assert trio.current_time() == start
    assert got == snapshot(6_000)
    assert peer.sent == peer.count  # each part once
    asked = [parts for _, parts in peer.requests]
    assert asked[0] == ()
    assert all(len(parts) == WINDOW for parts in asked[1:-1])
    assert len(asked) == 1 + math.ceil((peer.count - FIRST_PARTS) / WINDOW)
    assert sorted(i for parts in asked for i in parts) == list(range(FIRST_PARTS, peer.count))


async def test_a_lost_part_is_asked_again_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # A later part of the same request came: 5 and 100 were lost, not late.
    lost: set[int] = set()

    def drop_once(index: int) -> bool:
        if index in (5, 100) and index not in lost:
            lost.add(index)
            return True
        return False

    peer = FakePeer(text_of(2_000), drop=drop_once)
    async with serving(peer) as network:
        start = trio.current_time()
        got = await query(PEER, network=network)
        assert trio.current_time() == start
    assert got == snapshot(2_000)
    assert lost == {5, 100}
    again = [parts for _, parts in peer.requests if parts and parts[0] in (5, 100)]
    assert [parts[0] for parts in again] == [5, 100]


async def test_a_lost_last_part_is_asked_again_after_the_retry_timer(
    autojump_clock: trio.testing.MockClock,
) -> None:
    peer = FakePeer(text_of(2_000))
    last = peer.count - 1
    lost: list[int] = []

    def drop_once(index: int) -> bool:
        if index == last and not lost:
            lost.append(index)
            return True
        return False

    peer.drop = drop_once
    async with serving(peer) as network:
        start = trio.current_time()
        got = await query(PEER, network=network)
        assert trio.current_time() - start == RETRY
    assert got == snapshot(2_000)
    assert lost == [last]
    assert peer.requests[-1] == (start + RETRY, (last,))


async def test_a_rate_limited_peer_is_waited_for(autojump_clock: trio.testing.MockClock) -> None:
    # 300 parts, 256 a second: the peer drops what is asked beyond that in its
    # first second; the retry timer asks again until its next second.
    peer = FakePeer(text_of(300), count=300, rate=256)
    async with serving(peer) as network:
        got = await query(PEER, network=network)
        assert trio.current_time() == 2 * RETRY == 1.0
    assert got == snapshot(300)
    # At 0, parts 0 to 255 came; 256 to 299, asked again at 0.5, came at 1.
    assert [(t, parts) for t, parts in peer.requests if t > 0] == [
        (0.5, tuple(range(256, 300))),
        (1.0, tuple(range(256, 300))),
    ]


async def test_a_lost_first_request_is_sent_again(autojump_clock: trio.testing.MockClock) -> None:
    peer = FakePeer(text_of(10))
    network = MemoryNetwork()
    network.partition(lambda a, b: trio.current_time() < 1.2)
    async with trio.open_nursery() as nursery:
        await nursery.start(peer.serve, network)
        got = await query(PEER, network=network)
        assert trio.current_time() == 3 * RETRY
        nursery.cancel_scope.cancel()
    assert got == snapshot(10)
    assert [parts for _, parts in peer.requests] == [()]  # the fourth ask got through


async def test_no_answer_gives_up_after_first_answer(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with pytest.raises(NoAnswer, match=re.escape("nothing came from 10.0.0.1:9101 for 2 s")):
        await query(PEER, network=MemoryNetwork())
    assert trio.current_time() == FIRST_ANSWER


async def test_parts_that_stop_coming_give_up_too(autojump_clock: trio.testing.MockClock) -> None:
    peer = FakePeer(text_of(2_000), drop=lambda index: index == 30)
    async with serving(peer) as network:
        with pytest.raises(NoAnswer):
            await query(PEER, network=network, first_answer=1.2)
        # The last new part came at 0; asked again at 0.5 and 1.0.
        assert trio.current_time() == 1.2
    assert [t for t, _ in peer.requests if t > 0] == [0.5, 1.0]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        pytest.param("{not json", "is not JSON", id="not-json"),
        pytest.param("[]", "is not a snapshot: not an object", id="a-list"),
        pytest.param('{"peer": "A"}', "is not a snapshot: address: not a string", id="half"),
        pytest.param(
            '{"peer": "A", "address": "", "folder": "", "origins": {"\\u001b[2J\\n": 1}}',
            "is not a snapshot: origins.\\x1b[2J\\n: not an object",
            id="hostile-name",
        ),
    ],
)
async def test_an_answer_that_is_no_snapshot(
    autojump_clock: trio.testing.MockClock, text: str, problem: str
) -> None:
    async with serving(FakePeer(text)) as network:
        with pytest.raises(NoAnswer, match=re.escape(problem)) as raised:
            await query(PEER, network=network)
    assert str(raised.value).isprintable()


async def test_answers_from_elsewhere_or_for_another_nonce_are_ignored(
    autojump_clock: trio.testing.MockClock,
) -> None:
    network = MemoryNetwork()
    text = text_of(0)

    async def impostors() -> None:
        # The client's request goes to PEER; these answer from elsewhere, or
        # from PEER's address with the wrong nonce.
        other = await network.bind(("10.0.0.2", 9101))
        peer = await network.bind(PEER)
        data, client = await peer.receive()
        request = decode_untrusted(data)
        assert isinstance(request, InfoRequest)
        forged = json.dumps({**snapshot(0), "peer": "forged"})
        await other.send(encode(Info("A", request.nonce, 0, 1, forged)), client)
        await peer.send(encode(Info("A", request.nonce + 1, 0, 1, forged)), client)
        await peer.send(b"\xff not a datagram", client)
        await trio.sleep(0.1)
        await peer.send(encode(Info("A", request.nonce, 0, 1, text)), client)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(impostors)
        await trio.testing.wait_all_tasks_blocked()
        got = await query(PEER, network=network)
    assert got == snapshot(0)
    assert trio.current_time() == 0.1


# -- the assembly, without I/O ---------------------------------------------------------


def part(index: int, count: int) -> Info:
    return Info("A", 1, index, count, str(index % 10))


def test_the_assembly_asks_the_next_window_when_the_last_part_of_one_comes() -> None:
    a = Assembly(window=4, in_flight=2)
    assert a.asks() == []  # nothing known before the first part
    assert a.take(part(0, 40))
    # The first answer brings parts 0 to 15, and counts as one request in the air.
    assert a.asks() == [(16, 17, 18, 19)]
    for i in range(1, 15):
        a.take(part(i, 40))
    assert a.asks() == []  # both still in the air
    a.take(part(15, 40))
    assert a.asks() == [(20, 21, 22, 23)]
    for i in (16, 17, 18):
        a.take(part(i, 40))
    assert a.asks() == []
    assert a.take(part(19, 40))
    assert a.asks() == [(24, 25, 26, 27)]
    assert not a.take(part(18, 40))  # a duplicate
    assert not a.take(part(30, 41))  # another count: another snapshot


def test_the_assembly_asks_at_once_for_a_part_its_request_skipped() -> None:
    a = Assembly(window=4, in_flight=1)
    for i in (0, 1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12, 13, 14):
        a.take(part(i, 24))
    assert a.asks() == []
    a.take(part(15, 24))  # the first answer's last part: 7 was lost
    assert a.asks() == [(7, 16, 17, 18)]
    assert a.take(part(7, 24))
    for i in (16, 18):
        a.take(part(i, 24))
    assert a.asks() == [(17, 19, 20, 21)]
    assert not a.take(part(7, 24))  # late twin of a part asked again


def test_the_assembly_asks_again_for_what_was_lost() -> None:
    a = Assembly(window=4, in_flight=2)
    for i in (0, 1, 3):
        a.take(part(i, 20))
    assert a.asks() == [(16, 17, 18, 19)]  # the first answer is still in the air
    a.take(part(17, 20))
    a.lost()
    assert a.asks() == [(2, 4, 5, 6), (7, 8, 9, 10)]
    for i in (2, 4, 5, 6):
        a.take(part(i, 20))
    assert a.asks() == [(11, 12, 13, 14)]
    for i in range(7, 20):
        a.take(part(i, 20))
    assert a.done
    assert a.text() == "0123456789" + "0123456789"


def test_a_snapshot_of_fewer_parts_than_the_first_answer() -> None:
    a = Assembly()
    a.take(part(0, 1))
    assert a.done
    assert a.asks() == []
    assert a.text() == "0"


# -- what a snapshot says --------------------------------------------------------------


def bad(change: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
    s = snapshot(2)
    change(s)
    return s


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (bad(lambda s: s.pop("folder")), "folder: not a string"),
        (bad(lambda s: s.update(origins=[])), "origins: not an object"),
        (bad(lambda s: s["origins"].update(C=1)), "origins.C: not an object"),
        (bad(lambda s: s["origins"]["A"].update(version=True)), "origins.A.version"),
        (bad(lambda s: s["origins"]["A"].update(heartbeat=1.5)), "origins.A.heartbeat"),
        (bad(lambda s: s["origins"]["B"].update(heard_ago="1")), "origins.B.heard_ago"),
        (bad(lambda s: s["origins"]["B"].update(heard_ago=math.inf)), "origins.B.heard_ago"),
        (bad(lambda s: s["origins"]["A"]["files"].append({"name": 1})), "origins.A.files"),
        (bad(lambda s: s["origins"]["A"]["files"][0].pop("size")), "origins.A.files"),
        (bad(lambda s: s.update(reaped={"C": {}})), "reaped.C: not a tombstone"),
        (bad(lambda s: s["statistics"].update(bytes_in=None)), "statistics: a counter"),
        (bad(lambda s: s["statistics"].update(rejected={"x": "1"})), "statistics.rejected"),
    ],
)
def test_snapshot_problem(value: dict[str, Any], problem: str) -> None:
    assert snapshot_problem(value).startswith(problem)


def test_a_snapshot_as_peers_send_it_has_no_problem() -> None:
    assert snapshot_problem(snapshot(3)) == ""
    no_statistics = snapshot(0)
    del no_statistics["statistics"], no_statistics["reaped"]
    assert snapshot_problem(no_statistics) == ""


def test_files_matching_is_fnmatch_on_the_whole_relative_path() -> None:
    s = snapshot(0)
    s["origins"]["A"]["files"] = [
        {"name": n, "size": 1, "mtime_ns": 1} for n in ("a.jpg", "x/b.jpg", "c.JPG", "d.png")
    ]
    s["origins"]["B"]["files"] = [{"name": "photos/2025/e.jpg", "size": 2, "mtime_ns": 2}]
    names = {o: [f["name"] for f in fs] for o, fs in files_matching(s, "*.jpg").items()}
    assert names == {"A": ["a.jpg", "x/b.jpg"], "B": ["photos/2025/e.jpg"]}
    assert list(files_matching(s, "photos/*")) == ["B"]
    assert list(files_matching(s, "[cd].*")) == ["A"]
    assert files_matching(s, "*.gif") == {}


def test_unheard_for() -> None:
    s = snapshot(0)  # A has run 100 push rounds; heard B 0.5 s ago
    assert unheard_for(s, push=1.0, quiet=10.0) is None
    s["origins"]["B"]["heard_ago"] = 12.5
    assert unheard_for(s, push=1.0, quiet=10.0) == 12.5
    assert unheard_for(s, push=1.0, quiet=20.0) is None
    s["origins"]["B"]["heard_ago"] = None  # known, never heard
    assert unheard_for(s, push=1.0, quiet=10.0) == math.inf
    del s["origins"]["B"]  # reaped, or never known
    assert unheard_for(s, push=1.0, quiet=10.0) == math.inf
    # Up for 9.9 s only (99 rounds of 0.1 s): too early to tell.
    s["origins"]["A"]["heartbeat"] = 99
    assert unheard_for(s, push=0.1, quiet=10.0) is None
