"""A running peer: one trio nursery supervising five tasks over one transport.

* receiver -- decodes every datagram as untrusted input and acts on it;
* scanner  -- rescans the peer's folder and publishes a new version on change;
* pusher   -- every round, beats the heartbeat and starts a push-pull digest
  exchange with a random other peer;
* relayer  -- passes fresh news about other origins on to random third peers;
* reaper   -- turns origins whose key stopped going up into tombstones.

The decisions are the pure functions of :mod:`.state` and :mod:`.transfer`;
this module keeps the peer's mutable state, moves bytes and waits for time.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import json
import logging
import math
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, NoReturn

import attrs
import trio

from .config import Config
from .digests import MIN_LINE, Roster, ahead_of, select
from .scanner import Scan, ScanError, Skipped, scan_folder
from .state import (
    Entry,
    Line,
    beat,
    first_entry,
    live_files,
    merge,
    next_reaping,
    proven,
    reap_due,
    refute,
    rescan,
    tombstone,
)
from .transfer import Assemblies, Transfer, finish, prepare
from .transport import Address, Network, Transport
from .wire import (
    MAX_COUNTER,
    BadDatagram,
    Digest,
    Info,
    InfoRequest,
    Message,
    Part,
    Want,
    decode_untrusted,
    encode,
)

__all__ = ["Peer", "StartupError", "Statistics"]

log = logging.getLogger("trio_gossip")

#: Parts a holder sends at once, and a receiver asks for at once.
WINDOW = 16
#: Seconds between two log lines about rejected datagrams of one reason.
REJECT_LOG_EVERY = 10.0
#: Seconds a --info snapshot is kept for the parts still to be asked for.
SNAPSHOT_TTL = 30.0
#: Info parts a peer sends per second at most: anyone may ask, so a flood of
#: small forged requests cannot turn a peer into a large stream of answers.
INFO_RATE = 256
_ENVELOPE = 256  # an upper bound on an info part's bytes besides its data


@functools.lru_cache(maxsize=16)
def _roster(names: tuple[str, ...]) -> Roster:
    """One roster per cluster, shared by the peers of one process (``--all``)."""
    return Roster.of(names)


class StartupError(Exception):
    """The peer cannot start (address in use, folder unreadable); one line for the user."""


@attrs.frozen
class Statistics:
    """A snapshot of a peer's counters."""

    datagrams_in: int
    datagrams_out: int
    bytes_in: int
    bytes_out: int
    rejected: Mapping[str, int]
    accepted: int
    reaped: int
    refuted: int
    scans: int
    scan_failures: int


