"""Many peer processes on loopback: convergence, how fast a new file spreads, memory.

    python bench/processes.py [--peers 50] [--push 1] [--scan 0.5] [--drops 3]

Starts ``--peers`` separate ``python -m trio_gossip NAME`` processes (a
generated config on consecutive loopback ports), waits until every peer has
taken every other peer's entry, then ``--drops`` times drops a new file into
one peer's folder and times, from the peers' own log lines, when each peer
took the new version:

* ``X: own folder changed, version V: …`` in the origin's log: its scan saw
  the file;
* ``Y: X changed, version V: …`` in Y's log: Y took it (the line does not say
  from whom, so the hops are unknown: -1).

Log times have millisecond resolution. Every process is killed at the end,
whatever happens (and each dies by itself after its lifetime).
"""

from __future__ import annotations

import argparse
import datetime
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

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
    snapshots,
    table,
    terminate_on_signals,
    wait_until,
    write_out,
)

_TIME = r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})"
STARTED = re.compile(rf"^{_TIME} INFO (\S+): started on ")
# The peers' event lines (trio_gossip/logs.py, ``describe``): a new version of
# our own folder, or another origin's taken here.
EVENT = re.compile(
    rf"^{_TIME} INFO (\S+): (own folder|\S+) (joined|changed|restarted), version (\d+)[;:]"
)


def log_time(text: str) -> float:
    """A log line's time (local, as ``logging`` writes it) as a Unix time."""
    return datetime.datetime.strptime(text, "%Y-%m-%d %H:%M:%S,%f").timestamp()


class Logs:
    """The peers' log files, parsed as they grow."""

    def __init__(self, folder: Path, names: Sequence[str]) -> None:
        self.paths = {name: folder / f"{name}.log" for name in names}
        self.offsets = dict.fromkeys(names, 0)
        self.started: dict[str, float] = {}
        #: origin -> [(time, version)] from its own "own folder" event lines
        self.own: dict[str, list[tuple[float, int]]] = {n: [] for n in names}
        #: (peer, origin) -> [(time, version, from)]
        self.took: dict[tuple[str, str], list[tuple[float, int, str]]] = {}

    def read(self) -> None:
        for name, path in self.paths.items():
            try:
                with path.open("rb") as f:
                    f.seek(self.offsets[name])
                    chunk = f.read()
            except FileNotFoundError:
                continue
            end = chunk.rfind(b"\n") + 1  # whole lines only
            self.offsets[name] += end
            for line in chunk[:end].decode(errors="replace").splitlines():
                self._line(line)

    def _line(self, line: str) -> None:
        if m := EVENT.match(line):
            when, peer, origin, _, version = m.groups()
            at = log_time(when)
            if origin == "own folder":
                self.own[peer].append((at, int(version)))
            else:
                # An event line does not name the peer it came from: "?".
                self.took.setdefault((peer, origin), []).append((at, int(version), "?"))
        elif m := STARTED.match(line):
            self.started[m.group(2)] = log_time(m.group(1))

    def knows(self, peer: str) -> int:
        """How many other origins ``peer`` has taken an entry of."""
        return sum(1 for (p, _) in self.took if p == peer)

    def arrival(self, peer: str, origin: str, version: int) -> tuple[float, str] | None:
        """When ``peer`` first took ``origin`` at ``version`` or later, and from whom."""
        for when, v, sender in self.took.get((peer, origin), []):
            if v >= version:
                return when, sender
        return None


def start_peers(
    children: Children, names: Sequence[str], config: Path, logs: Path
) -> dict[str, subprocess.Popen[bytes]]:
    """``python -m trio_gossip NAME --config CONFIG`` for each name, its log in ``logs``."""
    procs = {}
    for name in names:
        with (logs / f"{name}.log").open("wb") as log:
            argv = [sys.executable, "-m", "trio_gossip", name, "--config", str(config)]
            procs[name] = children.start(argv, stderr=log)
    return procs


def wait_started(logs: Logs, procs: dict[str, subprocess.Popen[bytes]], what: str) -> None:
    """Until every peer's log says it started (60 s at most, or ``SystemExit``)."""

    def all_started() -> bool:
        logs.read()
        return len(logs.started) == len(procs)

    if not wait_until(all_started, 60, 0.2):
        dead = [n for n, p in procs.items() if p.poll() is not None]
        raise SystemExit(f"{what}: not all peers started (exited: {dead[:5]})")


def wait_converged(logs: Logs, names: Sequence[str], seconds: float) -> bool:
    """Until every peer has taken every other origin's entry; whether it did
    within ``seconds``."""

    def converged() -> bool:
        logs.read()
        return all(logs.knows(n) == len(names) - 1 for n in names)

    return wait_until(converged, seconds, 0.25)


