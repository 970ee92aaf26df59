"""A config of N peers on consecutive loopback ports, for the benchmarks.

    python bench/gen_config.py 50 --port 20000 --dir /tmp/x --push 1 --reap 300 -o config.json

Peers are named ``p00``, ``p01``, ... (or ``--names A,B,C``), listen on
``--host`` (a loopback address: the benchmarks never leave this machine) at
``--port``, ``--port + 1``, ..., and share ``DIR/<name>`` (absolute paths, so
the config file can live anywhere).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["loopback", "make_config", "names_for", "write_config"]

LOOPBACK = ipaddress.ip_network("127.0.0.0/8")


def loopback(host: str) -> str:
    """``host`` if it is an IPv4 loopback address; the benchmarks send nowhere else."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise SystemExit(f"gen_config: {host!r}: give a 127.x.y.z address") from None
    if address not in LOOPBACK:
        raise SystemExit(f"gen_config: {host}: only loopback (127.0.0.0/8) is allowed")
    return host


def names_for(count: int, prefix: str = "p") -> list[str]:
    """``count`` names that sort in port order: p00..p49, p000..p999."""
    width = len(str(max(count - 1, 0)))
    return [f"{prefix}{i:0{width}d}" for i in range(count)]


def make_config(
    names: Sequence[str],
    *,
    port: int,
    folders: Path,
    host: str = "127.0.0.1",
    scan: float = 2.0,
    push: float = 1.0,
    relay: float | None = None,
    reap: float = 300.0,
    max_datagram: int | None = None,
) -> dict[str, Any]:
    """The config as a JSON object: ``names[i]`` on ``host:port + i``."""
    loopback(host)
    if len(names) < 2:
        raise SystemExit("gen_config: at least two peers are needed to gossip")
    if not 0 < port <= 65536 - len(names):
        raise SystemExit(f"gen_config: ports {port}..{port + len(names) - 1} do not fit")
    config: dict[str, Any] = {
        "peers": {
            name: {"host": host, "port": port + i, "folder": str(folders.resolve() / name)}
            for i, name in enumerate(names)
        },
        "intervals": {
            "scan": scan,
            "push": push,
            "relay": push if relay is None else relay,
            "reap": reap,
        },
    }
    if max_datagram is not None:
        config["max_datagram"] = max_datagram
    return config


def write_config(config: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config, indent=1) + "\n")
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("count", type=int, metavar="N", help="number of peers")
    parser.add_argument("--port", type=int, default=20_000, help="first port (default 20000)")
    parser.add_argument("--host", default="127.0.0.1", help="a loopback address")
    parser.add_argument(
        "--dir", type=Path, default=Path("folders"), help="folders go in DIR/<name>"
    )
    parser.add_argument("--names", help="comma-separated names instead of p00, p01, ...")
    parser.add_argument("--prefix", default="p", help="name prefix (default p)")
    parser.add_argument("--scan", type=float, default=2.0, help="seconds (default 2)")
    parser.add_argument("--push", type=float, default=1.0, help="seconds (default 1)")
    parser.add_argument("--relay", type=float, help="seconds (default: as --push)")
    parser.add_argument("--reap", type=float, default=300.0, help="seconds (default 300)")
    parser.add_argument("--max-datagram", type=int, help="bytes (default: the peer's, 8192)")
    parser.add_argument("-o", "--output", type=Path, help="the file to write (default stdout)")
    args = parser.parse_args(argv)
    names = args.names.split(",") if args.names else names_for(args.count, args.prefix)
    if len(names) != args.count:
        parser.error(f"--names gives {len(names)} names for N = {args.count}")
    config = make_config(
        names,
        port=args.port,
        folders=args.dir,
        host=args.host,
        scan=args.scan,
        push=args.push,
        relay=args.relay,
        reap=args.reap,
        max_datagram=args.max_datagram,
    )
    if args.output is None:
        json.dump(config, sys.stdout, indent=1)
        print()
    else:
        write_config(config, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
