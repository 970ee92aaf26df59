"""What each import costs a peer, and what a running idle peer holds.

    python -m bench.imports [--runs 5] [--idle 5] [--source] [--before DIR]

Each group of modules is imported in a fresh ``python`` process (the same
interpreter, with its site packages, as ``python -m trio_gossip``), which
prints how long its imports took (``time.perf_counter`` around them; ``+ms``:
the group's own modules, timed apart after the others), the CPU time they
took (``time.process_time``, which a busy machine inflates less) and its
resident memory (``VmRSS``) afterwards. Each group adds to the one before:

* ``python``: nothing (the interpreter and ``site``);
* ``+trio``; ``+attrs/cattrs`` (with cattrs's JSON converter, as the codec uses);
* ``+trio_gossip``: the package alone (its names are imported on first use);
* ``+trio_gossip.cli``: everything ``python -m trio_gossip`` imports before
  it reads its command line;
* ``+watchfiles``: what a peer adds when it starts its watch task;
* ``+cryptography``: AES-GCM, imported only with a cluster key.

Best (lowest) of ``--runs`` runs each, after one run not counted. Then
what each of trio_gossip's own modules costs, as ``python -X importtime``
puts it (its own code, without what it imports; best of ``--runs``). Then a
standalone peer (``python -m trio_gossip A`` with a three-peer loopback
config, its two neighbours not running) with ``"watch"`` on and off, and
with a cluster key: its resident memory after ``--idle`` seconds of idling
(after one such peer not counted, for the same reason as the runs above).

``--before DIR`` measures the groups and the peers of another source tree
too (``git worktree add DIR main``), its runs taking turns with this tree's
so that both see the same load; its children run in ``DIR``, where ``-c``
and ``-m`` find its ``trio_gossip`` first.

Every child reads and writes its bytecode in a cache of this run's own
(``PYTHONPYCACHEPREFIX``), as an installed package's compiled files are
read; the run not counted fills it. With ``--source`` no child writes
bytecode (``PYTHONDONTWRITEBYTECODE``): trio_gossip, whose source tree has
no ``__pycache__`` then (an editable install), is compiled from its source
in each process, while the standard library and the site packages are read
from the bytecode they were installed with.
"""

from __future__ import annotations

import argparse
import base64
import os
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
    REPO,
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
    ("+trio_gossip", ["trio_gossip"]),
    ("+trio_gossip.cli", ["trio_gossip.cli"]),
    ("+watchfiles", ["watchfiles"]),
    ("+cryptography", ["cryptography.hazmat.primitives.ciphers.aead"]),
]

#: Run by each child, with the modules of the groups before, ``--``, this
#: group's: time all the imports and this group's alone, then read its memory.
_CHILD = """
import importlib, sys, time
split = sys.argv.index("--")
began, cpu_began = time.perf_counter(), time.process_time()
for name in sys.argv[1:split]:
    importlib.import_module(name)
middle, cpu_middle = time.perf_counter(), time.process_time()
for name in sys.argv[split + 1:]:
    importlib.import_module(name)
end, cpu_end = time.perf_counter(), time.process_time()
status = dict(
    line.split(":", 1) for line in open("/proc/self/status").read().splitlines() if ":" in line
)
rss = int(status["VmRSS"].split()[0])
print(end - began, end - middle, cpu_end - cpu_began, cpu_end - cpu_middle, rss, len(sys.modules))
"""

#: What each child prints, in order.
_FIELDS = ("import_ms", "step_ms", "import_cpu_ms", "step_cpu_ms", "rss_kib", "modules")


def measure_groups(trees: dict[str, Path], runs: int) -> dict[str, list[dict[str, Any]]]:
    """For each tree, each group's best (lowest) times, RSS and module count
    over ``runs`` fresh processes, after one not counted (it fills the caches:
    bytecode, disk). The trees take turns, run by run, so both see the same load."""
    results: dict[str, list[dict[str, Any]]] = {tree: [] for tree in trees}
    modules: list[str] = []
    for label, added in GROUPS:
        argv = [sys.executable, "-c", _CHILD, *modules, "--", *added]
        modules = [*modules, *added]
        samples: dict[str, list[list[float]]] = {tree: [] for tree in trees}
        for run in range(runs + 1):
            for tree, where in trees.items():
                began = time.perf_counter()
                out = subprocess.run(
                    argv, cwd=where, check=True, capture_output=True, text=True
                ).stdout.split()
                if run:
                    samples[tree].append([*map(float, out), time.perf_counter() - began])
        for tree, rows in samples.items():
            best = [min(column) for column in zip(*rows, strict=True)]
            group: dict[str, Any] = {"group": label}
            for field, value in zip((*_FIELDS, "process_ms"), best, strict=True):
                group[field] = value * 1e3 if field.endswith("_ms") else int(value)
            results[tree].append(group)
    return results


def own_modules(where: Path, runs: int) -> list[dict[str, Any]]:
    """What each trio_gossip module costs ``import trio_gossip.cli``: the best
    of ``runs`` of ``python -X importtime``, its own code and with what it imports."""
    own: dict[str, list[int]] = {}
    total: dict[str, list[int]] = {}
    for _ in range(runs):
        report = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", "import trio_gossip.cli"],
            cwd=where,
            check=True,
            capture_output=True,
            text=True,
        ).stderr
        for line in report.splitlines():
            # "import time:  self [us] | cumulative | imported package"
            fields = line.removeprefix("import time:").split("|")
            if len(fields) != 3 or not fields[0].strip().isdigit():
                continue
            name = fields[2].strip()
            if name == "trio_gossip" or name.startswith("trio_gossip."):
                own.setdefault(name, []).append(int(fields[0]))
                total.setdefault(name, []).append(int(fields[1]))
    rows = [
        {"module": name, "self_ms": min(us) / 1e3, "cumulative_ms": min(total[name]) / 1e3}
        for name, us in own.items()
    ]
    return sorted(rows, key=lambda row: -row["self_ms"])


