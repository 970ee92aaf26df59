"""Equal entries held once by all the peers of one process.

With ``--all``, every peer of the process holds an entry for every origin:
a thousand peers hold a million entries, but only a few thousand different
ones -- each origin's current version at the few heartbeats in flight. A
:class:`SharedEntries` hands every replica the one copy of an entry it has
seen already (the same origin, key, floor and files), and the files of an
entry the one copy of its version's files, so that what a peer holds costs
the dictionaries that index it, not the entries themselves.

Weakly held: an entry no replica holds any more is freed as before. Pure:
no I/O, no clock. Entries are immutable, so sharing them changes nothing a
replica can observe but their identity.
"""

from __future__ import annotations

import weakref

from .state import Entry

__all__ = ["SharedEntries"]


class SharedEntries:
    """The entries the replicas of one process hold, each once."""

    def __init__(self) -> None:
        #: (origin, generation, version, heartbeat, reaped) -> the entry.
        self._entries: weakref.WeakValueDictionary[tuple[str, int, int, int, bool], Entry] = (
            weakref.WeakValueDictionary()
        )
        #: (origin, generation, version) -> an entry with that version's files.
        self._versions: weakref.WeakValueDictionary[tuple[str, int, int], Entry] = (
            weakref.WeakValueDictionary()
        )
        #: Each origin's entry handed out last, held: the replicas of a
        #: process mostly take the same heartbeat of an origin one after the
        #: other, and a plain dictionary answers them at a tenth of the cost
        #: of the weak ones (at most one entry per origin kept alive).
        self._last: dict[str, Entry] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, origin: str, entry: Entry) -> Entry:
        """The copy of ``entry`` (of ``origin``) to hold: one equal to it held
        already, or ``entry`` itself (with the files of its version, if equal
        ones are held), from now on the one to share."""
        last = self._last.get(origin)
        if last is not None and last.key == entry.key and _same(last, entry):
            return last
        key = (origin, entry.generation, entry.version, entry.heartbeat, entry.reaped)
        held = self._entries.get(key)
        if held is not None and _same(held, entry):
            self._last[origin] = held
            return held
        version = key[:3]
        files = self._versions.get(version)
        if (
            files is not None
            and files.files is not entry.files
            and files.floor == entry.floor
            and files.files == entry.files
        ):
            entry = Entry(
                entry.generation,
                entry.version,
                entry.heartbeat,
                entry.floor,
                files.files,
                entry.reaped,
            )
        # An unequal entry under the same key (an origin that restarted twice
        # in one nanosecond, or a forger) is not shared: the last one wins the
        # slot, and those holding the other keep theirs.
        self._entries[key] = entry
        self._versions[version] = entry
        self._last[origin] = entry
        return entry


def _same(a: Entry, b: Entry) -> bool:
    return a.floor == b.floor and (a.files is b.files or a.files == b.files)
