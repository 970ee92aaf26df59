"""Rounds to convergence: trio_gossip's real peers against the original strategy.

A deterministic simulation: N peers run their real five tasks over the
in-memory network under trio's ``MockClock``, with random datagram loss. For
each N, loss rate and seed it measures, in push rounds:

* all-to-all: from nothing until every peer holds every origin's version;
* fresh update: from the moment one origin publishes a new version until
  every peer holds it (the curve of the fraction holding it is kept);

beside the bound log2 N + ln N (push gossip, Frieze-Grimmett / Pittel) and a
model of the original design (``bench/original.py``) in the same simulator,
whose fresh update starts from a cluster where everyone holds everyone.

    python -m bench.rounds --jobs 2 --plot docs/rounds-1000.png   # N = 10, 100, 1000; 5 seeds
    python -m bench.rounds --sizes 10 100 --seeds 3 --plot bench/out/rounds.png

Figures go to stdout and to bench/out/rounds.json; ``--plot`` draws, for the
largest N, the fraction of peers holding the fresh update per round
(needs matplotlib: ``pip install -e '.[bench]'``). ``--jobs`` runs that many
simulations at once, one process each; a long run can be split (say,
``--seeds 0 --original-seeds 5`` for the original strategy alone) and the
pieces joined afterwards with ``--join a.json b.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import attrs
import trio
import trio.testing

from bench.original import OriginalPeer
from trio_gossip import Config, Intervals, MemoryNetwork, Peer, PeerConfig, Scan
from trio_gossip.memory import TaskRandom
from trio_gossip.transport import Address

GENERATION = 1_700_000_000_000_000_000
OUT = Path(__file__).resolve().parent / "out"


@attrs.frozen
class Run:
    """One simulation: rounds, and the fresh update's curve (round, fraction holding)."""

    all_to_all: float | None
    fresh: float | None
    curve: tuple[tuple[float, float], ...]


def simulated_peers(
    config: Config,
    network: MemoryNetwork,
    folders: dict[str, dict[str, tuple[int, int]]],
    seed: int,
) -> list[Peer]:
    """The config's peers over ``network``, each scanning its dict in ``folders``."""

    def scanner(folder: Path) -> Scan:
        return Scan(dict(folders[folder.name]))

    return [
        Peer(
            name,
            config,
            network=network,
            folder=Path(name),
            rng=TaskRandom(f"{seed}/{name}"),
            wall_clock=lambda: GENERATION,
            scanner=scanner,
            scan_in_thread=False,
            watch=False,
        )
        for name in config.peers
    ]


def bound(n: int) -> float:
    """log2 N + ln N: push gossip's rounds to reach everyone."""
    return math.log2(n) + math.log(n)


def _addresses(n: int) -> dict[str, Address]:
    return {f"p{i:04d}": (f"10.{i // 65536}.{i // 256 % 256}.{i % 256}", 7000) for i in range(n)}


async def _poll(done: Callable[[], bool], step: float, limit: float) -> float | None:
    """The virtual time ``done`` first held, polled every ``step``; None past ``limit``."""
    deadline = trio.current_time() + limit
    while not done():
        if trio.current_time() >= deadline:
            return None
        await trio.sleep(step)
    return trio.current_time()


async def _curve(
    fraction: Callable[[], float], start: float, step: float, limit: float
) -> tuple[float | None, tuple[tuple[float, float], ...]]:
    points = [(0.0, fraction())]
    deadline = start + limit
    while points[-1][1] < 1.0:
        if trio.current_time() >= deadline:
            return None, tuple(points)
        await trio.sleep(step)
        points.append((trio.current_time() - start, fraction()))
    return points[-1][0], tuple(points)


