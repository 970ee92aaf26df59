"""Bytes on the wire, and big folders, in the deterministic simulation.

For folders of 1,000 and 100,000 files on one peer of a small cluster:

* the whole folder propagates: rounds until every peer holds it, every
  datagram's size (never above ``max_datagram``), and no peer ever showing a
  half-received version (every peer is sampled every 0.05 virtual seconds);
* idle: datagrams and bytes per peer per round once converged;
* a one-file change: bytes of parts (file records) that moved, per peer,
  against the size of the whole list, and datagrams/bytes per peer per round
  while it spreads.

    python bench/traffic.py                  # 1,000 and 100,000 files, 8 peers
    python bench/traffic.py --files 1000 --peers 5

File names are deep, long and not all ASCII. Figures go to stdout and
bench/out/traffic.json.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path
from typing import Any

import attrs
import trio
import trio.testing

from bench.rounds import simulated_peers
from trio_gossip import Config, Intervals, MemoryNetwork, PeerConfig
from trio_gossip.codec import decode_untrusted
from trio_gossip.messages import Part
from trio_gossip.state import live_files
from trio_gossip.transport import Address

GENERATION = 1_700_000_000_000_000_000
OUT = Path(__file__).resolve().parent / "out"


@attrs.define
class Tap(MemoryNetwork):
    """Counts what is sent: datagrams, bytes, part bytes, the largest datagram."""

    datagrams: int = attrs.field(init=False, default=0)
    sent_bytes: int = attrs.field(init=False, default=0)
    part_bytes: int = attrs.field(init=False, default=0)
    largest: int = attrs.field(init=False, default=0)

    def route(self, data: bytes, source: Address, destination: Address) -> None:
        self.datagrams += 1
        self.sent_bytes += len(data)
        self.largest = max(self.largest, len(data))
        if b'"type":"part"' in data[:40]:
            assert isinstance(decode_untrusted(data), Part)
            self.part_bytes += len(data)
        super().route(data, source, destination)

    def counters(self) -> tuple[int, int, int]:
        return self.datagrams, self.sent_bytes, self.part_bytes


def folder(count: int, rng: random.Random) -> dict[str, tuple[int, int]]:
    """``count`` files in a deep tree, with long and non-ASCII names."""
    words = ["données", "проект", "資料", "archive", "photos-2026", "a" * 40, "ü-ö-ä", "src"]
    files = {}
    for i in range(count):
        depth = rng.randint(1, 8)
        path = "/".join(rng.choice(words) + f"-{rng.randint(0, 99)}" for _ in range(depth))
        files[f"{path}/file-{i:06d}-{rng.choice(words)}.dat"] = (rng.randint(0, 10**9), 10**18 + i)
    return files


async def measure(files: int, peers: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    names = [f"p{i}" for i in range(peers)]
    config = Config(
        peers={n: PeerConfig(f"10.0.0.{i + 1}", 7000) for i, n in enumerate(names)},
        intervals=Intervals(scan=1.0, push=1.0, relay=1.0, reap=1e9),
    )
    folders = {n: {f"{n}.txt": (1, 1)} for n in names}
    big = names[0]
    folders[big] = folder(files, rng)

    network = Tap(seed=seed)
    running = simulated_peers(config, network, folders, seed)
    half_shown = 0

    def holders(version: int) -> int:
        nonlocal half_shown
        count = 0
        for p in running:
            entry = p.entry(big)
            if entry is None:
                continue
            shown = len(live_files(entry))
            expected = len(folders[big]) if entry.version == version else None
            if entry.version == version and shown == expected:
                count += 1
            elif entry.version < version and shown not in (
                len(folders[big]) - 1,
                len(folders[big]),
            ):
                half_shown += 1
        return count

    result: dict[str, Any] = {"files": files, "peers": peers}
    async with trio.open_nursery() as nursery:
        await nursery.start(network.run)
        for p in running:
            await nursery.start(p.run)
        began, real = trio.current_time(), time.monotonic()
        while holders(1) < peers:  # noqa: ASYNC110 -- sampling is the point: a half version shown
            await trio.sleep(0.05)
        result["full_rounds"] = trio.current_time() - began
        result["full_real_seconds"] = time.monotonic() - real
        result["full_list_bytes"] = network.part_bytes / (peers - 1)

        await trio.sleep(5.0)  # settle: nothing is hot any more
        before, at = network.counters(), trio.current_time()
        await trio.sleep(10.0)
        d, b, _ = (x - y for x, y in zip(network.counters(), before, strict=True))
        rounds = trio.current_time() - at
        result["idle_datagrams_per_peer_round"] = d / peers / rounds
        result["idle_bytes_per_peer_round"] = b / peers / rounds

        before, at = network.counters(), trio.current_time()
        first = next(iter(folders[big]))
        folders[big][first] = (folders[big][first][0] + 1, folders[big][first][1] + 1)
        while holders(2) < peers:  # noqa: ASYNC110 -- sampled, as above
            await trio.sleep(0.05)
        d, b, parts = (x - y for x, y in zip(network.counters(), before, strict=True))
        rounds = trio.current_time() - at
        result["change_rounds"] = rounds
        result["change_part_bytes_per_peer"] = parts / (peers - 1)
        result["change_datagrams_per_peer_round"] = d / peers / rounds
        result["change_bytes_per_peer_round"] = b / peers / rounds
        result["largest_datagram"] = network.largest
        result["max_datagram"] = config.max_datagram
        result["half_shown"] = half_shown
        nursery.cancel_scope.cancel()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, nargs="+", default=[1_000, 100_000])
    parser.add_argument("--peers", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    rows = []
    for files in args.files:
        clock = trio.testing.MockClock(autojump_threshold=0)
        row = trio.run(measure, files, args.peers, args.seed, clock=clock)
        rows.append(row)
        print(
            f"{files:>7} files, {args.peers} peers: whole folder in {row['full_rounds']:.2f} rounds"
            f" ({row['full_real_seconds']:.1f} s real), {row['full_list_bytes'] / 1e6:.2f} MB"
            f" of parts per receiving peer; largest datagram {row['largest_datagram']}"
            f" (max {row['max_datagram']}); half-received versions shown: {row['half_shown']}"
        )
        print(
            f"{'':>7} idle: {row['idle_datagrams_per_peer_round']:.2f} datagrams,"
            f" {row['idle_bytes_per_peer_round']:.0f} bytes per peer per round"
        )
        ratio = row["full_list_bytes"] / max(1.0, row["change_part_bytes_per_peer"])
        print(
            f"{'':>7} one-file change: {row['change_part_bytes_per_peer']:.0f} bytes of parts per"
            f" peer (whole list / delta = {ratio:.0f}x), reached all in"
            f" {row['change_rounds']:.2f} rounds; {row['change_datagrams_per_peer_round']:.2f}"
            f" datagrams, {row['change_bytes_per_peer_round']:.0f} bytes per peer per round"
        )
    (OUT / "traffic.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
