"""Metadata larger than a datagram: splitting it into parts and putting it back together.

A transfer is an origin's records at one ``(generation, version)``, either the
whole list (``base == -1``) or a delta from ``base``. The holder splits the
records, in name order, into parts that each fit one datagram; the receiver
keeps the parts it has and applies the transfer only when every part is there,
so a half-received version is never shown. Pure: no I/O, time is passed in.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from typing import Final

import attrs

from .messages import Part
from .sizes import overhead, record_size
from .state import Entry, FileMeta, apply_delta, delta_records

__all__ = [
    "ORIGIN_BYTES",
    "TOTAL_BYTES",
    "Assemblies",
    "Prepared",
    "TooLarge",
    "Transfer",
    "finish",
    "prepare",
]

#: Bytes of parts (as they arrived) one transfer under way may hold, and all
#: of them together: what a sender, honest or not, can make a receiver keep.
ORIGIN_BYTES: Final = 64 << 20
TOTAL_BYTES: Final = 256 << 20

_OVERHEAD = overhead()


@attrs.frozen
class Transfer:
    """One origin's records at one version, split into parts that fit a datagram."""

    origin: str
    generation: int
    version: int
    floor: int
    base: int
    total: int
    parts: tuple[tuple[FileMeta, ...], ...]

    def part(self, sender: str, heartbeat: int, index: int) -> Part:
        return Part(
            sender,
            self.origin,
            self.generation,
            self.version,
            heartbeat,
            self.floor,
            self.base,
            index,
            len(self.parts),
            self.total,
            self.parts[index],
        )


def prepare(origin: str, entry: Entry, base: int, max_datagram: int) -> Transfer:
    """Split ``entry``'s records (all of them, or the delta from ``base``) into parts."""
    records = entry.files if base < 0 else delta_records(entry, base)
    if records is None:
        raise ValueError(f"no delta from version {base}")
    budget = max_datagram - _OVERHEAD
    parts: list[tuple[FileMeta, ...]] = []
    start, used = 0, 0
    for i, record in enumerate(records):
        size = record_size(record)
        if used + size > budget and i > start:
            parts.append(records[start:i])
            start, used = i, 0
        used += size
    parts.append(records[start:])
    return Transfer(
        origin, entry.generation, entry.version, entry.floor, base, len(records), tuple(parts)
    )


class TooLarge(ValueError):
    """A transfer would take more than its byte budget: it is dropped."""


@attrs.define
class Prepared:
    """The transfers a holder has split lately, so that the parts asked for
    one by one are not split again each time (the last ``keep``)."""

    room: int
    keep: int = 64
    _cache: OrderedDict[tuple[str, int, int, int], Transfer] = attrs.field(factory=OrderedDict)

    def get(self, origin: str, entry: Entry, base: int) -> Transfer:
        """``entry``'s transfer from ``base``; ``ValueError`` if no delta reaches it."""
        key = (origin, entry.generation, entry.version, base)
        transfer = self._cache.get(key)
        if transfer is None:
            transfer = prepare(origin, entry, base, self.room)
            if len(self._cache) >= self.keep:
                self._cache.popitem(last=False)
            self._cache[key] = transfer
        return transfer


@attrs.define
class _Assembly:
    key: tuple[int, int, int, int, int, int]  # generation, version, base, floor, count, total
    heartbeat: int
    parts: dict[int, tuple[FileMeta, ...]]
    requested: set[int]
    touched: float
    size: int = 0  # bytes of the parts kept, as they arrived

    def missing(self, limit: int) -> list[int]:
        count = self.key[4]
        out: list[int] = []
        for i in range(count):
            if i not in self.parts:
                out.append(i)
                if len(out) == limit:
                    break
        return out


