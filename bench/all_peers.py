"""A thousand peers in one process (``--all``): convergence, memory, CPU per peer.

    python bench/all_peers.py [--peers 1000] [--push 30] [--max-seconds 300]

Runs ``python -m trio_gossip --all`` with a generated config of ``--peers``
peers on consecutive loopback ports (``--all`` raises its own open-file
limit), then every few seconds asks a fixed random sample of peers for their
view (the ``--info --json`` client) until each sampled peer knows every
origin. Then it reads the process's memory (``/proc/PID/status``: VmRSS,
VmHWM) and its CPU time (``/proc/PID/stat``: utime + stime) over a window of
``--window-rounds`` push rounds, and reports CPU per peer per round.

All peers share one trio thread, so the process can use one core at most
(scans run in worker threads): a push interval is sustainable when the
process needs well under 100 % of a core at it. Measured on 2 cores with
1,000 peers: at push 5 s and 10 s the process stays at 100 % of its core
from the start, its sockets queue up to 1.7 GB, and after 4 minutes only
60 % of the peer-origin pairs are known; at 30 s it runs at about 40 % once
the sample knows everything. Hence the default of 30 s. A cold start has
999,000 transfers to do, so within the default bound the last few origins
may still be missing; ``--max-seconds 600`` lets it finish.
"""

from __future__ import annotations

import argparse
import random
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import attrs

# Run as ``python bench/NAME.py``: make the ``bench`` package importable.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.gen_config import write_config
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
    udp_drops,
    write_out,
)

TOOK = re.compile(rb"INFO \S+?(\d+): \S+?(\d+) (?:joined|changed|restarted), version ")


class Takes:
    """Which peer took which origin's entry, from the INFO log ("X: Y joined, version")."""

    def __init__(self, path: Path, count: int) -> None:
        self.path = path
        self.count = count
        self.offset = 0
        self.taken = bytearray(count * count)  # [peer * count + origin]
        self.total = 0

    def read(self) -> int:
        """Read what the log gained; the number of (peer, origin) pairs taken so far."""
        with self.path.open("rb") as f:
            f.seek(self.offset)
            chunk = f.read()
        end = chunk.rfind(b"\n") + 1
        self.offset += end
        for m in TOOK.finditer(chunk, 0, end):
            i = int(m.group(1)) * self.count + int(m.group(2))
            if not self.taken[i]:
                self.taken[i] = 1
                self.total += 1
        return self.total


