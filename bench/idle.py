"""What a peer costs when nothing happens: CPU per peer per round, idle, at every size.

    python -m bench.idle                          # N = 10, 30, 100, 300, 1000
    python -m bench.idle --base main --plot docs/idle.png
    python -m bench.idle --sizes 1000 --rounds 5 --profile 25
    python -m bench.idle --processes 30 --rounds 60   # real processes, watcher on and off

For each N, one child process runs N real peers (their five tasks,
unchanged) over the in-memory network under trio's ``MockClock``. Every
peer starts already holding every origin (a converged cluster, as after
all-to-all), runs ``--warmup`` push rounds, and then ``--rounds`` more
rounds are measured with ``time.process_time``: the child's CPU (all
peers, trio's scheduler, the in-memory network) divided by N and by the
rounds. Nothing changes in any folder: what is measured is the idle cost.
Each peer's entries are its own objects, as decoding would make them, and
the child's resident memory after the rounds (less what it held before the
peers were made) gives what a converged peer holds per origin.
It also reports the datagrams and bytes each peer sent per round, and how
many (peer, origin) pairs were ``suspect`` at the end: a live cluster
should have none. ``--watch K`` then runs K more rounds and reports the
longest any live origin went unheard of at any peer (sampled every quarter
round), beside ``suspect_after``.

``--base REV`` measures the code of ``REV`` (a commit, ``main``...) the same
way, in the same run, for the ratio: its ``trio_gossip`` is extracted with
``git archive`` into a temporary directory (read-only for the repository)
and the child puts it first on ``sys.path``. ``--profile K`` prints the K
functions with the most cumulative time (cProfile) over the measured rounds
instead of comparing.

``--processes N`` measures N separate peer processes on loopback instead,
with the same intervals, beside this simulation at N in the same run
(``bench/idle_processes.py``; figures to ``bench/out/idle-processes.json``).

Figures go to stdout and to ``bench/out/idle.json``; ``--plot`` draws CPU
per peer per round against N (needs matplotlib: ``pip install -e '.[bench]'``).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

# Run as ``python bench/idle.py`` (the child): make the ``bench`` package importable.
REPO = Path(__file__).resolve().parents[1]

GENERATION = 1_700_000_000_000_000_000


def measure(n: int, args: argparse.Namespace) -> dict[str, Any]:
    """One cluster of ``n`` converged peers; the figures of ``rounds`` idle
    rounds, then the longest silence of a live origin over ``watch`` more
    (``args``: ``warmup``, ``rounds``, ``seed``, ``profile``, ``watch``).

    Uses only what every version of ``trio_gossip`` measured here has: the
    peer, its node's replica, the in-memory network.
    """
    import random

    warmup, rounds, seed, profile, watch = (
        args.warmup,
        args.rounds,
        args.seed,
        args.profile,
        args.watch,
    )
    import trio
    import trio._core._run as _trio_run
    import trio.testing

    from trio_gossip import (
        Config,
        Entry,
        FileMeta,
        Intervals,
        MemoryNetwork,
        Peer,
        PeerConfig,
        Scan,
    )

    names = [f"p{i:04d}" for i in range(n)]
    addresses = {
        name: (f"10.{i // 65536}.{i // 256 % 256}.{i % 256}", 7000) for i, name in enumerate(names)
    }
    config = Config(
        peers={name: PeerConfig(*address) for name, address in addresses.items()},
        intervals=Intervals(scan=60.0, push=1.0, relay=1.0, reap=300.0),
    )

    def first(origin: str) -> Entry:
        """What ``origin``'s first scan publishes, one file, as a peer that
        decoded it holds it: its own objects, even its own strings (the
        decoder makes new ones; whether a peer then shares them is what the
        memory figure measures)."""
        name = "".join([origin, ".txt"])
        return Entry(GENERATION, 1, 0, 0, (FileMeta(name, 1, 1, 1),))

    resident0 = _resident_mib()

    def scanner(folder: Path) -> Scan:
        return Scan({f"{folder.name}.txt": (1, 1)})

    network = MemoryNetwork(seed=seed)
    # The peers of one process share a store of entries, as with --all (code
    # from before the store: none).
    try:
        from trio_gossip.shared import SharedEntries

        shared: dict[str, Any] = {"shared": SharedEntries()}
    except ImportError:
        shared = {}
    peers = [
        Peer(
            name,
            config,
            network=network,
            folder=Path(name),
            rng=random.Random(f"{seed}/{name}"),
            wall_clock=lambda: GENERATION,
            scanner=scanner,
            scan_in_thread=False,
            watch=False,
            **shared,
        )
        for name in names
    ]
    for peer in peers:  # converged: every peer holds every other origin's entry
        replica = peer.node.replica
        for origin in names:
            if origin != peer.name:
                replica.put("".join([origin]), first(origin), 0.0, changed=True)
                replica.set_status(origin, "alive", 0.0)

    figures: dict[str, Any] = {}
    profiler = cProfile.Profile() if profile else None

    def sent() -> tuple[int, int]:
        stats = [p.statistics() for p in peers]
        return sum(s.datagrams_out for s in stats), sum(s.bytes_out for s in stats)

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(network.run)
            for peer in peers:
                await nursery.start(peer.run)
            await trio.sleep(warmup)
            datagrams0, bytes0 = sent()
            if profiler is not None:
                profiler.enable()
            cpu0, wall0 = time.process_time(), time.perf_counter()
            await trio.sleep(rounds)
            cpu1, wall1 = time.process_time(), time.perf_counter()
            if profiler is not None:
                profiler.disable()
            datagrams1, bytes1 = sent()
            figures.update(
                cpu_s=cpu1 - cpu0,
                wall_s=wall1 - wall0,
                cpu_ms_per_peer_per_round=(cpu1 - cpu0) / n / rounds * 1e3,
                datagrams_per_peer_per_round=(datagrams1 - datagrams0) / n / rounds,
                bytes_per_peer_per_round=(bytes1 - bytes0) / n / rounds,
                suspect_pairs=sum(
                    1 for p in peers for s in p.node.replica.status.values() if s != "alive"
                ),
                # What the peers hold once converged and idle: the process's
                # resident memory, less what it held before making them.
                resident_mib=_resident_mib(),
                bytes_per_pair=(_resident_mib() - resident0) * 2**20 / (n * n),
            )
            # Liveness: the longest any live origin went unheard of at any peer
            # (sampled every quarter round), against when it would be suspect.
            longest = 0.0
            for _ in range(4 * watch):
                await trio.sleep(0.25)
                now = trio.current_time()
                for peer in peers:
                    heard = peer.node.replica.heard
                    oldest = min(t for o, t in heard.items() if o != peer.name)
                    longest = max(longest, now - oldest)
            figures.update(
                watched_rounds=watch,
                longest_silence_s=longest,
                suspect_after_s=peers[0].node.suspect_after,
                suspect_pairs_after_watch=sum(
                    1 for p in peers for s in p.node.replica.status.values() if s != "alive"
                ),
                reaped_after_watch=sum(p.statistics().reaped for p in peers),
            )
            for peer in peers:
                peer.leave_on_stop = False
            nursery.cancel_scope.cancel()

    _trio_run._r.seed(f"idle/{n}/{seed}")  # trio's scheduling order, seeded: a run repeats
    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    if profiler is not None:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(profile)
        figures["profile"] = out.getvalue()
    return figures


def _resident_mib() -> float:
    """This process's resident memory (VmRSS), MiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _extract(rev: str, into: Path) -> Path:
    """``trio_gossip`` as of ``rev``, under ``into`` (``git archive``: nothing in
    the repository changes)."""
    data = subprocess.run(
        ["git", "-C", str(REPO), "archive", rev, "trio_gossip"],
        capture_output=True,
        check=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(into, filter="data")
    return into


def _child(n: int, args: argparse.Namespace, code: Path) -> dict[str, Any]:
    argv = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        str(n),
        "--code",
        str(code),
        "--warmup",
        str(args.warmup),
        "--rounds",
        str(args.rounds),
        "--seed",
        str(args.seed),
        "--profile",
        str(args.profile),
        "--watch",
        str(args.watch),
    ]
    began = time.monotonic()
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"idle: the child for N = {n} ({code}) failed:\n{done.stderr[-2000:]}")
    figures: dict[str, Any] = json.loads(done.stdout)
    figures["child_s"] = time.monotonic() - began
    return figures


