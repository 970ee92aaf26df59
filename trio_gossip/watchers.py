"""Who watches a peer's events from afar (``--watch``), and the notes they get.

A client registers with a ``watch?`` and renews it; a registration expires
after :data:`WATCH_TTL` seconds, at most :data:`MAX_WATCHERS` are served at
once, and each gets at most :data:`NOTE_RATE` notes a second: watchers cost a
peer little and a forged ``watch?`` cannot turn it into a stream. A note
carries as many file names as fit one datagram, and says how many it left
out. Pure: the time is passed in.
"""

from __future__ import annotations

import math
from typing import Final

import attrs

from .events import Event
from .messages import EventNote
from .sizes import name_size
from .transport import Address

__all__ = ["MAX_WATCHERS", "NOTE_RATE", "WATCH_TTL", "Watchers"]

#: Seconds a ``watch?`` keeps its sender registered (clients renew every third of it).
WATCH_TTL: Final = 30.0
#: Watchers served at once.
MAX_WATCHERS: Final = 16
#: Notes one watcher gets per second at most; the rest are lost (a gap in ``seq``).
NOTE_RATE: Final = 256
#: An upper bound on a note's bytes besides its names.
_ENVELOPE: Final = 400


@attrs.define
class _Watcher:
    nonce: int
    until: float
    seq: int = 0
    second: int = 0
    sent: int = 0


@attrs.define
class Watchers:
    """The watchers of peer ``sender``, whose datagrams take at most ``room`` bytes."""

    sender: str
    room: int
    _by_address: dict[Address, _Watcher] = attrs.field(factory=dict)

    def __len__(self) -> int:
        return len(self._by_address)

    def register(self, address: Address, nonce: int, now: float) -> EventNote | None:
        """Register or renew ``address``; the note that says so, or ``None``
        when all places are taken."""
        self._expire(now)
        watcher = self._by_address.get(address)
        if watcher is None:
            if len(self._by_address) >= MAX_WATCHERS:
                return None
            watcher = self._by_address[address] = _Watcher(nonce, now + WATCH_TTL)
        watcher.nonce, watcher.until = nonce, now + WATCH_TTL
        return self._note(watcher, Event("joined", self.sender, now, 0, 0), "watching")

    def notes(self, events: list[Event], now: float) -> list[tuple[EventNote, Address]]:
        """The notes that tell every watcher of ``events``."""
        self._expire(now)
        if not self._by_address or not events:
            return []
        out: list[tuple[EventNote, Address]] = []
        second = math.floor(now)
        for address, watcher in self._by_address.items():
            if watcher.second != second:
                watcher.second, watcher.sent = second, 0
            for event in events:
                if watcher.sent >= NOTE_RATE:
                    watcher.seq += 1  # lost: the watcher sees the gap
                    continue
                watcher.sent += 1
                out.append((self._note(watcher, event, event.kind), address))
        return out

    def _note(self, watcher: _Watcher, event: Event, kind: str) -> EventNote:
        watcher.seq += 1
        names, more = self._fit((event.added, event.removed, event.changed))
        nonce, seq = watcher.nonce, watcher.seq
        return EventNote(
            self.sender,
            nonce,
            seq,
            kind,
            event.origin,
            event.generation,
            event.version,
            *names,
            more,
        )

    def _fit(
        self, lists: tuple[tuple[str, ...], ...]
    ) -> tuple[tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]], int]:
        """As many names of each list as fit the datagram, and how many did not."""
        budget = self.room - _ENVELOPE
        kept: list[tuple[str, ...]] = []
        more = 0
        for names in lists:
            taken: list[str] = []
            for name in names:
                size = name_size(name) + 1
                if size > budget:
                    break
                budget -= size
                taken.append(name)
            more += len(names) - len(taken)
            kept.append(tuple(taken))
        return (kept[0], kept[1], kept[2]), more

    def _expire(self, now: float) -> None:
        for address in [a for a, w in self._by_address.items() if w.until <= now]:
            del self._by_address[address]