async def simulate_trio_gossip(n: int, loss: float, seed: int, limit: float) -> Run:
    addresses = _addresses(n)
    names = list(addresses)
    config = Config(
        peers={name: PeerConfig(*address) for name, address in addresses.items()},
        intervals=Intervals(scan=1.0, push=1.0, relay=1.0, reap=1e9),
    )
    folders = {name: {f"{name}.txt": (1, 1)} for name in names}

    network = MemoryNetwork(seed=seed, loss=loss)
    peers = simulated_peers(config, network, folders, seed)
    own = {p.name: p for p in peers}

    def holds(origin: str) -> int:
        newest = own[origin].entry(origin)
        assert newest is not None
        return sum(
            1 for p in peers if (e := p.entry(origin)) is not None and e.content == newest.content
        )

    async with trio.open_nursery() as nursery:
        await nursery.start(network.run)
        for peer in peers:
            await nursery.start(peer.run)
        start = trio.current_time()
        converged = await _poll(lambda: all(holds(o) == n for o in names), 0.25, limit)
        all_to_all = None if converged is None else converged - start
        origin = names[0]
        before = own[origin].entry(origin)
        assert before is not None
        folders[origin]["fresh.txt"] = (2, 2)

        def published_new() -> bool:
            entry = own[origin].entry(origin)
            return entry is not None and entry.version > before.version

        published = await _poll(published_new, 0.01, 5)
        assert published is not None
        fresh, curve = await _curve(lambda: holds(origin) / n, published, 0.05, limit)
        nursery.cancel_scope.cancel()
    return Run(all_to_all, fresh, curve)


async def simulate_original(n: int, loss: float, seed: int, limit: float) -> Run:
    addresses = _addresses(n)
    network = MemoryNetwork(seed=seed, loss=loss)
    origin_name = next(iter(addresses))
    holding = 0  # peers holding the origin's fresh version 1, counted as they take it

    def on_store(origin: str, version: int) -> None:
        nonlocal holding
        if origin == origin_name and version == 1:
            holding += 1

    peers = [
        OriginalPeer(
            name,
            addresses,
            network,
            TaskRandom(f"{seed}/{name}"),
            on_store=on_store,
            # Everyone holds version 0 of everyone: those datagrams change nothing.
            held_by_all=lambda _origin, version: version <= 0,
        )
        for name in addresses
    ]
    # Everyone holds everyone at version 0: only the fresh update is measured.
    for peer in peers:
        for name in addresses:
            peer.hold(name, 0, [f"{name}.txt"])
    origin = peers[0]
    async with trio.open_nursery() as nursery:
        await nursery.start(network.run)
        for peer in peers:
            await nursery.start(peer.run)
        await trio.sleep(0.5)
        origin.publish([f"{origin.name}.txt", "fresh.txt"])
        holding = 1
        start = trio.current_time()

        def fraction() -> float:
            return holding / n

        fresh, curve = await _curve(fraction, start, 0.05, limit)
        nursery.cancel_scope.cancel()
    return Run(None, fresh, curve)


def _run(which: str, *args: Any) -> Run:
    simulation = {"trio_gossip": simulate_trio_gossip, "original": simulate_original}[which]
    # No need to seed trio's scheduler: the network draws per link and each
    # peer per task (TaskRandom), so the order it runs ready tasks in changes nothing.
    began = time.monotonic()
    result: Run = trio.run(simulation, *args, clock=trio.testing.MockClock(autojump_threshold=0))
    print(
        f"  {which}{args[:3]}: all-to-all {result.all_to_all},"
        f" fresh {result.fresh} ({time.monotonic() - began:.0f} s)",
        file=sys.stderr,
        flush=True,
    )
    return result


def _summary(values: Sequence[float | None]) -> str:
    if not values:
        return "-"
    done = [v for v in values if v is not None]
    if len(done) < len(values):
        return f"{len(values) - len(done)}/{len(values)} unfinished"
    return f"{statistics.median(done):6.1f} {max(done):6.1f}"


def _median(values: Sequence[float | None]) -> float:
    done = [v for v in values if v is not None]
    return statistics.median(done) if done else math.nan


def _row(n: int, loss: float, ours: Sequence[Run], theirs: Sequence[Run]) -> dict[str, Any]:
    return {
        "n": n,
        "loss": loss,
        "bound": bound(n),
        "all_to_all": [r.all_to_all for r in ours],
        "fresh": [r.fresh for r in ours],
        "original_fresh": [r.fresh for r in theirs],
        "curves": {
            "trio_gossip": [list(r.curve) for r in ours],
            "original": [list(r.curve) for r in theirs],
        },
    }


