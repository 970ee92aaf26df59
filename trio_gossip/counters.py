"""A peer's counters: datagrams in and out, what was refused and why, what changed.

The rejected datagrams are also logged, at most one line per reason every
:data:`REJECT_LOG_EVERY` seconds: a flood of garbage is counted, not printed.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Mapping
from typing import Final

import attrs

from .transport import Address

__all__ = ["COUNTED", "REJECT_LOG_EVERY", "Counters", "Statistics"]

log = logging.getLogger("trio_gossip")

#: Seconds between two log lines about rejected datagrams of one reason.
REJECT_LOG_EVERY: Final = 10.0


@attrs.frozen
class Statistics:
    """A snapshot of a peer's counters."""

    datagrams_in: int
    datagrams_out: int
    bytes_in: int
    bytes_out: int
    rejected: Mapping[str, int]
    accepted: int
    reaped: int
    refuted: int
    scans: int
    scan_failures: int


#: What :attr:`Counters.counts` counts: a new counter is named here.
COUNTED: Final = (
    "datagrams_in",
    "datagrams_out",
    "bytes_in",
    "bytes_out",
    "accepted",
    "reaped",
    "refuted",
    "scans",
    "scan_failures",
)


def _zeros() -> dict[str, int]:
    return dict.fromkeys(COUNTED, 0)


@attrs.define
class Counters:
    """The counters of peer ``name``."""

    name: str
    #: A plain dict, not a Counter: two of these go up for every datagram,
    #: and ``+=`` on an item of a dict subclass takes the interpreter's
    #: generic path, about four times slower than on a dict.
    counts: dict[str, int] = attrs.field(factory=_zeros)
    rejected: Counter[str] = attrs.field(factory=Counter)
    _logged: dict[str, tuple[float, int]] = attrs.field(factory=dict)

    def reject(self, reason: str, source: Address, detail: str, now: float) -> None:
        """Count a datagram refused for ``reason``, and say so now and then."""
        self.rejected[reason] += 1
        last, count = self._logged.get(reason, (-math.inf, 0))
        if now - last >= REJECT_LOG_EVERY:
            log.warning(
                "%s: rejected %d datagram(s) (%s), last from %s:%d: %s",
                self.name,
                self.rejected[reason] - count,
                reason,
                source[0],
                source[1],
                detail[:100],
            )
            self._logged[reason] = (now, self.rejected[reason])

    def statistics(self) -> Statistics:
        c = self.counts
        return Statistics(
            c["datagrams_in"],
            c["datagrams_out"],
            c["bytes_in"],
            c["bytes_out"],
            dict(self.rejected),
            c["accepted"],
            c["reaped"],
            c["refuted"],
            c["scans"],
            c["scan_failures"],
        )
