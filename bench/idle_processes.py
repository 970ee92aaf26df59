"""``bench/idle.py --processes N``: the idle cost of N real peer processes on loopback.

Starts N separate ``python -m trio_gossip NAME`` processes with the
intervals of the simulated runs (push = relay = 1 s, scan 60 s, reap 300 s,
the default ``max_datagram``), waits until every peer has taken every other
origin (their log lines, ``bench/processes.py``), lets ``--warmup`` rounds
pass, and then, over ``--rounds`` push rounds of wall time, reads each
process's CPU (utime + stime from /proc/PID/stat, every thread, in 10 ms
clock ticks: hence a window of many rounds) and the datagrams and bytes it
sent (the counters of ``--info --json``, asked before and after the window).

It does this twice, one cluster after the other: the folder watcher on (the
default) and off (``"watch": false``); and, first, the simulated figure for
N in the same run (``bench/idle.py``'s child, the in-memory network under
``MockClock``), so both are measured on the same machine under the same load.

Every process is killed at the end, whatever happens (and each dies by
itself after its lifetime).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from collections.abc import Sequence
from typing import Any

import attrs
import trio

from bench.harness import (
    Children,
    busy_since,
    cpu_seconds,
    cpu_times,
    loopback_cluster,
    memory_kb,
    spread,
    table,
    terminate_on_signals,
    write_out,
)
from bench.processes import Logs, start_peers, wait_converged, wait_started
from trio_gossip import Address, NoAnswer, Transport, UdpNetwork, query

__all__ = ["benchmark"]


@attrs.define
class _Counted:
    """A transport that counts what it receives: the parts of one ``--info`` answer."""

    inner: Transport
    datagrams: int = 0
    size: int = 0

    @property
    def address(self) -> Address:
        return self.inner.address

    async def send(self, data: bytes, address: Address) -> bool:
        return await self.inner.send(data, address)

    async def receive(self) -> tuple[bytes, Address]:
        data, source = await self.inner.receive()
        self.datagrams += 1
        self.size += len(data)
        return data, source

    def close(self) -> None:
        self.inner.close()


@attrs.define
class _CountingNetwork:
    """Real UDP, remembering the last transport it bound (one per query)."""

    last: _Counted | None = None

    async def bind(self, address: Address) -> Transport:
        self.last = _Counted(await UdpNetwork().bind(address))
        return self.last


@attrs.frozen
class Sent:
    """A peer's ``datagrams_out`` and ``bytes_out`` at ``at`` (``time.monotonic``),
    and what its answer to this very query added to them afterwards."""

    at: float
    datagrams_out: int
    bytes_out: int
    answer_datagrams: int
    answer_bytes: int


def ask_counters(addresses: Sequence[Address]) -> list[Sent | None]:
    """Each peer's sent counters, from its ``--info --json`` snapshot.

    A snapshot's counters are read when the peer makes it, before it sends
    the answer's parts; those parts count in the next snapshot, so what this
    query received is returned to be subtracted (its parts, as received).
    """
    results: list[Sent | None] = [None] * len(addresses)

    async def ask(i: int) -> None:
        for _ in range(3):
            network = _CountingNetwork()
            sent = time.monotonic()
            try:
                shot = await query(addresses[i], network=network)
            except NoAnswer:
                continue
            stats, answer = shot["statistics"], network.last
            assert answer is not None
            results[i] = Sent(
                (sent + time.monotonic()) / 2,
                stats["datagrams_out"],
                stats["bytes_out"],
                answer.datagrams,
                answer.size,
            )
            return

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            for i in range(len(addresses)):
                nursery.start_soon(ask, i)

    trio.run(main)
    return results


def run_cluster(args: argparse.Namespace, watch: bool) -> dict[str, Any]:
    """``args.processes`` peer processes with the folder watcher ``watch``:
    converge, warm up, then measure ``args.rounds`` push rounds."""
    label = "watch" if watch else "nowatch"
    cluster = loopback_cluster(f"idle-{label}", args, reap=300)
    cluster.config["watch"] = watch
    cluster.path.write_text(json.dumps(cluster.config, indent=1) + "\n")
    names, work = cluster.names, cluster.work
    addresses = [(cluster.host, args.port + i) for i in range(len(names))]
    (work / "logs").mkdir()
    logs = Logs(work / "logs", names)
    window = args.rounds * args.push
    lifetime = 60 + args.converge + (args.warmup + 2) * args.push + window + 60
    figures: dict[str, Any] = {"watch": watch}
    try:
        with Children(lifetime) as children:
            procs = start_peers(children, names, cluster.path, work / "logs")
            wait_started(logs, procs, f"idle ({label})")
            if not wait_converged(logs, names, args.converge):
                raise SystemExit(f"idle ({label}): not converged within {args.converge:g} s")
            print(f"{label}: {len(names)} peer processes running and converged", flush=True)
            time.sleep(args.warmup * args.push)  # the relays of the joins die down

            first = ask_counters(addresses)
            before = {n: cpu_seconds(p.pid) for n, p in procs.items()}
            machine, load = cpu_times(), os.getloadavg()
            began = time.monotonic()
            time.sleep(window)
            measured = time.monotonic() - began
            cpu = [cpu_seconds(p.pid) - before[n] for n, p in procs.items()]
            busy = busy_since(machine)
            load_after = os.getloadavg()
            last = ask_counters(addresses)
            rss = [memory_kb(p.pid)["VmRSS"] / 1024 for p in procs.values()]
            alive = sum(1 for p in procs.values() if p.poll() is None)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    rounds = measured / args.push
    datagrams, sent_bytes = [], []
    for a, b in zip(first, last, strict=True):
        if a is None or b is None:
            continue
        peer_rounds = (b.at - a.at) / args.push
        datagrams.append((b.datagrams_out - a.datagrams_out - a.answer_datagrams) / peer_rounds)
        sent_bytes.append((b.bytes_out - a.bytes_out - a.answer_bytes) / peer_rounds)
    figures.update(
        peers=len(names),
        intervals=cluster.config["intervals"],
        window_s=measured,
        rounds=rounds,
        cpu_ms_per_round=spread([1e3 * c / rounds for c in cpu]),
        cpu_percent=spread([100 * c / measured for c in cpu]),
        cpu_ticks=spread([c * 100 for c in cpu]),
        answered=len(datagrams),
        info_answer_datagrams=sum(a.answer_datagrams for a in first if a) / max(1, len(datagrams)),
        datagrams_per_round=spread(datagrams) if datagrams else None,
        bytes_per_round=spread(sent_bytes) if sent_bytes else None,
        rss_mib=spread(rss),
        alive_at_end=alive,
        cpus_busy=busy,
        load_average=[load[0], load_after[0]],
    )
    print(
        f"{label}: over {measured:.1f} s ({rounds:.1f} rounds): CPU per process per round"
        f" median {figures['cpu_ms_per_round']['median']:.2f} ms"
        f" ({figures['cpu_percent']['median']:.2f}% of a core); CPUs busy"
        f" {', '.join(f'{b:.0%}' for b in busy)}; load {load[0]:.1f} -> {load_after[0]:.1f}",
        flush=True,
    )
    return figures


def benchmark(args: argparse.Namespace, simulate: Any) -> int:
    """The simulated figure for ``args.processes`` peers (``simulate(n)``, a
    child of ``bench/idle.py``), then the processes with the watcher on and off."""
    terminate_on_signals()
    n = args.processes
    simulated = simulate(n)
    print(
        f"simulated, N = {n}: {simulated['cpu_ms_per_peer_per_round']:.2f} ms per peer per round,"
        f" {simulated['datagrams_per_peer_per_round']:.2f} datagrams,"
        f" {simulated['bytes_per_peer_per_round']:,.0f} bytes",
        flush=True,
    )
    runs = {label: run_cluster(args, watch) for label, watch in (("on", True), ("off", False))}

    nan = float("nan")
    # The simulation's figures are totals over its N peers, divided by N: means.
    rows: list[list[object]] = [
        [
            "simulated (one process, MockClock)",
            nan,
            nan,
            nan,
            simulated["cpu_ms_per_peer_per_round"],
            nan,
            simulated["datagrams_per_peer_per_round"],
            round(simulated["bytes_per_peer_per_round"]),
        ]
    ]
    for label, run in runs.items():
        c, p = run["cpu_ms_per_round"], run["cpu_percent"]
        d, b = run["datagrams_per_round"], run["bytes_per_round"]
        rows.append(
            [
                f"processes, watcher {label}",
                c["median"],
                c["min"],
                c["max"],
                c["mean"],
                p["median"],
                d["mean"] if d else nan,
                round(b["mean"]) if b else nan,
            ]
        )
    print()
    print(
        f"N = {n}, idle and converged; push = relay = {args.push:g} s, scan {args.scan:g} s,"
        f" reap 300 s; {args.rounds} rounds measured after {args.warmup};"
        " CPU ms per peer per round: median, min, max and mean over the peers"
    )
    print(
        table(
            [
                "",
                "CPU ms median",
                "min",
                "max",
                "mean",
                "CPU % (median)",
                "datagrams/round",
                "bytes/round",
            ],
            rows,
        )
    )
    figures = {"n": n, "args": vars(args), "simulated": simulated, "processes": runs}
    print(f"path: {write_out('idle-processes', figures)}")
    return 0


def check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """One line and status 2 for what cannot be run."""
    if args.processes < 2:
        parser.error("--processes: at least 2 peers")
    if args.rounds < 1 or args.warmup < 0:
        parser.error("--rounds must be at least 1 and --warmup at least 0")
