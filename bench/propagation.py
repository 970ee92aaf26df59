"""From a write at one peer to every peer holding it, with the folder watcher on and off.

    python -m bench.propagation [--peers 30] [--push 0.5] [--scan 60] [--drops 3] [--idle 20]

Runs the same cluster of ``--peers`` separate processes on loopback twice, one
after the other: ``"watch": true`` (a change is scanned at once) and
``"watch": false`` (the periodic scan, every ``--scan`` seconds, finds it).
Each run first measures each process's idle CPU (utime + stime from
/proc/PID/stat over ``--idle`` seconds, nothing changing), then ``--drops``
times writes a new file into one peer's folder and times, from the peers'
own log lines (millisecond times), when each other peer took the new version:

* ``X: own folder changed, version V: ...`` in the origin's log: its scan saw the file;
* ``Y: X changed, version V: ...`` in Y's log: Y took it.

Every process is killed at the end, whatever happens (and each dies by
itself after its lifetime).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# Run as ``python bench/NAME.py``: make the ``bench`` package importable.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import (
    Children,
    busy_since,
    cpu_seconds,
    cpu_times,
    loopback_cluster,
    median,
    memory_kb,
    table,
    terminate_on_signals,
    write_out,
)
from bench.processes import (
    Logs,
    start_peers,
    wait_converged,
    wait_started,
    write_and_wait,
)


def one_drop(
    logs: Logs, names: Sequence[str], origin: str, *, folder: Path, index: int, timeout: float
) -> dict[str, Any]:
    """Write a file into ``origin``'s folder; seconds from the write to each peer taking it."""
    path = folder / f"propagation-{index}.txt"
    written, complete, own = write_and_wait(
        logs, names, origin, path, what=f"write {index}", timeout=timeout
    )
    others = [n for n in names if n != origin]
    if own is None:
        return {"origin": origin, "complete": False, "reached": 0, "of": len(others)}
    at, version = own
    arrivals = sorted(
        got[0] - written for p in others if (got := logs.arrival(p, origin, version)) is not None
    )
    return {
        "origin": origin,
        "complete": complete,
        "reached": len(arrivals),
        "of": len(others),
        "scan_s": at - written,
        "min_s": arrivals[0] if arrivals else None,
        "median_s": median(arrivals),
        "max_s": arrivals[-1] if arrivals else None,
    }