def write_and_wait(
    logs: Logs, names: Sequence[str], origin: str, path: Path, *, what: str, timeout: float
) -> tuple[float, bool, tuple[float, int] | None]:
    """Write ``path`` (a file of ``origin``'s folder, saying ``what`` and when)
    and wait, ``timeout`` s at most, until every other peer took the version
    it made: when it was written, whether they all did, and when the origin
    published which version (``None``: it did not)."""
    written = time.time()
    path.write_text(f"{what} at {written}\n")
    others = [n for n in names if n != origin]

    def published() -> tuple[float, int] | None:
        logs.read()
        return next(((t, v) for t, v in logs.own[origin] if t >= written - 0.002), None)

    def everyone() -> bool:
        own = published()
        return own is not None and all(logs.arrival(p, origin, own[1]) for p in others)

    complete = wait_until(everyone, timeout, 0.05)
    return written, complete, published()


def spread(
    logs: Logs, names: Sequence[str], origin: str, *, folder: Path, index: int, timeout: float
) -> dict[str, Any]:
    """Drop a file into ``origin``'s folder; time until every peer took the new version."""
    path = folder / f"bench-{index}.txt"
    dropped, done, own = write_and_wait(
        logs, names, origin, path, what=f"drop {index}", timeout=timeout
    )
    others = [n for n in names if n != origin]
    if own is None:
        return {"origin": origin, "complete": False, "reached": 0}
    published, version = own
    arrivals: dict[str, float] = {}
    senders: dict[str, str] = {}
    for peer in others:
        got = logs.arrival(peer, origin, version)
        if got is not None:
            arrivals[peer] = got[0] - published
            senders[peer] = got[1]
    hops = {origin: 0}

    def hop(peer: str) -> int:
        """Datagram hops from the origin to ``peer``, following who sent it (-1: unknown)."""
        if peer not in hops:
            hops[peer] = -1  # a guard, should the senders ever form a cycle
            sender = senders.get(peer)
            if sender is not None and (sender == origin or sender in senders):
                before = hop(sender)
                hops[peer] = before + 1 if before >= 0 else -1
        return hops[peer]

    depth = [hop(p) for p in senders]
    times = sorted(arrivals.values())
    return {
        "origin": origin,
        "complete": done,
        "reached": len(arrivals),
        "of": len(others),
        "version": version,
        "scan_delay_s": published - dropped,
        "first_s": times[0] if times else None,
        "median_s": median(times),
        "p90_s": times[int(0.9 * (len(times) - 1))] if times else None,
        "last_s": times[-1] if times else None,
        "from_origin": sum(1 for s in senders.values() if s == origin),
        "max_hops": max(depth, default=0),
        "median_hops": median([float(d) for d in depth]),
    }


