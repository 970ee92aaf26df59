"""Fresh news waiting to be relayed: a queue of rumors, each sent a bounded number of times.

memberlist's ``TransmitLimitedQueue`` in small: a rumor is an origin whose
entry changed; it is relayed at most ``limit`` times (enough for an epidemic
to reach everyone: about log2 N), the least-relayed -- the freshest -- first.
A newer rumor about the same origin replaces the older one and starts afresh.
Pure: no I/O, no clock.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator

import attrs

__all__ = ["RumorQueue"]


@attrs.define
class RumorQueue:
    """Origins with news, and how many relays each has left."""

    limit: int
    _left: dict[str, int] = attrs.field(factory=dict)

    def add(self, origin: str) -> None:
        """``origin`` has news: relay it ``limit`` more times."""
        self._left[origin] = self.limit

    def discard(self, origin: str) -> None:
        self._left.pop(origin, None)

    def freshest(self, most: int) -> Iterator[str]:
        """Up to ``most`` origins, the most relays left first (ties: in the order
        they were first added). Taking does not count as a relay: see :meth:`relayed`."""
        return iter(heapq.nlargest(most, self._left, key=self._left.__getitem__))

    def relayed(self, origin: str) -> None:
        """One relay of ``origin``'s news was sent; forget it once all are."""
        left = self._left.get(origin)
        if left is None:
            return
        if left <= 1:
            del self._left[origin]
        else:
            self._left[origin] = left - 1

    def __len__(self) -> int:
        return len(self._left)

    def __contains__(self, origin: object) -> bool:
        return origin in self._left
