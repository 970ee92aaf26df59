"""Writing digests: which lines one datagram carries, and the summary beside them.

Lines that matter now come first -- our own, what the receiver lacks, fresh
news -- then, in a push, the origins we heard of least recently, then a small
random sample of everything else held (see :mod:`.digests`). Pure: the random
generator is passed in.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterable, Iterator
from typing import Final

import attrs

from .digests import MIN_LINE, RANDOM_LINES, Roster, select
from .messages import Digest
from .replica import Replica
from .rumors import RumorQueue
from .state import Line

__all__ = ["MISSES", "DigestWriter"]

#: Pushes that may ask about an origin in vain (no answer held it newer)
#: before it goes to the back of the queue: an origin that stopped must not
#: hold up the asking about the others until it is suspect.
MISSES: Final = 3


@attrs.define
class DigestWriter:
    """Writes the digests of peer ``name`` from its replica and its rumors."""

    name: str
    replica: Replica
    roster: Roster
    rumors: RumorQueue
    rng: random.Random
    #: Bytes a message may take.
    room: int
    #: Least recently heard origins a push carries (:func:`.digests.stale_lines`).
    stale_count: int = 1 << 30
    #: Origins asked about in vain: when we had heard of them then, and how often.
    _misses: dict[str, tuple[float, int]] = attrs.field(factory=dict)

    def line(self, origin: str) -> Line:
        """The line of the entry we hold for ``origin``."""
        # Made afresh: a cache of lines would cost a line per origin per peer,
        # which with --all is a million of them.
        return Line.of(origin, self.replica.entries[origin])

    def news(self) -> Iterable[Line]:
        """Lines of origins with fresh news, the freshest first, made as they
        are taken: no more than one datagram can carry."""
        return map(self.line, self.rumors.freshest(self.room // MIN_LINE))

    def stale(self) -> Iterator[Line]:
        """Lines of the :attr:`stale_count` live origins we heard of least
        recently: a push asks about them, and the answer carries what its
        sender holds newer. An origin asked about :data:`MISSES` times in
        vain goes to the back of the queue, as if heard of."""
        replica = self.replica
        entries, heard = replica.entries, replica.heard
        taken: list[str] = []
        for origin in heard:
            if len(taken) >= self.stale_count:
                break
            if origin != self.name and not entries[origin].reaped:
                taken.append(origin)
        for origin in taken:
            yield self.line(origin)
            since, misses = self._misses.get(origin, (heard[origin], 0))
            if since != heard[origin]:
                misses = 0  # heard of since the last ask
            misses += 1
            if misses >= MISSES:
                heard[origin] = heard.pop(origin)  # to the back, its time unchanged
                self._misses.pop(origin, None)
            else:
                self._misses[origin] = (heard[origin], misses)

    def summary(self) -> tuple[int, str]:
        """The roster's fingerprint and the summary of the origins we hold, or
        ``(0, "")`` where the summary would take more than half a datagram."""
        if self.roster.size > self.room // 2:
            return 0, ""
        return self.roster.fingerprint, self.roster.summary(self._held_bits())

    def _held_bits(self) -> int:
        """The roster bits of the origins we hold, tombstones included."""
        return self.replica.per_membership("held bits", self.roster.bits)

    def lacking(self, digest: Digest) -> list[Line]:
        """Lines of origins we hold and the digest's summary says its sender
        does not, a random selection of what one datagram can carry."""
        theirs = self.roster.read(digest.roster, digest.held) if digest.held else None
        if theirs is None:
            return []
        names = self.roster.names_of(self._held_bits() & ~theirs)
        names = self.rng.sample(names, min(len(names), self.room // MIN_LINE))
        return [self.line(origin) for origin in names]

    def lines(
        self, first: Iterable[Line], room: int, after: Iterable[Line] = ()
    ) -> tuple[Line, ...]:
        """One datagram (``room`` bytes) of lines: ours, ``first``, the news,
        ``after``, then a random sample of :data:`.digests.RANDOM_LINES`."""
        ours = self.line(self.name)
        origins = self.replica.per_membership("origins", list)
        chain = itertools.chain((ours,), first, self.news(), after)
        entries = self.replica.entries
        return select(chain, origins, entries, self.rng, room, most=RANDOM_LINES, line_of=self.line)

    def push(self) -> Digest:
        """A push: a digest with our summary and our stalest lines, that asks
        for an answer."""
        roster, held = self.summary()
        lines = self.lines((), self.room - len(held), self.stale())
        return Digest(self.name, True, lines, roster, held)

    def answer(self, first: Iterable[Line]) -> Digest:
        """The answer to a push, ``first`` lines first, with our summary."""
        roster, held = self.summary()
        return Digest(self.name, False, self.lines(first, self.room - len(held)), roster, held)
