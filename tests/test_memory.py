"""The in-memory network's faults and the simulations' generators: what they draw
depends on the seed, the link or the task, never on the order things happen in."""

from __future__ import annotations

import trio
import trio.testing

from trio_gossip.memory import MemoryNetwork, TaskRandom
from trio_gossip.transport import Address

A: Address = ("10.0.0.1", 7000)
B: Address = ("10.0.0.2", 7000)
C: Address = ("10.0.0.3", 7000)


def test_each_link_draws_from_its_own_generator() -> None:
    alone = MemoryNetwork(seed=5)
    first = [alone.chances(A, B) for _ in range(20)]
    busy = MemoryNetwork(seed=5)
    mixed = []
    for i in range(20):
        for _ in range(i % 3):  # other links' traffic in between
            busy.chances(B, A)
            busy.chances(A, C)
        mixed.append(busy.chances(A, B))
    assert mixed == first
    assert len(set(first)) == 20
    assert all(0 <= chance < 1 for chances in first for chance in chances)
    # The other direction, another link and another seed draw other numbers.
    assert MemoryNetwork(seed=5).chances(B, A) != first[0]
    assert MemoryNetwork(seed=5).chances(A, C) != first[0]
    assert MemoryNetwork(seed=6).chances(A, B) != first[0]


def arrivals(interleave: bool) -> list[bytes]:
    """What reaches B from A of 200 datagrams over a link that loses half,
    with or without traffic on other links in between."""

    async def main() -> list[bytes]:
        network = MemoryNetwork(seed=9, loss=0.5, duplicate=0.2)
        a, b, c = [await network.bind(address) for address in (A, B, C)]
        got: list[bytes] = []

        async def collect() -> None:
            while True:
                data, source = await b.receive()
                if source == A:
                    got.append(data)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(collect)
            for i in range(200):
                await a.send(b"%d" % i, B)
                if interleave and i % 2:
                    await b.send(b"back", A)
                    await c.send(b"noise", B)
            await trio.testing.wait_all_tasks_blocked()
            nursery.cancel_scope.cancel()
        return got

    return trio.run(main)


def test_a_link_loses_and_duplicates_the_same_datagrams_whatever_the_other_links_do() -> None:
    quiet = arrivals(interleave=False)
    assert quiet == arrivals(interleave=True)
    numbers = [int(data) for data in quiet]
    assert 60 < len(set(numbers)) < 140  # about half lost
    assert len(numbers) > len(set(numbers))  # some twice
    assert numbers == sorted(numbers)  # without delay, nothing overtakes


def test_task_random_gives_each_task_its_own_stream() -> None:
    async def draws(order: str) -> dict[str, list[float]]:
        rng = TaskRandom("7/A/1")
        got: dict[str, list[float]] = {}

        async def draw(name: str) -> None:
            got[name] = [rng.random(), rng.uniform(0, 10), rng.choice(range(1000))]
            await trio.lowlevel.checkpoint()
            got[name].append(rng.sample(range(1000), 1)[0])

        async with trio.open_nursery() as nursery:
            for name in order:
                nursery.start_soon(draw, name, name=name)
        return got

    # Whichever task trio runs first, each draws the same numbers.
    together = trio.run(draws, "xy")
    assert together == trio.run(draws, "yx")
    assert together["x"] == trio.run(draws, "x")["x"]
    assert together["x"] != together["y"]
