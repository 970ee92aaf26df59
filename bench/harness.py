"""What the benchmarks share: bounded child processes, /proc readings, --info
snapshots, tables and the JSON written to ``bench/out``.

Every child is started through a tiny exec wrapper that pins it to the CPUs
asked for and arms ``alarm(lifetime)`` before exec'ing the real command: the
alarm survives ``exec``, so a child dies by itself (SIGALRM) even if the
benchmark that started it is killed. Each child leads its own process group;
:class:`Children` signals every group on the way out, whatever happened.
"""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from types import FrameType
from typing import IO, Any

import attrs
import trio

from trio_gossip import NoAnswer, query

__all__ = [
    "OUT",
    "REPO",
    "Children",
    "busy_since",
    "cpu_seconds",
    "cpu_times",
    "free_ports",
    "git_state",
    "median",
    "memory_kb",
    "snapshot",
    "snapshots",
    "table",
    "terminate_on_signals",
    "udp_drops",
    "udp_socket",
    "wait_until",
    "write_out",
]

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
OUT = BENCH / "out"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

# argv: cpus ("" for any), lifetime in seconds, then the command.
_LAUNCH = (
    "import os,signal,sys\n"
    "c=sys.argv[1]\n"
    "if c: os.sched_setaffinity(0,{int(x) for x in c.split(',')})\n"
    "signal.alarm(int(sys.argv[2]))\n"
    "os.execv(sys.argv[3],sys.argv[3:])\n"
)


class Children:
    """Child processes that cannot outlive ``lifetime`` seconds, nor this block."""

    def __init__(self, lifetime: float) -> None:
        self.lifetime = max(1, math.ceil(lifetime))
        self.procs: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> Children:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()

    def start(
        self,
        argv: Sequence[str],
        *,
        cpus: Iterable[int] | None = None,
        stdin: int | IO[Any] | None = subprocess.DEVNULL,
        stdout: int | IO[Any] | None = subprocess.DEVNULL,
        stderr: int | IO[Any] | None = subprocess.DEVNULL,
        cwd: Path | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start ``argv`` (``argv[0]`` a path) pinned to ``cpus``, in its own process group."""
        cpu_list = ",".join(str(c) for c in cpus) if cpus is not None else ""
        wrapped = [sys.executable, "-I", "-S", "-c", _LAUNCH, cpu_list, str(self.lifetime)]
        proc = subprocess.Popen(
            [*wrapped, *argv],
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            cwd=cwd,
            process_group=0,
        )
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes], grace: float = 5.0) -> int | None:
        """SIGTERM ``proc``'s group, then SIGKILL after ``grace`` s; its exit status."""
        _signal_group(proc, signal.SIGTERM)
        try:
            return proc.wait(grace)
        except subprocess.TimeoutExpired:
            _signal_group(proc, signal.SIGKILL)
            return proc.wait(5)

    def stop_all(self, grace: float = 5.0) -> None:
        for proc in self.procs:
            _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in self.procs:
            with suppress(subprocess.TimeoutExpired):
                proc.wait(max(0.0, deadline - time.monotonic()))
        for proc in self.procs:
            _signal_group(proc, signal.SIGKILL)  # the group: anything it left behind too
            with suppress(subprocess.TimeoutExpired):
                proc.wait(5)


def _signal_group(proc: subprocess.Popen[bytes], signum: signal.Signals) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signum)


def free_ports(host: str, port: int, count: int) -> bool:
    """Whether nothing is bound to ``host`` at ports ``port`` .. ``port + count - 1``."""
    for p in range(port, port + count):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            try:
                sock.bind((host, p))
            except OSError:
                return False
    return True


