"""The server side of ``--info``: snapshots of a peer's replica, served in parts.

Anyone may ask (``info?`` needs no place in the config), so what one request
costs is bounded however many arrive, whatever their nonces:

* the snapshot text is made at most every :data:`SNAPSHOT_EVERY` seconds and
  shared by every request in between; each origin's file list is written as
  JSON once per version of that origin and kept, so making a snapshot costs
  about one line per origin, not one per file;
* a few snapshots are kept at once (:data:`KEEP`), and a client's nonce points
  at the one it started with, so its parts all come from one text;
* at most :data:`INFO_RATE` parts are sent per second in all, after a burst
  of :data:`INFO_BURST` (a token bucket): a flood of small
  forged requests cannot turn a peer into a large stream of answers.

Pure: the time is passed in.
"""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any, Final

import attrs

from .messages import Info, InfoRequest
from .replica import Replica
from .state import Entry, live_files

__all__ = ["INFO_BURST", "INFO_RATE", "KEEP", "SNAPSHOT_EVERY", "InfoServer", "snapshot"]

#: Info parts a peer sends per second at most.
INFO_RATE: Final = 256
#: Info parts a peer may send at once, before the rate holds it back: one
#: view of a few hundred parts (17,000 files) comes whole, at once.
INFO_BURST: Final = 2 * INFO_RATE
#: Seconds a snapshot serves new requests before the next one is made.
SNAPSHOT_EVERY: Final = 0.5
#: Snapshots kept for the clients still asking for their parts.
KEEP: Final = 4
#: Nonces remembered, and for how long (seconds) after they were first seen.
NONCES: Final = 32
NONCE_TTL: Final = 30.0
#: Parts sent for a request that names none: the first window.
WINDOW: Final = 16
_ENVELOPE = 256  # an upper bound on an info part's bytes besides its data


def _ago(now: float, t: float | None) -> float | None:
    return None if t is None else round(now - t, 3)


def _files_json(entry: Entry) -> str:
    files = [{"name": f.name, "size": f.size, "mtime_ns": f.mtime_ns} for f in live_files(entry)]
    # ASCII (non-ASCII escaped): see ``InfoServer._make`` on sizes.
    return json.dumps(files, separators=(",", ":"))


@attrs.define
class _Fragments:
    """Each origin's file list as JSON, made once per version of it."""

    _by_origin: dict[str, tuple[tuple[int, int], str]] = attrs.field(factory=dict)

    def files(self, origin: str, entry: Entry) -> str:
        hit = self._by_origin.get(origin)
        if hit is None or hit[0] != entry.content:
            hit = self._by_origin[origin] = (entry.content, _files_json(entry))
        return hit[1]


def _origin_fields(
    name: str, origin: str, entry: Entry, replica: Replica, now: float
) -> dict[str, Any]:
    return {
        "generation": entry.generation,
        "version": entry.version,
        "heartbeat": entry.heartbeat,
        "changed_ago": _ago(now, replica.changed.get(origin)),
        "heard_ago": 0.0 if origin == name else _ago(now, replica.heard.get(origin)),
        "status": replica.status.get(origin, "alive"),
        "status_ago": _ago(now, replica.status_since.get(origin)),
        "file_count": sum(1 for f in entry.files if not f.deleted),
    }


def _reaped_fields(origin: str, entry: Entry, replica: Replica, now: float) -> dict[str, Any]:
    return {
        "generation": entry.generation,
        "version": entry.version,
        "reaped_ago": _ago(now, replica.changed.get(origin)),
        "status": replica.status.get(origin, "reaped"),
    }


def _fields(
    name: str, replica: Replica, now: float
) -> tuple[list[tuple[str, Entry, dict[str, Any]]], dict[str, Any]]:
    """The snapshot's fields of each live origin (without its files), in name
    order, and of each reaped one: peer ``name``'s replica at ``now``."""
    live: list[tuple[str, Entry, dict[str, Any]]] = []
    reaped: dict[str, Any] = {}
    for origin, entry in sorted(replica.items()):
        if entry.reaped:
            reaped[origin] = _reaped_fields(origin, entry, replica, now)
        else:
            live.append((origin, entry, _origin_fields(name, origin, entry, replica, now)))
    return live, reaped