def plot(rows: list[dict[str, Any]], path: Path, base: str | None) -> None:
    """CPU per peer per round against N, this code and the base."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    sizes = [r["n"] for r in rows]
    ax.plot(sizes, [r["now"]["cpu_ms_per_peer_per_round"] for r in rows], "o-", label="this code")
    if base is not None:
        ax.plot(
            sizes,
            [r["base"]["cpu_ms_per_peer_per_round"] for r in rows],
            "s--",
            color="tab:red",
            label=f"before ({base})",
        )
    ax.axhline(3.0, color="black", linestyle=":", label="goal at N = 1,000: 3 ms")
    ax.set_xscale("log")
    ax.set_xticks(sizes, [f"{n:,}" for n in sizes])
    ax.set_ylim(bottom=0)
    ax.set_xlabel("peers N (converged, idle; one process, in-memory network)")
    ax.set_ylabel("CPU per peer per round (ms)")
    ax.set_title("What a peer costs when nothing happens")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 30, 100, 300, 1000])
    parser.add_argument("--warmup", type=int, default=5, help="push rounds before measuring")
    parser.add_argument(
        "--rounds", type=int, help="push rounds measured (default 10; 20 with --processes)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--base", help="also measure this git revision's trio_gossip")
    parser.add_argument("--profile", type=int, default=0, help="print the top K functions")
    parser.add_argument(
        "--watch", type=int, default=0, help="rounds after, watching the longest silence"
    )
    parser.add_argument("--plot", type=Path, help="write a PNG of CPU per peer per round")
    parser.add_argument(
        "--processes", type=int, metavar="N", help="N processes on loopback, watcher on and off"
    )
    parser.add_argument("--port", type=int, default=26_000, help="--processes: the first port")
    parser.add_argument("--host", default="127.0.0.1", help="--processes: a loopback address")
    parser.add_argument(
        "--converge", type=float, default=120.0, help="--processes: s to wait for convergence"
    )
    parser.add_argument("--keep", action="store_true", help="--processes: keep the logs")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--code", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rounds is None:
        args.rounds = 20 if args.processes is not None else 10
    if args.child is not None:
        sys.path.insert(0, str(args.code))
        print(json.dumps(measure(args.child, args)))
        return 0

    sys.path.insert(0, str(REPO))
    from bench.harness import git_state, table, write_out

    if args.processes is not None:
        from bench import idle_processes

        idle_processes.check(parser, args)
        # The intervals of the simulation (``measure``), for the processes too.
        args.peers, args.scan, args.push, args.relay = args.processes, 60.0, 1.0, 1.0
        return idle_processes.benchmark(args, lambda n: _child(n, args, REPO))

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-idle-") as tmp:
        base = _extract(args.base, Path(tmp)) if args.base else None
        for n in args.sizes:
            row: dict[str, Any] = {"n": n, "now": _child(n, args, REPO)}
            if base is not None:
                row["base"] = _child(n, args, base)
            rows.append(row)
            for label in ("now", "base"):
                if label in row:
                    f = row[label]
                    print(
                        f"  N = {n} ({label}): {f['cpu_ms_per_peer_per_round']:.2f} ms"
                        f" per peer per round, {f['datagrams_per_peer_per_round']:.2f} datagrams,"
                        f" {f['bytes_per_peer_per_round']:,.0f} bytes;"
                        f" suspect {f['suspect_pairs']}; RSS {f['resident_mib']:.0f} MiB"
                        f" ({f['bytes_per_pair']:.0f} B per pair)"
                        f" ({f['child_s']:.0f} s)",
                        file=sys.stderr,
                        flush=True,
                    )
                    if f["watched_rounds"]:
                        print(
                            f"    over {f['watched_rounds']} more rounds: longest silence"
                            f" {f['longest_silence_s']:.1f} s (suspect after"
                            f" {f['suspect_after_s']:.0f} s);"
                            f" suspect {f['suspect_pairs_after_watch']},"
                            f" reaped {f['reaped_after_watch']}",
                            file=sys.stderr,
                            flush=True,
                        )
                    if f.get("profile"):
                        print(f["profile"], file=sys.stderr)

    headers = ["N", "CPU ms/peer/round", "datagrams", "bytes", "suspect", "RSS MiB"]
    if args.base:
        headers += [f"{args.base}: CPU ms", "datagrams", "bytes", "ratio", "RSS MiB"]
    out_rows = []
    for row in rows:
        now = row["now"]
        cells: list[object] = [
            row["n"],
            now["cpu_ms_per_peer_per_round"],
            now["datagrams_per_peer_per_round"],
            round(now["bytes_per_peer_per_round"]),
            now["suspect_pairs"],
            round(now["resident_mib"]),
        ]
        if "base" in row:
            b = row["base"]
            cells += [
                b["cpu_ms_per_peer_per_round"],
                b["datagrams_per_peer_per_round"],
                round(b["bytes_per_peer_per_round"]),
                f"{b['cpu_ms_per_peer_per_round'] / now['cpu_ms_per_peer_per_round']:.1f}x",
                round(b["resident_mib"]),
            ]
        out_rows.append(cells)
    print(f"idle, converged; {args.rounds} push rounds measured after {args.warmup}")
    print(table(headers, out_rows))
    figures = {"rows": rows, "base": args.base, "base_code": None}
    if args.base:
        figures["base_code"] = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", args.base],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    figures["code"] = git_state()
    print(f"path: {write_out('idle', figures)}")
    if args.plot is not None:
        plot(rows, args.plot, args.base)
        print(f"plot: {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
