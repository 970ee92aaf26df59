"""An idle cluster larger than one push's stalest lines: every heartbeat still
reaches every peer well within ``suspect_after``.

The nodes are driven by hand, without trio: each round every running node
pushes, and every datagram is handed to its receiver at once, answers
included. Seeded, so each run is the same run.
"""

from __future__ import annotations

import random

import pytest

from trio_gossip import Config, Entry, FileMeta, Intervals, Node, PeerConfig
from trio_gossip.digests import CYCLES, STALE_LINES, refresh_rounds, stale_lines
from trio_gossip.gossip import MISSES

GENERATION = 1_700_000_000_000_000_000


def test_a_push_asks_about_enough_origins_for_reap() -> None:
    # A small cluster: every other origin, every round.
    assert stale_lines(10, 1.0, 300.0) == 9
    assert stale_lines(33, 1.0, 300.0) == 32
    # A larger one: 32, or more where reap / 2 leaves room for fewer than 6 refreshes.
    assert stale_lines(300, 1.0, 300.0) == STALE_LINES
    assert refresh_rounds(300, STALE_LINES) == 10
    assert stale_lines(1_000, 1.0, 300.0) == 40  # 150 rounds to reap / 2: 6 x 25
    assert CYCLES * refresh_rounds(1_000, 40) <= 300.0 / 2
    assert stale_lines(1_000, 5.0, 600.0) == 100  # 60 rounds to reap / 2: 6 x 10
    assert CYCLES * refresh_rounds(1_000, 100) * 5.0 <= 600.0 / 2


def idle_cluster(n: int, reap: float) -> tuple[Config, dict[str, Node]]:
    """``n`` converged nodes: each holds every origin's first version."""
    names = [f"p{i:03d}" for i in range(n)]
    config = Config(
        peers={name: PeerConfig(f"10.0.0.{i}", 7000) for i, name in enumerate(names)},
        intervals=Intervals(scan=60.0, push=1.0, relay=1.0, reap=reap),
    )
    nodes = {
        name: Node(name, config, rng=random.Random(name), wall_clock=lambda: GENERATION)
        for name in names
    }
    for name, node in nodes.items():
        node.start({f"{name}.txt": (1, 1)}, 0.0)
        for origin in names:
            if origin != name:
                files = (FileMeta(f"{origin}.txt", 1, 1, 1),)
                node.replica.put(origin, Entry(GENERATION, 1, 0, 0, files), 0.0, changed=True)
                node.replica.set_status(origin, "alive", 0.0)
    return config, nodes


def run_rounds(config: Config, nodes: dict[str, Node], rounds: int, stopped: set[str]) -> float:
    """Push rounds of the running nodes; the longest silence of a running
    origin at a running node, seen after each push."""
    by_address = {config.address(name): node for name, node in nodes.items()}
    rng = random.Random(0)
    running = [name for name in nodes if name not in stopped]
    longest = 0.0
    for r in range(rounds):
        rng.shuffle(running)
        for i, name in enumerate(running):
            now = r + i / len(running)
            node = nodes[name]
            sends = node.push(now)
            while sends:
                send = sends.pop()
                target = by_address[send.address]
                if target.name in stopped:
                    continue
                for answer in target.receive_untrusted(send.data, node.address, now):
                    sends.extend(node.receive_untrusted(answer.data, target.address, now))
            node.reap(now)
        now = r + 1.0
        for name in running:
            heard = nodes[name].replica.heard
            silent = max(now - heard[o] for o in running if o != name)
            longest = max(longest, silent)
    return longest


@pytest.mark.parametrize("stop", [0, 10], ids=["all-running", "ten-stopped"])
def test_live_origins_are_heard_of_well_within_suspect_after(stop: int) -> None:
    config, nodes = idle_cluster(50, reap=300.0)
    node = next(iter(nodes.values()))
    assert len(nodes) - 1 > 32  # a push carries only some of the view
    suspect_after = node.suspect_after
    assert suspect_after == 24.0  # 3 x (log2 50 + 2) rounds: more than 6 refreshes of 2
    stopped = set(list(nodes)[-stop:]) if stop else set()
    longest = run_rounds(config, nodes, 2 * int(suspect_after), stopped)
    assert longest < suspect_after / 2
    for name, n in nodes.items():
        if name in stopped:
            continue
        for origin, status in n.replica.status.items():
            expected = "suspect" if origin in stopped else "alive"
            assert status == expected, (name, origin, status)


def test_an_origin_asked_about_in_vain_goes_to_the_back() -> None:
    _, nodes = idle_cluster(40, reap=300.0)
    node = nodes["p000"]
    first = [o for o in node.replica.heard if o != "p000"][:STALE_LINES]
    asked = [line.origin for line in node._digests.stale()]
    assert asked == first  # least recently heard of first: here in the order put
    for _ in range(MISSES - 1):
        assert [line.origin for line in node._digests.stale()] == first
    # Asked MISSES times without news: the 32 go to the back, the other 7 come first.
    rest = [o for o in node.replica.heard if o != "p000"]
    assert rest[: 39 - STALE_LINES] == [o for o in nodes if o not in (*first, "p000")]
    assert [line.origin for line in node._digests.stale()][: 39 - STALE_LINES] == rest[:7]
    # Hearing of one resets its misses and sends it to the back.
    origin = rest[0]
    node.replica.put(origin, node.replica[origin], 5.0, changed=False)
    assert list(node.replica.heard)[-1] == origin