def benchmark(args: argparse.Namespace) -> int:
    terminate_on_signals()
    cluster = loopback_cluster("processes", args, reap=300)
    host, names, work, config, config_path = attrs.astuple(cluster, recurse=False)
    (work / "logs").mkdir()
    logs = Logs(work / "logs", names)
    lifetime = args.converge_timeout + args.drops * args.spread_timeout + 120
    figures: dict[str, Any] = {
        "peers": len(names),
        "intervals": config["intervals"],
    }
    try:
        with Children(lifetime) as children:
            launched = time.time()
            procs = start_peers(children, names, config_path, work / "logs")
            print(f"{len(names)} peer processes started, logs in {work / 'logs'}", flush=True)
            wait_started(logs, procs, "processes")
            up = max(logs.started.values())
            figures["startup_s"] = up - launched
            print(f"all running {up - launched:.1f} s after launch", flush=True)

            ok = wait_converged(logs, names, args.converge_timeout)
            took_first = [
                min(t for t, _, _ in logs.took[(p, o)])
                for p in names
                for o in names
                if (p, o) in logs.took
            ]
            figures["converged"] = ok
            figures["converge_s"] = max(took_first) - up if took_first else None
            if not ok:
                short = sum(1 for n in names if logs.knows(n) < len(names) - 1)
                print(f"NOT converged after {args.converge_timeout:g} s: {short} peers short")
            else:
                rounds = figures["converge_s"] / args.push
                print(
                    f"converged: every peer took every entry {figures['converge_s']:.2f} s"
                    f" ({rounds:.1f} push rounds) after the last peer started",
                    flush=True,
                )
            shown = snapshots([(host, args.port + i) for i in range(len(names))])
            counts = [len(s["origins"]) if s else 0 for s in shown]
            figures["info_origins_min"] = min(counts)
            figures["info_answered"] = sum(1 for s in shown if s)
            print(
                f"--info: {figures['info_answered']}/{len(names)} answered;"
                f" origins known: min {min(counts)}, max {max(counts)}",
                flush=True,
            )

            drops = []
            cpu_start = {n: cpu_seconds(p.pid) for n, p in procs.items()}
            measured_from = time.monotonic()
            machine = cpu_times()
            for i in range(args.drops):
                origin = names[(len(names) // 2 + i * 7) % len(names)]
                folder = work / "folders" / origin
                result = spread(
                    logs, names, origin, folder=folder, index=i, timeout=args.spread_timeout
                )
                drops.append(result)
                if result.get("last_s") is not None:
                    print(
                        f"drop {i + 1} into {origin}: scan {result['scan_delay_s']:.2f} s, then"
                        f" {result['reached']}/{result['of']} peers; median"
                        f" {result['median_s']:.2f} s, last {result['last_s']:.2f} s"
                        f" = {result['last_s'] / args.push:.1f} push rounds;"
                        f" max hops {result['max_hops']}",
                        flush=True,
                    )
                else:
                    print(f"drop {i + 1} into {origin}: the scan never saw it", flush=True)
                time.sleep(args.push * 2)  # let the relays of this news die down
            window = time.monotonic() - measured_from
            busy = busy_since(machine)
            cpu = {n: cpu_seconds(p.pid) - cpu_start[n] for n, p in procs.items()}
            memory = {n: memory_kb(p.pid) for n, p in procs.items()}
            final = snapshots([(host, args.port + i) for i in range(len(names))])
            alive = sum(1 for p in procs.values() if p.poll() is None)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    rss = sorted(m["VmRSS"] / 1024 for m in memory.values())
    hwm = sorted(m["VmHWM"] / 1024 for m in memory.values())
    cpu_pct = sorted(100 * c / window for c in cpu.values())
    out_per_s = [
        s["statistics"]["datagrams_out"] / max(1e-9, time.time() - launched) for s in final if s
    ]
    figures.update(
        {
            "alive_at_end": alive,
            "drops": drops,
            "rss_mib": {"min": rss[0], "median": median(rss), "max": rss[-1], "sum": sum(rss)},
            "hwm_mib": {"min": hwm[0], "median": median(hwm), "max": hwm[-1]},
            "cpu_percent_per_process": {
                "min": cpu_pct[0],
                "median": median(cpu_pct),
                "max": cpu_pct[-1],
                "window_s": window,
            },
            "datagrams_out_per_s_per_peer": median(out_per_s),
            "cpus_busy_during_drops": busy,
            "peers_cpu_share_during_drops": sum(cpu.values()) / window,
        }
    )
    done = [d for d in drops if d.get("last_s") is not None]
    print()
    print(
        f"{len(names)} peers, push {args.push:g} s, relay {config['intervals']['relay']:g} s,"
        f" scan {args.scan:g} s; {alive} alive at the end"
    )
    print(
        table(
            ["drop", "origin", "reached", "scan s", "median s", "p90 s", "last s", "last rounds"],
            [
                [
                    i + 1,
                    d["origin"],
                    f"{d['reached']}/{d.get('of', '?')}",
                    d.get("scan_delay_s", float("nan")),
                    d.get("median_s", float("nan")),
                    d.get("p90_s") or float("nan"),
                    d.get("last_s") or float("nan"),
                    (d.get("last_s") or float("nan")) / args.push,
                ]
                for i, d in enumerate(drops)
            ],
        )
    )
    if done:
        last = [d["last_s"] for d in done]
        figures["last_s_median"] = median(last)
        figures["last_rounds_median"] = median(last) / args.push
        print(
            f"after the scan, the last peer: median {median(last):.2f} s"
            f" = {median(last) / args.push:.1f} push rounds (best {min(last):.2f} s)"
        )
    print()
    print(
        table(
            ["per process", "min", "median", "max"],
            [
                ["RSS MiB", rss[0], median(rss), rss[-1]],
                ["peak RSS (VmHWM) MiB", hwm[0], median(hwm), hwm[-1]],
                ["CPU % (drops window)", cpu_pct[0], median(cpu_pct), cpu_pct[-1]],
            ],
        )
    )
    print(
        f"all {len(names)} processes: {sum(rss):,.0f} MiB RSS;"
        f" during the drops they used {sum(cpu.values()) / window:.0%} of one CPU,"
        f" the CPUs were busy {', '.join(f'{b:.0%}' for b in busy)} (the rest: other load)"
    )
    print(f"path: {write_out('processes', figures)}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description="Separate peer processes on loopback: convergence and the spread of a file."
    )
    parser.add_argument("--peers", type=int, default=50, help="processes (default 50)")
    parser.add_argument("--push", type=float, default=1.0, help="push interval s (default 1)")
    parser.add_argument("--relay", type=float, help="relay interval s (default: as --push)")
    parser.add_argument("--scan", type=float, default=0.5, help="scan interval s (default 0.5)")
    parser.add_argument("--drops", type=int, default=3, help="files to drop, one at a time")
    parser.add_argument("--port", type=int, default=22_000, help="first port (default 22000)")
    parser.add_argument("--host", default="127.0.0.1", help="a loopback address")
    parser.add_argument("--converge-timeout", type=float, default=120.0, help="s (default 120)")
    parser.add_argument("--spread-timeout", type=float, default=60.0, help="s per drop")
    parser.add_argument("--keep", action="store_true", help="keep the work folder and logs")
    args = parser.parse_args()
    if args.peers < 2 or args.drops < 0:
        parser.error("need at least 2 peers and 0 or more drops")
    return benchmark(args)


if __name__ == "__main__":
    sys.exit(main())
