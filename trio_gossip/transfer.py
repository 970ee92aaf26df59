"""Metadata larger than a datagram: splitting it into parts and putting it back together.

A transfer is an origin's records at one ``(generation, version)``, either the
whole list (``base == -1``) or a delta from ``base``. The holder splits the
records, in name order, into parts that each fit one datagram; the receiver
keeps the parts it has and applies the transfer only when every part is there,
so a half-received version is never shown. Pure: no I/O, time is passed in.
"""

from __future__ import annotations

import itertools

import attrs

from .messages import Part
from .sizes import overhead, record_size
from .state import Entry, FileMeta, apply_delta, delta_records

__all__ = ["Assemblies", "Transfer", "finish", "prepare"]

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


@attrs.define
class _Assembly:
    key: tuple[int, int, int, int, int, int]  # generation, version, base, floor, count, total
    heartbeat: int
    parts: dict[int, tuple[FileMeta, ...]]
    requested: set[int]
    touched: float

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
    _by_origin: dict[str, _Assembly] = attrs.field(factory=dict)

    def add(self, part: Part, now: float) -> tuple[Entry | None, list[int]]:
        """Keep ``part``. Returns the finished transfer's records as an entry
        to merge (for a delta, still to be applied: see :func:`finish`), and
        the parts to ask for next (empty while requested ones are outstanding).
        ``ValueError`` if the finished parts hold another number of records
        than they said."""
        key = (part.generation, part.version, part.base, part.floor, part.count, part.total)
        current = self._by_origin.get(part.origin)
        if current is None or current.key != key:
            if current is not None and current.key[:2] > key[:2]:
                return None, []  # a part of an older transfer than the one under way
            current = _Assembly(
                key, part.heartbeat, {}, set(range(min(self.window, part.count))), now
            )
            self._by_origin[part.origin] = current
        current.parts[part.index] = part.files
        current.heartbeat = max(current.heartbeat, part.heartbeat)
        current.touched = now
        current.requested.discard(part.index)
        if len(current.parts) == part.count:
            del self._by_origin[part.origin]
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

    def drop(self, origin: str, upto: tuple[int, int]) -> None:
        """Forget a transfer of ``origin`` that is not newer than ``upto`` content."""
        current = self._by_origin.get(origin)
        if current is not None and current.key[:2] <= upto:
            del self._by_origin[origin]

    def expire(self, before: float) -> None:
        """Forget transfers no part of which arrived since ``before``."""
        for origin in [o for o, a in self._by_origin.items() if a.touched < before]:
            del self._by_origin[origin]

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
