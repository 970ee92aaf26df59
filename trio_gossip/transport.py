"""Moving datagrams: the two small interfaces every network sits behind.

:class:`Network` binds an address and gives a :class:`Transport`, which
sends and receives datagrams. Two networks implement them: real UDP
(:mod:`.udp`) and an in-memory one for tests and simulations (:mod:`.memory`).
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["Address", "Network", "Transport"]

Address = tuple[str, int]


class Transport(Protocol):
    """One bound address that sends and receives datagrams."""

    @property
    def address(self) -> Address: ...

    async def send(self, data: bytes, address: Address) -> bool:
        """Send one datagram; ``False`` if the system refused it (it is then lost)."""
        ...

    async def receive(self) -> tuple[bytes, Address]: ...

    def close(self) -> None: ...


class Network(Protocol):
    """Something to bind addresses on."""

    async def bind(self, address: Address) -> Transport: ...
