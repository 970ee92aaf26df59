"""The receiver's cost per datagram: one real peer process under a flood of valid datagrams.

    python bench/receiver.py [--seconds 3] [--repeat 3] [--load digest|want]

A three-peer config (A, B, C on loopback). Peer A runs as its own process,
pinned to CPU 0; B and C do not run. A load generator, pinned to CPU 1,
binds B's configured address (so A accepts what it sends), first hands A
B's entry (one part), then sends as fast as it can for ``--seconds``:

* ``--load digest`` (default): digests from B, each carrying a heartbeat of B
  one higher than the last (plus a line about A that A ignores): each goes
  through A's whole receive path (decode, checks, merge); none calls for an
  answer;
* ``--load want``: B asks for its own entry; A answers each with one part,
  so the send path counts too.

What A processed is read from A's own counters (``--info --json``:
``statistics.datagrams_in``) before and after, over the time from the first
datagram sent until A's socket queue (``/proc/net/udp``) is empty again; the
kernel's count of what it queued for A (sent less the socket's drops) is
kept beside it. A's CPU time over the same span gives the cost per datagram,
which, unlike the rate, does not depend on what else the machine runs.

Receivers, each measured in every round:

* ``baseline``: the original design, a thread doing ``sock.recvfrom``,
  ``pickle.loads`` and a dict update, fed the same digests pickled (it binds
  only loopback and unpickles only what comes from the generator's address);
* ``recvfrom``: A with one ``await sock.recvfrom()`` per datagram and
  ``await sock.sendto()`` per send (the transport as it was);
* ``drain``: A waiting with ``trio.lowlevel.wait_readable`` and then reading
  the socket without blocking until it is empty, a batch at a time;
* ``drain+direct``: and sending straight to the socket (``--load want``);
* ``cli``: ``python -m trio_gossip A`` exactly as shipped (its defaults);
* ``cli-before``: the same from another source tree (``--before DIR``, e.g.
  ``git worktree add DIR main``), to compare two versions in one run;
* ``raw-recvfrom``, ``raw-drain``: trio_gossip's UDP transport alone, in a
  process that only receives and counts: the transport's ceiling.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Run as ``python bench/NAME.py``: make the ``bench`` package importable.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import trio

from bench.gen_config import loopback, make_config, write_config
from bench.harness import (
    Children,
    busy_since,
    cpu_seconds,
    cpu_times,
    median,
    snapshot,
    table,
    terminate_on_signals,
    udp_socket,
    wait_until,
    write_out,
)
from trio_gossip import UdpNetwork
from trio_gossip.codec import encode
from trio_gossip.messages import Part, Want

BENCH = Path(__file__).resolve().parent
#: How each trio peer receives and sends (``bench/run_peer.py``); "cli" is
#: ``python -m trio_gossip`` as shipped, with its defaults.
STRATEGIES = {
    "recvfrom": ("recvfrom", "trio"),  # the transport before: await recvfrom, await sendto
    "drain": ("drain", "trio"),
    "drain+direct": ("drain", "direct"),
}
#: "raw-*": the transport alone, receiving and counting (no decoding, no peer).
KINDS = ("baseline", *STRATEGIES, "cli-before", "cli", "raw-recvfrom", "raw-drain")
DEFAULT_KINDS = {
    "digest": ("baseline", "recvfrom", "drain", "cli", "raw-recvfrom", "raw-drain"),
    "want": ("recvfrom", "drain", "drain+direct", "cli"),
}
#: Heartbeats from here on are 13 digits in JSON and 6 bytes in a pickle:
#: every datagram of a run has the same size.
FIRST_HEARTBEAT = 1 << 40
BATCH = 256  # datagrams between two looks at the clock


# -- the payloads ----------------------------------------------------------------


def json_template(gen_b: int, gen_a: int) -> tuple[bytes, bytes]:
    """The digest from B as bytes before and after B's heartbeat."""
    marker = FIRST_HEARTBEAT + 12_345
    text = (
        '{"proto":1,"type":"digest","sender":"B","reply":false,'
        f'"lines":[["B",{gen_b},1,{marker},false],["A",{gen_a},1,0,false]]}}'
    ).encode()
    head, _, tail = text.partition(str(marker).encode())
    return head, tail


