"""What each import costs a peer, and what a running idle peer holds.

    python -m bench.imports [--runs 5] [--idle 5]

Each group of modules is imported in a fresh ``python`` process (the same
interpreter, with its site packages, as ``python -m trio_gossip``), which
prints how long its imports took (``time.perf_counter`` around them) and its
resident memory (``VmRSS``) afterwards. Each group adds to the one before:

* ``python``: nothing (the interpreter and ``site``);
* ``+trio``; ``+attrs/cattrs`` (with cattrs's JSON converter, as the codec uses);
* ``+trio_gossip.cli``: everything ``python -m trio_gossip`` imports before
  it reads its command line;
* ``+watchfiles``: what a peer adds when it starts its watch task;
* ``+cryptography``: AES-GCM, imported only with a cluster key.

Best (lowest) of ``--runs`` runs each. Then a standalone peer
(``python -m trio_gossip A`` with a three-peer loopback config, its two
neighbours not running) with ``"watch"`` on and off, and with a cluster key:
its resident memory after ``--idle`` seconds of idling.
"""

from __future__ import annotations

import argparse
import base64
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# Run as ``python bench/NAME.py``: make the ``bench`` package importable.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.gen_config import make_config, write_config
from bench.harness import (
    Children,
    memory_kb,
    table,
    terminate_on_signals,
    wait_until,
    write_out,
)

#: Each group imports the modules of the one before it, and these.
GROUPS = [
    ("python", []),
    ("+trio", ["trio"]),
    ("+attrs/cattrs", ["attrs", "cattrs", "cattrs.preconf.json"]),
    ("+trio_gossip.cli", ["trio_gossip.cli"]),
    ("+watchfiles", ["watchfiles"]),
    ("+cryptography", ["cryptography.hazmat.primitives.ciphers.aead"]),
]

#: Run by each child: time the imports, then read its own memory.
_CHILD = """
import importlib, sys, time
began = time.perf_counter()
for name in sys.argv[1:]:
    importlib.import_module(name)
took = time.perf_counter() - began
status = dict(
    line.split(":", 1) for line in open("/proc/self/status").read().splitlines() if ":" in line
)
print(took, int(status["VmRSS"].split()[0]), len(sys.modules))
"""


def measure_group(modules: list[str], runs: int) -> dict[str, Any]:
    """The best import time and smallest RSS of ``modules`` over ``runs`` fresh processes."""
    times, rss, counts, startups = [], [], [], []
    for _ in range(runs):
        began = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-c", _CHILD, *modules],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()
        startups.append(time.perf_counter() - began)
        times.append(float(out[0]))
        rss.append(int(out[1]))
        counts.append(int(out[2]))
    return {
        "import_ms": min(times) * 1e3,
        "process_ms": min(startups) * 1e3,
        "rss_kib": min(rss),
        "modules": min(counts),
    }


def idle_peer(work: Path, *, watch: bool, key: bool, idle: float, port: int) -> dict[str, Any]:
    """The resident memory of ``python -m trio_gossip A`` after ``idle`` seconds."""
    config = make_config(["A", "B", "C"], port=port, folders=work / "folders", scan=30)
    config["watch"] = watch
    if key:
        config["keys"] = [base64.b64encode(secrets.token_bytes(32)).decode()]
    path = write_config(config, work / f"config-{watch}-{key}.json")
    with Children(idle + 60) as children, (work / "peer.log").open("ab") as log:
        began = time.perf_counter()
        peer = children.start(
            [sys.executable, "-m", "trio_gossip", "A", "--config", str(path)], stderr=log
        )
        # Asked as a user would (the CLI reads the key from the config).
        ask = [sys.executable, "-m", "trio_gossip", "A", "--config", str(path), "--info"]
        if not wait_until(
            lambda: subprocess.run(ask, capture_output=True, check=False).returncode == 0, 30
        ):
            raise SystemExit("imports: the peer did not answer --info")
        answered = time.perf_counter() - began
        time.sleep(idle)
        memory = memory_kb(peer.pid)
        children.stop(peer)
    return {
        "watch": watch,
        "key": key,
        "rss_kib": memory["VmRSS"],
        "peak_kib": memory["VmHWM"],
        "first_answer_s": answered,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="fresh processes per group")
    parser.add_argument("--idle", type=float, default=5.0, help="seconds a peer idles")
    parser.add_argument("--port", type=int, default=23_000, help="the idle peer's port")
    args = parser.parse_args()
    terminate_on_signals()
    groups = []
    modules: list[str] = []
    for label, added in GROUPS:
        modules = [*modules, *added]
        groups.append({"group": label, **measure_group(modules, args.runs)})
    base = groups[0]
    rows = []
    for before, group in zip([None, *groups], groups, strict=False):
        rows.append(
            [
                group["group"],
                round(group["import_ms"], 1),
                round(group["import_ms"] - (before["import_ms"] if before else 0), 1),
                round(group["process_ms"] - base["process_ms"], 1),
                round(group["rss_kib"] / 1024, 1),
                round((group["rss_kib"] - (before["rss_kib"] if before else 0)) / 1024, 1),
                group["modules"],
            ]
        )
    print(f"imports, best of {args.runs} fresh processes each:")
    print(
        table(
            ["group", "import ms", "+ms", "process ms over python", "RSS MiB", "+MiB", "modules"],
            rows,
        )
    )
    work = Path(tempfile.mkdtemp(prefix="bench-imports-"))
    peers = []
    try:
        for watch, key in ((True, False), (False, False), (True, True)):
            peers.append(idle_peer(work, watch=watch, key=key, idle=args.idle, port=args.port))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\na standalone peer, after {args.idle:g} s idle:")
    print(
        table(
            ["watch", "key", "RSS MiB", "peak MiB", "answered --info after s"],
            [
                [
                    "on" if p["watch"] else "off",
                    "yes" if p["key"] else "no",
                    round(p["rss_kib"] / 1024, 1),
                    round(p["peak_kib"] / 1024, 1),
                    round(p["first_answer_s"], 2),
                ]
                for p in peers
            ],
        )
    )
    path = write_out("imports", {"runs": args.runs, "groups": groups, "peers": peers})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
