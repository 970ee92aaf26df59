"""A faithful model of the original design's gossip, for the same simulator.

The seed report's peer, reduced to what decides how fast news spreads: every
round the pusher sends the peer's own metadata to one random other peer, and
the relayer sends ONE random record it holds about another origin to one
random peer; the receiver keeps a record if its version is newer. Versions
start at -1 and count up. JSON instead of pickle (the bytes do not matter
here), over the same :class:`MemoryNetwork` and ``MockClock`` as the real
peers, so both are measured in one simulator.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Mapping
from typing import NoReturn

import trio

from trio_gossip.memory import MemoryNetwork
from trio_gossip.transport import Address

__all__ = ["OriginalPeer"]


class OriginalPeer:
    """One peer of the original design: own metadata pushed, one record relayed a round."""

    def __init__(
        self,
        name: str,
        addresses: Mapping[str, Address],
        network: MemoryNetwork,
        rng: random.Random,
        *,
        interval: float = 1.0,
        on_store: Callable[[str, int], None] | None = None,
        held_by_all: Callable[[str, int], bool] | None = None,
    ) -> None:
        self.name = name
        self.addresses = addresses
        self.network = network
        self.rng = rng
        self.interval = interval
        self.others = [n for n in addresses if n != name]
        #: Called with (origin, version) whenever the receiver keeps a record.
        self.on_store = on_store
        #: True for a record (origin, version) every peer already holds: every
        #: receiver would ignore it, so it is not sent (the choices are still
        #: drawn). This saves the simulator most of its work at N = 1,000 and
        #: changes nothing a receiver does.
        self.held_by_all = held_by_all
        #: origin -> (version, file names)
        self.store: dict[str, tuple[int, list[str]]] = {name: (-1, [])}
        self._relayable: list[str] = []  # the store's other origins, for choosing one

    def hold(self, origin: str, version: int, files: list[str]) -> None:
        """Keep ``origin``'s record (as the receiver does with a newer one)."""
        if origin not in self.store and origin != self.name:
            self._relayable.append(origin)
        self.store[origin] = (version, files)
        if self.on_store is not None:
            self.on_store(origin, version)

    def publish(self, files: list[str]) -> None:
        version, _ = self.store[self.name]
        self.store[self.name] = (version + 1, files)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        transport = await self.network.bind(self.addresses[self.name])

        async def receive() -> NoReturn:
            while True:
                data, _ = await transport.receive()
                origin, version, files = json.loads(data)
                held = self.store.get(origin)
                if held is None or version > held[0]:
                    self.hold(origin, version, files)

        async def every_round(send_what: str) -> NoReturn:
            deadline = trio.current_time() + self.rng.uniform(0, self.interval)
            while True:
                await trio.sleep_until(deadline)
                deadline += self.interval
                if send_what == "own":
                    origin = self.name
                else:
                    if not self._relayable:
                        continue
                    origin = self.rng.choice(self._relayable)
                version, files = self.store[origin]
                target = self.addresses[self.rng.choice(self.others)]
                if self.held_by_all is not None and self.held_by_all(origin, version):
                    continue
                await transport.send(json.dumps([origin, version, files]).encode(), target)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(receive)
            # Named apart: a TaskRandom gives each task name its own stream.
            nursery.start_soon(every_round, "own", name=f"{self.name} own")
            nursery.start_soon(every_round, "relay", name=f"{self.name} relay")
            task_status.started()
