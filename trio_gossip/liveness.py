"""Who is alive: suspecting the origins whose heartbeat went quiet, and
noticing when no other peer is heard at all. Pure: the time is passed in.

An origin whose heartbeat has not gone up for :attr:`Liveness.suspect_after`
seconds is *suspect* (shown so, and an event), long before it is reaped; any
news of it makes it alive again (see :meth:`.node.Node._take`).
"""

from __future__ import annotations

import logging
import math

import attrs

from .config import Config
from .digests import CYCLES, refresh_rounds
from .replica import Replica

__all__ = ["Liveness", "suspect_after"]

log = logging.getLogger("trio_gossip")


def suspect_after(config: Config, stale: int) -> float:
    """Seconds without news of an origin's heartbeat after which it is suspect.

    News reaches every peer in about log2 N push rounds. A heartbeat is no
    news: it comes round when a push asks about the origin among its
    ``stale`` stalest lines, every :func:`.digests.refresh_rounds` rounds, and
    the answer holds it newer. Suspect after the longer of three times
    ``log2 N + 2`` rounds and :data:`.digests.CYCLES` refresh periods
    (clearly longer than a live origin's silence), and at the latest at
    half of ``reap``, which :func:`.digests.stale_lines` keeps room for.
    """
    intervals = config.intervals
    peers = len(config.peers)
    rounds = max(3 * (math.ceil(math.log2(peers)) + 2), CYCLES * refresh_rounds(peers, stale))
    return min(rounds * intervals.push, intervals.reap / 2)


@attrs.define
class Liveness:
    """The liveness books of peer ``name`` over its ``replica``."""

    name: str
    replica: Replica
    suspect_after: float
    #: When a valid datagram from another peer last arrived, and whether we
    #: said that none came for a while.
    _last_heard: float = -math.inf
    _isolated: bool = False

    def started(self, now: float) -> None:
        """We start: nobody heard yet, but nothing missed either."""
        self._last_heard = now

    def heard_from_peer(self, now: float) -> None:
        """A valid datagram from another peer arrived."""
        if self._isolated:
            log.info("%s: hearing from other peers again", self.name)
            self._isolated = False
        self._last_heard = now

    def check(self, now: float) -> tuple[list[str], float]:
        """The alive origins to suspect now, and when to look again (``inf``:
        nothing to wait for). Says so once when no other peer was heard for
        :attr:`suspect_after`."""
        replica, after = self.replica, self.suspect_after
        due = math.inf
        suspects = []
        for origin, entry in replica.items():
            if origin == self.name or entry.reaped or replica.status.get(origin) != "alive":
                continue
            if replica.heard[origin] + after <= now:
                suspects.append(origin)
            else:
                due = min(due, replica.heard[origin] + after)
        if not self._isolated and self._last_heard + after <= now:
            self._isolated = True
            log.warning(
                "%s: heard from no other peer for %.1f s (is the network or the config right?)",
                self.name,
                now - self._last_heard,
            )
        elif not self._isolated:
            due = min(due, self._last_heard + after)
        return suspects, due