def pickle_template(gen_b: int, gen_a: int) -> tuple[bytes, bytes]:
    """The same digest pickled, as bytes before and after B's 6-byte heartbeat."""
    marker = FIRST_HEARTBEAT + 12_345
    message = ("digest", "B", False, [("B", gen_b, 1, marker, False), ("A", gen_a, 1, 0, False)])
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    raw = marker.to_bytes(6, "little")
    assert data.count(raw) == 1
    head, _, tail = data.partition(raw)
    return head, tail


def want_datagram(gen_b: int) -> bytes:
    """B asks A for B's own entry: A answers each with one part (to B)."""
    return encode(Want("B", "B", gen_b, 1, -1, -1, -1, ()))


def _six_bytes(n: int) -> bytes:
    return n.to_bytes(6, "little")


def _nothing(n: int) -> bytes:
    return b""


# -- the roles run as child processes ---------------------------------------------


def generate(args: argparse.Namespace) -> int:
    """Send digests from ``--source`` to ``--target`` as fast as possible, bounded."""
    source = (loopback(args.host), args.source_port)
    target = (args.host, args.target_port)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(source)
    body: Callable[[int], bytes]
    if args.payload == "json":
        head, tail = json_template(args.gen_b, args.gen_a)
        body = b"%d".__mod__
    elif args.payload == "pickle":
        head, tail = pickle_template(args.gen_b, args.gen_a)
        body = _six_bytes
    else:
        head, tail = want_datagram(args.gen_b), b""
        body = _nothing
    sendto = sock.sendto
    heartbeat = FIRST_HEARTBEAT
    sent = errors = 0
    start = time.monotonic()
    end = start + args.seconds
    while sent < args.max_count:
        for _ in range(BATCH):
            data = head + body(heartbeat) + tail
            heartbeat += 1
            try:
                sendto(data, target)
            except OSError:
                errors += 1
        sent += BATCH
        if time.monotonic() >= end:
            break
    stop = time.monotonic()
    size = len(head + body(heartbeat) + tail)
    report = {"sent": sent, "errors": errors, "start": start, "stop": stop, "size": size}
    print(json.dumps(report), flush=True)
    sock.close()
    return 0


def baseline(args: argparse.Namespace) -> int:
    """The original design: a thread receiving, unpickling and updating a dict.

    Reports its count on each line read from stdin; stops when stdin closes.
    """
    me = (loopback(args.host), args.target_port)
    trusted = (args.host, args.source_port)  # only the generator's own data is unpickled
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.bind(me)
    view: dict[str, tuple[Any, ...]] = {}
    counts = {"datagrams": 0, "others": 0}

    def receive_loop() -> None:
        while True:
            data, source = sock.recvfrom(65_536)
            if source != trusted:
                counts["others"] += 1
                continue
            _, _, _, lines = pickle.loads(data)  # only our own generator's bytes
            view.update((line[0], line[1:]) for line in lines)
            counts["datagrams"] += 1

    threading.Thread(target=receive_loop, daemon=True).start()
    print("ready", flush=True)
    for _ in sys.stdin:
        print(json.dumps(counts), flush=True)
    return 0


def raw(args: argparse.Namespace) -> int:
    """The transport alone: trio_gossip's UDP receive, counting datagrams, nothing else.

    Reports its count on each line read from stdin; stops when stdin closes.
    """
    network = UdpNetwork(drain=args.strategy == "drain")
    count = 0

    async def main() -> None:
        transport = await network.bind((loopback(args.host), args.target_port))

        async def receive_loop() -> None:
            nonlocal count
            while True:
                await transport.receive()
                count += 1

        async with trio.open_nursery() as nursery:
            nursery.start_soon(receive_loop)
            print("ready", flush=True)
            while await trio.to_thread.run_sync(sys.stdin.readline, abandon_on_cancel=True):
                print(json.dumps({"datagrams": count}), flush=True)
            nursery.cancel_scope.cancel()
        transport.close()

    trio.run(main)
    return 0