def merge(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows of several runs (say, one with only the original strategy) joined by (N, loss)."""
    joined: dict[tuple[int, float], dict[str, Any]] = {}
    for row in rows:
        into = joined.setdefault((row["n"], row["loss"]), _row(row["n"], row["loss"], [], []))
        for key in ("all_to_all", "fresh", "original_fresh"):
            into[key] = into[key] + row[key]
        for label in ("trio_gossip", "original"):
            into["curves"][label] = into["curves"][label] + row["curves"][label]
    return sorted(joined.values(), key=lambda r: (r["n"], r["loss"]))


def table(rows: Sequence[dict[str, Any]]) -> str:
    lines = [
        "rounds (median max over seeds); a round is one push interval",
        f"{'N':>5} {'loss':>5} {'bound':>6} | {'all-to-all':>13} | {'fresh update':>13}"
        f" | {'original fresh':>14} | {'orig/tg':>7} | seeds",
    ]
    for r in rows:
        ratio = _median(r["original_fresh"]) / _median(r["fresh"])
        lines.append(
            f"{r['n']:>5} {r['loss']:>5.0%} {r['bound']:>6.1f}"
            f" | {_summary(r['all_to_all']):>13} | {_summary(r['fresh']):>13}"
            f" | {_summary(r['original_fresh']):>14} | {ratio:>7.1f}"
            f" | {len(r['fresh'])}+{len(r['original_fresh'])}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--losses", type=float, nargs="+", default=[0.0, 0.2])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--original-seeds", type=int, default=None, help="default: --seeds")
    parser.add_argument("--jobs", type=int, default=1, help="simulations run at once (processes)")
    parser.add_argument("--plot", type=Path, default=None, help="write a PNG of the curves")
    parser.add_argument("--out", default="rounds.json", help="file name under bench/out/")
    parser.add_argument(
        "--join",
        type=Path,
        nargs="+",
        default=None,
        help="run nothing: join these JSON outputs into --out, print and plot them",
    )
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    if args.join is not None:
        rows = merge([row for path in args.join for row in json.loads(path.read_text())["rows"]])
    else:
        original_seeds = args.seeds if args.original_seeds is None else args.original_seeds
        began = time.monotonic()
        jobs = []
        with ProcessPoolExecutor(args.jobs) as pool:
            for n in args.sizes:
                for loss in args.losses:
                    ours = [
                        pool.submit(_run, "trio_gossip", n, loss, seed, 60 + 10 * bound(n))
                        for seed in range(args.seeds)
                    ]
                    theirs = [
                        pool.submit(_run, "original", n, loss, seed, 20.0 * n + 200)
                        for seed in range(original_seeds)
                    ]
                    jobs.append((n, loss, ours, theirs))
            rows = [
                _row(n, loss, [f.result() for f in ours], [f.result() for f in theirs])
                for n, loss, ours, theirs in jobs
            ]
        print(f"{time.monotonic() - began:.0f} s", file=sys.stderr)
    print(table(rows), flush=True)
    (OUT / args.out).write_text(json.dumps({"rows": rows}))
    if args.plot is not None:
        plot({"rows": rows}, args.plot)
        print(f"plot: {args.plot}")


def plot(results: dict[str, Any], path: Path) -> None:
    """Fraction of peers holding the fresh update per round, at the largest N, no loss."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in results["rows"] if r["loss"] == min(x["loss"] for x in results["rows"])]
    row = max(rows, key=lambda r: r["n"])
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for label, color in (("trio_gossip", "tab:blue"), ("original", "tab:red")):
        for i, curve in enumerate(row["curves"][label]):
            xs, ys = zip(*curve, strict=True)
            ax.plot(xs, ys, color=color, alpha=0.6, label=label if i == 0 else None)
    ax.axvline(row["bound"], color="black", linestyle="--", label="log2 N + ln N")
    ax.set_xscale("symlog", linthresh=10)
    ax.set_xlim(left=0)
    ax.set_xlabel("push rounds since the update was published")
    ax.set_ylabel("fraction of peers holding it")
    ax.set_title(f"A fresh update among N = {row['n']} peers, loss {row['loss']:.0%}")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
