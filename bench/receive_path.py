"""The receive path's CPU alone: ``Node.receive_untrusted`` and ``decode_untrusted`` per datagram.

    python -m bench.receive_path [--before DIR] [--rounds 5] [--profile 25]

No sockets, no trio: a :class:`~trio_gossip.node.Node` "A" of a two-peer
config, holding B's entry (alive), is handed the small digests of
``bench/receiver.py`` (section 5 of ``docs/performance.md``) one after the
other, as its shell would: from B, a line with B's heartbeat one higher
than the last and a line about A, ``reply`` false -- nothing to answer, the
most common datagram of a quiet cluster. What is timed:

* ``receive``: ``Node.receive_untrusted`` (decode, the checks against the
  config, the merge of the heartbeat, the books);
* ``decode``: ``codec.decode_untrusted`` alone, on the same datagrams
  (after each chunk received, the same chunk decoded);
* ``node``: the difference, what the node adds to decoding.

Each figure is the best of ``--chunks`` chunks of ``--chunk`` datagrams
(``time.process_time``: CPU, not wall time, so other work on the machine
costs less than it would in a rate; the best chunk is the one least
disturbed). Each tree is measured in its own child process, ``--rounds``
times, this tree and the ``--before`` tree taking turns, so a change of
load on the machine falls on both; the table gives the median of the
rounds' figures and the ratio before / now. ``DIR`` is a source tree
holding a ``trio_gossip`` package (``git worktree add DIR REV``, or
``git archive REV trio_gossip | tar -x -C DIR``); the child puts it first on
``sys.path``.

``--profile K`` prints instead the K functions of this tree with the most
time of their own (cProfile) over ``--chunk`` datagrams. Figures go to
stdout and to ``bench/out/receive_path.json``. The real receiver, with its
UDP transport and a load generator, is ``bench/receiver.py``.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
#: The generations of A and B: a peer's, from the wall clock in ns.
GEN_A, GEN_B = 1_700_000_000_000_000_000, 1_700_000_000_000_000_001
#: B's heartbeats from here on are 13 digits: every datagram has the same
#: size as ``bench/receiver.py``'s (148 bytes).
FIRST_HEARTBEAT = 1 << 40


def datagram(heartbeat: int) -> bytes:
    """B's digest carrying ``heartbeat``, as ``bench/receiver.py`` sends it."""
    return (
        '{"proto":1,"type":"digest","sender":"B","reply":false,'
        f'"lines":[["B",{GEN_B},1,{heartbeat},false],["A",{GEN_A},1,0,false]]}}'
    ).encode()


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """In the child: time this process's ``trio_gossip`` (the tree first on ``sys.path``)."""
    import random

    import trio_gossip
    from trio_gossip.codec import decode_untrusted
    from trio_gossip.config import Config, Intervals, PeerConfig
    from trio_gossip.node import Node
    from trio_gossip.state import Entry

    where = Path(trio_gossip.__file__).resolve().parent
    if where != (args.code / "trio_gossip").resolve():
        raise SystemExit(f"receive_path: imported {where}, not the tree asked for")
    config = Config(
        peers={"A": PeerConfig("127.0.0.1", 7000), "B": PeerConfig("127.0.0.1", 7001)},
        intervals=Intervals(scan=60.0, push=1.0, relay=1.0, reap=300.0),
    )
    node = Node("A", config, rng=random.Random(1), wall_clock=lambda: GEN_A)
    node.start({}, 0.0)
    node.replica.put("B", Entry(GEN_B, 1, FIRST_HEARTBEAT - 1, 0, ()), 0.0, changed=True)
    node.replica.set_status("B", "alive", 0.0)
    source = config.address("B")
    count = args.chunks * args.chunk
    data = [datagram(FIRST_HEARTBEAT + i) for i in range(count)]
    receive = node.receive_untrusted

    def received(lo: int, hi: int) -> float:
        start = time.process_time()
        for i in range(lo, hi):
            receive(data[i], source, 1.0)
        return (time.process_time() - start) / (hi - lo) * 1e6

    def decoded(lo: int, hi: int) -> float:
        start = time.process_time()
        for i in range(lo, hi):
            decode_untrusted(data[i])
        return (time.process_time() - start) / (hi - lo) * 1e6

    chunks = [(i * args.chunk, (i + 1) * args.chunk) for i in range(args.chunks)]
    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        received(0, args.chunk)
        profiler.disable()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(args.profile)
        return {"profile": out.getvalue()}
    # Taking turns, chunk by chunk: a busy spell of the machine falls on both.
    timings = [(received(lo, hi), decoded(lo, hi)) for lo, hi in chunks]
    receive_us = min(r for r, _ in timings)
    decode_us = min(d for _, d in timings)
    # A benchmark of refusals would measure nothing: every datagram must have
    # been taken, the last heartbeat held.
    stats, last = node.statistics(), FIRST_HEARTBEAT + count - 1
    if stats.rejected or stats.datagrams_out or node.replica["B"].heartbeat != last:
        raise SystemExit(f"receive_path: the node did not take every datagram: {stats}")
    return {"receive_us": receive_us, "decode_us": decode_us, "node_us": receive_us - decode_us}