class Peer:
    """Peer ``name`` of the cluster in ``config``, sharing ``folder``.

    ``rng`` and ``wall_clock`` (nanoseconds, for the generation) are injected
    so simulations are deterministic; the scan function runs in a thread
    unless ``scan_in_thread`` is false, for a fake scanner that does no I/O:
    under an autojumping ``MockClock`` virtual time jumps while a thread runs,
    so a simulation's times would depend on the OS scheduler.
    """

    def __init__(
        self,
        name: str,
        config: Config,
        *,
        network: Network,
        folder: Path,
        rng: random.Random | None = None,
        wall_clock: Callable[[], int] = time.time_ns,
        scanner: Callable[[Path], Scan] = scan_folder,
        scan_in_thread: bool = True,
    ) -> None:
        self.name = name
        self.config = config
        self.folder = folder
        self.address: Address = config.address(name)
        self._network = network
        self._rng = rng if rng is not None else random.Random()
        self._wall_clock = wall_clock
        self._scanner = scanner
        self._scan_in_thread = scan_in_thread
        self._others = [n for n in config.peers if n != name]
        self._by_address = {config.address(n): n for n in config.peers}
        # Fresh news is relayed this many times: enough for an epidemic to finish.
        self._relays = max(3, math.ceil(math.log2(len(config.peers))) + 1)
        self._transport: Transport | None = None
        self._view: dict[str, Entry] = {}
        self._heard: dict[str, float] = {}
        self._changed: dict[str, float] = {}
        self._hot: dict[str, int] = {}
        self._origins: list[str] = []  # the view's keys, for sampling
        self._roster = _roster(tuple(config.peers))
        self._held: tuple[int, int] = (0, 0)  # (origins in the view, their roster bits)
        self._assemblies = Assemblies(WINDOW)
        self._transfers: dict[tuple[str, int, int, int], Transfer] = {}
        self._snapshots: dict[int, tuple[float, list[str]]] = {}
        self._info_sent = (0, 0)  # (second, info parts sent in it)
        self._counts: Counter[str] = Counter()
        self._rejected: Counter[str] = Counter()
        self._reject_logged: dict[str, tuple[float, int]] = {}
        self._skipped = Skipped()

    # -- what the peer knows ---------------------------------------------------

    def view(self) -> dict[str, Entry]:
        """Every live origin's entry, ours included (tombstones left out)."""
        return {o: e for o, e in self._view.items() if not e.reaped}

    def entry(self, origin: str) -> Entry | None:
        """What we hold about ``origin`` (a tombstone if reaped), without copying the view."""
        return self._view.get(origin)

    def reaped(self) -> dict[str, Entry]:
        """The tombstones: origins reaped, with the key they were reaped at."""
        return {o: e for o, e in self._view.items() if e.reaped}

    def statistics(self) -> Statistics:
        c = self._counts
        return Statistics(
            c["datagrams_in"],
            c["datagrams_out"],
            c["bytes_in"],
            c["bytes_out"],
            dict(self._rejected),
            c["accepted"],
            c["reaped"],
            c["refuted"],
            c["scans"],
            c["scan_failures"],
        )

    def snapshot(self, now: float) -> dict[str, Any]:
        """What ``--info`` shows: every origin, its version, ages and files."""

        def ago(t: float | None) -> float | None:
            return None if t is None else round(now - t, 3)

        origins: dict[str, Any] = {}
        reaped: dict[str, Any] = {}
        for origin, entry in sorted(self._view.items()):
            if entry.reaped:
                reaped[origin] = {
                    "generation": entry.generation,
                    "version": entry.version,
                    "reaped_ago": ago(self._changed.get(origin)),
                }
                continue
            files = live_files(entry)
            origins[origin] = {
                "generation": entry.generation,
                "version": entry.version,
                "heartbeat": entry.heartbeat,
                "changed_ago": ago(self._changed.get(origin)),
                "heard_ago": 0.0 if origin == self.name else ago(self._heard.get(origin)),
                "file_count": len(files),
                "files": [{"name": f.name, "size": f.size, "mtime_ns": f.mtime_ns} for f in files],
            }
        return {
            "peer": self.name,
            "address": f"{self.address[0]}:{self.address[1]}",
            "folder": str(self.folder),
            "origins": origins,
            "reaped": reaped,
            "statistics": attrs.asdict(self.statistics()),
        }

    # -- the supervisor --------------------------------------------------------

    async def run(
        self, *, task_status: trio.TaskStatus[Address] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Bind, scan once, start the five tasks, report the address; run until cancelled."""
        try:
            self._transport = await self._network.bind(self.address)
        except OSError as exc:
            where = f"{self.address[0]}:{self.address[1]}"
            raise StartupError(
                f"peer {self.name}: cannot listen on {where}: {exc.strerror or exc}"
            ) from None
        try:
            try:
                scan = await self._scan()
            except ScanError as exc:
                raise StartupError(f"peer {self.name}: {exc}") from None
            self._publish(first_entry(self._wall_clock(), scan.files), trio.current_time())
            own = self._view[self.name]
            log.info(
                "%s: started on %s:%d, folder %s, generation %d, %d files",
                self.name,
                *self.address,
                self.folder,
                own.generation,
                len(own.files),
            )
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._receive_loop)
                nursery.start_soon(self._scan_loop)
                nursery.start_soon(self._push_loop)
                nursery.start_soon(self._relay_loop)
                nursery.start_soon(self._reap_loop)
                task_status.started(self.address)
        finally:
            self._transport.close()
            log.info("%s: stopped", self.name)

    # -- the five tasks --------------------------------------------------------

    async def _receive_loop(self) -> NoReturn:
        assert self._transport is not None
        while True:
            data, source = await self._transport.receive()
            for message in self.handle_untrusted(data, source, trio.current_time()):
                await self._send(message, source)

    async def _scan_loop(self) -> NoReturn:
        interval = self.config.intervals.scan
        deadline = trio.current_time()
        while True:
            deadline += interval
            await trio.sleep_until(deadline)
            try:
                scan = await self._scan()
            except ScanError as exc:
                self._counts["scan_failures"] += 1
                log.warning(
                    "%s: scan failed, keeping version %d: %s", self.name, self._own.version, exc
                )
                continue
            changed = rescan(self._own, scan.files)
            if changed is not None:
                self._publish(changed, trio.current_time())

    async def _push_loop(self) -> NoReturn:
        interval = self.config.intervals.push
        deadline = trio.current_time() + self._rng.uniform(0, interval)
        while True:
            await trio.sleep_until(deadline)
            deadline += interval
            self._view[self.name] = beat(self._own)
            target = self.config.address(self._rng.choice(self._others))
            roster, held = self._summary()
            lines = self._digest_lines((), self._room - len(held))
            await self._send(Digest(self.name, True, lines, roster, held), target)

    async def _relay_loop(self) -> NoReturn:
        interval = self.config.intervals.relay
        deadline = trio.current_time() + self._rng.uniform(0, interval)
        while True:
            await trio.sleep_until(deadline)
            deadline += interval
            if not self._hot:
                continue
            target_name = self._rng.choice(self._others)
            # A third peer: the origin knows its own news.
            news = (line for line in self._news() if line.origin != target_name)
            lines = select(news, (), self._view, self._rng, self._room)
            for line in lines:
                self._hot[line.origin] -= 1
                if self._hot[line.origin] <= 0:
                    del self._hot[line.origin]
            if lines:
                await self._send(Digest(self.name, False, lines), self.config.address(target_name))

    async def _reap_loop(self) -> NoReturn:
        after = self.config.intervals.reap
        while True:
            now = trio.current_time()
            for origin in reap_due(self._view, self._heard, now, after, self.name):
                entry = self._view[origin]
                self._view[origin] = tombstone(entry)
                self._changed[origin] = now
                self._hot[origin] = self._relays
                self._assemblies.drop(origin, entry.content)
                self._counts["reaped"] += 1
                log.info(
                    "%s: reaped %s (version %d, silent for %.1f s)",
                    self.name,
                    origin,
                    entry.version,
                    now - self._heard[origin],
                )
            self._assemblies.expire(now - after)
            await trio.sleep_until(next_reaping(self._view, self._heard, now, after, self.name))

    # -- helpers of the tasks --------------------------------------------------

    @property
    def _own(self) -> Entry:
        return self._view[self.name]

    @property
    def _room(self) -> int:
        """Bytes a message may take: ``max_datagram`` less what sealing adds."""
        return self.config.max_datagram - self.config.keyring.overhead

    def _news(self) -> Iterator[Line]:
        """Lines of origins with fresh news, the freshest (most relays left) first,
        made as they are taken: no more than one datagram can carry."""
        hot = heapq.nlargest(self._room // MIN_LINE, self._hot.items(), key=lambda item: item[1])
        return (Line.of(origin, self._view[origin]) for origin, _ in hot)

    def _summary(self) -> tuple[int, str]:
        """The roster's fingerprint and the summary of the origins we hold, or
        ``(0, "")`` where the summary would take more than half a datagram."""
        if self._roster.size > self._room // 2:
            return 0, ""
        return self._roster.fingerprint, self._roster.summary(self._held_bits())

    def _held_bits(self) -> int:
        """The roster bits of the origins we hold, tombstones included."""
        if self._held[0] != len(self._view):  # the view only ever grows
            self._held = (len(self._view), self._roster.bits(self._view))
        return self._held[1]

    def _lacking(self, digest: Digest) -> list[Line]:
        """Lines of origins we hold and the digest's summary says its sender
        does not, a random selection of what one datagram can carry."""
        theirs = self._roster.read(digest.roster, digest.held) if digest.held else None
        if theirs is None:
            return []
        names = self._roster.names_of(self._held_bits() & ~theirs)
        names = self._rng.sample(names, min(len(names), self._room // MIN_LINE))
        return [Line.of(origin, self._view[origin]) for origin in names]

    def _digest_lines(self, first: Iterable[Line], room: int) -> tuple[Line, ...]:
        """One datagram (``room`` bytes) of lines: ours, ``first``, the news,
        then a random sample."""
        ours = Line.of(self.name, self._own)
        if len(self._origins) != len(self._view):  # the view only ever grows
            self._origins = list(self._view)
        return select(
            itertools.chain((ours,), first, self._news()),
            self._origins,
            self._view,
            self._rng,
            room,
        )

    async def _scan(self) -> Scan:
        if self._scan_in_thread:
            scan = await trio.to_thread.run_sync(self._scanner, self.folder, abandon_on_cancel=True)
        else:
            await trio.lowlevel.checkpoint()
            scan = self._scanner(self.folder)
        self._counts["scans"] += 1
        for line in scan.skipped.lines(since=self._skipped):  # what changed since the last scan
            log.warning("%s: %s", self.name, line)
        self._skipped = scan.skipped
        return scan

    def _publish(self, own: Entry, now: float) -> None:
        self._view[self.name] = own
        self._changed[self.name] = now
        log.info("%s: own version %d, %d files", self.name, own.version, len(live_files(own)))

    async def _send(self, message: Message, address: Address) -> None:
        assert self._transport is not None
        data = self.config.keyring.seal(encode(message))
        if len(data) > self.config.max_datagram:
            # Every valid record fits the smallest max_datagram, so this is a bug;
            # still, a peer drops one datagram rather than stop.
            log.error(
                "%s: not sending a %s of %d bytes", self.name, type(message).__name__, len(data)
            )
            return
        if await self._transport.send(data, address):
            self._counts["datagrams_out"] += 1
            self._counts["bytes_out"] += len(data)

    # -- the receiver's decisions ---------------------------------------------

    def handle_untrusted(  # noqa: PLR0911 -- one return per kind of datagram
        self, data: bytes, source: Address, now: float
    ) -> list[Message]:
        """Act on one datagram from ``source``; return the messages to send back."""
        self._counts["datagrams_in"] += 1
        self._counts["bytes_in"] += len(data)
        try:
            message = decode_untrusted(self.config.keyring.open_untrusted(data))
        except BadDatagram as exc:
            return self._reject(exc.reason, source, str(exc), now)
        if isinstance(message, InfoRequest):
            return self._on_info_request(message, now)
        if isinstance(message, Info):
            return self._reject("unexpected", source, "an info reply", now)
        if message.sender not in self.config.peers:
            return self._reject("unknown sender", source, message.sender, now)
        if self._by_address.get(source) != message.sender or message.sender == self.name:
            return self._reject("wrong address", source, message.sender, now)
        if isinstance(message, Digest):
            for line in message.lines:
                if line.origin not in self.config.peers:
                    return self._reject("unknown origin", source, line.origin, now)
            return self._on_digest(message, now)
        if message.origin not in self.config.peers:
            return self._reject("unknown origin", source, message.origin, now)
        if isinstance(message, Want):
            return self._on_want(message)
        return self._on_part(message, now)

    def _reject(self, reason: str, source: Address, detail: str, now: float) -> list[Message]:
        self._rejected[reason] += 1
        last, count = self._reject_logged.get(reason, (-math.inf, 0))
        if now - last >= REJECT_LOG_EVERY:
            since = self._rejected[reason] - count
            log.warning(
                "%s: rejected %d datagram(s) (%s), last from %s:%d: %s",
                self.name,
                since,
                reason,
                source[0],
                source[1],
                detail[:100],
            )
            self._reject_logged[reason] = (now, self._rejected[reason])
        return []

    def _refute_if_outdone(self, key: tuple[int, int, int, bool], now: float) -> None:
        """Someone holds a key about us above ours: take a new generation."""
        own = self._own
        if key > own.key and key[0] >= MAX_COUNTER:
            # Nothing outdoes it: a forged or broken line, not our history.
            self._rejected["unrefutable"] += 1
        elif key > own.key:
            self._counts["refuted"] += 1
            self._view[self.name] = refute(own, key)
            self._changed[self.name] = now
            log.info(
                "%s: the cluster held generation %d for us; now generation %d",
                self.name,
                key[0],
                self._own.generation,
            )

    def _accept(self, incoming: Mapping[str, Entry], now: float, sender: str) -> None:
        """Merge entries about other origins, and keep the books on what changed."""
        merged = merge(self._view, incoming)
        for origin, entry in incoming.items():
            if merged[origin] is not entry:
                continue
            old = self._view.get(origin)
            self._heard[origin] = now
            if old is not None and (old.content, old.reaped) == (entry.content, entry.reaped):
                continue  # only the heartbeat went up
            self._changed[origin] = now
            self._hot[origin] = self._relays
            self._assemblies.drop(origin, entry.content)
            self._counts["accepted"] += 1
            if entry.reaped:
                log.info(
                    "%s: reaped %s (version %d), as %s had",
                    self.name,
                    origin,
                    entry.version,
                    sender,
                )
            else:
                log.info(
                    "%s: %s is at version %d (%d files), from %s",
                    self.name,
                    origin,
                    entry.version,
                    len(live_files(entry)),
                    sender,
                )
        self._view = merged

    def _on_digest(self, digest: Digest, now: float) -> list[Message]:
        others = [line for line in digest.lines if line.origin != self.name]
        for line in digest.lines:
            if line.origin == self.name:
                self._refute_if_outdone(line.key, now)
        self._accept(proven(self._view, others), now, digest.sender)
        out: list[Message] = []
        wanted: set[str] = set()
        for line in others:
            held = self._view.get(line.origin)
            if line.reaped or (held is not None and line.key <= held.key):
                continue
            if line.origin in wanted:
                continue  # an origin twice in one digest: one want
            wanted.add(line.origin)
            base, parts = self._assemblies.resume(line.origin, line.generation, line.version)
            have = (-1, -1) if held is None or held.reaped else held.content
            out.append(
                Want(
                    self.name, line.origin, line.generation, line.version, *have, base, tuple(parts)
                )
            )
        lacking = self._lacking(digest)
        if digest.reply:
            # Push-pull: first what the sender is missing, so it wants it back:
            # newer versions of the origins it listed, then origins it lacks.
            roster, summary = self._summary()
            first = itertools.chain(ahead_of(self._view, digest.lines), lacking)
            lines = self._digest_lines(first, self._room - len(summary))
            out.append(Digest(self.name, False, lines, roster, summary))
        elif lacking:
            # The answer to our push summarised what its sender holds: the
            # third leg tells it the origins it lacks (Cassandra's ACK2).
            out.append(Digest(self.name, False, self._digest_lines(lacking, self._room)))
        return out

    def _transfer(self, origin: str, entry: Entry, base: int) -> Transfer:
        key = (origin, entry.generation, entry.version, base)
        transfer = self._transfers.get(key)
        if transfer is None:
            transfer = prepare(origin, entry, base, self._room)
            if len(self._transfers) >= 64:
                del self._transfers[next(iter(self._transfers))]
            self._transfers[key] = transfer
        return transfer

    def _on_want(self, want: Want) -> list[Message]:
        held = self._view.get(want.origin)
        if held is None or held.reaped or held.content < (want.generation, want.version):
            return []  # we cannot serve it; someone else will
        indexes: Iterable[int] | None = None
        base = -1
        if want.parts and held.content == (want.generation, want.version):
            base, indexes = want.base, want.parts
        elif (
            want.have_generation == held.generation
            and held.floor <= want.have_version < held.version
        ):
            base = want.have_version
        try:
            transfer = self._transfer(want.origin, held, base)
        except ValueError:  # a delta we cannot make: send the whole list
            transfer, indexes = self._transfer(want.origin, held, -1), None
        if indexes is None:
            indexes = range(min(WINDOW, len(transfer.parts)))
        count = len(transfer.parts)
        return [transfer.part(self.name, held.heartbeat, i) for i in indexes if i < count]

    def _on_part(self, part: Part, now: float) -> list[Message]:  # noqa: PLR0911 -- one per check
        if part.origin == self.name:
            self._refute_if_outdone((part.generation, part.version, part.heartbeat, False), now)
            return []
        held = self._view.get(part.origin)
        key = (part.generation, part.version, part.heartbeat, False)
        if held is not None and (
            key <= held.key or (not held.reaped and (part.generation, part.version) <= held.content)
        ):
            return []  # we hold this version or a newer one
        if part.base >= 0 and (
            held is None or held.reaped or held.content != (part.generation, part.base)
        ):
            return []  # a delta from a version we no longer (or never) held: no use to us
        source = self.config.address(part.sender)
        what = f"{part.origin} version {part.version}"
        try:
            received, nxt = self._assemblies.add(part, now)
        except ValueError as exc:
            return self._reject("inconsistent transfer", source, f"{what}: {exc}", now)
        if received is not None:
            entry = finish(received, part.base, held)
            if entry is None:
                return self._reject("inconsistent transfer", source, what, now)
            self._accept({part.origin: entry}, now, part.sender)
            return []
        if not nxt:
            return []
        have = (-1, -1) if held is None or held.reaped else held.content
        return [
            Want(
                self.name, part.origin, part.generation, part.version, *have, part.base, tuple(nxt)
            )
        ]

    def _on_info_request(self, request: InfoRequest, now: float) -> list[Message]:
        second = math.floor(now)
        if self._info_sent[0] != second:
            self._info_sent = (second, 0)
        if self._info_sent[1] >= INFO_RATE:
            self._rejected["info rate"] += 1
            return []
        for nonce in [n for n, (t, _) in self._snapshots.items() if now - t > SNAPSHOT_TTL]:
            del self._snapshots[nonce]
        cached = self._snapshots.get(request.nonce)
        if cached is None:
            text = json.dumps(self.snapshot(now), separators=(",", ":"))
            # The text is ASCII; as a JSON string each character takes at most two bytes.
            size = (self._room - _ENVELOPE) // 2
            chunks = [text[i : i + size] for i in range(0, len(text), size)] or [""]
            if len(self._snapshots) >= 32:
                del self._snapshots[next(iter(self._snapshots))]
            cached = self._snapshots[request.nonce] = (now, chunks)
        chunks = cached[1]
        indexes = list(request.parts or range(min(WINDOW, len(chunks))))
        indexes = indexes[: INFO_RATE - self._info_sent[1]]
        self._info_sent = (second, self._info_sent[1] + len(indexes))
        return [
            Info(self.name, request.nonce, i, len(chunks), chunks[i])
            for i in indexes
            if i < len(chunks)
        ]
