"""The cluster in a browser: one page and a small JSON API, served by a running peer.

One more task in the peer's nursery (:meth:`.peer.Peer.run` starts
:func:`serve_http` when the peer has an ``http`` address): hypercorn serves
a Starlette app on trio. The page (``static/``) is served by the peer itself
and uses only the API of ``docs/api.md``: ``/api/view``, ``/api/peers``,
``/api/files`` and ``/api/events`` (server-sent events).

Nothing here may slow the peer's five tasks. The file index is built and
searched in one worker thread at a time; each event stream has its own
bounded subscription, and a stream that falls behind loses events (counted)
and tells its page to fetch again; answers are made from what the peer
holds, never by asking it.

Imported only when a page is served: hypercorn and Starlette take time to import.
"""

from __future__ import annotations

import json
import logging
import socket
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from importlib.resources import files as package_files
from typing import TYPE_CHECKING, Any, Final

import trio
from hypercorn.config import Config as ServerConfig
from hypercorn.trio import serve
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .config import is_loopback
from .events import Event
from .fileindex import SORTS, FileIndex, Sort
from .state import Entry, live_files

if TYPE_CHECKING:
    from .peer import Peer

__all__ = ["Site", "listen", "serve_http"]

log = logging.getLogger("trio_gossip")
#: hypercorn's own log: its warnings and errors only (we say where the page is).
_server_log = logging.getLogger("trio_gossip.http")
_server_log.setLevel(logging.WARNING)

#: Rows per page of ``/api/files``, by default and at most.
PER_PAGE: Final = 100
MAX_PER_PAGE: Final = 500
#: Longest search and peer name ``/api/files`` takes (characters).
MAX_QUERY: Final = 256
#: Seconds between two ``peers`` messages on an event stream (ages move on),
#: and after a change, how soon the next one comes.
PEERS_EVERY: Final = 2.0
PEERS_AFTER_CHANGE: Final = 0.2
#: Events one stream may fall behind by before it loses some.
STREAM_BUFFER: Final = 64
#: Event streams open at once; more are refused (503).
MAX_STREAMS: Final = 32
#: Recent events kept for ``/api/view``.
RECENT: Final = 50
#: File names given per list in an event (the counts are whole).
NAMES_IN_EVENT: Final = 10

