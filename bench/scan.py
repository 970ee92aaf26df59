"""The scanner's cost: a rescan of an unchanged folder of 100,000 files.

Creates the folder (deep trees, long and non-ASCII names) in a temporary
directory, then times, best and median of ``--repeat``: ``scan_folder``
(walking and stat-ing every file, in the scanner's worker thread in real
use) and ``state.rescan`` (comparing with the published version), and the
two together, which is what the scanner pays every ``scan`` seconds.

    python bench/scan.py                 # 100,000 files
    python bench/scan.py --files 10000
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

from trio_gossip.scanner import scan_folder
from trio_gossip.state import first_entry, rescan

OUT = Path(__file__).resolve().parent / "out"


def make_tree(root: Path, count: int, rng: random.Random) -> None:
    words = ["données", "проект", "資料", "archive", "photos-2026", "b" * 60, "src"]
    dirs = [
        root.joinpath(
            *(f"{rng.choice(words)}-{rng.randint(0, 9)}" for _ in range(rng.randint(1, 6)))
        )
        for _ in range(max(1, count // 50))
    ]
    for d in dirs:
        d.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        (rng.choice(dirs) / f"file-{i:06d}-{rng.choice(words)}.dat").write_bytes(b"x" * (i % 7))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        began = time.perf_counter()
        make_tree(root, args.files, random.Random(1))
        made = time.perf_counter() - began
        own = first_entry(1, scan_folder(root).files)
        assert len(own.files) == args.files
        walks, compares = [], []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            scanned = scan_folder(root)
            t1 = time.perf_counter()
            assert rescan(own, scanned.files) is None  # unchanged
            t2 = time.perf_counter()
            walks.append(t1 - t0)
            compares.append(t2 - t1)
    totals = [w + c for w, c in zip(walks, compares, strict=True)]
    figures = {
        "files": args.files,
        "create_seconds": made,
        "walk_best": min(walks),
        "walk_median": statistics.median(walks),
        "compare_best": min(compares),
        "compare_median": statistics.median(compares),
        "rescan_best": min(totals),
        "rescan_median": statistics.median(totals),
    }
    print(
        f"{args.files} files (created in {made:.1f} s);"
        f" unchanged rescan, best / median of {args.repeat}:"
    )
    print(f"  walk and stat (scan_folder): {min(walks):.3f} / {statistics.median(walks):.3f} s")
    print(
        f"  compare (state.rescan):      {min(compares):.3f} / {statistics.median(compares):.3f} s"
    )
    print(f"  together:                    {min(totals):.3f} / {statistics.median(totals):.3f} s")
    OUT.mkdir(exist_ok=True)
    (OUT / "scan.json").write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