def run_cluster(args: argparse.Namespace, watch: bool) -> dict[str, Any]:
    """One cluster with the watcher ``watch``: idle CPU, then the drops."""
    label = "watch" if watch else "nowatch"
    cluster = loopback_cluster(f"propagation-{label}", args, reap=300)
    cluster.config["watch"] = watch
    cluster.path.write_text(json.dumps(cluster.config, indent=1) + "\n")
    names, work = cluster.names, cluster.work
    (work / "logs").mkdir()
    logs = Logs(work / "logs", names)
    timeout = args.scan + 30 if not watch else 30.0
    lifetime = args.converge + 60 + args.idle + args.drops * (timeout + 2 * args.push)
    figures: dict[str, Any] = {"watch": watch}
    try:
        with Children(lifetime) as children:
            procs = start_peers(children, names, cluster.path, work / "logs")
            wait_started(logs, procs, "propagation")
            if not wait_converged(logs, names, args.converge):
                raise SystemExit(f"propagation ({label}): not converged within {args.converge:g} s")
            print(f"{label}: {len(names)} peers running and converged", flush=True)

            time.sleep(2 * args.push)  # the relays of the joins die down
            before = {n: cpu_seconds(p.pid) for n, p in procs.items()}
            machine = cpu_times()
            began = time.monotonic()
            time.sleep(args.idle)
            window = time.monotonic() - began
            idle = sorted(100 * (cpu_seconds(p.pid) - before[n]) / window for n, p in procs.items())
            busy = busy_since(machine)
            figures["idle_cpu_percent"] = {"min": idle[0], "median": median(idle), "max": idle[-1]}
            rss = sorted(memory_kb(p.pid)["VmRSS"] / 1024 for p in procs.values())
            figures["rss_mib"] = {"min": rss[0], "median": median(rss), "max": rss[-1]}
            figures["idle_window_s"] = window
            figures["cpus_busy_while_idle"] = busy
            print(
                f"{label}: idle CPU per process over {window:.0f} s: median {median(idle):.2f}%"
                f" (min {idle[0]:.2f}%, max {idle[-1]:.2f}%); CPUs busy"
                f" {', '.join(f'{b:.0%}' for b in busy)}",
                flush=True,
            )

            drops = []
            for i in range(args.drops):
                origin = names[(len(names) // 2 + i * 7) % len(names)]
                result = one_drop(
                    logs, names, origin, folder=work / "folders" / origin, index=i, timeout=timeout
                )
                drops.append(result)
                if result.get("max_s") is not None:
                    print(
                        f"{label}: write {i + 1} at {origin}: its scan after"
                        f" {result['scan_s']:.3f} s; {result['reached']}/{result['of']} peers,"
                        f" min {result['min_s']:.3f} s, median {result['median_s']:.3f} s,"
                        f" max {result['max_s']:.3f} s",
                        flush=True,
                    )
                else:
                    print(f"{label}: write {i + 1} at {origin}: never scanned", flush=True)
                time.sleep(2 * args.push)  # let the relays of this news die down
            figures["drops"] = drops
            figures["alive_at_end"] = sum(1 for p in procs.values() if p.poll() is None)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return figures


def benchmark(args: argparse.Namespace) -> int:
    terminate_on_signals()
    runs = {label: run_cluster(args, watch) for label, watch in (("on", True), ("off", False))}
    rows = []
    for label, run in runs.items():
        for i, d in enumerate(run["drops"]):
            rows.append(
                [
                    label,
                    i + 1,
                    f"{d['reached']}/{d['of']}",
                    d.get("scan_s", float("nan")),
                    d.get("min_s") or float("nan"),
                    d.get("median_s", float("nan")),
                    d.get("max_s") or float("nan"),
                ]
            )
    print()
    print(
        f"{args.peers} processes on loopback, push {args.push:g} s, scan {args.scan:g} s:"
        " seconds from the write to each receiver taking the new version"
    )
    print(table(["watch", "write", "reached", "scan s", "min s", "median s", "max s"], rows))
    medians = {
        label: median([d["median_s"] for d in run["drops"] if d.get("max_s") is not None])
        for label, run in runs.items()
    }
    ratio = medians["off"] / medians["on"]
    print(
        f"median of the per-write medians: on {medians['on']:.3f} s, off {medians['off']:.3f} s;"
        f" off / on = {ratio:.0f}"
    )
    idle = {label: run["idle_cpu_percent"] for label, run in runs.items()}
    print(
        table(
            ["idle CPU % per process", "min", "median", "max"],
            [[f"watch {label}", v["min"], v["median"], v["max"]] for label, v in idle.items()],
        )
    )
    figures = {
        "peers": args.peers,
        "push": args.push,
        "scan": args.scan,
        "runs": runs,
        "median_s": medians,
        "ratio_off_on": ratio,
    }
    print(f"path: {write_out('propagation', figures)}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description="A write's way to every peer, with the folder watcher on and off."
    )
    parser.add_argument("--peers", type=int, default=30, help="processes (default 30)")
    parser.add_argument("--push", type=float, default=0.5, help="push interval s (default 0.5)")
    parser.add_argument("--relay", type=float, help="relay interval s (default: as --push)")
    parser.add_argument("--scan", type=float, default=60.0, help="scan interval s (default 60)")
    parser.add_argument("--drops", type=int, default=3, help="writes per run (default 3)")
    parser.add_argument("--idle", type=float, default=20.0, help="idle CPU window s (default 20)")
    parser.add_argument("--port", type=int, default=23_000, help="first port (default 23000)")
    parser.add_argument("--host", default="127.0.0.1", help="a loopback address")
    parser.add_argument(
        "--converge", type=float, default=120.0, help="s to wait for convergence (default 120)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work folders and logs")
    args = parser.parse_args()
    if args.peers < 2 or args.drops < 1 or args.idle <= 0:
        parser.error("need at least 2 peers, 1 write and an idle window")
    return benchmark(args)


if __name__ == "__main__":
    sys.exit(main())
