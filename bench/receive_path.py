"""The receive path's CPU alone: ``Node.receive_untrusted`` and ``decode_untrusted`` per datagram.

    python -m bench.receive_path [--before DIR ...] [--rounds 5] [--profile 25]

No sockets, no trio: a :class:`~trio_gossip.node.Node` "A" of a two-peer
config, holding B's entry (alive), is handed the small digests of
``bench/receiver.py`` (section 5 of ``docs/performance.md``) one after the
other, as its shell would: from B, a line with B's heartbeat one higher
than the last and a line about A, ``reply`` false -- nothing to answer, the
most common datagram of a quiet cluster. What is timed:

* ``receive``: ``Node.receive_untrusted`` (decode, the checks against the
  config, the merge of the heartbeat, the books);
* ``decode``: ``codec.decode_untrusted`` alone, on the same datagrams;
* ``node``: the difference, what the node adds to decoding.

Each figure is the best of ``--chunks`` chunks of ``--chunk`` datagrams
(``time.process_time``: CPU, not wall time, so other work on the machine
costs less than it would in a rate; the best chunk is the one least
disturbed), and the table gives the median over ``--rounds`` rounds.

``--before DIR`` measures the ``trio_gossip`` package of the source tree
``DIR`` too (``git worktree add DIR REV``, or ``git archive REV trio_gossip
| tar -x -C DIR``), in the same process: it is imported a second time under
another name (its modules import each other relatively), and the trees
take turns chunk by chunk, on the same datagrams, so that a busy spell of a
shared machine falls on all. Beside the medians, the table gives the
median of the ratios of each pair of chunks (before / now), the steadier
figure when the machine is busy. ``--before`` may be given more than once
(``before``, ``before2``...).

``--profile K`` prints instead the K functions of this tree with the most
time of their own (cProfile) over ``--chunk`` datagrams. Figures go to
stdout and to ``bench/out/receive_path.json``. The real receiver, with its
UDP transport and a load generator, is ``bench/receiver.py``.
"""

from __future__ import annotations

import argparse
import cProfile
import importlib.util
import pstats
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

# Run as ``python bench/NAME.py``: make the ``bench`` package importable.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import trio_gossip
from bench.harness import REPO, median, table, write_out

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


def load(tree: Path, name: str) -> ModuleType:
    """The ``trio_gossip`` package of ``tree``, imported as ``name``."""
    init = tree / "trio_gossip" / "__init__.py"
    spec = importlib.util.spec_from_file_location(
        name, init, submodule_search_locations=[str(init.parent)]
    )
    if spec is None or spec.loader is None:
        raise SystemExit(f"receive_path: no trio_gossip package in {tree}")
    package = importlib.util.module_from_spec(spec)
    sys.modules[name] = package  # before running it: its modules import it by name
    spec.loader.exec_module(package)
    return package


class Subject:
    """One tree's node A and its two timed loops."""

    def __init__(self, package: ModuleType) -> None:
        name = package.__name__
        parts = ("codec", "config", "node", "state")
        modules = {m: importlib.import_module(f"{name}.{m}") for m in parts}
        config_module = modules["config"]
        config = config_module.Config(
            peers={
                "A": config_module.PeerConfig("127.0.0.1", 7000),
                "B": config_module.PeerConfig("127.0.0.1", 7001),
            },
            intervals=config_module.Intervals(scan=60.0, push=1.0, relay=1.0, reap=300.0),
        )
        node = modules["node"].Node("A", config, rng=random.Random(1), wall_clock=lambda: GEN_A)
        node.start({}, 0.0)
        entry = modules["state"].Entry(GEN_B, 1, FIRST_HEARTBEAT - 1, 0, ())
        node.replica.put("B", entry, 0.0, changed=True)
        node.replica.set_status("B", "alive", 0.0)
        self.node = node
        self.source = config.address("B")
        self._decode: Callable[[bytes], Any] = modules["codec"].decode_untrusted

    def receive(self, data: list[bytes]) -> float:
        """CPU us per datagram to receive all of ``data``."""
        receive, source = self.node.receive_untrusted, self.source
        start = time.process_time()
        for datagram in data:
            receive(datagram, source, 1.0)
        return (time.process_time() - start) / len(data) * 1e6

    def decode(self, data: list[bytes]) -> float:
        """CPU us per datagram to decode all of ``data``."""
        decode = self._decode
        start = time.process_time()
        for datagram in data:
            decode(datagram)
        return (time.process_time() - start) / len(data) * 1e6

    def check(self, heartbeat: int) -> None:
        """A benchmark of refusals would measure nothing: every datagram must
        have been taken, the last heartbeat held."""
        stats = self.node.statistics()
        if stats.rejected or stats.datagrams_out or self.node.replica["B"].heartbeat != heartbeat:
            raise SystemExit(f"receive_path: the node did not take every datagram: {stats}")


