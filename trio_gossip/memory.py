"""An in-memory network for tests and simulations (:class:`MemoryNetwork`),
and the generator that makes a simulated peer's draws repeat (:class:`TaskRandom`).

The network can lose, duplicate, delay (and so reorder) datagrams and cut
links. What happens to a datagram is decided by the link's own generator: a
function of the seed, the link (source, destination) and how many datagrams
the link carried before it. So the fate of a link's datagrams does not
depend on the order in which trio's scheduler ran the peers that sent on
other links. With a :class:`TaskRandom` for each peer, a simulation under
trio's ``MockClock`` repeats exactly without seeding trio's scheduler
(``test_a_simulation_does_not_depend_on_the_scheduler`` checks it).
"""

from __future__ import annotations

import errno
import hashlib
import math
import random
from collections.abc import Callable

import attrs
import trio

from .limits import MAX_DATAGRAM
from .transport import Address, Transport

__all__ = ["MemoryNetwork", "TaskRandom"]


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
    Every draw comes from :meth:`chances`, one generator per link.
    """

    seed: int = 0
    loss: float = 0.0
    duplicate: float = 0.0
    delay: tuple[float, float] = (0.0, 0.0)
    #: Datagrams an inbox holds before it drops, as a kernel buffer does.
    inbox_size: int = 4096
    sent: int = attrs.field(init=False, default=0)
    delivered: int = attrs.field(init=False, default=0)
    bytes_sent: int = attrs.field(init=False, default=0)
    _inboxes: dict[Address, _MemoryTransport] = attrs.field(init=False, factory=dict)
    _cut: Callable[[Address, Address], bool] | None = attrs.field(init=False, default=None)
    _nursery: trio.Nursery | None = attrs.field(init=False, default=None)
    #: Datagrams each link (source, destination) carried, counted when there
    #: are faults to draw: where its generator is.
    _carried: dict[tuple[Address, Address], int] = attrs.field(init=False, factory=dict)

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
        low, high = self.delay
        if not (self.loss or self.duplicate or high > 0):
            self._deliver(data, source, destination)
            return
        lose, twice, *delays = self.chances(source, destination)
        if lose < self.loss:
            return
        copies = 2 if twice < self.duplicate else 1
        for chance in delays[:copies]:
            if high > 0:
                if self._nursery is None:
                    raise RuntimeError("a delaying MemoryNetwork needs its run() task")
                delay = low + (high - low) * chance
                self._nursery.start_soon(self._later, delay, data, source, destination)
            else:
                self._deliver(data, source, destination)

    def chances(self, source: Address, destination: Address) -> tuple[float, float, float, float]:
        """Four numbers in [0, 1) for the next datagram from ``source`` to
        ``destination``: whether it is lost, whether it is duplicated, and the
        delay of each copy.

        The link's generator: a hash of the seed, the link and the datagram's
        number on the link. A link needs no state but that number, where a
        ``random.Random`` would hold 2.5 KB, and a large simulation has as
        many links as pairs of peers that ever talked.
        """
        link = (source, destination)
        number = self._carried[link] = self._carried.get(link, 0) + 1
        text = f"{self.seed}/{source[0]}/{source[1]}/{destination[0]}/{destination[1]}/{number}"
        digest = hashlib.blake2b(text.encode(), digest_size=32).digest()
        # 53 bits of each 64: the floats in [0, 1) that random.random() gives.
        draws = [int.from_bytes(digest[i : i + 8]) >> 11 for i in range(0, 32, 8)]
        lose, twice, first, second = (draw * 2.0**-53 for draw in draws)
        return lose, twice, first, second

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


class TaskRandom(random.Random):
    """A peer's generator for simulations: each trio task draws from its own
    stream, seeded from ``seed`` and the task's name.

    A peer's tasks share its generator, and tasks that become ready together
    (a peer's five loops when it starts) run in an order trio's scheduler
    picks at random. With one stream, that order would decide which loop
    draws which number (the push loop's first deadline or the relayer's);
    with a stream per task, every task draws the same numbers whatever the
    order. Give each task of one generator a distinct name.
    """

    def __init__(self, seed: str) -> None:
        self._seed = seed
        self._streams: dict[str, random.Random] = {}
        super().__init__(seed)

    def _stream(self) -> random.Random:
        try:
            name = trio.lowlevel.current_task().name
        except RuntimeError:  # outside trio: one stream for all such calls
            name = ""
        stream = self._streams.get(name)
        if stream is None:
            stream = self._streams[name] = random.Random(f"{self._seed}/{name}")
        return stream

    def random(self) -> float:
        """The next float in [0, 1) of the calling task's stream."""
        return self._stream().random()

    def getrandbits(self, k: int, /) -> int:
        """The next ``k`` random bits of the calling task's stream."""
        return self._stream().getrandbits(k)
