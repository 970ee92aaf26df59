"""One peer's replica of the cluster's metadata, with its books.

The entries themselves merge by the pure rules of :mod:`.state`; the replica
adds what a peer needs to know about them over time -- when each origin was
last heard of (its key went up) and last changed (its files or its liveness),
and a counter of changes to the set of origins that caches are keyed by.
Pure: times are passed in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Literal, TypeVar

import attrs

from .shared import SharedEntries
from .state import Entry

__all__ = ["Replica", "Status"]

T = TypeVar("T")

#: ``alive``: heard of lately; ``suspect``: nothing heard for longer than news
#: takes to spread; ``left``: it said it leaves; ``reaped``: silent for ``reap``.
Status = Literal["alive", "suspect", "left", "reaped"]


@attrs.define
class Replica:
    """Every origin's entry (tombstones included), and when we heard of it."""

    entries: dict[str, Entry] = attrs.field(factory=dict)
    #: When each origin's key last went up in our replica, in the order to ask
    #: about them: the least recently heard of first (see
    #: :meth:`.gossip.DigestWriter.stale`, which may also move one to the end).
    heard: dict[str, float] = attrs.field(factory=dict)
    #: When each origin's files or status last changed in our replica.
    changed: dict[str, float] = attrs.field(factory=dict)
    #: Each origin's status, and since when.
    status: dict[str, Status] = attrs.field(factory=dict)
    status_since: dict[str, float] = attrs.field(factory=dict)
    #: Goes up whenever an origin is added to (or removed from) ``entries``:
    #: what caches of the set of origins are keyed by.
    membership: int = 0
    #: Where equal entries are held once, if the replica shares them with
    #: others of its process (``--all``); ``None``: it keeps its own.
    shared: SharedEntries | None = attrs.field(default=None, kw_only=True)
    _cache: dict[str, tuple[int, object]] = attrs.field(factory=dict)

    def put(self, origin: str, entry: Entry, now: float, *, changed: bool) -> None:
        """Hold ``entry`` for ``origin``, heard of at ``now``; ``changed`` when
        more than the heartbeat went up."""
        if origin not in self.entries:
            self.membership += 1
        if self.shared is not None:
            entry = self.shared.get(origin, entry)
        self.entries[origin] = entry
        self.heard.pop(origin, None)  # to the end: heard of last
        self.heard[origin] = now
        if changed:
            self.changed[origin] = now

    def set_status(self, origin: str, status: Status, now: float) -> bool:
        """Whether ``origin``'s status changed to ``status``."""
        if self.status.get(origin) == status:
            return False
        self.status[origin] = status
        self.status_since[origin] = now
        return True

    def get(self, origin: str) -> Entry | None:
        return self.entries.get(origin)

    def __getitem__(self, origin: str) -> Entry:
        return self.entries[origin]

    def __contains__(self, origin: object) -> bool:
        return origin in self.entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def items(self) -> Iterator[tuple[str, Entry]]:
        return iter(self.entries.items())

    def live(self) -> dict[str, Entry]:
        """Every live origin's entry (tombstones left out)."""
        return {o: e for o, e in self.entries.items() if not e.reaped}

    def reaped(self) -> dict[str, Entry]:
        return {o: e for o, e in self.entries.items() if e.reaped}

    def per_membership(self, name: str, make: Callable[[Mapping[str, Entry]], T]) -> T:
        """``make(entries)``, made again only after the set of origins changed."""
        hit = self._cache.get(name)
        if hit is not None and hit[0] == self.membership:
            return hit[1]  # type: ignore[return-value]  # stored by this same name
        value = make(self.entries)
        self._cache[name] = (self.membership, value)
        return value
