"""Versioned folder metadata and its merge: the pure core of the protocol.

Nothing here does I/O, reads a clock or touches trio. Every decision about
metadata -- which version wins, what a digest line says about liveness, what a
delta changes, what a scan changed -- is a plain function of plain data.

An origin's metadata is an :class:`Entry`. Entries are ordered by
:attr:`Entry.key` ``(generation, version, heartbeat, reaped)``:

* ``generation`` changes when the origin restarts (it starts at the wall clock
  in nanoseconds and is bumped past anything the cluster remembers), so a
  restarted peer's metadata wins at once;
* ``version`` counts the origin's folder changes within a generation;
* ``heartbeat`` counts the origin's push rounds: it proves the origin is alive
  even when its folder never changes;
* ``reaped`` marks a tombstone: at an equal key, "dead" beats "alive", so an
  old copy can never bring a reaped origin back.

Within one generation an honest origin only ever moves all three counters
forward, so all holders of the same key hold the same content.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import attrs

__all__ = [
    "DELTA_HORIZON",
    "Entry",
    "FileMeta",
    "Key",
    "Line",
    "View",
    "apply_delta",
    "beat",
    "delta_records",
    "first_entry",
    "live_files",
    "merge",
    "newer",
    "next_reaping",
    "proof",
    "proven",
    "reap_due",
    "refute",
    "rescan",
    "tombstone",
]

#: How many versions back a delta can reach: deletion records older than this
#: are pruned, and a holder further behind receives the whole list.
DELTA_HORIZON = 64

Key = tuple[int, int, int, bool]


@attrs.frozen(order=True)
class FileMeta:
    """One file of a folder, or the record that it was deleted.

    ``seq`` is the origin's version in which this record last changed; a delta
    from version ``b`` carries exactly the records with ``seq > b``.
    """

    name: str
    size: int
    mtime_ns: int
    seq: int
    deleted: bool = False


@attrs.frozen
class Entry:
    """What one origin's folder held at one version, with its liveness counters.

    ``files`` is sorted by name, one record per name, and includes deletion
    records with ``seq > floor``: a delta can be applied to any version from
    ``floor`` on. A tombstone (``reaped``) has no files.
    """

    generation: int
    version: int
    heartbeat: int
    floor: int = 0
    files: tuple[FileMeta, ...] = ()
    reaped: bool = False

    @property
    def key(self) -> Key:
        return (self.generation, self.version, self.heartbeat, self.reaped)

    @property
    def content(self) -> tuple[int, int]:
        """The part of the key that decides the files."""
        return (self.generation, self.version)


@attrs.frozen
class Line:
    """One line of a digest: an entry without its files."""

    origin: str
    generation: int
    version: int
    heartbeat: int
    reaped: bool = False

    @property
    def key(self) -> Key:
        return (self.generation, self.version, self.heartbeat, self.reaped)

    @property
    def content(self) -> tuple[int, int]:
        return (self.generation, self.version)

    @classmethod
    def of(cls, origin: str, entry: Entry) -> Line:
        return cls(origin, entry.generation, entry.version, entry.heartbeat, entry.reaped)


View = Mapping[str, Entry]


def newer(incoming: Entry, held: Entry | None) -> bool:
    """Whether ``incoming`` replaces ``held``: only a strictly greater key does."""
    return held is None or incoming.key > held.key


def merge(view: View, incoming: View) -> dict[str, Entry]:
    """Join two views: for every origin, the entry with the greater key.

    An equal key keeps ``view``'s entry, so a copy can never replace what is
    held. This is the join of a semilattice: idempotent, commutative and
    associative for honest views (equal keys, equal content), with ``{}`` as
    identity, and no origin's key ever goes down.
    """
    merged = dict(view)
    for origin, entry in incoming.items():
        if newer(entry, merged.get(origin)):
            merged[origin] = entry
    return merged


def tombstone(entry: Entry) -> Entry:
    """The entry that replaces ``entry`` when its origin is reaped."""
    return Entry(entry.generation, entry.version, entry.heartbeat, reaped=True)


def proven(view: View, lines: Iterable[Line]) -> dict[str, Entry]:
    """The entries a digest's lines prove without any files, to merge into
    ``view``: :func:`proof` of each line against what ``view`` holds."""
    derived: dict[str, Entry] = {}
    for line in lines:
        candidate = proof(view.get(line.origin), line)
        if candidate is not None:
            derived[line.origin] = candidate
    return derived


def proof(held: Entry | None, line: Line) -> Entry | None:
    """The entry one digest line proves without any files, newer than
    ``held`` (what we hold of its origin), or ``None``.

    A line of the generation we hold, at our version or a newer one, with a
    greater heartbeat proves the origin alive: take the heartbeat onto the
    version we hold (content is decided by generation and version alone, so
    this key's content is still ours). Without that, while a large new version
    is on its way, the origin's heartbeats would stop spreading and it would be
    reaped alive. A tombstone line at a key at least ours proves the origin was
    reaped at that point: take the tombstone. New files are never proven by a
    line: they must be fetched.
    """
    if line.reaped:
        tomb = Entry(line.generation, line.version, line.heartbeat, reaped=True)
        return tomb if newer(tomb, held) else None
    if (
        held is not None
        and not held.reaped
        and held.generation == line.generation
        and held.version <= line.version
        and held.heartbeat < line.heartbeat
    ):
        # Newer than held, without asking newer(): the same content, a greater
        # heartbeat. attrs.evolve written out: it looks up every field by name.
        return Entry(held.generation, held.version, line.heartbeat, held.floor, held.files)
    return None


def live_files(entry: Entry) -> tuple[FileMeta, ...]:
    """The files that exist, without deletion records."""
    return tuple(f for f in entry.files if not f.deleted)


def delta_records(entry: Entry, base: int) -> tuple[FileMeta, ...] | None:
    """The records that turn version ``base`` of this generation into ``entry``.

    ``None`` when ``base`` is older than ``entry.floor`` (a deletion it would
    need was pruned) or not older than ``entry.version``.
    """
    if not entry.floor <= base < entry.version:
        return None
    return tuple(f for f in entry.files if f.seq > base)


def _prune(records: Iterable[FileMeta], floor: int) -> tuple[FileMeta, ...]:
    return tuple(sorted(f for f in records if not (f.deleted and f.seq <= floor)))


def apply_delta(
    held: Entry, version: int, heartbeat: int, floor: int, records: Iterable[FileMeta]
) -> Entry:
    """Apply a delta to ``held`` (which must be at the delta's base version)."""
    by_name = {f.name: f for f in held.files}
    by_name.update((f.name, f) for f in records)
    return Entry(held.generation, version, heartbeat, floor, _prune(by_name.values(), floor))


def first_entry(generation: int, scanned: Mapping[str, tuple[int, int]]) -> Entry:
    """An origin's first entry of a generation, from a scan (name -> size, mtime)."""
    files = tuple(sorted(FileMeta(name, size, mtime, 1) for name, (size, mtime) in scanned.items()))
    return Entry(generation, 1, 0, 0, files)


def rescan(own: Entry, scanned: Mapping[str, tuple[int, int]]) -> Entry | None:
    """The origin's next version after a scan, or ``None`` if nothing changed."""
    seq = own.version + 1
    changed: list[FileMeta] = []
    present = 0  # our live files the scan still found
    for f in own.files:
        if f.deleted:
            continue
        now = scanned.get(f.name)
        if now is None:
            changed.append(FileMeta(f.name, 0, 0, seq, deleted=True))
            continue
        present += 1
        if now[0] != f.size or now[1] != f.mtime_ns:
            changed.append(FileMeta(f.name, now[0], now[1], seq))
    if present < len(scanned):  # new names: look for them only when there are some
        known = {f.name for f in own.files if not f.deleted}
        changed.extend(
            FileMeta(name, size, mtime, seq)
            for name, (size, mtime) in scanned.items()
            if name not in known
        )
    if not changed:
        return None
    floor = max(own.floor, seq - DELTA_HORIZON)
    return apply_delta(own, seq, own.heartbeat, floor, changed)


def beat(own: Entry) -> Entry:
    """The origin's entry one push round later."""
    return attrs.evolve(own, heartbeat=own.heartbeat + 1)


def refute(own: Entry, seen: Key, wall: int = 0) -> Entry:
    """Outdo a key the cluster holds about us that is not below our own.

    That happens after a restart with a clock set back (the cluster remembers
    a later generation) or after we were reaped while alive. The content stays;
    the new generation is above the one seen and ours, and at least ``wall``
    (the wall clock, ns): a generation is never made twice, even by a peer
    that restarted with its clock behind, so one ``(generation, version)``
    never names two file lists.
    """
    generation = max(own.generation + 1, seen[0] + 1, wall)
    return first_entry(generation, {f.name: (f.size, f.mtime_ns) for f in live_files(own)})


def reap_due(
    view: View, heard: Mapping[str, float], now: float, after: float, own: str
) -> list[str]:
    """The origins to reap: alive, not us, and no key of theirs went up for ``after`` seconds."""
    # ``heard + after <= now``, not ``now - heard >= after``: the same sum as
    # :func:`next_reaping`, so waking at its time always finds the origin due
    # (in floating point the two can disagree, and the reaper would spin).
    return [
        origin
        for origin, entry in view.items()
        if origin != own and not entry.reaped and heard[origin] + after <= now
    ]


def next_reaping(
    view: View, heard: Mapping[str, float], now: float, after: float, own: str
) -> float:
    """When :func:`reap_due` can next return an origin (``now + after`` if none is held)."""
    times = [
        heard[origin] + after
        for origin, entry in view.items()
        if origin != own and not entry.reaped
    ]
    return min(times, default=now + after)
