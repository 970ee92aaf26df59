"""Every file name the cluster holds, across origins, for the web page:
search, sort and pages over one table. Pure.

Built from a view (origin -> entry) at one moment and never changed after:
the web server builds a new one when an origin's files changed, in a worker
thread, and reads it there too. The orders and the last few searches are
remembered, so paging through a search of 100,000 names costs a slice.
"""

from __future__ import annotations

import operator
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Final, Literal, NamedTuple

from .state import Entry, live_files

__all__ = ["SORTS", "FileIndex", "Page", "Row", "index_key"]

Sort = Literal["name", "size", "mtime", "holders"]
#: The columns the table sorts by.
SORTS: Final[tuple[Sort, ...]] = ("name", "size", "mtime", "holders")
#: Searches remembered per index (a page flip reuses the search it pages through).
REMEMBERED: Final = 8


class Row(NamedTuple):
    """One file name and who holds it. ``size`` and ``mtime_ns`` are the newest
    copy's (the greatest mtime, then size); ``stale`` are the holders whose
    copy differs from it."""

    name: str
    size: int
    mtime_ns: int
    holders: tuple[str, ...]
    stale: tuple[str, ...]


class Page(NamedTuple):
    """One page of a search: the rows, and how many matched in all."""

    rows: list[Row]
    total: int
    page: int
    per_page: int


def index_key(view: Mapping[str, Entry]) -> tuple[tuple[str, int, int], ...]:
    """What the index of ``view`` depends on: each live origin's files
    (generation and version), not its heartbeat."""
    return tuple(sorted((o, e.generation, e.version) for o, e in view.items() if not e.reaped))


_KEYS: Final[dict[str, Callable[[Row], int]]] = {
    "size": operator.itemgetter(1),
    "mtime": operator.itemgetter(2),
    "holders": lambda r: len(r.holders),
}


def _newest(copy: tuple[str, int, int]) -> tuple[int, int]:
    return (copy[2], copy[1])


class FileIndex:
    """The files of every live origin of a view, one row per name, by name."""

    def __init__(self, key: tuple[tuple[str, int, int], ...], rows: list[Row]) -> None:
        #: The :func:`index_key` of the view this index was built from.
        self.key = key
        #: Every row, sorted by name.
        self.rows = rows
        #: Distinct origins holding files.
        self.holders = len({o for o, _, _ in key})
        self._folded = [r.name.casefold() for r in rows]
        self._orders: dict[tuple[Sort, bool], list[int]] = {}
        self._searches: OrderedDict[tuple[object, ...], list[int]] = OrderedDict()

    @classmethod
    def build(cls, view: Mapping[str, Entry]) -> FileIndex:
        """The index of ``view`` (tombstones have no files)."""
        copies: dict[str, list[tuple[str, int, int]]] = {}
        for origin, entry in sorted(view.items()):
            if entry.reaped:
                continue
            for f in live_files(entry):
                copies.setdefault(f.name, []).append((origin, f.size, f.mtime_ns))
        rows: list[Row] = []
        # A hundred thousand rows: tuple.__new__ spares each the frame of Row's own __new__.
        make = tuple.__new__
        for name in sorted(copies):
            held = copies[name]
            if len(held) == 1:  # most names: no copies to compare
                origin, size, mtime = held[0]
                rows.append(make(Row, (name, size, mtime, (origin,), ())))
                continue
            _, size, mtime = max(held, key=_newest)
            stale = tuple(o for o, s, m in held if (s, m) != (size, mtime))
            rows.append(Row(name, size, mtime, tuple(o for o, _, _ in held), stale))
        return cls(index_key(view), rows)

    @property
    def copies(self) -> int:
        """Files held across all origins (a name held twice counts twice)."""
        return sum(len(r.holders) for r in self.rows)

    def query(
        self,
        q: str = "",
        *,
        holder: str | None = None,
        sort: Sort = "name",
        descending: bool = False,
        page: int = 1,
        per_page: int = 100,
    ) -> Page:
        """Page ``page`` (from 1) of the rows whose name holds every word of
        ``q`` (ignoring case) and, if given, that ``holder`` holds; sorted by
        ``sort`` (ties by name)."""
        if sort not in SORTS:
            raise ValueError(f"sort: expected one of {', '.join(SORTS)}, got {sort!r}")
        if page < 1 or per_page < 1:
            raise ValueError("page and per_page start at 1")
        words = tuple(q.casefold().split())
        order = self._order(sort, descending)
        if words or holder is not None:
            found = self._search(words, holder, sort, descending, order)
        else:
            found = order
        start = (page - 1) * per_page
        rows = [self.rows[i] for i in found[start : start + per_page]]
        return Page(rows, len(found), page, per_page)

    def _order(self, sort: Sort, descending: bool) -> list[int]:
        order = self._orders.get((sort, descending))
        if order is None:
            if sort == "name":
                order = list(range(len(self.rows)))
                if descending:
                    order.reverse()
            else:
                key: Callable[[Row], int] = _KEYS[sort]
                rows = self.rows
                # Stable (a descending sort too): equal rows stay by name.
                order = sorted(range(len(rows)), key=lambda i: key(rows[i]), reverse=descending)
            self._orders[(sort, descending)] = order
        return order

    def _search(
        self,
        words: tuple[str, ...],
        holder: str | None,
        sort: Sort,
        descending: bool,
        order: list[int],
    ) -> list[int]:
        remembered = (words, holder, sort, descending)
        found = self._searches.get(remembered)
        if found is not None:
            self._searches.move_to_end(remembered)
            return found
        folded, rows = self._folded, self.rows
        matches: list[int] | range = range(len(rows))
        if words:
            # The longest word first: it usually leaves the fewest names to the others.
            first, *others = sorted(words, key=len, reverse=True)
            matches = [i for i, n in enumerate(folded) if first in n]
            for word in others:
                matches = [i for i in matches if word in folded[i]]
        if holder is not None:
            matches = [i for i in matches if holder in rows[i].holders]
        # ``matches`` is by name already: another order picks from it.
        if sort == "name":
            found = list(reversed(matches)) if descending else list(matches)
        else:
            keep = set(matches)
            found = [i for i in order if i in keep]
        self._searches[remembered] = found
        if len(self._searches) > REMEMBERED:
            self._searches.popitem(last=False)
        return found