def snapshot(
    header: Mapping[str, Any], replica: Replica, statistics: Mapping[str, Any], now: float
) -> dict[str, Any]:
    """What ``--info --json`` shows, as a JSON object: ``header`` (peer,
    address, folder), every origin with its files, the reaped, the counters."""
    live, reaped = _fields(header["peer"], replica, now)
    origins: dict[str, Any] = {}
    for origin, entry, fields in live:
        fields["files"] = json.loads(_files_json(entry))
        origins[origin] = fields
    return {**header, "origins": origins, "reaped": reaped, "statistics": dict(statistics)}


@attrs.define
class InfoServer:
    """Answers ``info?`` requests of anyone with parts of a recent snapshot."""

    sender: str
    #: Bytes an info datagram may take.
    room: int
    _fragments: _Fragments = attrs.field(factory=_Fragments)
    #: Snapshots still served: when made -> their parts.
    _kept: OrderedDict[float, list[str]] = attrs.field(factory=OrderedDict)
    #: Nonce -> (when first seen, the snapshot it reads).
    _nonces: OrderedDict[int, tuple[float, float]] = attrs.field(factory=OrderedDict)
    #: Parts that may be sent now, and when the bucket was last filled.
    _tokens: float = INFO_BURST
    _filled: float = -math.inf
    #: Snapshots made so far (for tests and the flood benchmark).
    made: int = 0

    def answer(
        self,
        request: InfoRequest,
        now: float,
        header: Mapping[str, Any],
        replica: Replica,
        statistics: Callable[[], Mapping[str, Any]],
    ) -> tuple[list[Info], bool]:
        """The parts to send for ``request``, and whether the rate refused it."""
        if self._filled != -math.inf:
            self._tokens = min(INFO_BURST, self._tokens + (now - self._filled) * INFO_RATE)
        self._filled = now
        if self._tokens < 1:
            return [], True
        resuming = bool(request.parts)
        chunks = self._chunks(request.nonce, now, header, replica, statistics, resuming=resuming)
        if not chunks:
            return [], False
        indexes = list(request.parts or range(min(WINDOW, len(chunks))))
        indexes = [i for i in indexes[: math.floor(self._tokens)] if i < len(chunks)]
        self._tokens -= len(indexes)
        nonce, count = request.nonce, len(chunks)
        return [Info(self.sender, nonce, i, count, chunks[i]) for i in indexes], False

    def _chunks(
        self,
        nonce: int,
        now: float,
        header: Mapping[str, Any],
        replica: Replica,
        statistics: Callable[[], Mapping[str, Any]],
        *,
        resuming: bool,
    ) -> list[str]:
        known = self._nonces.get(nonce)
        # Room for one more nonce, if this one is new: NONCES at most.
        most = NONCES if known is not None else NONCES - 1
        while self._nonces:
            oldest, (seen, _) = next(iter(self._nonces.items()))
            if now - seen <= NONCE_TTL and len(self._nonces) <= most:
                break
            del self._nonces[oldest]
        known = self._nonces.get(nonce)
        if known is not None or resuming:
            # Its own snapshot, or nothing: parts of two texts must never be joined.
            return [] if known is None else self._kept.get(known[1], [])
        made = next(reversed(self._kept), None)
        if made is None or now - made >= SNAPSHOT_EVERY:
            made = now
            self._kept[made] = self._make(now, header, replica, statistics())
            while len(self._kept) > KEEP:
                self._kept.popitem(last=False)
        self._nonces[nonce] = (now, made)
        return self._kept[made]

    def _make(
        self,
        now: float,
        header: Mapping[str, Any],
        replica: Replica,
        statistics: Mapping[str, Any],
    ) -> list[str]:
        self.made += 1
        live, reaped = _fields(header["peer"], replica, now)
        origins: list[str] = []
        for origin, entry, fields in live:
            fields["files"] = []
            # "files" is the last key: its cached list goes in place of ``[]``.
            head = json.dumps(fields, separators=(",", ":"))[:-3]
            files = self._fragments.files(origin, entry)
            origins.append(f"{json.dumps(origin)}:{head}{files}}}")
        rest = json.dumps({"reaped": reaped, "statistics": dict(statistics)}, separators=(",", ":"))
        top = json.dumps(dict(header), separators=(",", ":"))[:-1]
        text = f'{top},"origins":{{{",".join(origins)}}},{rest[1:]}'
        # The text is ASCII without controls (JSON escaped the rest): as a
        # JSON string in an Info each of its characters takes at most two bytes.
        size = max(1, (self.room - _ENVELOPE) // 2)
        chunks = [text[i : i + size] for i in range(0, len(text), size)] or [""]
        return chunks