#: Every answer: no script but our own files, nothing from elsewhere, no framing.
SECURITY_HEADERS: Final = [
    (
        b"content-security-policy",
        b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        b"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]

_STATIC: Final = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/app.css": ("app.css", "text/css; charset=utf-8"),
    "/icon.svg": ("icon.svg", "image/svg+xml"),
}


class BadRequest(Exception):
    """A query parameter out of bounds; the message is one line for the client."""


async def listen(name: str, address: tuple[str, int]) -> socket.socket:
    """A TCP socket bound to ``address`` for peer ``name``'s page, or
    :class:`.peer.StartupError` (one line)."""
    from .peer import StartupError  # peer.py imports this module lazily

    host, port = address
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        infos = await trio.socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        family, kind, proto, _, sockaddr = infos[0]
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(sockaddr)
        except OSError:
            sock.close()
            raise
    except OSError as exc:
        raise StartupError(
            f"peer {name}: cannot serve the web page on {where}: {exc.strerror or exc}"
        ) from None
    return sock


def url_of(sock: socket.socket) -> str:
    """The page's address: ``http://HOST:PORT/``."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


async def serve_http(
    peer: Peer, sock: socket.socket, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED
) -> None:
    """Serve ``peer``'s page on the bound ``sock`` (from :func:`listen`) until
    cancelled; reports the page's URL."""
    url = url_of(sock)
    site = Site(peer, public=not is_loopback(sock.getsockname()[0]))
    config = ServerConfig()
    config.bind = [f"fd://{sock.detach()}"]  # hypercorn owns the socket from here
    config.accesslog = None
    config.errorlog = _server_log
    config.include_server_header = False
    config.keep_alive_timeout = 5
    config.graceful_timeout = 1
    async with trio.open_nursery() as nursery:
        nursery.start_soon(site.keep_recent)
        await nursery.start(serve, site.app, config)
        log.info("%s: the web page is at %s", peer.name, url)
        task_status.started(url)


def _event_json(event: Event, now: float) -> dict[str, Any]:
    """An event as JSON, its lists of names cut to :data:`NAMES_IN_EVENT`."""
    out = event.as_json()
    for key in ("added", "removed", "changed"):
        if key in out:
            names = out[key]
            out[key] = names[:NAMES_IN_EVENT]
            out[f"{key}_count"] = len(names)
    out["ago"] = now - event.at
    return out


def _sse(kind: str, data: object) -> str:
    # json.dumps escapes every line break, so the data is one line.
    return f"event: {kind}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


class Site:
    """The page and API of one peer."""

    def __init__(self, peer: Peer, *, public: bool = False) -> None:
        self.peer = peer
        #: Served on an address that is not loopback: any Host header is taken.
        self.public = public
        #: The last :data:`RECENT` events, for a page that just opened.
        self.recent: deque[Event] = deque(maxlen=RECENT)
        #: Event streams open now, and events they lost by falling behind.
        self.streams = 0
        self.dropped = 0
        self._index = FileIndex((), [])
        self._building = trio.Lock()
        self._worker = trio.CapacityLimiter(1)
        self._counts: dict[tuple[str, int, int], tuple[int, int]] = {}
        routes = [
            Route("/api/view", self._view),
            Route("/api/peers", self._peers),
            Route("/api/files", self._files),
            Route("/api/events", _EventStream(self), methods=["GET"]),
            *(Route(path, self._static) for path in _STATIC),
        ]
        self._pages = {
            path: package_files("trio_gossip").joinpath("static", name).read_bytes()
            for path, (name, _) in _STATIC.items()
        }
        #: The ASGI app.
        # The host name it was told to serve on is its own (a name of 127.0.1.1, say).
        named = peer.http[0] if peer.http is not None else None
        self.app: ASGIApp = _Guard(Starlette(routes=routes), public=public, named=named)

    # -- what the API answers ----------------------------------------------------

    async def index(self) -> FileIndex:
        """The file index of what the peer holds now (built again, in a worker
        thread, after an origin's files changed)."""
        async with self._building:
            view = self.peer.view()
            key = tuple(sorted((o, e.generation, e.version) for o, e in view.items()))
            if key != self._index.key:
                self._index = await trio.to_thread.run_sync(
                    FileIndex.build, view, limiter=self._worker
                )
            return self._index

    def peers(self) -> list[dict[str, Any]]:
        """Every origin the peer knows (as :meth:`.peer.Peer.members`, with
        counts instead of files), then the configured peers never heard of."""
        now = trio.current_time()
        replica = self.peer.node.replica

        def ago(t: float | None) -> float | None:
            return None if t is None else now - t

        out = []
        for name, entry in sorted(replica.items()):
            files, size = self._count(name, entry)
            out.append(
                {
                    "name": name,
                    "status": replica.status.get(name, "reaped" if entry.reaped else "alive"),
                    "self": name == self.peer.name,
                    "generation": entry.generation,
                    "version": entry.version,
                    "heartbeat": entry.heartbeat,
                    "files": files,
                    "bytes": size,
                    "heard_ago": 0.0 if name == self.peer.name else ago(replica.heard.get(name)),
                    "changed_ago": ago(replica.changed.get(name)),
                    "status_ago": ago(replica.status_since.get(name)),
                }
            )
        for name in self.peer.config.peers:
            if name not in replica:
                out.append({"name": name, "status": "unknown", "self": False})
        return out

    def _count(self, origin: str, entry: Entry) -> tuple[int, int]:
        """Files and bytes of ``entry``, counted once per version."""
        if entry.reaped:
            return 0, 0
        key = (origin, entry.generation, entry.version)
        counts = self._counts.get(key)
        if counts is None:
            files = live_files(entry)
            counts = self._counts[key] = (len(files), sum(f.size for f in files))
            if len(self._counts) > 4 * len(self.peer.node.replica) + 16:
                self._counts = {key: counts}  # old versions: let them go
        return counts

    async def view(self) -> dict[str, Any]:
        """``/api/view``: who we are, the peers, the counts, what just changed."""
        index = await self.index()
        now = trio.current_time()
        host, port = self.peer.address
        return {
            "peer": self.peer.name,
            "address": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
            "folder": str(self.peer.folder),
            "peers": self.peers(),
            "names": len(index.rows),
            "copies": index.copies,
            "recent": [_event_json(e, now) for e in reversed(self.recent)],
            "streams": {"open": self.streams, "dropped": self.dropped},
        }

    async def files(self, params: Mapping[str, str]) -> dict[str, Any]:
        """``/api/files``: one page of the file table (see docs/api.md)."""
        q = params.get("q", "")
        holder = params.get("peer") or None
        sort = params.get("sort", "name")
        order = params.get("order", "asc")
        if len(q) > MAX_QUERY or (holder is not None and len(holder) > MAX_QUERY):
            raise BadRequest(f"q and peer: at most {MAX_QUERY} characters")
        if sort not in SORTS:
            raise BadRequest(f"sort: expected one of {', '.join(SORTS)}, got {sort[:40]!r}")
        if order not in ("asc", "desc"):
            raise BadRequest(f"order: expected asc or desc, got {order[:40]!r}")
        page = _whole(params, "page", 1, 1, 10**9)
        per_page = _whole(params, "per_page", PER_PAGE, 1, MAX_PER_PAGE)
        index = await self.index()
        chosen: Sort = sort
        found = await trio.to_thread.run_sync(
            lambda: index.query(
                q, holder=holder, sort=chosen, descending=order == "desc", page=page,
                per_page=per_page,
            ),
            limiter=self._worker,
        )  # fmt: skip
        return {
            "q": q,
            "peer": holder,
            "sort": sort,
            "order": order,
            "page": page,
            "per_page": per_page,
            "total": found.total,
            "pages": max(1, -(-found.total // per_page)),
            "names": len(index.rows),
            "files": [
                {
                    "name": r.name,
                    "size": r.size,
                    "mtime_ns": r.mtime_ns,
                    "holders": list(r.holders),
                    "stale": list(r.stale),
                }
                for r in found.rows
            ],
        }

    async def keep_recent(self) -> None:
        """Keep the last events for pages that open later (until the peer stops)."""
        async with self.peer.events(RECENT) as events:
            async for event in events:
                self.recent.append(event)

    async def stream(self, write: Callable[[str], Awaitable[None]]) -> None:
        """``/api/events``: ``ready``, then ``change`` for every event, ``peers``
        every :data:`PEERS_EVERY` s and soon after a change, ``resync`` after
        events were lost; each message handed to ``write``. Returns when the
        peer stops."""
        self.streams += 1
        try:
            async with self.peer.events(STREAM_BUFFER) as events:
                await write("retry: 2000\n" + _sse("ready", {"peer": self.peer.name}))
                await write(_sse("peers", self.peers()))
                lost = 0
                next_peers = trio.current_time() + PEERS_EVERY
                while True:
                    event = None
                    with trio.move_on_at(next_peers):
                        try:
                            event = await events.receive()
                        except trio.EndOfChannel:
                            return  # the peer stopped
                    if events.dropped > lost:
                        self.dropped += events.dropped - lost
                        lost = events.dropped
                        await write(_sse("resync", {"dropped": lost}))
                    if event is not None:
                        await write(_sse("change", _event_json(event, trio.current_time())))
                        next_peers = min(next_peers, trio.current_time() + PEERS_AFTER_CHANGE)
                        continue
                    await write(_sse("peers", self.peers()))
                    next_peers = trio.current_time() + PEERS_EVERY
        finally:
            self.streams -= 1

    # -- the routes --------------------------------------------------------------

    async def _static(self, request: Request) -> Response:
        path = request.url.path
        return Response(
            self._pages[path], media_type=_STATIC[path][1], headers={"cache-control": "no-cache"}
        )

    async def _view(self, request: Request) -> Response:
        return _json(await self.view())

    async def _peers(self, request: Request) -> Response:
        return _json(self.peers())

    async def _files(self, request: Request) -> Response:
        try:
            return _json(await self.files(request.query_params))
        except BadRequest as exc:
            return _json({"error": str(exc)}, 400)


def _whole(params: Mapping[str, str], key: str, default: int, low: int, high: int) -> int:
    text = params.get(key)
    if text is None:
        return default
    if not (text.isascii() and text.isdigit() and low <= int(text) <= high):
        raise BadRequest(f"{key}: expected a whole number from {low} to {high}, got {text[:40]!r}")
    return int(text)


def _json(data: object, status: int = 200) -> Response:
    return JSONResponse(data, status, headers={"cache-control": "no-store"})


def _host_of(header: str) -> str:
    """The host of a ``Host`` header, without the port (``[::1]:80`` -> ``::1``)."""
    if header.startswith("["):
        return header[1 : header.find("]")]
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class _EventStream:
    """The ASGI app of ``/api/events``: :meth:`Site.stream` written out until
    the client goes (or the peer stops). A plain app, not a streaming response
    around a generator: a generator cut off by a cancellation would be left
    unclosed, and with it the subscription."""

    def __init__(self, site: Site) -> None:
        self._site = site

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._site.streams >= MAX_STREAMS:
            busy = _json({"error": f"{MAX_STREAMS} event streams are open already"}, 503)
            await busy(scope, receive, send)
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream; charset=utf-8"),
                    (b"cache-control", b"no-store"),
                ],
            }
        )

        async def write(text: str) -> None:
            await send({"type": "http.response.body", "body": text.encode(), "more_body": True})

        async with trio.open_nursery() as nursery:

            async def until_gone() -> None:
                while (await receive())["type"] != "http.disconnect":
                    pass
                nursery.cancel_scope.cancel()

            nursery.start_soon(until_gone)
            await self._site.stream(write)
            nursery.cancel_scope.cancel()
            await send({"type": "http.response.body", "body": b"", "more_body": False})


class _Guard:
    """Security headers on every answer; and, on loopback, only requests
    addressed to a loopback host: a web site that points its own name at
    127.0.0.1 (DNS rebinding) gets nothing from the page."""

    def __init__(self, app: ASGIApp, *, public: bool, named: str | None = None) -> None:
        self._app = app
        self._public = public
        self._named = named

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), *SECURITY_HEADERS]}
            await send(message)

        if not self._public:
            headers: Mapping[bytes, bytes] = dict(scope["headers"])
            host = headers.get(b"host", b"").decode("latin-1")
            asked = _host_of(host)
            named = self._named is not None and asked.lower() == self._named.lower()
            if not (is_loopback(asked) or named):
                refused = PlainTextResponse(
                    "this page is served on loopback only: open it as http://127.0.0.1:PORT/\n",
                    421,
                )
                await refused(scope, receive, send_with_headers)
                return
        await self._app(scope, receive, send_with_headers)
