"""The web page's JSON API, with httpx against real peers over loopback.

Each test has an absolute ``fail_after``; the event stream is also tested
without a network, under the mock clock, for what a slow reader loses.
"""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
import trio.testing
from ports import free_udp_ports

from trio_gossip import Config, Event, Intervals, Peer, PeerConfig, StartupError, UdpNetwork
from trio_gossip.web import MAX_PER_PAGE, PEERS_AFTER_CHANGE, PEERS_EVERY, STREAM_BUFFER, Site

HOSTILE = '<img src=x onerror=alert(1)>\n"quoted" \u202eevil.txt'


def cluster(tmp_path: Path, names: str = "AB") -> Config:
    ports = free_udp_ports(len(names))
    return Config(
        peers={
            n: PeerConfig("127.0.0.1", p, str(tmp_path / n))
            for n, p in zip(names, ports, strict=True)
        },
        intervals=Intervals(scan=0.1, push=0.05, relay=0.05, reap=30.0),
    )


def write(path: Path, data: bytes = b"x") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


async def until(predicate: Callable[[], Any]) -> None:
    """Poll in real time (the caller's ``fail_after`` bounds it)."""
    while True:
        if await predicate():
            return
        await trio.sleep(0.05)


class Running:
    """Peers A (serving the page) and B over loopback, B in a scope of its own."""

    def __init__(self, a: Peer, b: Peer, b_scope: trio.CancelScope, client: httpx.AsyncClient):
        self.a, self.b, self.b_scope, self.client = a, b, b_scope, client

    async def get(self, path: str, status: int = 200) -> Any:
        response = await self.client.get(path)
        assert response.status_code == status, response.text
        return response.json()


@asynccontextmanager
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    config = cluster(tmp_path)
    for name in "AB":
        (tmp_path / name).mkdir(exist_ok=True)
    a = Peer("A", config, network=UdpNetwork(), folder=tmp_path / "A", http=("127.0.0.1", 0))
    b = Peer("B", config, network=UdpNetwork(), folder=tmp_path / "B")
    b_scope = trio.CancelScope()

    async def run_b(
        *, task_status: trio.TaskStatus[tuple[str, int]] = trio.TASK_STATUS_IGNORED
    ) -> None:
        with b_scope:
            await b.run(task_status=task_status)

    async with trio.open_nursery() as nursery:
        await nursery.start(a.run)
        await nursery.start(run_b)
        assert a.http_url is not None
        async with httpx.AsyncClient(base_url=a.http_url, timeout=10) as client:
            yield Running(a, b, b_scope, client)
        nursery.cancel_scope.cancel()


async def test_view_peers_and_files_of_a_running_peer(tmp_path: Path) -> None:
    write(tmp_path / "A" / "shared.txt", b"aa")
    write(tmp_path / "A" / "only-a/notes.md", b"n" * 300)
    write(tmp_path / "B" / "shared.txt", b"bbbb")
    write(tmp_path / "B" / HOSTILE)
    with trio.fail_after(20):
        async with running(tmp_path) as site:

            async def both_known() -> bool:
                view = await site.get("/api/view")
                return bool(view["names"] == 3)

            await until(both_known)
            view = await site.get("/api/view")
            assert (view["peer"], view["names"], view["copies"]) == ("A", 3, 4)
            assert view["address"] == "{}:{}".format(*site.a.address)
            peers = {p["name"]: p for p in view["peers"]}
            assert peers.keys() == {"A", "B"}
            assert peers["A"]["self"] and not peers["B"]["self"]
            assert peers["A"]["status"] == peers["B"]["status"] == "alive"
            assert (peers["A"]["files"], peers["A"]["bytes"]) == (2, 302)
            assert (peers["B"]["files"], peers["B"]["bytes"]) == (2, 5)
            assert peers["B"]["heard_ago"] >= 0 and peers["A"]["heard_ago"] == 0
            alone = await site.get("/api/peers")
            assert [(p["name"], p["files"]) for p in alone] == [("A", 2), ("B", 2)]

            files = await site.get("/api/files")
            assert [f["name"] for f in files["files"]] == sorted(
                [HOSTILE, "only-a/notes.md", "shared.txt"]
            )
            assert (files["total"], files["pages"], files["page"], files["names"]) == (3, 1, 1, 3)
            shared = next(f for f in files["files"] if f["name"] == "shared.txt")
            assert shared["holders"] == ["A", "B"]
            assert len(shared["stale"]) == 1  # the two copies differ: one is older or smaller
            hostile = next(f for f in files["files"] if f["name"] == HOSTILE)
            assert hostile["holders"] == ["B"]  # the name, whole, as data

            search = await site.get("/api/files?q=SHARED")
            assert [f["name"] for f in search["files"]] == ["shared.txt"]
            assert (search["q"], search["total"], search["names"]) == ("SHARED", 1, 3)
            held = await site.get("/api/files?peer=A&sort=size&order=desc")
            assert [f["name"] for f in held["files"]] == ["only-a/notes.md", "shared.txt"]
            paged = await site.get("/api/files?per_page=2&page=2")
            assert ([f["name"] for f in paged["files"]], paged["pages"]) == (["shared.txt"], 2)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("page=0", "page: expected a whole number from 1"),
        ("page=x", "page: expected a whole number from 1"),
        (
            f"per_page={MAX_PER_PAGE + 1}",
            f"per_page: expected a whole number from 1 to {MAX_PER_PAGE}",
        ),
        ("sort=color", "sort: expected one of name, size, mtime, holders, got 'color'"),
        ("order=up", "order: expected asc or desc, got 'up'"),
        ("q=" + "x" * 300, "at most 256 characters"),
    ],
)
async def test_bad_parameters_are_a_400_that_says_why(
    tmp_path: Path, query: str, message: str
) -> None:
    with trio.fail_after(20):
        async with running(tmp_path) as site:
            answer = await site.get(f"/api/files?{query}", 400)
            assert message in answer["error"]


