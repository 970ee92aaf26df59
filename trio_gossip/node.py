"""One peer's protocol as an object without I/O: inputs in, datagrams and events out.

Like h11 (bytes in, events out) and foca (a SWIM core driven by data and
timers), a :class:`Node` never touches a socket, a clock or trio. The shell
(:class:`.peer.Peer`) hands it what happens -- a datagram and its source, a
push, relay or reap tick, a scan's result, the time -- and sends what it
returns. Its randomness and its wall clock (for generations) are injected, so
a test can drive a whole cluster of nodes by hand, step by step.

What each input does:

* :meth:`receive_untrusted` -- one datagram: decode it (or count why not),
  then act on a digest (merge what its lines prove, want what is newer,
  answer a push), a want (send parts), a part (reassemble, merge when
  complete) or an ``info?`` (send a snapshot's parts);
* :meth:`push` -- a heartbeat, and a digest to a random other peer;
* :meth:`relay` -- the freshest news to a random third peer;
* :meth:`reap` -- tombstones for origins silent for ``reap`` seconds;
* :meth:`scanned` -- a new version of our own folder, if it changed.
"""

from __future__ import annotations

import itertools
import logging
import math
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Final

import attrs

from .codec import BadDatagram, decode_untrusted, encode
from .config import Config
from .digests import MIN_LINE, Roster, ahead_of, select
from .events import Event, Kind, diff
from .infoserver import InfoServer, snapshot
from .limits import MAX_COUNTER
from .messages import Digest, Info, InfoRequest, Message, Part, Want
from .replica import Replica
from .rumors import RumorQueue
from .state import (
    Entry,
    Line,
    beat,
    first_entry,
    newer,
    next_reaping,
    proven,
    reap_due,
    refute,
    rescan,
    tombstone,
)
from .transfer import Assemblies, Prepared, TooLarge, finish
from .transport import Address

__all__ = ["AHEAD", "WINDOW", "Node", "Send", "Statistics"]

log = logging.getLogger("trio_gossip")

#: Parts a holder sends at once, and a receiver asks for at once.
WINDOW: Final = 16
#: Seconds between two log lines about rejected datagrams of one reason.
REJECT_LOG_EVERY: Final = 10.0
#: A generation further ahead of our wall clock than this (ns: a year, as
#: Cassandra's ``MAX_GENERATION_DIFFERENCE``) is no peer's restart: refused.
AHEAD: Final = 365 * 24 * 3600 * 10**9


@attrs.frozen
class Send:
    """A datagram to send: its bytes, where to, and the message it holds."""

    data: bytes
    address: Address
    message: Message


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


