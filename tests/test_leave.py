"""Leaving, suspecting and coming back, in virtual time over the in-memory network.

Every test runs under ``MockClock(autojump_threshold=0)`` with seeded
generators (see ``tests/sim.py``). Where the design makes a time exact (the
first peers told of a leave hear it as the peer stops; an origin is suspect
exactly ``suspect_after`` seconds after the last news of it) the test asserts
that time; elsewhere a bound in push rounds.
"""

from __future__ import annotations

import random
from collections import deque

import pytest
from sim import GENERATION, make_config

from trio_gossip.events import Kind
from trio_gossip.node import Node, Send

ROUND = 1.0  # the push and relay interval open_sim uses by default
REAP = 30.0
TWELVE = "ABCDEFGHIJKL"


# -- the event stream, node by node ------------------------------------------------


class Cluster:
    """Nodes without a shell, driven by hand: each datagram delivered at once."""

    def __init__(self, names: str, seed: int) -> None:
        self.config = make_config(names)
        self.nodes = {
            n: Node(n, self.config, rng=random.Random(f"{seed}/{n}"), wall_clock=lambda: GENERATION)
            for n in names
        }
        self.now = 0.0
        for i, node in enumerate(self.nodes.values()):
            node.start({f"{node.name}.txt": (i, 1)}, self.now)

    def deliver(self, sender: str, sends: list[Send]) -> None:
        """Deliver ``sends`` and every answer, until there are none."""
        queue = deque((sender, send) for send in sends)
        by_address = {self.config.address(n): n for n in self.config.peers}
        while queue:
            source, send = queue.popleft()
            to = self.nodes.get(by_address[send.address])
            if to is not None:
                address = self.config.address(source)
                queue.extend(
                    (to.name, s) for s in to.receive_untrusted(send.data, address, self.now)
                )

    def round(self) -> None:
        """One push round: everyone pushes, then relays, then reaps."""
        self.now += ROUND
        for tick in (Node.push, Node.relay):
            for name, node in list(self.nodes.items()):
                self.deliver(name, tick(node, self.now))
        for node in self.nodes.values():
            node.reap(self.now)

    def events(self) -> dict[str, list[tuple[Kind, str]]]:
        return {
            n: [(e.kind, e.origin) for e in node.take_events()] for n, node in self.nodes.items()
        }


@pytest.mark.parametrize("seed", [131, 132, 133])
def test_a_leave_is_one_left_event_at_every_peer(seed: int) -> None:
    cluster = Cluster(TWELVE, seed)
    for _ in range(10):
        cluster.round()
    assert all(len(node.view()) == len(TWELVE) for node in cluster.nodes.values())
    cluster.events()
    leaving = cluster.nodes.pop("B")
    cluster.deliver("B", leaving.leave(cluster.now))
    for _ in range(int(2 * REAP / ROUND)):
        cluster.round()
    assert leaving.take_events() == []  # its own leave is no news to itself
    # Exactly one event about B at every other peer, and nothing else happened.
    assert cluster.events() == {n: [("left", "B")] for n in cluster.nodes}