def run(subjects: dict[str, Subject], args: argparse.Namespace) -> dict[str, Any]:
    """``--rounds`` rounds of ``--chunks`` chunks, the subjects taking turns."""
    figures: dict[str, Any] = {label: [] for label in subjects}
    pairs: dict[str, list[dict[str, float]]] = {label: [] for label in subjects if label != "now"}
    heartbeat = FIRST_HEARTBEAT
    for round_ in range(args.rounds):
        chunks: dict[str, list[tuple[float, float]]] = {label: [] for label in subjects}
        order = list(subjects)
        for _ in range(args.chunks):
            data = [datagram(heartbeat + i) for i in range(args.chunk)]
            heartbeat += args.chunk
            order.reverse()  # neither tree always first
            for label in order:
                subject = subjects[label]
                chunks[label].append((subject.receive(data), subject.decode(data)))
            r1, d1 = chunks["now"][-1]
            for label, paired in pairs.items():
                r0, d0 = chunks[label][-1]
                node = (r0 - d0) / (r1 - d1)
                paired.append({"receive": r0 / r1, "decode": d0 / d1, "node": node})
        for label, subject in subjects.items():
            subject.check(heartbeat - 1)
            best_receive = min(r for r, _ in chunks[label])
            best_decode = min(d for _, d in chunks[label])
            best = {"receive_us": best_receive, "decode_us": best_decode}
            best["node_us"] = best_receive - best_decode
            figures[label].append(best)
            print(
                f"round {round_ + 1} {label:6} receive {best_receive:6.2f} us,"
                f" decode {best_decode:6.2f} us, node {best['node_us']:6.2f} us",
                flush=True,
            )
    return {"rounds": figures, "pairs": pairs}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--before",
        type=Path,
        action="append",
        default=[],
        help="also measure the trio_gossip of this tree (again for more trees)",
    )
    parser.add_argument("--rounds", type=int, default=5, help="rounds (default 5)")
    parser.add_argument("--chunks", type=int, default=50, help="chunks per round (default 50)")
    parser.add_argument("--chunk", type=int, default=2000, help="datagrams per chunk (2,000)")
    parser.add_argument("--profile", type=int, default=0, help="print the top K functions")
    args = parser.parse_args()
    if Path(trio_gossip.__file__).resolve().parent != REPO / "trio_gossip":
        raise SystemExit(f"receive_path: imported {trio_gossip.__file__}, not this tree's")
    now = Subject(trio_gossip)
    if args.profile:
        data = [datagram(FIRST_HEARTBEAT + i) for i in range(args.chunk)]
        profiler = cProfile.Profile()
        profiler.enable()
        now.receive(data)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(args.profile)
        return 0
    subjects: dict[str, Subject] = {}
    for i, tree in enumerate(args.before, 1):
        label = "before" if i == 1 else f"before{i}"
        subjects[label] = Subject(load(tree, f"trio_gossip_{label}"))
    subjects["now"] = now
    figures = run(subjects, args)
    what = ("receive_us", "decode_us", "node_us")
    summary = {
        label: {w: median([r[w] for r in rounds]) for w in what}
        for label, rounds in figures["rounds"].items()
    }
    rows: list[list[object]] = [
        [label, *(s[w] for w in what), round(1e6 / s["receive_us"])] for label, s in summary.items()
    ]
    for label, paired in figures["pairs"].items():
        before, now_ = summary[label], summary["now"]
        rows.append([f"{label} / now, medians", *(before[w] / now_[w] for w in what), ""])
        ratios = [statistics.median(p[w] for p in paired) for w in ("receive", "decode", "node")]
        rows.append([f"{label} / now, paired chunks", *ratios, ""])
    print()
    print(
        f"us of CPU per datagram: median of {args.rounds} rounds, each the best of"
        f" {args.chunks} chunks of {args.chunk:,} datagrams"
    )
    print(table(["tree", "receive us", "decode us", "node us", "1/receive /s"], rows))
    record = {"before": [str(tree) for tree in args.before], **figures, "summary": summary}
    print(f"wrote {write_out('receive_path', record)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
