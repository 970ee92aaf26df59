"""Writing digests: which lines one datagram carries, and the summary beside them.

Lines that matter now come first -- our own, what the receiver lacks, fresh
news -- then a random sample of everything else held (see
:func:`.digests.select`). Pure: the random generator is passed in.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterable

import attrs

from .digests import MIN_LINE, Roster, select
from .messages import Digest
from .replica import Replica
from .rumors import RumorQueue
from .state import Line

__all__ = ["DigestWriter"]


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

    def news(self) -> Iterable[Line]:
        """Lines of origins with fresh news, the freshest first, made as they
        are taken: no more than one datagram can carry."""
        entries = self.replica.entries
        return (Line.of(o, entries[o]) for o in self.rumors.freshest(self.room // MIN_LINE))

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
        return [Line.of(origin, self.replica[origin]) for origin in names]

    def lines(self, first: Iterable[Line], room: int) -> tuple[Line, ...]:
        """One datagram (``room`` bytes) of lines: ours, ``first``, the news,
        then a random sample."""
        ours = Line.of(self.name, self.replica[self.name])
        origins = self.replica.per_membership("origins", list)
        chain = itertools.chain((ours,), first, self.news())
        return select(chain, origins, self.replica.entries, self.rng, room)

    def push(self) -> Digest:
        """A push: a digest with our summary, that asks for an answer."""
        roster, held = self.summary()
        return Digest(self.name, True, self.lines((), self.room - len(held)), roster, held)

    def answer(self, first: Iterable[Line]) -> Digest:
        """The answer to a push, ``first`` lines first, with our summary."""
        roster, held = self.summary()
        return Digest(self.name, False, self.lines(first, self.room - len(held)), roster, held)