# -- the benchmark ----------------------------------------------------------------


def run_one(kind: str, args: argparse.Namespace, work: Path, config_path: Path) -> dict[str, Any]:
    """One measurement of ``kind`` under the same load."""
    host, port_a, port_b = args.host, args.port, args.port + 1
    address_a = (host, port_a)
    gen_b = time.time_ns()
    lifetime = args.seconds + 60
    with Children(lifetime) as children, (work / f"{kind}.log").open("wb") as log:
        if kind == "baseline" or kind.startswith("raw-"):
            role = ["--role", "baseline"] if kind == "baseline" else ["--role", "raw"]
            if kind.startswith("raw-"):
                role += ["--strategy", kind.removeprefix("raw-")]
            receiver = children.start(
                [sys.executable, __file__, *role, *_ports(args)],
                cpus=[0],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
            )
            assert receiver.stdin is not None and receiver.stdout is not None
            stdin, stdout = receiver.stdin, receiver.stdout
            if stdout.readline().strip() != b"ready":
                raise SystemExit(f"receiver: the {kind} receiver did not start")

            def count() -> int:
                stdin.write(b"count\n")
                stdin.flush()
                return int(json.loads(stdout.readline())["datagrams"])

            gen_a = time.time_ns()  # as a peer would have: same sizes
        else:
            where = None
            if kind in ("cli", "cli-before"):
                argv = [sys.executable, "-m", "trio_gossip"]
                # ``-m`` looks in the working folder first: that tree's trio_gossip.
                where = args.before if kind == "cli-before" else None
            else:
                receive, send = STRATEGIES[kind]
                argv = [sys.executable, str(BENCH / "run_peer.py")]
                argv += ["--receive", receive, "--send", send, "--"]
            argv += ["A", "--config", str(config_path)]
            receiver = children.start(argv, cpus=[0], stderr=log, cwd=where)
            if not wait_until(lambda: snapshot(address_a, 1) is not None, 30, 0.2):
                raise SystemExit(f"receiver: peer A ({kind}) did not answer --info")
            _give_b(address_a, port_b, gen_b)
            if not wait_until(lambda: "B" in (snapshot(address_a) or {}).get("origins", {}), 10):
                raise SystemExit("receiver: A did not take B's entry")
            first = snapshot(address_a)
            assert first is not None
            gen_a = first["origins"]["A"]["generation"]

            def count() -> int:
                shown = snapshot(address_a, 5)
                if shown is None:
                    raise SystemExit(f"receiver: peer A ({kind}) stopped answering")
                return int(shown["statistics"]["datagrams_in"])

        before = count()
        queued = udp_socket(host, port_a)
        assert queued is not None
        drops_before = queued[1]
        cpu_before = cpu_seconds(receiver.pid)
        machine = cpu_times()
        generator = children.start(
            [
                sys.executable,
                __file__,
                "--role",
                "generate",
                "--payload",
                "pickle" if kind == "baseline" else args.load.replace("digest", "json"),
                "--seconds",
                str(args.seconds),
                "--gen-a",
                str(gen_a),
                "--gen-b",
                str(gen_b),
                *_ports(args),
            ],
            cpus=[1],
            stdout=subprocess.PIPE,
            stderr=log,
        )
        out, _ = generator.communicate(timeout=args.seconds + 30)
        load = json.loads(out)
        # A drains its backlog: the span ends when the socket's queue is empty.
        wait_until(lambda: (udp_socket(host, port_a) or (0, 0))[0] == 0, 30, 0.001)
        drained = time.monotonic()
        cpu = cpu_seconds(receiver.pid) - cpu_before
        busy = busy_since(machine)
        after = count()
        queued = udp_socket(host, port_a)
        drops = (queued[1] if queued else drops_before) - drops_before
        alive = receiver.poll() is None
        children.stop(receiver)
    peer = kind in STRATEGIES or kind.startswith("cli")
    processed = after - before - (1 if peer else 0)  # the --info request
    span = drained - load["start"]
    return {
        "kind": kind,
        "processed": processed,
        "span_s": span,
        "rate": processed / span,
        "cpu_s": cpu,
        "cpu_us_per_datagram": cpu / processed * 1e6 if processed else None,
        # Below 1, something else had CPU 0 part of the time (a shared machine):
        # the rate is then lower than the receiver's own capacity.
        "cpu_share": cpu / span,
        "cpu0_busy": busy[0],
        "cpu1_busy": busy[1] if len(busy) > 1 else None,
        "sent": load["sent"],
        "send_rate": load["sent"] / (load["stop"] - load["start"]),
        "kernel_drops": drops,
        # What the kernel queued for the receiver: should equal "processed".
        "kernel_delivered": load["sent"] - load["errors"] - drops,
        "datagram_bytes": load["size"],
        "alive": alive,
    }