async def test_the_page_and_its_files_come_from_the_peer_with_a_strict_policy(
    tmp_path: Path,
) -> None:
    with trio.fail_after(20):
        async with running(tmp_path) as site:
            page = await site.client.get("/")
            assert page.status_code == 200
            assert page.headers["content-type"].startswith("text/html")
            # Every script and style the page names is ours, from this peer.
            assert "http" not in page.text.replace('rel="stylesheet"', "")
            for path, kind in [
                ("/app.js", "text/javascript"),
                ("/app.css", "text/css"),
                ("/icon.svg", "image/svg+xml"),
            ]:
                assert path in page.text
                asset = await site.client.get(path)
                assert asset.status_code == 200 and asset.headers["content-type"].startswith(kind)
            assert "innerHTML" not in (await site.client.get("/app.js")).text
            for path in ("/", "/api/view", "/api/files?page=0", "/nothing"):
                headers = (await site.client.get(path)).headers
                policy = headers["content-security-policy"]
                assert "default-src 'none'" in policy and "script-src 'self'" in policy
                assert "unsafe-inline" not in policy
                assert headers["x-content-type-options"] == "nosniff"
            assert (await site.client.get("/nothing")).status_code == 404


async def test_on_loopback_only_loopback_host_names_are_answered(tmp_path: Path) -> None:
    with trio.fail_after(20):
        async with running(tmp_path) as site:
            port = site.a.http_url.rsplit(":", 1)[1].rstrip("/")  # type: ignore[union-attr]
            for host in (f"127.0.0.1:{port}", f"localhost:{port}", "[::1]", "127.0.0.1"):
                response = await site.client.get("/api/peers", headers={"host": host})
                assert response.status_code == 200, host
            # DNS rebinding: a web site whose name points at 127.0.0.1.
            for host in ("evil.example", f"evil.example:{port}", "", "192.0.2.1"):
                response = await site.client.get("/api/peers", headers={"host": host})
                assert response.status_code == 421, host
                assert "content-security-policy" in response.headers