class Node:
    """Peer ``name`` of the cluster in ``config``: its replica and the protocol's rules.

    ``wall_clock`` (nanoseconds) decides generations; ``rng`` every random choice.
    """

    def __init__(
        self,
        name: str,
        config: Config,
        *,
        rng: random.Random | None = None,
        wall_clock: Callable[[], int] = time.time_ns,
        roster: Roster | None = None,
        folder: Path | None = None,
    ) -> None:
        self.name = name
        self.config = config
        self.address: Address = config.address(name)
        self.folder = folder
        self.rng = rng if rng is not None else random.Random()
        self._wall_clock = wall_clock
        self._others = [n for n in config.peers if n != name]
        self._by_address = {config.address(n): n for n in config.peers}
        self._roster = roster if roster is not None else Roster.of(config.peers)
        # Fresh news is relayed this many times: enough for an epidemic to finish.
        self._rumors = RumorQueue(max(3, math.ceil(math.log2(len(config.peers))) + 1))
        self.replica = Replica()
        # Digests show a transfer's version to its receiver about every push
        # round, and it goes on; one silent for longer may never finish.
        self._assemblies = Assemblies(WINDOW, stalled=config.intervals.push)
        self._prepared = Prepared(self._room)
        self._info = InfoServer(name, self._room)
        self._counts: Counter[str] = Counter()
        self._rejected: Counter[str] = Counter()
        self._reject_logged: dict[str, tuple[float, int]] = {}
        self._events: list[Event] = []

    # -- what the node knows -----------------------------------------------------

    @property
    def own(self) -> Entry:
        return self.replica[self.name]

    def view(self) -> dict[str, Entry]:
        """Every live origin's entry, ours included (tombstones left out)."""
        return self.replica.live()

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
        """What ``--info --json`` shows: every origin, its version, ages and files."""
        return snapshot(self._header(), self.replica, attrs.asdict(self.statistics()), now)

    def take_events(self) -> list[Event]:
        """The events since the last call, oldest first."""
        events, self._events = self._events, []
        return events

    # -- inputs: our own folder --------------------------------------------------

    def start(self, files: Mapping[str, tuple[int, int]], now: float) -> None:
        """Publish our first version of this run (from the first scan): a new
        generation, from the wall clock."""
        self._counts["scans"] += 1
        self._publish(first_entry(self._wall_clock(), files), now, "joined")

    def scanned(self, files: Mapping[str, tuple[int, int]], now: float) -> bool:
        """A scan of our folder found ``files``: publish a new version if it
        changed. Returns whether it did."""
        self._counts["scans"] += 1
        new = rescan(self.own, files)
        if new is not None:
            self._publish(new, now, "changed")
        return new is not None

    def scan_failed(self) -> None:
        self._counts["scans"] += 1
        self._counts["scan_failures"] += 1

    def _publish(self, entry: Entry, now: float, kind: Kind) -> None:
        old = self.replica.get(self.name)
        self.replica.put(self.name, entry, now, changed=True)
        self._event(kind, self.name, old, entry, now)

    # -- inputs: ticks -----------------------------------------------------------

    def push(self, now: float) -> list[Send]:
        """A push round: our heartbeat goes up, and a digest that asks for an
        answer goes to a random other peer."""
        self.replica.put(self.name, beat(self.own), now, changed=False)
        target = self.config.address(self.rng.choice(self._others))
        roster, held = self._summary()
        lines = self._digest_lines((), self._room - len(held))
        return self._sends([Digest(self.name, True, lines, roster, held)], target)

    def relay(self, now: float) -> list[Send]:
        """A relay round: the freshest news to a random third peer."""
        if not self._rumors:
            return []
        target = self.rng.choice(self._others)
        # A third peer: the origin knows its own news.
        news = (line for line in self._news() if line.origin != target)
        lines = select(news, (), self.replica.entries, self.rng, self._room)
        for line in lines:
            self._rumors.relayed(line.origin)
        if not lines:
            return []
        return self._sends([Digest(self.name, False, lines)], self.config.address(target))

    def reap(self, now: float) -> float:
        """Tombstones for the origins silent for ``reap`` seconds; returns when
        the next one can be due."""
        after = self.config.intervals.reap
        replica = self.replica
        for origin in reap_due(replica.entries, replica.heard, now, after, self.name):
            entry = replica[origin]
            silent = now - replica.heard[origin]
            self._take(origin, tombstone(entry), now)
            self._counts["reaped"] += 1
            log.info("%s: reaped %s (silent for %.1f s)", self.name, origin, silent)
        self._assemblies.expire(now - after)
        return next_reaping(replica.entries, replica.heard, now, after, self.name)

    # -- inputs: datagrams -------------------------------------------------------

    def receive_untrusted(self, data: bytes, source: Address, now: float) -> list[Send]:
        """Act on one datagram from ``source``; return the datagrams to send back."""
        self._counts["datagrams_in"] += 1
        self._counts["bytes_in"] += len(data)
        return self._sends(self._handle_untrusted(data, source, now), source)

    def _handle_untrusted(  # noqa: PLR0911 -- one return per kind of datagram
        self, data: bytes, source: Address, now: float
    ) -> list[Message]:
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
        return self._on_part(message, now, len(data))

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

    def _too_far_ahead(self, generation: int) -> bool:
        """A generation no restart can have made yet: counted, then ignored."""
        if generation > self._wall_clock() + AHEAD:
            self._rejected["generation ahead"] += 1
            return True
        return False

    def _on_digest(self, digest: Digest, now: float) -> list[Message]:
        lines = [line for line in digest.lines if not self._too_far_ahead(line.generation)]
        others = [line for line in lines if line.origin != self.name]
        for line in lines:
            if line.origin == self.name:
                self._refute_if_outdone(line.key, now)
        self._accept(proven(self.replica.entries, others), now, digest.sender)
        out: list[Message] = [want for line in others if (want := self._want(line)) is not None]
        lacking = self._lacking(digest)
        if digest.reply:
            # Push-pull: first what the sender is missing, so it wants it back:
            # newer versions of the origins it listed, then origins it lacks.
            roster, summary = self._summary()
            first = itertools.chain(ahead_of(self.replica.entries, digest.lines), lacking)
            answer = self._digest_lines(first, self._room - len(summary))
            out.append(Digest(self.name, False, answer, roster, summary))
        elif lacking:
            # The answer to our push summarised what its sender holds: the
            # third leg tells it the origins it lacks (Cassandra's ACK2).
            out.append(Digest(self.name, False, self._digest_lines(lacking, self._room)))
        return out

    def _want(self, line: Line) -> Want | None:
        """A want for what ``line`` says is newer than what we hold, if anything."""
        held = self.replica.get(line.origin)
        if line.reaped or (held is not None and line.key <= held.key):
            return None
        base, parts = self._assemblies.resume(line.origin, line.generation, line.version)
        have = (-1, -1) if held is None or held.reaped else held.content
        return Want(
            self.name, line.origin, line.generation, line.version, *have, base, tuple(parts)
        )

    def _on_want(self, want: Want) -> list[Message]:
        held = self.replica.get(want.origin)
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
            transfer = self._prepared.get(want.origin, held, base)
        except ValueError:  # a delta we cannot make: send the whole list
            transfer, indexes = self._prepared.get(want.origin, held, -1), None
        if indexes is None:
            indexes = range(min(WINDOW, len(transfer.parts)))
        count = len(transfer.parts)
        return [transfer.part(self.name, held.heartbeat, i) for i in indexes if i < count]

    def _on_part(self, part: Part, now: float, size: int) -> list[Message]:  # noqa: PLR0911
        if self._too_far_ahead(part.generation):
            return []
        if part.origin == self.name:
            self._refute_if_outdone((part.generation, part.version, part.heartbeat, False), now)
            return []
        held = self.replica.get(part.origin)
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
            received, nxt = self._assemblies.add(part, now, size)
        except TooLarge as exc:
            return self._reject("transfer too large", source, f"{what}: {exc}", now)
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
        parts, refused = self._info.answer(
            request, now, self._header(), self.replica, lambda: attrs.asdict(self.statistics())
        )
        if refused:
            self._rejected["info rate"] += 1
        return list(parts)

    # -- changing the replica ----------------------------------------------------

    def _refute_if_outdone(self, key: tuple[int, int, int, bool], now: float) -> None:
        """Someone holds a key about us above ours: take a new generation."""
        own = self.own
        if key <= own.key:
            return
        if key[0] >= MAX_COUNTER:  # nothing outdoes it; only a broken wall clock lets it by
            self._rejected["generation ahead"] += 1
            return
        self._counts["refuted"] += 1
        new = refute(own, key, self._wall_clock())
        self.replica.put(self.name, new, now, changed=True)
        log.info(
            "%s: the cluster held generation %d for us; now generation %d",
            self.name,
            key[0],
            new.generation,
        )

    def _accept(self, incoming: Mapping[str, Entry], now: float, sender: str) -> None:
        """Merge entries about other origins, and keep the books on what changed."""
        # merge(), one origin at a time: no copy of the whole replica per datagram.
        for origin, entry in incoming.items():
            if newer(entry, self.replica.get(origin)) and self._take(origin, entry, now):
                self._counts["accepted"] += 1

    def _take(self, origin: str, entry: Entry, now: float) -> bool:
        """Hold ``entry`` (newer than what we held) for another origin; whether
        more than its heartbeat changed."""
        old = self.replica.get(origin)
        changed = old is None or (old.content, old.reaped) != (entry.content, entry.reaped)
        self.replica.put(origin, entry, now, changed=changed)
        if not changed:
            return False  # only the heartbeat went up
        self._rumors.add(origin)
        self._assemblies.held(origin, entry)
        if entry.reaped:
            self._event("reaped", origin, old, entry, now)
        elif old is None or old.reaped:
            self._event("joined", origin, old, entry, now)
        elif old.generation != entry.generation:
            self._event("restarted", origin, old, entry, now)
        else:
            self._event("changed", origin, old, entry, now)
        return True

    def _event(self, kind: Kind, origin: str, old: Entry | None, new: Entry, now: float) -> None:
        added, removed, changed = diff(old, new) if kind != "reaped" else ((), (), ())
        self._events.append(
            Event(kind, origin, now, new.generation, new.version, added, removed, changed)
        )

    # -- what a digest says ------------------------------------------------------

    @property
    def _room(self) -> int:
        """Bytes a message may take: ``max_datagram`` less what sealing adds."""
        return self.config.max_datagram - self.config.keyring.overhead

    def _header(self) -> dict[str, Any]:
        host, port = self.address
        return {"peer": self.name, "address": f"{host}:{port}", "folder": str(self.folder)}

    def _news(self) -> Iterable[Line]:
        """Lines of origins with fresh news, the freshest first, made as they
        are taken: no more than one datagram can carry."""
        entries = self.replica.entries
        return (Line.of(o, entries[o]) for o in self._rumors.freshest(self._room // MIN_LINE))

    def _summary(self) -> tuple[int, str]:
        """The roster's fingerprint and the summary of the origins we hold, or
        ``(0, "")`` where the summary would take more than half a datagram."""
        if self._roster.size > self._room // 2:
            return 0, ""
        return self._roster.fingerprint, self._roster.summary(self._held_bits())

    def _held_bits(self) -> int:
        """The roster bits of the origins we hold, tombstones included."""
        return self.replica.per_membership("held bits", self._roster.bits)

    def _lacking(self, digest: Digest) -> list[Line]:
        """Lines of origins we hold and the digest's summary says its sender
        does not, a random selection of what one datagram can carry."""
        theirs = self._roster.read(digest.roster, digest.held) if digest.held else None
        if theirs is None:
            return []
        names = self._roster.names_of(self._held_bits() & ~theirs)
        names = self.rng.sample(names, min(len(names), self._room // MIN_LINE))
        return [Line.of(origin, self.replica[origin]) for origin in names]

    def _digest_lines(self, first: Iterable[Line], room: int) -> tuple[Line, ...]:
        """One datagram (``room`` bytes) of lines: ours, ``first``, the news,
        then a random sample."""
        ours = Line.of(self.name, self.own)
        origins = self.replica.per_membership("origins", list)
        chain = itertools.chain((ours,), first, self._news())
        return select(chain, origins, self.replica.entries, self.rng, room)

    def _sends(self, messages: Iterable[Message], address: Address) -> list[Send]:
        out = []
        for message in messages:
            data = self.config.keyring.seal(encode(message))
            if len(data) > self.config.max_datagram:
                # Every valid record fits the smallest max_datagram, so this is a bug;
                # still, a peer drops one datagram rather than stop.
                log.error(
                    "%s: not sending a %s of %d bytes", self.name, type(message).__name__, len(data)
                )
                continue
            self._counts["datagrams_out"] += 1
            self._counts["bytes_out"] += len(data)
            out.append(Send(data, address, message))
        return out
