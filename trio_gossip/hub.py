"""Handing a peer's events to whoever listens, without ever waiting for them.

Each subscriber has a bounded buffer. A subscriber that falls behind loses
events -- counted in :attr:`Subscription.dropped` -- and never slows the peer:
publishing is :meth:`trio.MemorySendChannel.send_nowait`, lossy, not blocking
(as trio's own DTLS code treats a full queue).
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from types import TracebackType

import trio

from .events import Event

__all__ = ["EventHub", "Subscription"]

#: Events a subscriber may fall behind by before it loses some.
BUFFER = 256


class Subscription:
    """The events of one subscriber: ``async with hub.subscribe() as events:``
    then ``async for event in events``. Leaving the block unsubscribes."""

    def __init__(self, hub: EventHub, buffer: int) -> None:
        self._hub = hub
        self._send, self._receive = trio.open_memory_channel[Event](buffer)
        #: Events lost because this subscriber fell behind.
        self.dropped = 0

    def _offer(self, event: Event) -> None:
        try:
            self._send.send_nowait(event)
        except trio.WouldBlock:
            self.dropped += 1
        except trio.BrokenResourceError:  # closed by its reader: nothing to do
            pass

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop receiving; an ``async for`` over it ends."""
        self._hub._subscribers.discard(self)
        self._send.close()

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._receive.__aiter__()

    async def receive(self) -> Event:
        """The next event (waits for it)."""
        return await self._receive.receive()

    def receive_nowait(self) -> Event:
        """The next event if one is waiting; :class:`trio.WouldBlock` if not."""
        return self._receive.receive_nowait()


class EventHub:
    """The subscribers of one peer's events."""

    def __init__(self) -> None:
        self._subscribers: set[Subscription] = set()

    def subscribe(self, buffer: int = BUFFER) -> Subscription:
        """A new subscriber, with room for ``buffer`` events it has not read."""
        if buffer < 0 or buffer == math.inf:
            raise ValueError("a subscriber's buffer is a bounded number of events")
        subscription = Subscription(self, buffer)
        self._subscribers.add(subscription)
        return subscription

    def publish(self, event: Event) -> None:
        """Offer ``event`` to every subscriber; never blocks."""
        for subscription in list(self._subscribers):
            subscription._offer(event)

    @property
    def dropped(self) -> int:
        """Events lost by the current subscribers."""
        return sum(s.dropped for s in self._subscribers)

    def close(self) -> None:
        """End every subscription (the peer stopped)."""
        for subscription in list(self._subscribers):
            subscription.close()