class EventStream:
    """A reader of ``/api/events`` over a bare TCP stream, as HTTP/1.0 (so the
    body comes without chunks): nothing left half-read when a test stops."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self._stream = stream
        self._buffer = b""
        #: The answer's status line and headers.
        self.head = ""

    @classmethod
    @asynccontextmanager
    async def open(cls, url: str) -> AsyncIterator[EventStream]:
        host, port = url.removeprefix("http://").rstrip("/").rsplit(":", 1)
        async with await trio.open_tcp_stream(host, int(port)) as stream:
            reader = cls(stream)
            request = f"GET /api/events HTTP/1.0\r\nHost: {host}:{port}\r\n\r\n"
            await stream.send_all(request.encode())
            reader.head = (await reader._until(b"\r\n\r\n")).decode()
            yield reader

    async def _until(self, end: bytes) -> bytes:
        while end not in self._buffer:
            data = await self._stream.receive_some()
            if not data:
                raise EOFError("the stream ended")
            self._buffer += data
        block, _, self._buffer = self._buffer.partition(end)
        return block

    async def next(self, kind: str | None = None) -> tuple[str, Any]:
        """The next message (of ``kind``, if given): its kind and its data."""
        while True:
            block = (await self._until(b"\n\n")).decode()
            fields = dict(line.split(": ", 1) for line in block.split("\n"))
            if kind is None or fields["event"] == kind:
                return fields["event"], json.loads(fields["data"])


async def test_events_come_live_and_a_stopped_peer_turns_left(tmp_path: Path) -> None:
    with trio.fail_after(20):
        async with running(tmp_path) as site:
            async with EventStream.open(site.a.http_url) as events:  # type: ignore[arg-type]
                assert "content-type: text/event-stream" in events.head.lower()
                assert await events.next() == ("ready", {"peer": "A"})
                assert (await events.next())[0] == "peers"
                write(tmp_path / "B" / "new.txt", b"hello")
                while True:
                    _, data = await events.next("change")
                    if data["origin"] == "B" and data["added"]:
                        break
                assert data["event"] in ("joined", "changed")
                assert (data["added"], data["added_count"]) == (["new.txt"], 1)
                # A ``peers`` message follows soon after the change.
                with trio.fail_after(1):
                    _, peers = await events.next("peers")
                assert any(p["name"] == "B" and p["files"] == 1 for p in peers)
                files = await site.get("/api/files")
                assert [f["name"] for f in files["files"]] == ["new.txt"]

                site.b_scope.cancel()  # B stops, and says that it leaves
                while True:
                    _, data = await events.next("change")
                    if data["event"] == "left":
                        break
                assert data["origin"] == "B"
                _, peers = await events.next("peers")
                assert {p["name"]: p["status"] for p in peers} == {"A": "alive", "B": "left"}
            assert (await site.get("/api/files"))["total"] == 0


async def test_the_server_starts_and_stops_with_the_peer(tmp_path: Path) -> None:
    config = cluster(tmp_path)
    (tmp_path / "A").mkdir()
    with trio.fail_after(20):
        taken = socket.socket()
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        peer = Peer(
            "A", config, network=UdpNetwork(), folder=tmp_path / "A", http=("127.0.0.1", busy)
        )
        with pytest.raises(
            StartupError, match=rf"peer A: cannot serve the web page on 127.0.0.1:{busy}: "
        ):
            await peer.run()
        taken.close()

        for _ in range(2):  # the second time on the port the first one freed
            peer = Peer(
                "A", config, network=UdpNetwork(), folder=tmp_path / "A", http=("127.0.0.1", busy)
            )
            async with trio.open_nursery() as nursery:
                await nursery.start(peer.run)
                assert peer.http_url == f"http://127.0.0.1:{busy}/"
                async with httpx.AsyncClient(base_url=peer.http_url) as client:
                    assert (await client.get("/api/peers")).status_code == 200
                async with EventStream.open(peer.http_url) as events:
                    await events.next("ready")
                    nursery.cancel_scope.cancel()  # a stream open: the peer stops all the same
        with pytest.raises(httpx.ConnectError):
            async with httpx.AsyncClient() as client:
                await client.get(f"http://127.0.0.1:{busy}/api/peers")


async def test_a_stream_that_falls_behind_is_told_to_fetch_again(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """No network: a Peer that is not running, its hub fed by hand, the mock clock."""
    config = cluster(tmp_path)
    peer = Peer("A", config, network=UdpNetwork(), folder=tmp_path)
    site = Site(peer)
    send, receive = trio.open_memory_channel[str](0)  # a reader that reads when it likes
    async with trio.open_nursery() as nursery:
        nursery.start_soon(site.stream, send.send)
        assert (await receive.receive()).startswith("retry: 2000\nevent: ready\n")
        assert (await receive.receive()).startswith("event: peers\n")
        assert site.streams == 1
        await trio.testing.wait_all_tasks_blocked()  # the stream waits for an event
        extra = 5
        for version in range(STREAM_BUFFER + 1 + extra):
            peer.hub.publish(Event("changed", "B", trio.current_time(), 1, version, added=("x",)))
        # The reader was away: the event the stream waited for, then the buffer's
        # worth wait for it; the rest were lost, and it is told so first.
        assert await receive.receive() == 'event: resync\ndata: {"dropped": 5}\n\n'
        assert site.dropped == extra
        versions = [json.loads((await receive.receive()).split("data: ")[1])["version"]
                    for _ in range(STREAM_BUFFER + 1)]  # fmt: skip
        assert versions == list(range(STREAM_BUFFER + 1))
        # Then ``peers``: soon after the changes, and every PEERS_EVERY seconds after that.
        assert trio.current_time() == 0
        assert (await receive.receive()).startswith("event: peers\n")
        assert trio.current_time() == PEERS_AFTER_CHANGE
        assert (await receive.receive()).startswith("event: peers\n")
        assert trio.current_time() == PEERS_AFTER_CHANGE + PEERS_EVERY
        peer.hub.close()  # the peer stopped: the stream ends
    assert site.streams == 0