def _ports(args: argparse.Namespace) -> list[str]:
    return [
        "--host",
        args.host,
        "--target-port",
        str(args.port),
        "--source-port",
        str(args.port + 1),
    ]


def _give_b(address_a: tuple[str, int], port_b: int, gen_b: int) -> None:
    """From B's address, hand A B's entry (version 1, no files) in one part."""
    part = Part("B", "B", gen_b, 1, 1, 0, -1, 0, 1, 0, ())
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((address_a[0], port_b))
        sock.sendto(encode(part), address_a)


def benchmark(args: argparse.Namespace) -> int:
    terminate_on_signals()
    os.sched_setaffinity(0, {1})  # beside the generator: CPU 0 is the receiver's alone
    work = Path(tempfile.mkdtemp(prefix="bench-receiver-"))
    config = make_config(
        ["A", "B", "C"], port=args.port, folders=work / "folders", host=args.host, scan=30
    )
    config_path = write_config(config, work / "config.json")
    chosen = args.kinds.split(",") if args.kinds else DEFAULT_KINDS[args.load]
    if args.before is not None:
        chosen = [*chosen, "cli-before"]
    kinds = [k for k in KINDS if k in chosen]
    if args.load == "want" and "baseline" in kinds:
        raise SystemExit("receiver: the baseline does not answer wants; leave it out")
    runs: list[dict[str, Any]] = []
    try:
        for round_ in range(args.repeat):
            for kind in kinds:
                result = run_one(kind, args, work, config_path)
                result["round"] = round_ + 1
                runs.append(result)
                print(
                    f"round {round_ + 1} {kind:12} {result['rate']:>10,.0f} datagrams/s processed"
                    f"  ({result['cpu_us_per_datagram'] or 0:.1f} us CPU each,"
                    f" {result['cpu_share']:.0%} of CPU 0 (busy {result['cpu0_busy']:.0%}),"
                    f" sent {result['send_rate']:,.0f}/s)",
                    flush=True,
                )
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    summary = _summary(runs, kinds)
    print()
    sizes = {r["kind"] == "baseline": r["datagram_bytes"] for r in runs[::-1]}
    what = "a digest from B" if args.load == "digest" else "a want from B, answered with a part"
    print(
        f"datagram: {what}, {sizes.get(False, '-')} B as JSON"
        + (f" ({sizes[True]} B pickled for the baseline)" if True in sizes else "")
        + f"; {args.seconds:g} s of load per run, {args.repeat} round(s)"
    )
    print(
        table(
            [
                "receiver",
                "best /s",
                "median /s",
                "CPU share",
                "us CPU/datagram",
                "1/CPU /s",
                "x baseline",
                "x recvfrom",
                "x recvfrom CPU",
                "x before CPU",
            ],
            [
                [
                    s["kind"],
                    round(s["best"]),
                    round(s["median"]),
                    f"{s['cpu_share_median']:.0%}",
                    s["cpu_us_median"],
                    round(1e6 / s["cpu_us_median"]),
                    s.get("vs_baseline", float("nan")),
                    s.get("vs_recvfrom", float("nan")),
                    s.get("vs_recvfrom_cpu", float("nan")),
                    s.get("vs_cli-before_cpu", float("nan")),
                ]
                for s in summary.values()
            ],
        )
    )
    print(
        "(x: median rate over median rate, best over best is in the JSON; x recvfrom CPU,"
        " x before CPU: recvfrom's or cli-before's CPU per datagram over this one's."
        " 1/CPU: the rate with CPU 0 to itself)"
    )
    path = write_out(
        "receiver" if args.load == "digest" else f"receiver-{args.load}",
        {
            "load": args.load,
            "seconds": args.seconds,
            "repeat": args.repeat,
            "runs": runs,
            "summary": summary,
        },
    )
    print(f"wrote {path}")
    return 0