def benchmark(args: argparse.Namespace) -> int:
    terminate_on_signals()
    cluster = loopback_cluster("all", args, reap=args.reap, max_datagram=args.max_datagram)
    host, names, work, config, config_path = attrs.astuple(cluster, recurse=False)
    if not args.watch:
        # A watcher is a thread per peer: a thousand of them, waiting on trio's
        # worker threads, hold up the peers' first scans (the process never
        # came up). The scan interval is the safety net anyway; nothing changes here.
        config["watch"] = False
        write_config(config, config_path)
    rng = random.Random(args.seed)
    sample = sorted(rng.sample(range(len(names)), min(args.sample, len(names))))
    addresses = [(host, args.port + i) for i in sample]
    figures: dict[str, Any] = {
        "peers": len(names),
        "receive_buffer": args.receive_buffer,
        "intervals": config["intervals"],
        "max_datagram": args.max_datagram or 8192,
        "sample": [names[i] for i in sample],
    }
    trace: list[dict[str, Any]] = []
    start = time.monotonic()
    deadline = start + args.max_seconds
    try:
        with Children(args.max_seconds + 60) as children, (work / "all.log").open("wb") as log:
            argv = [sys.executable, "-m", "trio_gossip"]
            if args.receive_buffer is not None:  # the same command, with another buffer size
                run_peer = Path(__file__).resolve().parent / "run_peer.py"
                argv = [sys.executable, str(run_peer), "--receive-buffer", str(args.receive_buffer)]
                argv.append("--")
            argv += ["--all", "--config", str(config_path)]
            proc = children.start([*argv, "--log-level", args.log_level], stderr=log)
            pid = proc.pid
            print(f"{len(names)} peers in process {pid}; log {work / 'all.log'}", flush=True)

            # Up: every sampled peer answers.
            up = None
            while time.monotonic() < deadline and proc.poll() is None:
                shown = snapshots(addresses, attempts=1)
                if all(shown):
                    up = time.monotonic() - start
                    break
                time.sleep(1)
            if up is None:
                raise SystemExit(f"all_peers: the peers did not come up (exit {proc.poll()})")
            figures["up_s"] = up
            print(f"all sampled peers answer {up:.1f} s after launch", flush=True)

            converged_at = None
            known: list[int] = []
            takes = Takes(work / "all.log", len(names)) if args.log_level == "INFO" else None
            pairs = len(names) * (len(names) - 1)
            ports = range(args.port, args.port + len(names))
            window = args.window_rounds * args.push
            converge_by = deadline - window - 20  # keep time for the window
            while time.monotonic() < converge_by and proc.poll() is None:
                shown = snapshots(addresses, attempts=2, first_answer=args.first_answer)
                known = [len(s["origins"]) if s else -1 for s in shown]
                now = time.monotonic() - start
                taken = takes.read() if takes else -1
                queued, dropped = udp_drops(host, ports)
                trace.append(
                    {
                        "t_s": now,
                        "known": known,
                        "pairs_taken": taken,
                        "socket_drops": dropped,
                        "socket_queued_bytes": queued,
                        "cpu_s": cpu_seconds(pid),
                        **memory_kb(pid),
                    }
                )
                answered = [k for k in known if k >= 0]
                print(
                    f"  {now:6.1f} s: "
                    + (f"log: {taken / pairs:6.1%} of pairs taken; " if takes else "")
                    + f"{len(answered)}/{len(known)} sampled peers answered"
                    f" (knowing {min(answered, default=-1)}..{max(answered, default=-1)});"
                    f" full-socket drops {dropped:,};"
                    f" RSS {memory_kb(pid)['VmRSS'] / 1024:,.0f} MiB,"
                    f" CPU {cpu_seconds(pid):.0f} s",
                    flush=True,
                )
                if (takes is None or taken == pairs) and min(known) == len(names):
                    converged_at = now
                    break
                if takes is not None and taken == pairs and figures.get("log_complete_s") is None:
                    figures["log_complete_s"] = now  # every take logged; the sample may lag
                time.sleep(args.poll)
            figures["converged"] = converged_at is not None
            figures["converge_s"] = converged_at
            figures["converge_s_after_up"] = None if converged_at is None else converged_at - up
            known = known or [-1] * len(addresses)
            figures["sample_known"] = dict(zip(figures["sample"], known, strict=True))
            figures["cpu_until_converged_s"] = cpu_seconds(pid)
            figures["pairs_taken"] = takes.total if takes else None
            figures["pairs"] = pairs

            # Steady state (or whatever state it reached): memory, and CPU and
            # traffic over a window of push rounds.
            memory = memory_kb(pid)
            before = snapshots(addresses)
            cpu0, t0, machine = cpu_seconds(pid), time.monotonic(), cpu_times()
            time.sleep(window)
            cpu1, t1, busy = cpu_seconds(pid), time.monotonic(), busy_since(machine)
            after = snapshots(addresses, attempts=2, first_answer=args.first_answer)
            # Asking costs the peer datagrams too (a large view is many info parts):
            # ask once more at once, and take what one asking costs off the window.
            again = snapshots(addresses, attempts=2, first_answer=args.first_answer)
            memory_after = memory_kb(pid)
            alive = proc.poll() is None
            stop_started = time.monotonic()
            status = children.stop(proc, grace=30)
            figures["stop_s"] = time.monotonic() - stop_started
            figures["exit_status"] = status
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    span = t1 - t0
    rounds = span / args.push
    cpu = cpu1 - cpu0

    def per_round(key: str) -> list[float]:
        out = []
        for b, a, c in zip(before, after, again, strict=True):
            if a and b and c:
                asking = c["statistics"][key] - a["statistics"][key]
                out.append((a["statistics"][key] - b["statistics"][key] - asking) / rounds)
        return out

    sent = per_round("datagrams_out")
    received = per_round("datagrams_in")
    figures.update(
        {
            "alive_after_window": alive,
            "memory_kib_at_convergence": memory,
            "memory_kib_after_window": memory_after,
            "rss_kib_per_peer": memory_after["VmRSS"] / len(names),
            "window_s": span,
            "window_rounds": rounds,
            "cpu_window_s": cpu,
            "cpu_share_of_one_core": cpu / span if span else None,
            "cpus_busy_in_window": busy,
            "cpu_ms_per_peer_per_round": cpu / len(names) / rounds * 1e3 if rounds else None,
            "datagrams_out_per_peer_per_round": median(sent),
            "datagrams_in_per_peer_per_round": median(received),
            "trace": trace,
        }
    )
    print()
    print(
        f"{len(names)} peers in one process (--all), push {args.push:g} s,"
        f" relay {config['intervals']['relay']:g} s, scan {args.scan:g} s,"
        f" max_datagram {figures['max_datagram']}"
    )
    share = figures["cpu_share_of_one_core"]
    rows: list[list[object]] = [
        ["up (sample answers)", f"{up:.1f} s"],
        [
            "converged (sample knows all)",
            "no"
            if converged_at is None
            else f"{converged_at:.1f} s ({converged_at - up:.1f} after up)",
        ],
        [
            "sample's origins known",
            f"{min(known)}..{max(known)} of {len(names)} (-1: no answer)",
        ],
        ["CPU until converged", f"{figures['cpu_until_converged_s']:.1f} s"],
        [
            "VmRSS / VmHWM",
            f"{memory_after['VmRSS'] / 1024:,.0f} / {memory_after['VmHWM'] / 1024:,.0f} MiB",
        ],
        ["RSS per peer", f"{memory_after['VmRSS'] / len(names):,.0f} KiB"],
        ["CPU in window", f"{cpu:.1f} s over {span:.1f} s = {share:.0%} of one core"],
        ["CPUs busy in window (all load)", ", ".join(f"{b:.0%}" for b in busy)],
        ["CPU per peer per round", f"{figures['cpu_ms_per_peer_per_round']:.2f} ms"],
        ["datagrams per peer per round", f"out {median(sent):.1f}, in {median(received):.1f}"],
        ["stopped on SIGTERM", f"{figures['stop_s']:.1f} s, exit status {status}"],
    ]
    print(table(["figure", "value"], rows))
    verdict = "sustainable" if share is not None and share < 0.7 else "NOT comfortably sustainable"
    print(f"push {args.push:g} s with {len(names)} peers on one core: {verdict}")
    print(f"path: {write_out('all_peers', figures)}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description="--all with many peers: converge, memory, CPU.")
    parser.add_argument("--peers", type=int, default=1000, help="peers (default 1000)")
    parser.add_argument("--push", type=float, default=30.0, help="push interval s (default 30)")
    parser.add_argument("--relay", type=float, help="relay interval s (default: as --push)")
    parser.add_argument("--scan", type=float, default=60.0, help="scan interval s (default 60)")
    parser.add_argument("--reap", type=float, default=600.0, help="reap after s (default 600)")
    parser.add_argument("--max-datagram", type=int, help="bytes (default: the peer's, 8192)")
    parser.add_argument("--port", type=int, default=30_000, help="first port (default 30000)")
    parser.add_argument("--host", default="127.0.0.1", help="a loopback address")
    parser.add_argument("--sample", type=int, default=10, help="peers asked (default 10)")
    parser.add_argument("--seed", type=int, default=1, help="for the sample")
    parser.add_argument("--poll", type=float, default=15.0, help="s between looks (default 15)")
    parser.add_argument("--window-rounds", type=float, default=2, help="CPU window, rounds")
    parser.add_argument("--max-seconds", type=float, default=300.0, help="bound (default 300)")
    parser.add_argument(
        "--first-answer", type=float, default=5.0, help="s a busy peer has to answer --info"
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        help="the peers' (default INFO: progress is read from the log's ~N*N takes,"
        " which costs the peers some CPU; WARNING: from --info of the sample only)",
    )
    parser.add_argument(
        "--receive-buffer",
        type=int,
        help="SO_RCVBUF per socket, bytes (default: the peer's, 4 MiB; runs bench/run_peer.py)",
    )
    parser.add_argument(
        "--watch", action="store_true", help="watch the folders (default: off, scan only)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work folder and log")
    args = parser.parse_args()
    if args.peers < 2:
        parser.error("need at least 2 peers")
    return benchmark(args)


if __name__ == "__main__":
    sys.exit(main())