@attrs.define
class Assemblies:
    """The transfers under way into one peer: at most one per origin, the newest."""

    window: int = 16
    origin_bytes: int = ORIGIN_BYTES
    total_bytes: int = TOTAL_BYTES
    #: Seconds without a part after which a transfer under way gives way to
    #: an older one: nobody may be able to finish it (its origin restarted
    #: with its clock set back, into a lower generation, before anyone held
    #: it), and the older one arrives because we asked for it.
    stalled: float = 1.0
    _by_origin: dict[str, _Assembly] = attrs.field(factory=dict)
    _size: int = 0

    @property
    def size(self) -> int:
        """Bytes held by all transfers under way."""
        return self._size

    def add(self, part: Part, now: float, size: int = 0) -> tuple[Entry | None, list[int]]:
        """Keep ``part`` (``size`` bytes as it arrived). Returns the finished
        transfer's records as an entry to merge (for a delta, still to be
        applied: see :func:`finish`), and the parts to ask for next (empty
        while requested ones are outstanding). ``ValueError`` if the finished
        parts hold another number of records than they said; :class:`TooLarge`
        (and the transfer is dropped) if it would pass its byte budget. A
        part of an older transfer than the one under way is dropped, unless
        that one received nothing for ``stalled`` seconds."""
        key = (part.generation, part.version, part.base, part.floor, part.count, part.total)
        current = self._by_origin.get(part.origin)
        if current is None or current.key != key:
            if (
                current is not None
                and current.key[:2] > key[:2]
                and now - current.touched < self.stalled
            ):
                return None, []  # a part of an older transfer than the one under way
            self._forget(part.origin)
            current = _Assembly(
                key, part.heartbeat, {}, set(range(min(self.window, part.count))), now
            )
            self._by_origin[part.origin] = current
        if part.index in current.parts:
            size = 0  # a duplicate replaces its twin
        elif current.size + size > self.origin_bytes:
            self._forget(part.origin)
            raise TooLarge(f"more than {self.origin_bytes} bytes in one transfer")
        elif self._size + size > self.total_bytes:
            if not current.parts:
                self._forget(part.origin)
            raise TooLarge(f"more than {self.total_bytes} bytes in all transfers")
        current.parts[part.index] = part.files
        current.size += size
        self._size += size
        current.heartbeat = max(current.heartbeat, part.heartbeat)
        current.touched = now
        current.requested.discard(part.index)
        if len(current.parts) == part.count:
            self._forget(part.origin)
            records = tuple(r for i in range(part.count) for r in current.parts[i])
            if len(records) != part.total:
                raise ValueError(f"{len(records)} records, the parts said {part.total}")
            return Entry(part.generation, part.version, current.heartbeat, part.floor, records), []
        if current.requested:
            return None, []
        nxt = current.missing(self.window)
        current.requested = set(nxt)
        return None, nxt

    def resume(self, origin: str, generation: int, version: int) -> tuple[int, list[int]]:
        """For a want of ``origin`` at ``(generation, version)``: the base and
        missing parts of the transfer under way, or ``(-1, [])`` to start afresh."""
        current = self._by_origin.get(origin)
        if current is None or current.key[:2] != (generation, version):
            return -1, []
        nxt = current.missing(self.window)
        current.requested = set(nxt)
        return current.key[2], nxt

    def held(self, origin: str, entry: Entry | None) -> None:
        """What we hold of ``origin`` is now ``entry``: forget a transfer under
        way that it makes useless -- one not newer than it, or a delta from a
        version we no longer hold alive (its parts would all be thrown away,
        and asking for them again would ask for the same useless base)."""
        current = self._by_origin.get(origin)
        if current is None or entry is None:
            return
        generation, version, base = current.key[:3]
        stale = (generation, version) <= entry.content
        lost_base = base >= 0 and (entry.reaped or entry.content != (generation, base))
        if stale or lost_base:
            self._forget(origin)

    def expire(self, before: float) -> None:
        """Forget transfers no part of which arrived since ``before``."""
        for origin in [o for o, a in self._by_origin.items() if a.touched < before]:
            self._forget(origin)

    def _forget(self, origin: str) -> None:
        gone = self._by_origin.pop(origin, None)
        if gone is not None:
            self._size -= gone.size

    def __len__(self) -> int:
        return len(self._by_origin)


def finish(received: Entry, base: int, held: Entry | None) -> Entry | None:
    """The entry a finished transfer makes, or ``None`` if it is inconsistent.

    A full list must be strictly sorted by name with sequence numbers within
    the version; a delta must apply to the version we hold.
    """
    records = received.files
    names = [r.name for r in records]
    if any(a >= b for a, b in itertools.pairwise(names)):
        return None
    if any(not base < r.seq <= received.version for r in records):
        return None
    if base < 0:
        return received
    if held is None or held.reaped or held.content != (received.generation, base):
        return None
    return apply_delta(held, received.version, received.heartbeat, received.floor, records)
