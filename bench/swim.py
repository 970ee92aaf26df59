"""trio_gossip beside swim-protocol: 30 processes of each on loopback, one after the other.

    python -m bench.swim [--peers 30] [--push 0.5] [--idle 20] [--drops 3]

Needs the benchmark extra (``pip install -e '.[bench]'``: swim-protocol, an
asyncio SWIM implementation that spreads each member's metadata, a dict of
bytes). Its own file-sync tool (``swim-protocol-sync``) is the counterpart of
``python -m trio_gossip``: each member shares the files of its own folder
(their contents, not only their sizes and times) and writes every other
member's into a folder named for it; it re-reads its own on SIGHUP.

For both, in one run:

* idle CPU per process (utime + stime from /proc/PID/stat over ``--idle`` s,
  nothing changing, after the cluster converged) and resident memory
  (``VmRSS``) per process after that;
* propagation: ``--drops`` times, a new file is written into one member's
  folder, and the time from the write to each other member holding it.
  trio_gossip's watcher sees the write (``"watch": true``); its peers' log
  lines give the times (``bench/propagation.py``). swim-protocol has no
  watcher: the member is sent SIGHUP right after the write, as its README
  says, and the other members' folders are polled every 10 ms for the file.

swim-protocol's timers are its defaults (sync every 0.5 s, ping every 1 s);
trio_gossip pushes every ``--push`` s (0.5 by default): the same pace.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# Run as ``python bench/NAME.py``: make the ``bench`` package importable.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.gen_config import loopback
from bench.harness import (
    Children,
    cpu_seconds,
    free_ports,
    median,
    memory_kb,
    spread,
    table,
    terminate_on_signals,
    wait_until,
    write_out,
)
from bench.propagation import run_cluster

#: swim-protocol-sync, run by the interpreter that runs this script.
_SYNC = "from swimprotocol.sync import main; raise SystemExit(main())"


def run_swim(args: argparse.Namespace) -> dict[str, Any]:
    """``args.peers`` swim-protocol-sync members: idle CPU, memory, then the drops."""
    host = loopback(args.host)
    if not free_ports(host, args.swim_port, args.peers):
        raise SystemExit(f"swim: ports {args.swim_port}.. are not all free; choose --swim-port")
    names = [f"{host}:{args.swim_port + i}" for i in range(args.peers)]
    work = Path(tempfile.mkdtemp(prefix="bench-swim-"))
    secret = secrets.token_hex(16)
    folders = {name: work / str(i) for i, name in enumerate(names)}
    figures: dict[str, Any] = {}
    lifetime = args.converge + 60 + args.idle + args.drops * 40
    try:
        with Children(lifetime) as children:
            procs = {}
            for i, name in enumerate(names):
                own = folders[name] / name
                own.mkdir(parents=True)
                (own / "hello.txt").write_text(f"{name}\n")
                # Every member knows the first; the first knows the second.
                seed = names[1] if i == 0 else names[0]
                argv = [sys.executable, "-c", _SYNC, "--secret", secret, "--name", name]
                argv += ["--peer", seed, str(folders[name])]
                with (work / f"{i}.log").open("wb") as log:
                    procs[name] = children.start(argv, stderr=log)

            def online(name: str) -> int:
                path = folders[name] / ".online"
                return len(os.listdir(path)) if path.is_dir() else 0

            def converged() -> bool:
                # Every member holds every other's file (online or merely suspect:
                # its 0.3 s ping timeout flaps on a busy machine).
                return all(
                    (folders[n] / m / "hello.txt").exists() for n in names for m in names if m != n
                )

            if not wait_until(converged, args.converge, 0.25):
                dead = [n for n, p in procs.items() if p.poll() is not None]
                raise SystemExit(
                    f"swim: not converged within {args.converge:g} s (exited: {dead[:5]})"
                )
            print(f"swim: {len(names)} members running and converged", flush=True)
            time.sleep(2 * args.push)
            before = {n: cpu_seconds(p.pid) for n, p in procs.items()}
            began = time.monotonic()
            time.sleep(args.idle)
            window = time.monotonic() - began
            idle = [100 * (cpu_seconds(p.pid) - before[n]) / window for n, p in procs.items()]
            rss = [memory_kb(p.pid)["VmRSS"] / 1024 for p in procs.values()]
            figures["idle_cpu_percent"] = spread(idle)
            figures["idle_window_s"] = window
            figures["rss_mib"] = spread(rss)
            figures["online_seen"] = spread([online(n) for n in names])
            print(
                f"swim: idle CPU per process over {window:.0f} s: median {median(idle):.2f}%;"
                f" RSS median {median(rss):.1f} MiB",
                flush=True,
            )
            drops = []
            for i in range(args.drops):
                origin = names[(len(names) // 2 + i * 7) % len(names)]
                drops.append(_swim_drop(names, folders, procs[origin].pid, origin, i))
                d = drops[-1]
                print(
                    f"swim: write {i + 1} at {origin}: {d['reached']}/{d['of']} members,"
                    f" median {d['median_s']:.3f} s, max {d['max_s']:.3f} s",
                    flush=True,
                )
                time.sleep(2 * args.push)
            figures["drops"] = drops
            figures["alive_at_end"] = sum(1 for p in procs.values() if p.poll() is None)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return figures


def _swim_drop(
    names: list[str], folders: dict[str, Path], pid: int, origin: str, index: int
) -> dict[str, Any]:
    """A new file in ``origin``'s own folder, then SIGHUP; seconds until each other has it."""
    file_name, text = f"propagation-{index}.txt", f"write {index}\n"
    written = time.monotonic()
    (folders[origin] / origin / file_name).write_text(text)
    os.kill(pid, signal.SIGHUP)
    waiting = {n: folders[n] / origin / file_name for n in names if n != origin}
    arrivals: list[float] = []
    deadline = written + 30
    while waiting and time.monotonic() < deadline:
        for name, path in list(waiting.items()):
            try:
                arrived = path.read_text() == text
            except OSError:  # not there yet
                continue
            if arrived:
                arrivals.append(time.monotonic() - written)
                del waiting[name]
        time.sleep(0.01)
    arrivals.sort()
    return {
        "origin": origin,
        "reached": len(arrivals),
        "of": len(names) - 1,
        "min_s": arrivals[0] if arrivals else float("nan"),
        "median_s": median(arrivals) if arrivals else float("nan"),
        "max_s": arrivals[-1] if arrivals else float("nan"),
    }


