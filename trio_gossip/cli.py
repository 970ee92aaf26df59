"""The command line: ``trio-gossip X`` (the same as ``python -m trio_gossip X``),
``--all``, ``X --info [--summary | --json]``, ``X --find GLOB [--json]``,
``X --watch [--json]``, ``--keygen``, ``--version``.

Exit statuses (docs/configuration.md, "Exit statuses"), each failure one line on stderr:

- 0: the peers stopped cleanly (SIGINT, SIGTERM); ``--info`` printed the
  snapshot; ``--find`` printed at least one file; ``--keygen``, ``--version``
  or ``--help`` printed theirs;
- 1: ``--info``, ``--find`` or ``--watch`` got no answer (or no snapshot) from the peer;
- 2: a bad command line, a bad config, or a peer that cannot start;
- 3: ``--info`` printed the snapshot, but the peer has heard from no other
  peer within max(5 push rounds, 10 s): it may be cut off;
- 4: ``--find`` matched no file (``grep``'s 1, which here says "no answer");
- 130: Ctrl-C before the peers watch for it, or during ``--info``, ``--find``
  or ``--watch`` (the usual way to end ``--watch``);
- 141: stdout was closed before all was written (``| head``): as a process
  that SIGPIPE ended, without a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import resource
import secrets
import select
import signal
import sys
import time
from collections.abc import Iterable, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import attrs
import trio

from . import __version__
from .config import Config, ConfigError, http_problem, load_config, parse_http, resolve_hosts
from .keyring import generate_key
from .logs import JsonFormatter, describe
from .peer import Peer, StartupError
from .shared import SharedEntries
from .udp import UdpNetwork

if TYPE_CHECKING:
    from .messages import EventNote

# What only asking a peer needs (--info, --find, --watch: .info, .render,
# .watch) is imported where it is asked for: a running peer never uses it.

__all__ = ["main"]

log = logging.getLogger("trio_gossip")


PROG = "trio-gossip"

#: ``--info`` and ``--find`` warn when the peer heard from no other peer in
#: this many push rounds, and at least this many seconds.
QUIET_ROUNDS = 5
QUIET_SECONDS = 10.0


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see --help)\n")


_EPILOG = """\
examples:
  trio-gossip A                 run peer A (the same: python -m trio_gossip A)
  trio-gossip --all             run every peer of the config in this process
  trio-gossip A --info          what the running peer A knows, file by file
  trio-gossip A --info --summary
                                the same, one line per peer
  trio-gossip A --find '*.jpg'  which peers hold files matching *.jpg
  trio-gossip A --watch         what peer A sees change, as it happens (Ctrl-C ends)
  trio-gossip A --on-change 'logger -t gossip'
                                run peer A, and a command for each event (JSON on stdin)
  trio-gossip --keygen          a new cluster key

exit statuses:
  0 done; 1 the peer did not answer; 2 a bad command line or config, or a peer
  that cannot start; 3 --info: the peer heard from no other peer lately;
  4 --find: no file matched; 130 interrupted; 141 the output was cut short
