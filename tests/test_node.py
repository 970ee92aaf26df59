"""The pure :class:`Node` driven by hand: transfers under way, their budgets, ``info?`` floods.

No trio and no network: a test hands one node's output to another's input,
one datagram at a time or through :func:`run` until they are quiet.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping

from sim import GENERATION, INTERVALS, make_config

from trio_gossip.codec import encode
from trio_gossip.limits import MIN_DATAGRAM
from trio_gossip.messages import Digest, Message
from trio_gossip.node import Node, Send
from trio_gossip.state import Line
from trio_gossip.transport import Address

SECOND = 10**9
OUTSIDER: Address = ("10.9.9.9", 7000)
#: A config whose datagrams are the smallest allowed: a few dozen files take several parts.
SMALL = make_config("ABC", INTERVALS, MIN_DATAGRAM)


def long_names(count: int, tag: str = "") -> dict[str, tuple[int, int]]:
    """``count`` files with names of about 70 bytes: about ten to a part of 1,200 bytes."""
    return {
        f"a-rather-long-directory-name/with-another-level/{tag}{i:05d}.dat": (i, 7)
        for i in range(count)
    }


def make_node(
    name: str,
    files: Mapping[str, tuple[int, int]],
    *,
    wall: int = GENERATION,
    now: float = 0.0,
) -> Node:
    """Peer ``name`` of :data:`SMALL`, started at ``now`` with ``files`` and its
    wall clock standing at ``wall``."""
    node = Node(name, SMALL, rng=random.Random(name), wall_clock=lambda: wall)
    node.start(dict(files), now)
    return node


def tell(receiver: Node, sender: Node, message: Message, now: float) -> list[Send]:
    """``receiver`` handles ``message`` from ``sender``'s address."""
    return receiver.receive_untrusted(encode(message), sender.address, now)


def run(nodes: Iterable[Node], source: Node, sends: list[Send], now: float) -> None:
    """Deliver ``sends`` (from ``source``) and every answer, until none is left."""
    by_address = {node.address: node for node in nodes}
    queue = [(source.address, send) for send in sends]
    while queue:
        origin, send = queue.pop(0)
        target = by_address.get(send.address)
        if target is None:
            continue
        answers = target.receive_untrusted(send.data, origin, now)
        queue.extend((target.address, answer) for answer in answers)


def line(node: Node) -> Digest:
    """A digest from ``node`` with its own line only."""
    return Digest(node.name, False, (Line.of(node.name, node.own),))


def holds(node: Node, origin: Node) -> bool:
    held = node.replica.get(origin.name)
    return (
        held is not None
        and not held.reaped
        and (held.content, held.files) == (origin.own.content, origin.own.files)
    )


# -- a transfer nobody can finish gives way --------------------------------------


def test_a_stalled_transfer_gives_way_to_an_older_one_asked_for() -> None:
    files = long_names(60)
    a, b = make_node("A", files), make_node("B", {})
    # A's list is on its way to B when A stops; one part of it arrived.
    want = tell(b, a, line(a), 0.0)
    parts = a.receive_untrusted(want[0].data, b.address, 0.0)
    assert len(parts) > 3
    b.receive_untrusted(parts[0].data, a.address, 0.0)
    old = a.own.content

    # A starts again with its clock set back: a lower generation, which
    # nobody else ever held, so nothing makes A refute it.
    a = make_node("A", files, wall=GENERATION - SECOND, now=0.0)
    assert a.own.content < old
    # While the transfer under way is fresh, an older one does not disturb it
    # (a lagging peer's digest must not restart a transfer going on) ...
    run([a, b], b, tell(b, a, line(a), 0.5), 0.5)
    assert "A" not in b.replica
    assert len(b._assemblies) == 1
    # ... but one silent for a push round gives way: B need not wait for it
    # to expire (after ``reap`` seconds) to hold A again.
    now = 0.0 + INTERVALS.push
    run([a, b], b, tell(b, a, line(a), now), now)
    assert holds(b, a)
    assert len(b._assemblies) == 0
