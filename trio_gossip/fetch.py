"""Wants and parts: serving an origin's metadata, and fetching it in parts.

A digest line newer than what we hold becomes a :class:`.messages.Want`; a
holder answers a want with parts of a transfer (a delta when the asker's
version is within reach); the receiver keeps parts until the transfer is
whole (:class:`.transfer.Assemblies`), asking for the missing ones a window at
a time. Pure: the time is passed in.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

import attrs

from .messages import Part, Want
from .replica import Replica
from .state import Entry, Line
from .transfer import Assemblies, Prepared, TooLarge, finish
from .transport import Address

__all__ = ["RETRIES", "Fetcher", "Refused", "RoundTrip"]

#: Times an unanswered want is asked again before it is left to the next digest.
RETRIES: Final = 3


@attrs.define
class _Asked:
    """A want sent and not answered yet: to whom, when, how many times."""

    want: Want
    address: Address
    at: float
    tries: int = 0
    #: When it was sent, while it was sent once only: its first part then
    #: times a round trip (Karn: an answer to a want sent twice times nothing).
    sent: float | None = None


@attrs.define
class RoundTrip:
    """How long wants take to be answered: the smoothed round trip and its
    variation, and from them how long to wait before asking again (RFC 6298,
    TCP's retransmission timer).

    A peer that cannot keep up -- its answers queued behind a backlog -- sees
    its round trips grow, and asks again later instead of adding to the
    backlog the answers it is still to read."""

    srtt: float | None = None
    rttvar: float = 0.0

    def sample(self, seconds: float) -> None:
        if self.srtt is None:
            self.srtt, self.rttvar = seconds, seconds / 2
        else:
            self.rttvar += (abs(self.srtt - seconds) - self.rttvar) / 4
            self.srtt += (seconds - self.srtt) / 8

    def timeout(self, floor: float) -> float:
        """Seconds to wait for an answer: ``floor`` at least."""
        if self.srtt is None:
            return floor
        return max(floor, self.srtt + 4 * self.rttvar)


@attrs.frozen
class Refused:
    """A part that breaks the rules of transfers: why, for the counters."""

    reason: str
    detail: str


@attrs.define
class Fetcher:
    """Peer ``name``'s transfers: those it serves and those under way to it."""

    name: str
    replica: Replica
    window: int
    assemblies: Assemblies
    prepared: Prepared
    _asked: dict[str, _Asked] = attrs.field(factory=dict)
    round_trip: RoundTrip = attrs.field(factory=RoundTrip)

    def want(self, line: Line, held: Entry | None) -> Want | None:
        """A want for what ``line`` says is newer than ``held`` (what we hold
        of its origin), if anything."""
        if line.reaped or (held is not None and line.key <= held.key):
            return None
        base, parts = self.assemblies.resume(line.origin, line.generation, line.version)
        have = _have(held)
        return Want(
            self.name, line.origin, line.generation, line.version, *have, base, tuple(parts)
        )

    def serve(self, want: Want) -> list[Part]:
        """The parts that answer ``want``: those it names, or the first window
        of the transfer from the version it holds (a delta if we can make one)."""
        held = self.replica.get(want.origin)
        if held is None or held.reaped or held.content < (want.generation, want.version):
            return []  # we cannot serve it; someone else will
        indexes: Iterable[int] | None = None
        base = -1
        if want.parts and held.content == (want.generation, want.version):
            base, indexes = want.base, want.parts
        elif (
            want.have_generation == held.generation
            and held.floor <= want.have_version < held.version
        ):
            base = want.have_version
        try:
            transfer = self.prepared.get(want.origin, held, base)
        except ValueError:  # a delta we cannot make: send the whole list
            transfer, indexes = self.prepared.get(want.origin, held, -1), None
        if indexes is None:
            indexes = range(min(self.window, len(transfer.parts)))
        count = len(transfer.parts)
        return [transfer.part(self.name, held.heartbeat, i) for i in indexes if i < count]

    def asked(self, want: Want, address: Address, now: float) -> None:
        """``want`` went to ``address``: ask again if nothing comes back."""
        current = self._asked.get(want.origin)
        if current is not None and _asked_key(current.want) == _asked_key(want):
            current.want, current.address, current.at = want, address, now
            current.sent = None  # sent twice: its answer times nothing
        else:
            self._asked[want.origin] = _Asked(want, address, now, sent=now)

    def overdue(self, now: float, after: float) -> list[tuple[Want, Address]]:
        """The wants unanswered for ``after`` seconds (or longer, when answers
        take longer: :class:`RoundTrip`), asked again (at most :data:`RETRIES`
        times each): a lost want, or a lost part, costs a fraction of a round
        instead of waiting for the next digest to name the origin again."""
        after = self.round_trip.timeout(after)
        out: list[tuple[Want, Address]] = []
        for origin, asked in list(self._asked.items()):
            held = self.replica.get(origin)
            wanted = _asked_key(asked.want)
            done = held is not None and (
                held.content >= wanted if not held.reaped else held.content > wanted
            )
            if done or asked.tries >= RETRIES:
                del self._asked[origin]
                continue
            if now - asked.at < after:
                continue
            base, parts = self.assemblies.resume(origin, *wanted)
            asked.want = Want(self.name, origin, *wanted, *_have(held), base, tuple(parts))
            asked.at, asked.tries, asked.sent = now, asked.tries + 1, None
            out.append((asked.want, asked.address))
        return out

    def receive(  # noqa: PLR0911 -- one return per outcome
        self, part: Part, now: float, size: int
    ) -> Entry | Want | Refused | None:
        """Keep ``part`` (``size`` bytes as it arrived): the entry it completes,
        the want for the next parts, a refusal, or nothing to do."""
        held = self.replica.get(part.origin)
        key = (part.generation, part.version, part.heartbeat, False)
        if held is not None and (
            key <= held.key or (not held.reaped and (part.generation, part.version) <= held.content)
        ):
            return None  # we hold this version or a newer one
        if part.base >= 0 and (
            held is None or held.reaped or held.content != (part.generation, part.base)
        ):
            return None  # a delta from a version we no longer (or never) held: no use to us
        what = f"{part.origin} version {part.version}"
        try:
            received, nxt = self.assemblies.add(part, now, size)
        except TooLarge as exc:
            return Refused("transfer too large", f"{what}: {exc}")
        except ValueError as exc:
            return Refused("inconsistent transfer", f"{what}: {exc}")
        asked = self._asked.get(part.origin)
        if asked is not None:
            asked.at = now  # progress: the holder answers
            if asked.sent is not None and _asked_key(asked.want) == (part.generation, part.version):
                self.round_trip.sample(now - asked.sent)
                asked.sent = None
        if received is not None:
            self._asked.pop(part.origin, None)
            entry = finish(received, part.base, held)
            return Refused("inconsistent transfer", what) if entry is None else entry
        if not nxt:
            return None
        return Want(
            self.name,
            part.origin,
            part.generation,
            part.version,
            *_have(held),
            part.base,
            tuple(nxt),
        )


def _asked_key(want: Want) -> tuple[int, int]:
    return (want.generation, want.version)


def _have(held: Entry | None) -> tuple[int, int]:
    """What a want says we hold: ``(-1, -1)`` for nothing (or a tombstone)."""
    return (-1, -1) if held is None or held.reaped else held.content