def terminate_on_signals() -> None:
    """SIGTERM and SIGHUP end the benchmark as Ctrl-C does, so its cleanup runs."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGHUP, handler)


# -- /proc ---------------------------------------------------------------------


def memory_kb(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak) of ``pid``, in KiB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time ``pid`` has used, in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def cpu_times() -> list[tuple[int, int]]:
    """``(busy, total)`` jiffies of each CPU since boot, from /proc/stat."""
    out = []
    for line in Path("/proc/stat").read_text().splitlines():
        name, *values = line.split()
        if name.startswith("cpu") and name != "cpu":
            ticks = [int(v) for v in values]
            idle = ticks[3] + ticks[4]  # idle, iowait
            out.append((sum(ticks[:8]) - idle, sum(ticks[:8])))
    return out


def busy_since(before: list[tuple[int, int]]) -> list[float]:
    """How busy each CPU was since ``before`` (:func:`cpu_times`), 0 to 1.

    The machine may be shared: what the benchmark's own processes did not use
    of this was someone else's load, and the figures say so.
    """
    now = cpu_times()
    return [
        (b1 - b0) / (t1 - t0) if t1 > t0 else math.nan
        for (b0, t0), (b1, t1) in zip(before, now, strict=True)
    ]


def udp_socket(host: str, port: int) -> tuple[int, int] | None:
    """``(rx_queue bytes, drops)`` of the IPv4 UDP socket bound to ``host:port``."""
    wanted = f"{_hex_ip(host)}:{port:04X}"
    with open("/proc/net/udp") as f:
        next(f)
        for line in f:
            fields = line.split()
            if fields[1] == wanted:
                rx_queue = int(fields[4].split(":")[1], 16)
                return rx_queue, int(fields[-1])
    return None


def udp_drops(host: str, ports: range) -> tuple[int, int]:
    """``(datagrams queued, datagrams dropped)`` over the sockets on ``host`` at ``ports``:
    drops are what arrived at a full socket since it was bound."""
    ip = _hex_ip(host)
    queued = dropped = 0
    with open("/proc/net/udp") as f:
        next(f)
        for line in f:
            fields = line.split()
            address, _, port = fields[1].partition(":")
            if address == ip and int(port, 16) in ports:
                queued += int(fields[4].split(":")[1], 16)
                dropped += int(fields[-1])
    return queued, dropped


def _hex_ip(host: str) -> str:
    # /proc/net/udp writes the address as the host-order integer of the network bytes.
    packed = bytes(int(x) for x in host.split("."))
    return f"{int.from_bytes(packed, sys.byteorder):08X}"


# -- --info --------------------------------------------------------------------


def snapshot(address: tuple[str, int], attempts: int = 3) -> dict[str, Any] | None:
    """What ``python -m trio_gossip X --info --json`` prints, or ``None`` if no answer."""
    return snapshots([address], attempts)[0]


def snapshots(
    addresses: Sequence[tuple[str, int]],
    attempts: int = 3,
    limit: int = 64,
    first_answer: float = 2.0,
) -> list[dict[str, Any] | None]:
    """The snapshots of many peers, asked concurrently (the same client as --info,
    which waits 2 s for an answer; a busy process may need longer)."""
    results: list[dict[str, Any] | None] = [None] * len(addresses)

    async def ask(i: int, limiter: trio.CapacityLimiter) -> None:
        async with limiter:
            for _ in range(attempts):
                try:
                    results[i] = await query(addresses[i], first_answer=first_answer)
                    return
                except NoAnswer:
                    continue

    async def main() -> None:
        limiter = trio.CapacityLimiter(limit)
        async with trio.open_nursery() as nursery:
            for i in range(len(addresses)):
                nursery.start_soon(ask, i, limiter)

    trio.run(main)
    return results


def wait_until(predicate: Callable[[], bool], timeout: float, step: float = 0.1) -> bool:
    """Poll ``predicate`` until it holds (``True``) or ``timeout`` s pass (``False``)."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(step)


# -- figures -------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


def spread(values: Sequence[float]) -> dict[str, float]:
    """The min, median, mean and max of ``values`` (not empty)."""
    ordered = sorted(values)
    return {
        "min": ordered[0],
        "median": median(ordered),
        "mean": sum(ordered) / len(ordered),
        "max": ordered[-1],
    }


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A plain text table, numbers right-aligned."""

    def cell(value: object) -> str:
        if isinstance(value, float):
            if math.isnan(value):
                return "-"
            return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
        if isinstance(value, int) and not isinstance(value, bool):
            return f"{value:,}"
        return str(value)

    text = [[cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in text)) for i, h in enumerate(headers)]
    numeric = [all(_numeric(r[i]) for r in text) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(w) if n else c.ljust(w) for c, w, n in zip(cells, widths, numeric, strict=True)
        ).rstrip()

    out = [line(headers), line(["-" * w for w in widths])]
    out.extend(line(r) for r in text)
    return "\n".join(out)


def _numeric(text: str) -> bool:
    return text == "-" or text.replace(",", "").replace(".", "", 1).lstrip("-+").isdigit()


def git_state() -> dict[str, Any]:
    """The commit measured, and which files differed from it (read-only git)."""

    def git(*args: str) -> str:
        try:
            return subprocess.run(
                ["git", "-C", str(REPO), *args],
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            ).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return ""

    dirty = [line[3:] for line in git("status", "--porcelain").splitlines()]
    return {"commit": git("rev-parse", "HEAD"), "modified": dirty}


def write_out(name: str, figures: dict[str, Any]) -> Path:
    """Write ``figures`` (with the machine and code measured) to ``bench/out/<name>.json``."""
    OUT.mkdir(exist_ok=True)
    record = {
        "benchmark": name,
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "argv": sys.argv,
        "python": sys.version.split()[0],
        "trio": trio.__version__,
        "cpus": os.cpu_count(),
        "code": git_state(),
        **figures,
    }
    path = OUT / f"{name}.json"
    path.write_text(json.dumps(record, indent=1) + "\n")
    return path


@contextmanager
def timed(label: str) -> Iterator[None]:
    start = time.monotonic()
    try:
        yield
    finally:
        print(f"  ({label}: {time.monotonic() - start:.1f} s)", flush=True)


@attrs.frozen
class Cluster:
    """A generated loopback cluster on disk: its peers, folder, config and file."""

    host: str
    names: list[str]
    work: Path
    config: dict[str, Any]
    path: Path


def loopback_cluster(
    label: str, args: Any, *, reap: float, max_datagram: int | None = None
) -> Cluster:
    """``args.peers`` peers on free ports from ``args.port`` (else exit with a
    line), with ``args.scan/push/relay`` and folders in a new temporary directory."""
    from bench.gen_config import loopback, make_config, names_for, write_config

    host = loopback(args.host)
    names = names_for(args.peers)
    if not free_ports(host, args.port, len(names)):
        raise SystemExit(f"{label}: ports {args.port}.. are not all free; choose --port")
    work = Path(tempfile.mkdtemp(prefix=f"bench-{label}-"))
    config = make_config(
        names,
        port=args.port,
        folders=work / "folders",
        host=host,
        scan=args.scan,
        push=args.push,
        relay=args.relay,
        reap=reap,
        max_datagram=max_datagram,
    )
    return Cluster(host, names, work, config, write_config(config, work / "config.json"))
