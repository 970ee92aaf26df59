"""An in-memory network for tests and simulations: :class:`MemoryNetwork`.

It can lose, duplicate, delay (and so reorder) datagrams and cut links, all
decided by a seeded random generator, so a simulation under trio's
``MockClock`` is deterministic.
"""

from __future__ import annotations

import errno
import math
import random
from collections.abc import Callable

import attrs
import trio

from .transport import Address, Transport
from .wire import MAX_DATAGRAM

__all__ = ["MemoryNetwork"]


@attrs.define
class _MemoryTransport:
    network: MemoryNetwork
    address: Address
    inbox_send: trio.MemorySendChannel[tuple[bytes, Address]]
    inbox_receive: trio.MemoryReceiveChannel[tuple[bytes, Address]]

    async def send(self, data: bytes, address: Address) -> bool:
        self.network.route(data, self.address, address)
        await trio.lowlevel.checkpoint()
        return True

    async def receive(self) -> tuple[bytes, Address]:
        return await self.inbox_receive.receive()

    def close(self) -> None:
        self.network.unbind(self.address)


@attrs.define
class MemoryNetwork:
    """An in-memory network with configurable faults, deterministic given ``seed``.

    ``loss`` and ``duplicate`` are probabilities per datagram; each datagram is
    delayed by a uniform time in ``delay`` seconds (so unequal delays reorder).
    Delays need the network's own task: ``await nursery.start(network.run)``.
    """

    seed: int = 0
    loss: float = 0.0
    duplicate: float = 0.0
    delay: tuple[float, float] = (0.0, 0.0)
    #: Datagrams an inbox holds before it drops, as a kernel buffer does.
    inbox_size: int = 4096
    rng: random.Random = attrs.field(init=False)
    sent: int = attrs.field(init=False, default=0)
    delivered: int = attrs.field(init=False, default=0)
    bytes_sent: int = attrs.field(init=False, default=0)
    _inboxes: dict[Address, _MemoryTransport] = attrs.field(init=False, factory=dict)
    _cut: Callable[[Address, Address], bool] | None = attrs.field(init=False, default=None)
    _nursery: trio.Nursery | None = attrs.field(init=False, default=None)

    def __attrs_post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Deliver delayed datagrams until cancelled."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            await trio.sleep(math.inf)

    async def bind(self, address: Address) -> Transport:
        if address in self._inboxes:
            raise OSError(errno.EADDRINUSE, f"address already in use: {address}")
        send, receive = trio.open_memory_channel[tuple[bytes, Address]](self.inbox_size)
        transport = _MemoryTransport(self, address, send, receive)
        self._inboxes[address] = transport
        return transport

    def unbind(self, address: Address) -> None:
        self._inboxes.pop(address, None)

    def partition(self, cut: Callable[[Address, Address], bool] | None) -> None:
        """Drop every datagram from ``a`` to ``b`` for which ``cut(a, b)``; ``None`` heals."""
        self._cut = cut

    def route(self, data: bytes, source: Address, destination: Address) -> None:
        if len(data) > MAX_DATAGRAM:
            raise ValueError("datagram too large")  # a real socket refuses it too
        self.sent += 1
        self.bytes_sent += len(data)
        if self._cut is not None and self._cut(source, destination):
            return
        if self.loss and self.rng.random() < self.loss:
            return
        copies = 2 if self.duplicate and self.rng.random() < self.duplicate else 1
        for _ in range(copies):
            low, high = self.delay
            if high > 0:
                if self._nursery is None:
                    raise RuntimeError("a delaying MemoryNetwork needs its run() task")
                self._nursery.start_soon(
                    self._later, self.rng.uniform(low, high), data, source, destination
                )
            else:
                self._deliver(data, source, destination)

    async def _later(
        self, delay: float, data: bytes, source: Address, destination: Address
    ) -> None:
        await trio.sleep(delay)
        self._deliver(data, source, destination)

    def _deliver(self, data: bytes, source: Address, destination: Address) -> None:
        inbox = self._inboxes.get(destination)
        if inbox is None:
            return
        try:
            inbox.inbox_send.send_nowait((data, source))
        except trio.WouldBlock:
            return  # a full buffer drops, as the kernel's does
        self.delivered += 1
