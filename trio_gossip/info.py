"""``--info``: ask a running peer for a snapshot of its view.

The peer answers an ``info?`` request with a snapshot of its view, split into
``info`` parts; this client asks for the parts it is missing until it has
them all, so a large view arrives whole or not at all. It keeps a few
requests in flight and asks for the next window of parts as soon as the last
part of one arrives; only a loss waits for the retry timer. What a person
reads is made of the snapshot by :mod:`.render`.
"""

from __future__ import annotations

import fnmatch
import json
import math
import random
from collections import deque
from typing import Any

import attrs
import trio

from .codec import BadDatagram, decode_untrusted, encode
from .keyring import Keyring
from .limits import MAX_WANT_PARTS
from .messages import Info, InfoRequest
from .render import escape
from .transport import Address, Network, Transport
from .udp import UdpNetwork

__all__ = [
    "Assembly",
    "NoAnswer",
    "files_matching",
    "query",
    "snapshot_problem",
    "unheard_for",
]

NO_KEY = Keyring()

#: Seconds without a new part after which the client gives up.
FIRST_ANSWER = 2.0
#: Seconds without a new part after which the parts asked for count as lost
#: and the missing ones are asked for again.
RETRY = 0.5
#: Parts asked for in one request: as many as an ``info?`` may list.
WINDOW = MAX_WANT_PARTS
#: Requests kept in flight at once (bench/info.py: 2 did better than 1 or 4).
IN_FLIGHT = 2
#: Parts a peer answers a request without ``parts`` with (docs/protocol.md, section 14).
FIRST_PARTS = 16


class NoAnswer(Exception):
    """The peer did not answer, or not with a snapshot."""


@attrs.define
class Assembly:
    """The parts of one snapshot as they arrive, and which to ask for next.

    Without I/O: :func:`query` feeds it the parts that arrive
    (:meth:`take`), sends the requests :meth:`asks` returns, and calls
    :meth:`lost` when the retry timer runs out.

    A peer sends the parts of a request in the order asked: when the last
    part of a request comes, the request is over (another can go), and the
    parts of it that did not come are lost and asked for again at once.
    Only a request whose last part is lost waits for the retry timer (as
    does one the peer dropped, having sent its 256 parts of the second).
    """

    window: int = WINDOW
    in_flight: int = IN_FLIGHT
    count: int | None = None
    parts: dict[int, str] = attrs.field(factory=dict)
    #: Per request in the air: the indexes it asked for that have not come, and its last.
    _flying: list[tuple[set[int], int]] = attrs.field(factory=list)
    #: Indexes to ask for again: a later part of their request came, they did not.
    _again: deque[int] = attrs.field(factory=deque)
    #: Every index below this one was asked for since the last loss (or has come).
    _cursor: int = 0

    @property
    def done(self) -> bool:
        """Whether every part has arrived."""
        return self.count is not None and len(self.parts) == self.count

    def take(self, part: Info) -> bool:
        """Keep ``part``; ``False`` if it adds nothing (a duplicate, or of another count)."""
        if self.count is None:
            self.count = part.count
            # The first request, without parts, is answered with the first few.
            first = min(FIRST_PARTS, part.count)
            self._flying.append((set(range(first)), first - 1))
            self._cursor = first
        elif part.count != self.count:
            return False
        if part.index in self.parts:
            return False
        self.parts[part.index] = part.data
        flying = []
        for waiting, last in self._flying:
            waiting.discard(part.index)
            if part.index == last:
                self._again.extend(sorted(waiting))
            elif waiting:
                flying.append((waiting, last))
        self._flying = flying
        return True

    def asks(self) -> list[tuple[int, ...]]:
        """The requests to send now: new windows, up to ``in_flight`` in the air."""
        if self.count is None:
            return []
        asks: list[tuple[int, ...]] = []
        while len(self._flying) < self.in_flight:
            window: list[int] = []
            while self._again and len(window) < self.window:
                index = self._again.popleft()
                if index not in self.parts:
                    window.append(index)
            while self._cursor < self.count and len(window) < self.window:
                if self._cursor not in self.parts:
                    window.append(self._cursor)
                self._cursor += 1
            if not window:
                break
            self._flying.append((set(window), window[-1]))
            asks.append(tuple(window))
        return asks

    def lost(self) -> None:
        """The parts in the air are not coming: the next :meth:`asks` asks again."""
        self._flying.clear()
        self._again.clear()
        self._cursor = 0

    def text(self) -> str:
        """The parts joined, once :attr:`done`."""
        if self.count is None or not self.done:
            raise ValueError("the snapshot is not complete")
        return "".join(self.parts[i] for i in range(self.count))