def _summary(runs: list[dict[str, Any]], kinds: list[str]) -> dict[str, dict[str, Any]]:
    summary: dict[str, dict[str, Any]] = {}
    for kind in kinds:
        rates = [r["rate"] for r in runs if r["kind"] == kind]
        costs = [r["cpu_us_per_datagram"] for r in runs if r["kind"] == kind]
        summary[kind] = {
            "kind": kind,
            "rates": rates,
            "best": max(rates),
            "median": median(rates),
            "cpu_us_median": median([c for c in costs if c is not None]),
            "cpu_share_median": median([r["cpu_share"] for r in runs if r["kind"] == kind]),
        }
    for base in ("baseline", "recvfrom", "cli-before"):
        if base in summary:
            for s in summary.values():
                s[f"vs_{base}"] = s["median"] / summary[base]["median"]
                s[f"vs_{base}_best"] = s["best"] / summary[base]["best"]
                s[f"vs_{base}_cpu"] = summary[base]["cpu_us_median"] / s["cpu_us_median"]
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(
        description="The receiver's cost per datagram, against a threads-and-pickle baseline."
    )
    parser.add_argument("--seconds", type=float, default=3.0, help="load per run (default 3)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds (default 3)")
    parser.add_argument("--port", type=int, default=21_000, help="A's port; B's is the next")
    parser.add_argument("--host", default="127.0.0.1", help="a loopback address")
    parser.add_argument(
        "--kinds",
        help=f"comma-separated, of {', '.join(KINDS)} (default: by --load, see below)",
    )
    parser.add_argument(
        "--load",
        choices=sorted(DEFAULT_KINDS),
        default="digest",
        help="digest: heartbeat digests, nothing to answer (baseline, recvfrom, drain, cli);"
        " want: B asks for its own entry, A answers each with a part"
        " (recvfrom, drain, drain+direct, cli)",
    )
    parser.add_argument(
        "--before",
        type=Path,
        help="also run python -m trio_gossip from this source tree (kind cli-before)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work folder and logs")
    # The roles this script plays as child processes.
    parser.add_argument("--role", choices=["bench", "generate", "baseline", "raw"], default="bench")
    parser.add_argument("--strategy", choices=["drain", "recvfrom"], default="drain")
    parser.add_argument("--payload", choices=["json", "pickle", "want"], default="json")
    parser.add_argument("--target-port", type=int, default=0)
    parser.add_argument("--source-port", type=int, default=0)
    parser.add_argument("--gen-a", type=int, default=0)
    parser.add_argument("--gen-b", type=int, default=0)
    parser.add_argument("--max-count", type=int, default=50_000_000)
    args = parser.parse_args()
    loopback(args.host)
    if args.role == "generate":
        return generate(args)
    if args.role == "baseline":
        return baseline(args)
    if args.role == "raw":
        return raw(args)
    return benchmark(args)


if __name__ == "__main__":
    sys.exit(main())
