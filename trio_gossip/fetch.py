"""Wants and parts: serving an origin's metadata, and fetching it in parts.

A digest line newer than what we hold becomes a :class:`.messages.Want`; a
holder answers a want with parts of a transfer (a delta when the asker's
version is within reach); the receiver keeps parts until the transfer is
whole (:class:`.transfer.Assemblies`), asking for the missing ones a window at
a time. Pure: the time is passed in.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from .messages import Part, Want
from .replica import Replica
from .state import Entry, Line
from .transfer import Assemblies, Prepared, TooLarge, finish

__all__ = ["Fetcher", "Refused"]


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

    def want(self, line: Line) -> Want | None:
        """A want for what ``line`` says is newer than what we hold, if anything."""
        held = self.replica.get(line.origin)
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
        if received is not None:
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


def _have(held: Entry | None) -> tuple[int, int]:
    """What a want says we hold: ``(-1, -1)`` for nothing (or a tombstone)."""
    return (-1, -1) if held is None or held.reaped else held.content
