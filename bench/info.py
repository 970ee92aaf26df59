"""How long ``--info`` takes to fetch a large view: ``query`` against a real
peer on loopback whose own folder holds 17,000 files.

The peer runs in this process (``UdpNetwork``, its own trio task), or with
``--process`` as a child ``python -m trio_gossip A``, as a user runs it. Each
query uses a new nonce, so the peer makes a new snapshot each time, as for a
user. Between two queries the benchmark waits 1.1 s, so that each starts
with the peer's ``info`` budget (256 parts per second of its clock) unused,
and a random fraction of a second more, so that each starts at its own
point of the peer's second, as a user's would.

    python -m bench.info                      # 17,000 files, 10 queries
    python -m bench.info --names mixed        # bench/scan.py's long, non-ASCII names
    python -m bench.info --files 5000 --queries 5 --process
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

import trio

# Run as ``python bench/NAME.py``: make the ``bench`` package importable.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import Children, wait_until, write_out
from bench.scan import make_tree
from trio_gossip import NoAnswer, Peer, UdpNetwork, parse_config, query
from trio_gossip.config import Config

PAUSE = 1.1  # seconds between two queries: a fresh second of the peer's info budget


def make_simple_tree(root: Path, count: int) -> None:
    """``count`` small files with short ASCII names, 100 to a directory."""
    for i in range(count):
        if i % 100 == 0:
            (root / f"dir-{i // 100:03d}").mkdir()
        (root / f"dir-{i // 100:03d}" / f"file-{i:06d}.dat").write_bytes(b"x" * (i % 7))


def _config(ports: tuple[int, int], folder: Path) -> str:
    # B is never started: A needs a cluster of two to start at all.
    return json.dumps(
        {
            "peers": {
                "A": {"host": "127.0.0.1", "port": ports[0], "folder": str(folder)},
                "B": {"host": "127.0.0.1", "port": ports[1]},
            },
            "intervals": {"scan": 3600, "push": 1, "relay": 1, "reap": 3600},
        }
    )


def _free_ports() -> tuple[int, int]:
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as a,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as b,
    ):
        a.bind(("127.0.0.1", 0))
        b.bind(("127.0.0.1", 0))
        return a.getsockname()[1], b.getsockname()[1]


async def _time_queries(config: Config, queries: int) -> tuple[list[float], int]:
    address = config.address("A")
    times: list[float] = []
    size = 0
    rng = random.Random(2)
    for i in range(queries):
        if i:
            await trio.sleep(PAUSE + rng.random())
        began = time.perf_counter()
        snapshot = await query(address)
        times.append(time.perf_counter() - began)
        size = len(json.dumps(snapshot, separators=(",", ":")))
    return times, size


async def _in_process(config: Config, folder: Path, queries: int) -> tuple[list[float], int]:
    async with trio.open_nursery() as nursery:
        peer = Peer("A", config, network=UdpNetwork(), folder=folder)
        await nursery.start(peer.run)
        result = await _time_queries(config, queries)
        nursery.cancel_scope.cancel()
    return result


def _answers(config: Config) -> bool:
    async def ask() -> bool:
        try:
            await query(config.address("A"))
        except NoAnswer:
            return False
        return True

    return trio.run(ask)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=17_000)
    parser.add_argument("--queries", type=int, default=10)
    parser.add_argument(
        "--names",
        choices=["short", "mixed"],
        default="short",
        help="short ASCII names (default), or bench/scan.py's deep, long, non-ASCII ones",
    )
    parser.add_argument("--process", action="store_true", help="run the peer as a child process")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "A"
        folder.mkdir()
        if args.names == "short":
            make_simple_tree(folder, args.files)
        else:
            make_tree(folder, args.files, random.Random(1))
        text = _config(_free_ports(), folder)
        config = parse_config(text)
        if args.process:
            (Path(tmp) / "config.json").write_text(text)
            with Children(lifetime=600) as children:
                children.start(
                    [sys.executable, "-m", "trio_gossip", "A", "--log-level", "WARNING"],
                    cwd=Path(tmp),
                )
                if not wait_until(lambda: _answers(config), timeout=60):
                    sys.exit("the peer did not answer within 60 s")
                time.sleep(PAUSE)
                times, size = trio.run(_time_queries, config, args.queries)
        else:
            times, size = trio.run(_in_process, config, folder, args.queries)
    parts = -(-size // ((config.max_datagram - 256) // 2))
    where = "a child process" if args.process else "this process"
    print(
        f"--info of a view of {args.files} files, {args.names} names "
        f"({size / 1024:.0f} KiB of JSON, {parts} parts), peer in {where}, "
        f"{args.queries} queries:"
    )
    print(
        f"  best {min(times):.3f} s, median {statistics.median(times):.3f} s, "
        f"worst {max(times):.3f} s"
    )
    figures = {
        "files": args.files,
        "names": args.names,
        "process": args.process,
        "json_bytes": size,
        "parts": parts,
        "seconds": times,
        "best": min(times),
        "median": statistics.median(times),
        "worst": max(times),
    }
    print(f"written to {write_out('info', figures)}")


if __name__ == "__main__":
    main()
