"""The command line: ``python -m trio_gossip X``, ``--all``, ``X --info [--json]``,
``--keygen``.

Exit status: 0 after a clean stop (Ctrl-C, SIGTERM), a shown ``--info`` or a
printed ``--keygen``;
1 when ``--info`` gets no answer; 2 for a bad command line, a bad config, or a
peer that cannot start. Every such failure is one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import secrets
import signal
import sys
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import NoReturn

import attrs
import trio

from .config import Config, ConfigError, http_problem, load_config, parse_http, resolve_hosts
from .info import NoAnswer, format_info, query
from .keyring import generate_key
from .peer import Peer, StartupError
from .transport import UdpNetwork

__all__ = ["main"]

log = logging.getLogger("trio_gossip")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="trio_gossip",
        description="Gossip the metadata of folders between peers over UDP.",
        epilog="Run one peer: trio_gossip A.  Every peer of the config in one process: "
        "trio_gossip --all.  What a running peer knows: trio_gossip A --info.  "
        "A new cluster key: trio_gossip --keygen.",
    )
    parser.add_argument(
        "name", nargs="?", metavar="NAME", help="the peer to run or ask (a name in the config)"
    )
    parser.add_argument(
        "--all", action="store_true", help="run every peer of the config in this process"
    )
    parser.add_argument(
        "--info", action="store_true", help="ask the running peer NAME what it knows"
    )
    parser.add_argument("--json", action="store_true", help="with --info: print one JSON object")
    parser.add_argument(
        "--http",
        metavar="[HOST:]PORT",
        help="serve a web page of what the peer knows (default host: 127.0.0.1; "
        "with --all, the first peer's)",
    )
    parser.add_argument(
        "--keygen",
        action="store_true",
        help="print a new random cluster key (base64, 32 bytes) and exit",
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=Path("config.json"),
        metavar="PATH",
        help="the cluster's config file (default: ./config.json)",
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        type=str.upper,
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="default: INFO",
    )
    return parser


def _folder(config: Config, name: str) -> Path:
    folder = config.folder(name)
    if folder is None:
        folder = Path.cwd() / f"trio-gossip-{name}-{secrets.token_hex(4)}"
        log.info("%s: no folder in the config; sharing a new folder %s", name, folder)
    folder = folder.resolve()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StartupError(
            f"peer {name}: cannot create folder {folder}: {exc.strerror or exc}"
        ) from None
    return folder


def _allow_sockets(count: int) -> None:
    """Raise the open-file limit towards the hard limit for ``count`` sockets
    (``--all`` with a large config needs one per peer)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = count + 64
    if soft != resource.RLIM_INFINITY and soft < wanted:
        limit = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))


async def serve(config: Config, names: Sequence[str]) -> None:
    """Run the peers ``names`` until SIGINT or SIGTERM; SIGHUP rescans their folders."""
    _allow_sockets(len(names))
    network = UdpNetwork()
    peers: list[Peer] = []
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM, signal.SIGHUP) as signals:
        async with trio.open_nursery() as nursery:

            async def on_signal() -> None:
                async for signum in signals:
                    if signum == signal.SIGHUP:
                        log.info("SIGHUP received, rescanning")
                        for peer in peers:
                            peer.rescan_now()
                        continue
                    log.info("%s received, stopping", signal.Signals(signum).name)
                    nursery.cancel_scope.cancel()
                    return

            # Watching from the start: a signal also stops a long start (--all).
            nursery.start_soon(on_signal)
            for i, name in enumerate(names):
                folder = _folder(config, name)
                # One page per process: the first peer's (the others would need ports of their own).
                http = config.http if i == 0 else None
                peer = Peer(name, config, network=network, folder=folder, http=http)
                await nursery.start(peer.run)
                peers.append(peer)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.keygen:
        if args.name is not None or args.all or args.info or args.json or args.http:
            parser.error("--keygen goes alone")
        print(generate_key())  # needs no config: it makes the key that goes in one
        return 0
    if args.all == (args.name is not None):
        parser.error("give a peer NAME or --all")
    if args.info and args.all:
        parser.error("--info asks one peer: give its NAME, not --all")
    if args.json and not args.info:
        parser.error("--json goes with --info")
    if args.http is not None and args.info:
        parser.error("--http goes with a running peer, not --info")
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr
    )
    try:
        return _run(args)
    except KeyboardInterrupt:  # Ctrl-C before the peers watch for it (resolving hosts)
        print("trio_gossip: interrupted", file=sys.stderr)
        return 130


def _run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
        if args.name is not None and args.name not in config.peers:
            known = ", ".join(config.peers)
            raise ConfigError(f"{args.config}: no peer named {args.name!r} (peers: {known})")
        config = resolve_hosts(config, str(args.config))
        if args.http is not None:
            config = _with_http(config, args.http)
    except ConfigError as exc:
        print(f"trio_gossip: {exc}", file=sys.stderr)
        return 2
    if args.info:
        return _info(config, args.name, args.json)
    names = list(config.peers) if args.all else [args.name]
    failures: list[StartupError] = []
    try:
        trio.run(serve, config, names)
    except* StartupError as group:
        failures.extend(e for e in group.exceptions if isinstance(e, StartupError))
    except* KeyboardInterrupt:  # a second Ctrl-C while stopping
        log.info("interrupted")
    if failures:
        print(f"trio_gossip: {failures[0]}", file=sys.stderr)
        return 2
    return 0


def _with_http(config: Config, text: str) -> Config:
    """``config`` serving the page where ``--http`` says, if it may."""
    try:
        http = parse_http(text)
    except ValueError as exc:
        raise ConfigError(f"--http: {exc}") from None
    problem = http_problem(config, http[0])
    if problem:
        raise ConfigError(f"--http: {problem} in the config")
    return attrs.evolve(config, http=http)


def _info(config: Config, name: str, as_json: bool) -> int:
    try:
        snapshot = trio.run(partial(query, config.address(name), keyring=config.keyring))
    except NoAnswer as exc:
        print(f"trio_gossip: peer {name} is not answering: {exc}", file=sys.stderr)  # one line
        return 1
    print(json.dumps(snapshot, indent=2, ensure_ascii=False) if as_json else format_info(snapshot))
    return 0