def child(code: Path, args: argparse.Namespace) -> dict[str, Any]:
    """One measurement of the tree ``code``, in a fresh process."""
    argv = [sys.executable, str(Path(__file__).resolve()), "--child", "--code", str(code)]
    argv += ["--chunks", str(args.chunks), "--chunk", str(args.chunk)]
    argv += ["--profile", str(args.profile)]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"receive_path: the child for {code} failed:\n{done.stderr[-2000:]}")
    figures: dict[str, Any] = json.loads(done.stdout)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", type=Path, help="also measure the trio_gossip of this tree")
    parser.add_argument("--rounds", type=int, default=5, help="measurements of each tree")
    parser.add_argument("--chunks", type=int, default=50, help="chunks per measurement")
    parser.add_argument("--chunk", type=int, default=2000, help="datagrams per chunk")
    parser.add_argument("--profile", type=int, default=0, help="print the top K functions")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--code", type=Path, default=REPO, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        sys.path.insert(0, str(args.code))
        print(json.dumps(measure(args)))
        return 0
    if args.before is not None and not (args.before / "trio_gossip").is_dir():
        raise SystemExit(f"receive_path: no trio_gossip package in {args.before}")
    if args.profile:
        print(child(REPO, args)["profile"])
        return 0

    sys.path.insert(0, str(REPO))
    from bench.harness import median, table, write_out

    trees = {"now": REPO} if args.before is None else {"before": args.before, "now": REPO}
    runs: dict[str, list[dict[str, Any]]] = {label: [] for label in trees}
    for round_ in range(args.rounds):
        for label, code in trees.items():
            figures = child(code, args)
            runs[label].append(figures)
            print(
                f"round {round_ + 1} {label:6} receive {figures['receive_us']:6.2f} us,"
                f" decode {figures['decode_us']:6.2f} us, node {figures['node_us']:6.2f} us",
                flush=True,
            )
    what = ("receive_us", "decode_us", "node_us")
    summary = {label: {w: median([r[w] for r in rs]) for w in what} for label, rs in runs.items()}
    rows: list[list[object]] = [
        [label, *(s[w] for w in what), round(1e6 / s["receive_us"])] for label, s in summary.items()
    ]
    if "before" in summary:
        before, now = summary["before"], summary["now"]
        rows.append(["before / now", *(before[w] / now[w] for w in what), ""])
    print()
    print(
        f"median of {args.rounds} rounds, each the best of {args.chunks} chunks"
        f" of {args.chunk:,} datagrams (us of CPU per datagram)"
    )
    headers = ["tree", "receive us", "decode us", "node us", "1/receive /s"]
    print(table(headers, rows))
    figures = {"before": str(args.before) if args.before else None, "runs": runs}
    path = write_out("receive_path", {**figures, "summary": summary})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
