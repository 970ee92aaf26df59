"""A peer process flooded with garbage and forgeries, while its cluster runs.

    python bench/flood.py [--seconds 20] [--rate 0]
    python bench/flood.py --only 'info request' --files 30000 --rate 1700

A config of four peers: A (flooded, pinned to CPU 0), B and C (running), and
D, configured but not running: the generator (pinned to CPU 1) binds D's
address, as well as 127.0.0.2 (on B's port: B's port from the wrong host),
127.0.0.3 and an unconfigured port of 127.0.0.1. For ``--seconds`` it sends
A, as fast as it can (or ``--rate`` per second), a mix of:

random bytes; truncated JSON; a pickle; oversized JSON (60 KB digests, deep
nesting, a 5,000-digit number); JSON that is not an object; wrong protocol
versions; unknown types; malformed fields; out-of-bounds counters; unknown
senders; B's and C's names (with forged versions and parts) and A's own name
from the wrong addresses; unknown origins from D; info replies nobody asked
for; info requests; and, from D's configured address, lines with forged
versions (never answered) and wants.

It reports whether A stays up; whether A's own tasks keep their pace (A's
heartbeat, which goes up once per push round, from A's own ``--info``
before and after, and as B sees it during the flood); A's peak memory
(VmHWM); A's rejections by reason; and whether the cluster's view changed:
no origin outside A, B, C, no tombstone, no refutation, and every origin at
the generation and version it had before.

``--member-forgery`` adds lines about B with a forged heartbeat from D's
configured address: a configured peer is trusted, so these do change the
view (and make B refute); off by default.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Run as ``python bench/NAME.py``: make the ``bench`` package importable.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.gen_config import loopback, make_config, write_config
from bench.harness import (
    Children,
    busy_since,
    cpu_seconds,
    cpu_times,
    free_ports,
    memory_kb,
    snapshot,
    snapshots,
    table,
    terminate_on_signals,
    udp_socket,
    wait_until,
    write_out,
)
from trio_gossip.codec import encode
from trio_gossip.messages import Digest, Info, InfoRequest, Part, Want
from trio_gossip.state import FileMeta, Line

NAMES = ("A", "B", "C", "D")
POOL = 4_000  # datagrams built ahead, sent in random order
BATCH = 128  # datagrams between two looks at the clock

Sender = str  # which of the generator's sockets: "D", "wrong-ip", "other-ip", "other-port"


def _digest(sender: str, lines: list[list[Any]], **extra: Any) -> bytes:
    body = {"proto": 1, "type": "digest", "sender": sender, "reply": False, "lines": lines}
    body.update(extra)
    return json.dumps(body, separators=(",", ":")).encode()


def _oversized_digest(gen_b: int, size: int = 60_000) -> bytes:
    """A valid digest from D of about ``size`` bytes (one datagram holds at most 65,507)."""
    line = ["B", gen_b, 1, 0, False]
    each = len(json.dumps(line, separators=(",", ":"))) + 1
    return _digest("D", [line] * ((size - 100) // each))


def build_pool(
    gens: dict[str, int], rng: random.Random, forgery: bool, only: str | None = None
) -> list[tuple[str, Sender, bytes]]:
    """``(category, socket, datagram)`` for every kind of datagram the flood sends."""
    gb, gc = gens["B"], gens["C"]
    forged_b = [["B", gb, 1_000_000, 5, False]]
    kinds: list[tuple[str, Sender, Callable[[], bytes]]] = [
        ("random bytes", "other-ip", lambda: os.urandom(rng.randint(1, 1400))),
        (
            "truncated json",
            "D",
            lambda: _digest("D", [["D", 1, 1, 1, False]] * 20)[: rng.randint(1, 300)],
        ),
        (
            "pickle",
            "wrong-ip",
            lambda: pickle.dumps({"sender": "B", "lines": [("B", gb, 9, 9, False)]}),
        ),
        # 60 KB of lines to decode, about B at a key A already holds: nothing to answer.
        ("oversized digest", "D", lambda: _oversized_digest(gb)),
        ("deep nesting", "other-port", lambda: b"[" * 32_000 + b"]" * 32_000),
        ("huge number", "other-port", lambda: b'{"proto":' + b"9" * 5_000 + b"}"),
        ("not an object", "other-ip", lambda: rng.choice([b"[1,2,3]", b'"digest"', b"null", b"7"])),
        (
            "protocol version",
            "D",
            lambda: rng.choice(
                [
                    b'{"proto":2,"type":"digest","sender":"D","reply":false,"lines":[]}',
                    b'{"proto":true,"type":"digest","sender":"D","reply":false,"lines":[]}',
                    b'{"type":"digest","sender":"D","reply":false,"lines":[]}',
                ]
            ),
        ),
        ("unknown type", "D", lambda: b'{"proto":1,"type":"gossip","sender":"D"}'),
        (
            "malformed",
            "D",
            lambda: rng.choice(
                [
                    _digest("D", "lines"),  # type: ignore[arg-type]
                    _digest("D", [["D", 1, 1, "5", False]]),
                    _digest("D", [["D", 1, 1, 5, False]], extra="key"),
                    b'{"proto":1,"type":"digest","sender":"D","reply":"yes","lines":[]}',
                ]
            ),
        ),
        ("out of bounds", "D", lambda: _digest("D", [["D", -1, 1, 1, False]])),
        ("unknown sender", "other-port", lambda: _digest("Z", [["Z", 1, 1, 1, False]])),
        ("forged B, wrong host", "wrong-ip", lambda: _digest("B", forged_b)),
        ("forged C, other host", "other-ip", lambda: _digest("C", [["C", gc, 99, 99, False]])),
        ("as A itself, from D", "D", lambda: _digest("A", [["A", gens["A"] + 1, 1, 1, False]])),
        (
            "forged part of C",
            "other-ip",
            lambda: encode(
                Part("B", "C", gc, 7, 7, 0, -1, 0, 1, 1, (FileMeta("evil.txt", 666, 0, 7),))
            ),
        ),
        ("unknown origin, from D", "D", lambda: _digest("D", [["Z", 1, 1, 1, False]])),
        ("want of unknown origin", "D", lambda: encode(Want("D", "Z", 1, 1, -1, -1, -1, ()))),
        ("info reply", "other-ip", lambda: encode(Info("B", 1, 0, 1, "{}"))),
        ("info request", "other-ip", lambda: encode(InfoRequest(rng.getrandbits(62), ()))),
        (
            "forged version, from D",
            "D",
            lambda: encode(Digest("D", False, (Line("B", gb, 1_000_000, 0),))),
        ),
        ("want of B, from D", "D", lambda: encode(Want("D", "B", gb, 1, -1, -1, -1, ()))),
    ]
    if forgery:
        kinds.append(
            (
                "member forgery (trusted D)",
                "D",
                lambda: encode(
                    Digest("D", False, (Line("B", gb, 1, 10**12 + rng.randint(0, 10**6)),))
                ),
            )
        )
    if only is not None:
        kinds = [kind for kind in kinds if kind[0] == only]
        if not kinds:
            raise SystemExit(f"flood: no kind of datagram named {only!r}")
    pool = []
    for i in range(POOL):
        category, sender, make = kinds[i % len(kinds)]
        pool.append((category, sender, make()))
    rng.shuffle(pool)
    return pool


def generate(args: argparse.Namespace) -> int:
    """The flood: bounded by ``--seconds`` and ``--max-count``."""
    host = loopback(args.host)
    ports = {name: args.port + i for i, name in enumerate(NAMES)}
    binds: dict[Sender, tuple[str, int]] = {
        "D": (host, ports["D"]),
        "wrong-ip": ("127.0.0.2", ports["B"]),
        "other-ip": ("127.0.0.3", 0),
        "other-port": (host, 0),
    }
    socks = {}
    for key, address in binds.items():
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(address)
        socks[key] = sock
    gens = json.loads(args.gens)
    rng = random.Random(args.seed)
    pool = build_pool(gens, rng, args.member_forgery, args.only)
    target = (host, ports["A"])
    plan = [(category, socks[sender].sendto, data) for category, sender, data in pool]
    sent: Counter[str] = Counter()
    errors = 0
    start = time.monotonic()
    end = start + args.seconds
    count = 0
    i = 0
    while count < args.max_count:
        for _ in range(BATCH):
            category, sendto, data = plan[i]
            i = (i + 1) % len(plan)
            try:
                sendto(data, target)
                sent[category] += 1
            except OSError:
                errors += 1
        count += BATCH
        now = time.monotonic()
        if now >= end:
            break
        if args.rate:
            ahead = start + count / args.rate - now
            if ahead > 0:
                time.sleep(ahead)
    stop = time.monotonic()
    for sock in socks.values():
        sock.close()
    print(json.dumps({"sent": dict(sent), "errors": errors, "start": start, "stop": stop}))
    return 0


def _view(shown: dict[str, Any] | None) -> dict[str, Any]:
    """What must not change: who is known, at which generation and version; tombstones."""
    if shown is None:
        return {"answered": False}
    return {
        "origins": {
            o: (e["generation"], e["version"], e["file_count"]) for o, e in shown["origins"].items()
        },
        "reaped": sorted(shown["reaped"]),
        "refuted": shown["statistics"]["refuted"],
    }


def benchmark(args: argparse.Namespace) -> int:
    terminate_on_signals()
    host = loopback(args.host)
    if not free_ports(host, args.port, len(NAMES)):
        raise SystemExit(f"flood: ports {args.port}.. are not all free; choose --port")
    work = Path(tempfile.mkdtemp(prefix="bench-flood-"))
    config = make_config(
        list(NAMES),
        port=args.port,
        folders=work / "folders",
        host=host,
        scan=2,
        push=args.push,
        reap=300,
    )
    config_path = write_config(config, work / "config.json")
    for name in "ABC":  # a few files each, so a forged version would show
        folder = work / "folders" / name
        folder.mkdir(parents=True)
        for j in range(3):
            (folder / f"{name}-{j}.txt").write_text(name * (j + 1))
    for j in range(args.files):  # a large view at A: what every snapshot holds
        (work / "folders" / "B" / f"many/{j % 100:02}/file-number-{j:06}.dat").parent.mkdir(
            parents=True, exist_ok=True
        )
        (work / "folders" / "B" / f"many/{j % 100:02}/file-number-{j:06}.dat").touch()
    address = {name: (host, args.port + i) for i, name in enumerate(NAMES)}
    lifetime = args.seconds + 180
    figures: dict[str, Any] = {
        "seconds": args.seconds,
        "rate": args.rate or "max",
        "push": args.push,
        "only": args.only or "all kinds",
        "files": args.files,
    }
    try:
        with Children(lifetime) as children:
            procs = {}
            for name in "ABC":
                with (work / f"{name}.log").open("wb") as log:
                    argv = [sys.executable, "-m", "trio_gossip", name, "--config", str(config_path)]
                    procs[name] = children.start(
                        argv, cpus=[0] if name == "A" else None, stderr=log
                    )

            def converged() -> bool:
                shown = snapshots([address[n] for n in "ABC"], attempts=1)
                return all(s is not None and set(s["origins"]) == set("ABC") for s in shown)

            if not wait_until(converged, 60, 0.5):
                raise SystemExit("flood: the cluster A, B, C did not converge")
            before = {n: snapshot(address[n]) for n in "ABC"}
            gens = {n: before["A"]["origins"][n]["generation"] for n in "ABC"}  # type: ignore[index]

            # The control: A's heartbeat as B sees it, without a flood.
            control = _watch(address, args.push, args.control, lambda: False)
            a_before = snapshot(address["A"])
            assert a_before is not None
            hwm_before = memory_kb(procs["A"].pid)
            cpu_before = cpu_seconds(procs["A"].pid)
            machine = cpu_times()
            print(
                f"cluster up; A's peak RSS {hwm_before['VmHWM'] / 1024:.1f} MiB;"
                f" flooding A for {args.seconds:g} s",
                flush=True,
            )

            generator = children.start(
                [
                    sys.executable,
                    __file__,
                    "--role",
                    "generate",
                    "--seconds",
                    str(args.seconds),
                    "--rate",
                    str(args.rate),
                    "--gens",
                    json.dumps(gens),
                    "--port",
                    str(args.port),
                    "--seed",
                    str(args.seed),
                    *(["--member-forgery"] if args.member_forgery else []),
                    *(["--only", args.only] if args.only else []),
                ],
                cpus=[1],
                stdout=subprocess.PIPE,
            )
            during = _watch(
                address, args.push, args.seconds + 30, lambda: generator.poll() is not None
            )
            out, _ = generator.communicate(timeout=30)
            load = json.loads(out)
            cpu_flood = cpu_seconds(procs["A"].pid) - cpu_before
            busy = busy_since(machine)
            # Let A drain its socket, then look at everyone.
            wait_until(lambda: (_queue(host, args.port)) == 0, 30, 0.01)
            time.sleep(args.push * 3)
            a_after = snapshot(address["A"], attempts=5)
            after = {n: snapshot(address[n], attempts=5) for n in "ABC"}
            hwm_after = memory_kb(procs["A"].pid)
            alive = {n: p.poll() is None for n, p in procs.items()}
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    span = load["stop"] - load["start"]
    sent_total = sum(load["sent"].values())
    own_pace = None
    if a_after is not None:
        beats = a_after["origins"]["A"]["heartbeat"] - a_before["origins"]["A"]["heartbeat"]
        # between the two snapshots: the control's end to after the flood and the settling time
        elapsed = during["end"] - control["end"] + args.push * 3
        own_pace = beats * args.push / elapsed
    stats_before, stats_after = a_before["statistics"], (a_after or {}).get("statistics", {})
    rejected = Counter(stats_after.get("rejected", {}))
    rejected.subtract(Counter(stats_before["rejected"]))
    processed = stats_after.get("datagrams_in", 0) - stats_before["datagrams_in"]
    views_before = {n: _view(s) for n, s in before.items()}
    views_after = {n: _view(s) for n, s in after.items()}
    unchanged = views_before == views_after
    strangers = {o for v in views_after.values() for o in v.get("origins", {})} - set("ABC")
    tombstones = sum(len(v.get("reaped", [])) for v in views_after.values())
    refutations = sum(v.get("refuted", 0) for v in views_after.values())
    figures.update(
        {
            "sent": load["sent"],
            "sent_total": sent_total,
            "send_rate": sent_total / span,
            "alive": alive,
            "a_answers_after": a_after is not None,
            "a_processed": processed,
            "a_processed_per_s": processed / span,
            "a_cpu_share": cpu_flood / span,
            "cpus_busy": busy,
            "a_accepted_during": stats_after.get("accepted", 0) - stats_before["accepted"],
            "rejected": dict(rejected),
            "heartbeat_pace_control_at_b": control["pace"],
            "heartbeat_pace_during_at_b": during["pace"],
            "heartbeat_pace_own": own_pace,
            "a_answered_info_during": during["a_answered"],
            "a_view_of_b_heartbeat_during": during["b_at_a"],
            "vm_hwm_kib_before": hwm_before["VmHWM"],
            "vm_hwm_kib_after": hwm_after["VmHWM"],
            "vm_rss_kib_after": hwm_after["VmRSS"],
            "view_unchanged": unchanged,
            "unknown_origins_after": sorted(strangers),
            "tombstones_after": tombstones,
            "refutations_after": refutations,
            "views_before": views_before,
            "views_after": views_after,
        }
    )
    print()
    print(
        f"flood: {sent_total:,} datagrams in {span:.1f} s ({sent_total / span:,.0f}/s sent);"
        f" A processed {processed:,} ({processed / span:,.0f}/s, {cpu_flood / span:.0%} of CPU 0;"
        f" CPUs busy {', '.join(f'{b:.0%}' for b in busy)})"
    )
    print(
        table(
            ["sent by the generator", "datagrams"],
            [*Counter(load["sent"]).most_common(), ["(refused by the kernel)", load["errors"]]],
        )
    )
    print()
    print(table(["A rejected, by reason", "datagrams"], rejected.most_common()))
    print()
    rows: list[list[object]] = [
        ["A, B, C still running", all(alive.values())],
        ["A answers --info after", a_after is not None],
        [
            "A answered --info during (asked/answered)",
            f"{during['a_asked']}/{during['a_answered']}",
        ],
        [
            "A's heartbeat pace, own --info (1 = one per push)",
            own_pace if own_pace is not None else float("nan"),
        ],
        ["  as B sees it, before the flood", control["pace"]],
        ["  as B sees it, during the flood", during["pace"]],
        [
            "A's peak RSS before / after (MiB)",
            f"{hwm_before['VmHWM'] / 1024:.1f} / {hwm_after['VmHWM'] / 1024:.1f}",
        ],
        ["A took new metadata during the flood", figures["a_accepted_during"]],
        ["cluster view unchanged (origins, generations, versions)", unchanged],
        ["  origins outside A, B, C (any view, after)", ", ".join(sorted(strangers)) or "none"],
        ["  tombstones (any view, after)", tombstones],
        ["  refutations (A, B, C, after)", refutations],
    ]
    print(table(["check", "result"], rows))
    if not unchanged:
        print("views before:", json.dumps(views_before))
        print("views after: ", json.dumps(views_after))
    print(f"path: {write_out('flood', figures)}")
    return 0


def _queue(host: str, port: int) -> int:
    found = udp_socket(host, port)
    return found[0] if found else 0


def _watch(
    address: dict[str, tuple[str, int]], push: float, seconds: float, done: Callable[[], bool]
) -> dict[str, Any]:
    """For ``seconds`` (or until ``done``), once a second: A's heartbeat as B shows it,
    and whether A itself answers --info (and what it holds of B's heartbeat)."""
    samples: list[tuple[float, int]] = []
    b_at_a: list[int] = []
    asked = answered = 0
    start = time.monotonic()
    while time.monotonic() - start < seconds and not done():
        t = time.monotonic()
        shown = snapshot(address["B"], attempts=1)
        if shown is not None and "A" in shown["origins"]:
            samples.append((t, shown["origins"]["A"]["heartbeat"]))
        asked += 1
        mine = snapshots([address["A"]], attempts=1)[0]
        if mine is not None:
            answered += 1
            b_at_a.append(mine["origins"].get("B", {}).get("heartbeat", -1))
        time.sleep(max(0.0, 1.0 - (time.monotonic() - t)))
    pace = None  # heartbeats per second
    if len(samples) >= 2:
        (t0, h0), (t1, h1) = samples[0], samples[-1]
        pace = (h1 - h0) / (t1 - t0) if t1 > t0 else None
    return {
        "pace": None if pace is None else pace * push,
        "samples": samples,
        "a_asked": asked,
        "a_answered": answered,
        "b_at_a": b_at_a,
        "end": time.monotonic(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description="Flood a peer with garbage and forgeries.")
    parser.add_argument("--seconds", type=float, default=20.0, help="flood time (default 20)")
    parser.add_argument(
        "--rate", type=float, default=0.0, help="datagrams/s; 0: as fast as possible"
    )
    parser.add_argument("--push", type=float, default=1.0, help="push interval s (default 1)")
    parser.add_argument("--control", type=float, default=10.0, help="s watched before the flood")
    parser.add_argument("--port", type=int, default=23_000, help="A's port; B, C, D follow")
    parser.add_argument("--host", default="127.0.0.1", help="a loopback address")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--member-forgery", action="store_true", help="see the module docstring")
    parser.add_argument(
        "--only", help="send only this kind of datagram (e.g. 'info request': fresh nonces)"
    )
    parser.add_argument(
        "--files", type=int, default=0, help="files in B's folder: the size of A's view"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work folder and logs")
    parser.add_argument("--role", choices=["bench", "generate"], default="bench")
    parser.add_argument("--gens", default="{}")
    parser.add_argument("--max-count", type=int, default=50_000_000)
    args = parser.parse_args()
    if args.role == "generate":
        return generate(args)
    return benchmark(args)


if __name__ == "__main__":
    sys.exit(main())