"""


def _version() -> str:
    import importlib.metadata  # 31 modules, 20 ms: only for --version

    try:
        return importlib.metadata.version("trio-gossip")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree
        return __version__


class _VersionAction(argparse.Action):
    """``--version``, as argparse's, but reading the version only when asked."""

    def __init__(self, option_strings: Sequence[str], dest: str) -> None:
        super().__init__(
            option_strings,
            dest=argparse.SUPPRESS,
            default=argparse.SUPPRESS,
            nargs=0,
            help="show program's version number and exit",
        )

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> NoReturn:
        _print_text(f"{PROG} {_version()}")
        parser.exit()


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Gossip the metadata of folders between peers over UDP.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
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
    parser.add_argument(
        "--summary",
        action="store_true",
        help="with --info: one line per origin, without its files",
    )
    parser.add_argument(
        "--find",
        metavar="GLOB",
        help="ask the running peer NAME which peers hold files whose path matches GLOB "
        "(a shell pattern: quote it, '*.jpg'; * also matches /)",
    )
    parser.add_argument(
        "--watch",
        action="store_true",
        help="follow what the running peer NAME sees change, one line per event (Ctrl-C ends)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="with --info or --find: print one JSON object; with --watch: one per line",
    )
    parser.add_argument(
        "--http",
        metavar="[HOST:]PORT",
        help="when running peers: serve a web page of what the peer knows (default host: "
        "127.0.0.1; with --all, the first peer's)",
    )
    parser.add_argument(
        "--on-change",
        metavar="CMD",
        help="when running peers: run the shell command CMD for each event, the event "
        "as JSON on its stdin (overrides the config's on_change)",
    )
    parser.add_argument(
        "--log-format",
        choices=["text", "json"],
        default="text",
        help="the log on stderr: lines for a person (default) or one JSON object per line",
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
    parser.add_argument("--version", action=_VersionAction)
    return parser


def _check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse the combinations of options that mean nothing (exit status 2)."""
    asks = args.info or args.find is not None or args.watch
    if args.keygen:
        others = (args.json, args.summary, args.http, args.on_change is not None)
        if args.name is not None or args.all or asks or any(others):
            parser.error("--keygen goes alone")
        return
    if sum((args.info, args.find is not None, args.watch)) > 1:
        parser.error("give one of --info, --find and --watch")
    if args.on_change is not None and asks:
        parser.error("--on-change goes with running peers, not with asking one")
    if args.http is not None and asks:
        parser.error("--http goes with running peers, not with asking one")
    if args.all == (args.name is not None):
        parser.error("give a peer NAME or --all")
    if asks and args.all:
        what = "--info" if args.info else "--find" if args.find is not None else "--watch"
        parser.error(f"{what} asks one peer: give its NAME, not --all")
    if args.json and not asks:
        parser.error("--json goes with --info, --find or --watch")
    if args.summary and not args.info:
        parser.error("--summary goes with --info")
    if args.summary and args.json:
        parser.error("--summary is text: --json prints the whole snapshot")


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


async def serve(config: Config, names: Sequence[str], on_change: str | None = None) -> None:
    """Run the peers ``names`` until SIGINT or SIGTERM; SIGHUP rescans their folders.
    ``on_change``: a hook for each event, instead of the config's."""
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
            # The peers of --all hold what they hold in common once.
            shared = SharedEntries() if len(names) > 1 else None
            for i, name in enumerate(names):
                folder = _folder(config, name)
                # One page per process: the first peer's (the others would need ports of their own).
                http = config.http if i == 0 else None
                peer = Peer(
                    name,
                    config,
                    network=network,
                    folder=folder,
                    on_change=on_change,
                    http=http,
                    shared=shared,
                )
                await nursery.start(peer.run)
                peers.append(peer)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    interrupted = broken = False
    try:
        return _main(argv)
    except* KeyboardInterrupt:  # Ctrl-C before the peers watch for it, or during --info
        interrupted = True
    except* BrokenPipeError:  # whoever read our output stopped reading (| head)
        broken = True
    if broken:
        # As the Python docs advise: the interpreter flushes stdout on the way
        # out, which would fail again; send what is left nowhere.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports of a process the pipe ended
    if interrupted:
        print(f"{PROG}: interrupted", file=sys.stderr)
    return 130


#: Names an error message lists at most.
SOME_NAMES = 10


def _some(names: Iterable[str]) -> str:
    """``names`` for a one-line message: the first :data:`SOME_NAMES`, and how many more."""
    listed = list(names)
    shown = ", ".join(listed[:SOME_NAMES])
    more = len(listed) - SOME_NAMES
    return f"{shown} and {more} more" if more > 0 else shown


def _main(argv: Sequence[str] | None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    _check(parser, args)
    if args.keygen:
        print(generate_key())  # needs no config: it makes the key that goes in one
        return 0
    handler = logging.StreamHandler(sys.stderr)
    if args.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logging.basicConfig(level=args.log_level, handlers=[handler])
    # The folder watcher's own lines ("5 changes detected") name no peer: ours say it all.
    logging.getLogger("watchfiles").setLevel(max(logging.WARNING, logging.root.level))
    try:
        config = load_config(args.config)
        if args.name is not None and args.name not in config.peers:
            raise ConfigError(
                f"{args.config}: no peer named {args.name!r} (peers: {_some(config.peers)})"
            )
        config = resolve_hosts(config, str(args.config))
        if args.http is not None:
            config = _with_http(config, args.http)
    except ConfigError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    if args.watch:
        return _watch(config, args.name, as_json=args.json)
    if args.info or args.find is not None:
        return _ask(config, args)
    names = list(config.peers) if args.all else [args.name]
    failures: list[StartupError] = []
    try:
        trio.run(serve, config, names, args.on_change)
    except* StartupError as group:
        failures.extend(e for e in group.exceptions if isinstance(e, StartupError))
    except* KeyboardInterrupt:  # a second Ctrl-C while stopping
        log.info("interrupted")
    if failures:
        print(f"{PROG}: {failures[0]}", file=sys.stderr)
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


def _ask(config: Config, args: argparse.Namespace) -> int:
    """``--info`` or ``--find``: ask the peer, print what it said, judge its health."""
    from .info import NoAnswer, files_matching, query, unheard_for
    from .render import format_info, format_matches, format_summary

    name: str = args.name
    address = config.address(name)
    log.debug("asking peer %s at %s:%d", name, *address)
    try:
        snapshot = trio.run(partial(query, address, keyring=config.keyring))
    except NoAnswer as exc:
        print(f"{PROG}: peer {name} is not answering: {exc}", file=sys.stderr)  # one line
        return 1
    status = 0
    if args.find is not None:
        matches = files_matching(snapshot, args.find)
        if args.json:
            _print_json({"peer": snapshot["peer"], "pattern": args.find, "origins": matches})
        elif matches:
            _print_text(format_matches(snapshot, matches))
        status = 0 if matches else 4
    elif args.json:
        _print_json(snapshot)
    else:
        _print_text(format_summary(snapshot) if args.summary else format_info(snapshot))
    push = config.intervals.push
    quiet = max(QUIET_ROUNDS * push, QUIET_SECONDS)
    unheard = unheard_for(snapshot, push, quiet)
    if unheard is not None:
        since = "yet" if math.isinf(unheard) else f"for {unheard:.0f} s"
        print(
            f"{PROG}: peer {name} has heard from no other peer {since} "
            f"(expected within {quiet:g} s)",
            file=sys.stderr,
        )
        if args.info:
            status = 3
    return status


def _watch(config: Config, name: str, *, as_json: bool) -> int:
    """``--watch``: print each event the peer sees until Ctrl-C (or SIGTERM)."""
    from .watch import NotWatching, note_event, note_json, watch

    def show(note: EventNote, lost: int) -> None:
        if as_json:
            _write(json.dumps(note_json(note, lost), ensure_ascii=True) + "\n", errors="strict")
            return
        if lost:
            _print_text(f"({lost} event(s) lost)")
        event = note_event(note)
        more = f" (and {note.more} more names)" if note.more else ""
        _print_text(f"{time.strftime('%H:%M:%S')} {describe(event)}{more}")

    async def run() -> None:
        with trio.open_signal_receiver(signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:

                async def stop() -> None:
                    async for _ in signals:
                        nursery.cancel_scope.cancel()

                nursery.start_soon(stop)
                await watch(config.address(name), show, keyring=config.keyring)

    failures: list[BaseException] = []
    try:
        trio.run(run)
    except* NotWatching as group:
        failures.extend(group.exceptions)
    if failures:
        print(f"{PROG}: peer {name} is not answering: {failures[0]}", file=sys.stderr)
        return 1
    return 0


def _print_text(text: str) -> None:
    # Names are escaped already (render.escape); a terminal that cannot show
    # a printable character gets an escape rather than a traceback.
    _write(text + "\n", errors="backslashreplace")


def _print_json(value: object) -> None:
    text = json.dumps(value, indent=2, ensure_ascii=False)
    try:
        text.encode(_encoding())
    except UnicodeEncodeError:  # a lone surrogate, or a terminal without UTF-8
        text = json.dumps(value, indent=2)  # the same JSON, escaped to ASCII
    _write(text + "\n", errors="strict")


def _encoding() -> str:
    return sys.stdout.encoding or "utf-8"


def _write(text: str, errors: str) -> None:
    """All of ``text`` on stdout, or :class:`BrokenPipeError` if its reader left.

    Straight to the bytes under ``sys.stdout``, in a loop: with
    ``PYTHONUNBUFFERED`` that is a raw file, whose write may take only a part
    (a pipe whose reader left takes what fitted), and the text layer would
    drop the rest without a word.
    """
    sys.stdout.flush()
    out = sys.stdout.buffer
    data = memoryview(text.encode(_encoding(), errors))
    while data:
        written = out.write(data)
        if written is None:  # a non-blocking stdout that is full: wait for room
            select.select([], [out], [])
            continue
        data = data[written:]
    out.flush()