def idle_peer(
    work: Path, where: Path, *, watch: bool, key: bool, idle: float, port: int
) -> dict[str, Any]:
    """The resident memory of ``python -m trio_gossip A``, run in ``where``,
    after ``idle`` seconds."""
    config = make_config(["A", "B", "C"], port=port, folders=work / "folders", scan=30)
    config["watch"] = watch
    if key:
        config["keys"] = [base64.b64encode(secrets.token_bytes(32)).decode()]
    path = write_config(config, work / f"config-{watch}-{key}.json")
    with Children(idle + 60) as children, (work / "peer.log").open("ab") as log:
        began = time.perf_counter()
        peer = children.start(
            [sys.executable, "-m", "trio_gossip", "A", "--config", str(path)],
            stderr=log,
            cwd=where,
        )
        # Asked as a user would (the CLI reads the key from the config).
        ask = [sys.executable, "-m", "trio_gossip", "A", "--config", str(path), "--info"]
        if not wait_until(
            lambda: (
                subprocess.run(ask, cwd=where, capture_output=True, check=False).returncode == 0
            ),
            30,
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
    parser.add_argument(
        "--source",
        action="store_true",
        help="no bytecode cache: each process compiles trio_gossip from its source",
    )
    parser.add_argument(
        "--before",
        type=Path,
        help="also measure the trio_gossip of this source tree, taking turns with this one",
    )
    args = parser.parse_args()
    terminate_on_signals()
    trees = {"this": REPO}
    if args.before is not None:
        trees["before"] = args.before.resolve()
    for tree, where in trees.items():
        # ``-c`` and ``-m`` look in the working folder first: that tree's trio_gossip.
        found = subprocess.run(
            [sys.executable, "-c", "import trio_gossip; print(trio_gossip.__file__)"],
            cwd=where,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        if not Path(found).is_relative_to(where):
            raise SystemExit(f"imports: {tree} tree {where} imports trio_gossip from {found}")
    work = Path(tempfile.mkdtemp(prefix="bench-imports-"))
    # Set here, for every child (the peers' too); this process runs on as it started.
    if args.source:
        os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
        os.environ.pop("PYTHONPYCACHEPREFIX", None)
    else:
        os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
        os.environ["PYTHONPYCACHEPREFIX"] = str(work / "bytecode")
    try:
        return measure(args, trees, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _groups_table(groups: list[dict[str, Any]]) -> str:
    base = groups[0]
    rows = [
        [
            group["group"],
            round(group["import_ms"], 1),
            round(group["step_ms"], 1),
            round(group["import_cpu_ms"], 1),
            round(group["step_cpu_ms"], 1),
            round(group["process_ms"] - base["process_ms"], 1),
            round(group["rss_kib"] / 1024, 1),
            round((group["rss_kib"] - (before["rss_kib"] if before else 0)) / 1024, 1),
            group["modules"],
        ]
        for before, group in zip([None, *groups], groups, strict=False)
    ]
    headers = ["group", "import ms", "+ms", "CPU ms", "+CPU ms", "process ms over python"]
    return table([*headers, "RSS MiB", "+MiB", "modules"], rows)


def measure(args: argparse.Namespace, trees: dict[str, Path], work: Path) -> int:
    """Import times, the package's modules, idle peers; print and write them."""
    groups = measure_groups(trees, args.runs)
    bytecode = "compiled from source" if args.source else "from cached bytecode"
    for tree, where in trees.items():
        print(f"imports ({tree} tree, {where}), trio_gossip {bytecode}, best of {args.runs}:")
        print(_groups_table(groups[tree]) + "\n")
    own = own_modules(REPO, args.runs)
    print(f"this tree's modules in 'import trio_gossip.cli', best of {args.runs}:")
    print(
        table(
            ["module", "self ms", "with its imports ms"],
            [[m["module"], round(m["self_ms"], 1), round(m["cumulative_ms"], 1)] for m in own],
        )
    )
    print(f"all {len(own)}, their own code: {sum(m['self_ms'] for m in own):.1f} ms")
    # Not counted: it fills the bytecode cache with what only a running peer
    # imports (watchfiles's and anyio's inner modules), as the import runs did.
    for where in trees.values():
        idle_peer(work, where, watch=True, key=True, idle=0, port=args.port)
    peers = [
        {"tree": tree, **idle_peer(work, where, watch=w, key=k, idle=args.idle, port=args.port)}
        for w, k in ((True, False), (False, False), (True, True))
        for tree, where in trees.items()
    ]
    print(f"\na standalone peer, after {args.idle:g} s idle:")
    print(
        table(
            ["tree", "watch", "key", "RSS MiB", "peak MiB", "answered --info after s"],
            [
                [
                    p["tree"],
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
    figures = {
        "runs": args.runs,
        "source": args.source,
        "trees": {k: str(v) for k, v in trees.items()},
    }
    path = write_out("imports", {**figures, "groups": groups, "modules": own, "peers": peers})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