def benchmark(args: argparse.Namespace) -> int:
    terminate_on_signals()
    try:
        import swimprotocol  # noqa: F401 -- only to say what is missing
    except ImportError:
        raise SystemExit("swim: swim-protocol is missing: pip install -e '.[bench]'") from None
    ours = run_cluster(args, watch=True)
    theirs = run_swim(args)
    results = {"trio_gossip": ours, "swim-protocol": theirs}
    rows = []
    for label, run in results.items():
        drops = run["drops"]
        rows.append(
            [
                label,
                f"{sum(d['reached'] for d in drops)}/{sum(d['of'] for d in drops)}",
                median([d["median_s"] for d in drops]),
                max(d["max_s"] for d in drops),
                run["idle_cpu_percent"]["median"],
                run["rss_mib"]["median"],
            ]
        )
    ratio = [b / a if a else float("nan") for a, b in zip(rows[0][2:], rows[1][2:], strict=True)]
    rows.append(["swim / trio_gossip", "", *ratio])
    print()
    print(
        f"{args.peers} processes each on loopback, one cluster after the other;"
        f" {args.drops} writes each, {args.idle:g} s idle"
    )
    print(
        table(
            [
                "",
                "reached",
                "median of medians s",
                "slowest s",
                "idle CPU % (median)",
                "RSS MiB (median)",
            ],
            rows,
        )
    )
    print(f"path: {write_out('swim', {'args': vars(args), 'runs': results})}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--peers", type=int, default=30, help="processes of each (default 30)")
    parser.add_argument("--push", type=float, default=0.5, help="trio_gossip's push interval")
    parser.add_argument("--relay", type=float, default=None, help="default: --push")
    parser.add_argument("--scan", type=float, default=60.0, help="trio_gossip's periodic scan")
    parser.add_argument("--idle", type=float, default=20.0, help="seconds of idle measured")
    parser.add_argument("--drops", type=int, default=3, help="writes timed per cluster")
    parser.add_argument("--port", type=int, default=24_000, help="trio_gossip's first port")
    parser.add_argument("--swim-port", type=int, default=25_000, help="swim-protocol's first")
    parser.add_argument("--host", default="127.0.0.1", help="a loopback address")
    parser.add_argument(
        "--converge", type=float, default=120.0, help="s to wait for convergence (default 120)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work folders")
    return benchmark(parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
