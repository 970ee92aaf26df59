"""Real UDP: :class:`UdpNetwork`, one trio socket per bound address.

Reading and writing avoid a pass through trio's scheduler per datagram where
they can (``bench/receiver.py`` measures each way).
"""

from __future__ import annotations

import errno
import socket
from collections import deque

import attrs
import trio

from .limits import MAX_DATAGRAM
from .transport import Address, Transport

__all__ = ["UdpNetwork"]


#: ICMP errors for earlier sends that some systems report on a later receive.
_ICMP_ERRORS = (errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH)


@attrs.define
class _UdpTransport:
    """A bound UDP socket.

    ``raw`` is the standard socket that ``sock`` wraps (one object, one file
    descriptor): draining reads it directly, and direct sends write to it,
    without blocking.
    """

    sock: trio.socket.SocketType
    raw: socket.socket
    address: Address
    drain: bool
    direct_send: bool
    #: Datagrams read from the socket by the last drain, not yet returned.
    _pending: deque[tuple[bytes, Address]] = attrs.field(init=False, factory=deque)
    _sends: int = attrs.field(init=False, default=0)

    async def send(self, data: bytes, address: Address) -> bool:
        if not self.direct_send or not _numeric(self.raw.family, address[0]):
            return await self._send_trio(data, address)  # trio resolves a host name
        await trio.lowlevel.checkpoint_if_cancelled()
        try:
            self.raw.sendto(data, address)
        except BlockingIOError:  # the send buffer is full: trio waits until there is room
            return await self._send_trio(data, address)
        except OSError:  # unreachable, no buffer space: UDP is lossy anyway
            sent = False
        else:
            sent = True
        # trio's sendto resolves the address and passes through the scheduler on
        # every call, several times the cost of the system call itself: yield
        # once every few sends instead, so a task that sends many still lets
        # the others run.
        self._sends += 1
        if self._sends % SEND_BATCH == 0:
            await trio.lowlevel.cancel_shielded_checkpoint()
        return sent

    async def _send_trio(self, data: bytes, address: Address) -> bool:
        try:
            await self.sock.sendto(data, address)
        except OSError:  # unreachable, no buffer space: UDP is lossy anyway
            return False
        return True

    async def receive(self) -> tuple[bytes, Address]:
        if not self.drain:
            return await self._receive_one()
        if not self._pending:
            await self._refill()
        return self._pending.popleft()

    async def _receive_one(self) -> tuple[bytes, Address]:
        """One ``await recvfrom`` per datagram: a pass through trio's scheduler each."""
        while True:
            try:
                data, source = await self.sock.recvfrom(MAX_DATAGRAM + 1)
            except OSError as exc:
                if exc.errno in _ICMP_ERRORS:
                    continue
                raise
            return data, (source[0], source[1])

    async def _refill(self) -> None:
        # A pass through trio's scheduler costs several times what a datagram
        # does: wait for readability only when the socket is empty, and yield
        # once per batch (not per datagram), so that the other tasks keep their
        # pace and cancellation gets in even while datagrams keep coming.
        await trio.lowlevel.checkpoint()
        while not self._read_batch():
            await trio.lowlevel.wait_readable(self.raw)

    def _read_batch(self) -> bool:
        """Read what the socket holds, up to one batch, without blocking."""
        size = 0
        for _ in range(DRAIN_BATCH):
            try:
                length, source = self.raw.recvfrom_into(_BUFFER)
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno in _ICMP_ERRORS:
                    continue
                raise
            data = _VIEW[:length].tobytes()
            self._pending.append((data, (source[0], source[1])))
            size += len(data)
            if size >= DRAIN_BYTES:
                break  # large datagrams cost more to decode: a smaller batch
        return bool(self._pending)

    def close(self) -> None:
        self.sock.close()


#: Where every draining socket of the process reads a datagram, which is then
#: copied out at its size. Reading with ``recvfrom(MAX_DATAGRAM + 1)`` instead
#: allocates 64 KiB per datagram and shrinks it in place, which leaves the
#: heap in holes that long-lived objects then keep apart: 8,000 small
#: datagrams kept of 80,000 read held 20 MiB that way, against 2.3 MiB
#: (a 0.3 us copy per datagram). One buffer is enough: a batch is read and
#: copied without a checkpoint in between, on trio's one thread.
_BUFFER = bytearray(MAX_DATAGRAM + 1)
_VIEW = memoryview(_BUFFER)

#: At most this many datagrams, or about this many bytes, between two yields
#: of a draining receiver; and this many direct sends.
DRAIN_BATCH = 64
DRAIN_BYTES = 64 << 10
SEND_BATCH = 16


def _numeric(family: int, host: str) -> bool:
    """Whether ``host`` is an address of ``family`` already (no lookup to do)."""
    try:
        socket.inet_pton(family, host)
    except (OSError, TypeError):
        return False
    return True


class UdpNetwork:
    """The real network: one trio UDP socket per bound address.

    ``drain`` (the default) receives by waiting until the socket is readable
    and then reading all it holds without blocking, a batch at a time; without
    it, each datagram is one ``await sock.recvfrom()``, which is simpler and
    several times slower under load. Likewise ``direct_send`` writes to the
    socket without trio's per-call address resolution and scheduling pass
    (``bench/receiver.py`` measures each way).
    """

    #: Asked of the kernel for each socket; it may grant less.
    receive_buffer = 4 << 20
    drain = True
    direct_send = True

    def __init__(self, *, drain: bool | None = None, direct_send: bool | None = None) -> None:
        if drain is not None:
            self.drain = drain
        if direct_send is not None:
            self.direct_send = direct_send

    async def bind(self, address: Address) -> Transport:
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        raw = socket.socket(family, socket.SOCK_DGRAM)
        sock = trio.socket.from_stdlib_socket(raw)  # wraps raw, made non-blocking
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.receive_buffer)
            await sock.bind(address)
        except OSError:
            sock.close()
            raise
        return _UdpTransport(sock, raw, address, self.drain, self.direct_send)