async def query(
    address: Address,
    *,
    keyring: Keyring = NO_KEY,
    first_answer: float = FIRST_ANSWER,
    network: Network | None = None,
) -> dict[str, Any]:
    """The snapshot of the peer at ``address``: a JSON object. With the
    cluster's ``keyring`` when it has one: a keyed peer answers nothing else.
    ``network`` is the real one unless a test gives another.

    Raises :class:`NoAnswer` when no part arrives within ``first_answer``
    seconds, or when the parts stop coming for as long.
    """
    v6 = ":" in address[0]
    transport = await (network or UdpNetwork()).bind(("::" if v6 else "0.0.0.0", 0))
    nonce = random.getrandbits(63)
    assembly = Assembly()
    try:

        async def ask(parts: tuple[int, ...]) -> None:
            await transport.send(keyring.seal(encode(InfoRequest(nonce, parts))), address)

        await ask(())
        now = trio.current_time()
        retry_at, give_up_at = now + RETRY, now + first_answer
        while not assembly.done:
            part: Info | None = None
            with trio.move_on_at(min(retry_at, give_up_at)):
                part = await _receive_part(transport, address, keyring, nonce)
            now = trio.current_time()
            if part is not None and assembly.take(part):
                retry_at, give_up_at = now + RETRY, now + first_answer
            elif part is None:
                if now >= give_up_at:
                    raise NoAnswer(
                        f"nothing came from {address[0]}:{address[1]} for {first_answer:g} s"
                    )
                assembly.lost()
                retry_at = now + RETRY
                if assembly.count is None:
                    await ask(())
            for parts in assembly.asks():
                await ask(parts)
    finally:
        transport.close()
    try:
        snapshot = json.loads(assembly.text())
    except ValueError:
        raise NoAnswer(f"the answer from {address[0]}:{address[1]} is not JSON") from None
    problem = snapshot_problem(snapshot)
    if problem:
        where = f"{address[0]}:{address[1]}"
        # The problem may quote a name of the snapshot: escaped, as render shows names.
        raise NoAnswer(f"the answer from {where} is not a snapshot: {escape(problem)}")
    result: dict[str, Any] = snapshot
    return result


async def _receive_part(
    transport: Transport, address: Address, keyring: Keyring, nonce: int
) -> Info:
    """The next ``info`` of ``nonce`` from ``address``; anything else is ignored."""
    while True:
        data, source = await transport.receive()
        if source != address:
            continue  # only the peer asked answers
        try:
            message = decode_untrusted(keyring.open_untrusted(data))
        except BadDatagram:
            continue
        if isinstance(message, Info) and message.nonce == nonce:
            return message


# -- the shape of a snapshot ---------------------------------------------------------


def _is_int(value: object) -> bool:
    return type(value) is int


def _is_age(value: object) -> bool:
    if value is None:
        return True  # never
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value)


class _Unlike(Exception):
    """What makes a snapshot unlike one a peer sends."""


def _need(condition: bool, problem: str) -> None:
    if not condition:
        raise _Unlike(problem)


def snapshot_problem(snapshot: object) -> str:
    """What makes ``snapshot`` unlike what a peer sends (in the fields that
    :mod:`.render` and the command line read), or ``""``.

    The snapshot comes from the network: a client checks it before it reads it.
    """
    try:
        _check_snapshot(snapshot)
    except _Unlike as exc:
        return str(exc)
    return ""


def _check_snapshot(snapshot: object) -> None:
    if type(snapshot) is not dict:
        raise _Unlike("not an object")
    for key in ("peer", "address", "folder"):
        _need(type(snapshot.get(key)) is str, f"{key}: not a string")
    origins = snapshot.get("origins")
    if type(origins) is not dict:
        raise _Unlike("origins: not an object")
    for name, o in origins.items():
        _need(type(o) is dict, f"origins.{name}: not an object")
        for key in ("version", "heartbeat", "file_count"):
            _need(_is_int(o.get(key)), f"origins.{name}.{key}: not an integer")
        for key in ("changed_ago", "heard_ago"):
            _need(_is_age(o.get(key)), f"origins.{name}.{key}: not a number of seconds")
        files = o.get("files")
        _need(
            type(files) is list and all(_is_file(f) for f in files),
            f"origins.{name}.files: not a list of files",
        )
    reaped = snapshot.get("reaped", {})
    _need(type(reaped) is dict, "reaped: not an object")
    for name, r in reaped.items():
        _need(
            type(r) is dict and _is_int(r.get("version")) and _is_age(r.get("reaped_ago")),
            f"reaped.{name}: not a tombstone",
        )
    s = snapshot.get("statistics")
    if s is not None:
        _need(type(s) is dict, "statistics: not an object")
        counters = ("datagrams_in", "bytes_in", "datagrams_out", "bytes_out", "accepted", "reaped")
        _need(all(_is_int(s.get(k)) for k in counters), "statistics: a counter is not an integer")
        rejected = s.get("rejected")
        _need(
            type(rejected) is dict and all(_is_int(v) for v in rejected.values()),
            "statistics.rejected: not counters by reason",
        )


def _is_file(f: object) -> bool:
    return (
        type(f) is dict
        and type(f.get("name")) is str
        and _is_int(f.get("size"))
        and _is_int(f.get("mtime_ns"))
    )


# -- what a snapshot says ------------------------------------------------------------


def files_matching(snapshot: dict[str, Any], pattern: str) -> dict[str, list[dict[str, Any]]]:
    """The files of each origin whose name (the path relative to its folder)
    matches the shell pattern ``pattern`` (:func:`fnmatch.fnmatchcase`: case
    counts, and ``*`` crosses ``/``); only origins with at least one."""
    matches: dict[str, list[dict[str, Any]]] = {}
    for name, origin in snapshot["origins"].items():
        files = [f for f in origin["files"] if fnmatch.fnmatchcase(f["name"], pattern)]
        if files:
            matches[name] = files
    return matches


def unheard_for(snapshot: dict[str, Any], push: float, quiet: float) -> float | None:
    """Seconds the peer has heard from no other peer (the least ``heard_ago``
    of the other origins; infinite if it heard none), when that is more than
    ``quiet``; ``None`` when it heard one since, or has not run for ``quiet``
    seconds yet (its own heartbeat counts its push rounds of ``push`` seconds)."""
    own = snapshot["origins"].get(snapshot["peer"])
    if own is not None and own["heartbeat"] * push < quiet:
        return None  # too early to tell
    ages = [
        o["heard_ago"]
        for name, o in snapshot["origins"].items()
        if name != snapshot["peer"] and o["heard_ago"] is not None
    ]
    heard = float(min(ages, default=math.inf))
    return heard if heard > quiet else None
