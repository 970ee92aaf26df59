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
from collections.abc import Callable, Container, Iterable, Mapping
from pathlib import Path
from typing import Any, Final

import attrs

from .codec import BadDatagram, decode_untrusted, encode
from .config import Config
from .counters import Counters, Statistics
from .digests import Roster, ahead_of, select, stale_lines
from .events import Event, Kind, diff
from .fetch import Fetcher, Refused
from .gossip import DigestWriter
from .infoserver import InfoServer, snapshot
from .limits import MAX_COUNTER
from .liveness import Liveness, suspect_after
from .messages import (
    Digest,
    EventNote,
    Info,
    InfoRequest,
    Leave,
    Message,
    Part,
    Want,
    WatchRequest,
)
from .replica import Replica, Status
from .rumors import RumorQueue
from .shared import SharedEntries
from .state import (
    Entry,
    Line,
    beat,
    first_entry,
    newer,
    next_reaping,
    proof,
    reap_due,
    refute,
    rescan,
    tombstone,
)
from .transfer import Assemblies, Prepared
from .transport import Address
from .watchers import Watchers

__all__ = ["AHEAD", "WINDOW", "Node", "Send", "Statistics"]

log = logging.getLogger("trio_gossip")

#: Parts a holder sends at once, and a receiver asks for at once.
WINDOW: Final = 16
#: A generation further ahead of our wall clock than this (ns: a year, as
#: Cassandra's ``MAX_GENERATION_DIFFERENCE``) is no peer's restart: refused.
AHEAD: Final = 365 * 24 * 3600 * 10**9
#: Peers a leaving peer tells itself; they pass it on like any news.
LEAVE_FANOUT: Final = 4


@attrs.frozen
class Send:
    """A datagram to send: its bytes, where to, and the message it holds."""

    data: bytes
    address: Address
    message: Message


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
        shared: SharedEntries | None = None,
    ) -> None:
        self.name = name
        self.config = config
        self.address: Address = config.address(name)
        self.folder = folder
        self.rng = rng if rng is not None else random.Random()
        self._wall_clock = wall_clock
        self._others = [n for n in config.peers if n != name]
        self._by_address = config.by_address
        self._peers = config.peers  # the config is frozen: the same names all along
        self._roster = roster if roster is not None else Roster.of(config.peers)
        # Fresh news is relayed this many times: enough for an epidemic to finish.
        self._rumors = RumorQueue(max(3, math.ceil(math.log2(len(config.peers))) + 1))
        self.replica = Replica(shared=shared)
        # Digests show a transfer's version to its receiver about every push
        # round, and it goes on; one silent for longer may never finish.
        self._assemblies = Assemblies(WINDOW, stalled=config.intervals.push)
        self._prepared = Prepared(self._room)
        self._fetch = Fetcher(name, self.replica, WINDOW, self._assemblies, self._prepared)
        intervals = config.intervals
        self._stale = stale_lines(len(config.peers), intervals.push, intervals.reap)
        self._liveness = Liveness(name, self.replica, suspect_after(config, self._stale))
        self._digests = DigestWriter(
            name, self.replica, self._roster, self._rumors, self.rng, self._room, self._stale
        )
        self._info = InfoServer(name, self._room)
        self._watchers = Watchers(name, self._room)
        self._counters = Counters(name)
        self._counts = self._counters.counts
        self._rejected = self._counters.rejected
        self._events: list[Event] = []
        #: Paths of our folder the last scan skipped (set by the shell; in --info).
        self.skipped = 0

    # -- what the node knows -----------------------------------------------------

    @property
    def own(self) -> Entry:
        return self.replica[self.name]

    def view(self) -> dict[str, Entry]:
        """Every live origin's entry, ours included (tombstones left out)."""
        return self.replica.live()

    def statistics(self) -> Statistics:
        return self._counters.statistics()

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
        self._liveness.started(now)
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
        self.replica.set_status(self.name, "alive", now)
        self._event(kind, self.name, old, entry, now)

    # -- inputs: ticks -----------------------------------------------------------

    def push(self, now: float) -> list[Send]:
        """A push round: our heartbeat goes up, and a digest that asks for an
        answer goes to a random other peer."""
        self.replica.put(self.name, beat(self.own), now, changed=False)
        target = self.config.address(self.rng.choice(self._others))
        digest = self._digests.push()
        return self._sends([*self._leaves(digest.lines), digest], target) + self._retries(now)

    def _retries(self, now: float) -> list[Send]:
        """Wants unanswered for half a push round, asked again."""
        after = self.config.intervals.push / 2
        return [
            send
            for want, address in self._fetch.overdue(now, after)
            for send in self._sends([want], address)
        ]

    def relay(self, now: float) -> list[Send]:
        """A relay round: the freshest news to a random third peer (and the
        wants still unanswered)."""
        retries = self._retries(now)
        if not self._rumors:
            return retries
        target = self.rng.choice(self._others)
        # A third peer: the origin knows its own news.
        news = (line for line in self._digests.news() if line.origin != target)
        lines = select(news, (), self.replica.entries, self.rng, self._room)
        for line in lines:
            self._rumors.relayed(line.origin)
        if not lines:
            return retries
        # Counted as relayed above: these lines' origins may be out of the queue now.
        leaves = self._leaves(lines, {line.origin for line in lines})
        out: list[Message] = [*leaves, Digest(self.name, False, lines)]
        return self._sends(out, self.config.address(target)) + retries

    def _leaves(self, lines: Iterable[Line], missing: Container[str] = ()) -> list[Leave]:
        """A leave for each tombstone line of an origin that left, if its origin
        is fresh news or in ``missing`` (what the receiver lacks).

        A tombstone line says "gone"; a leave says how. It goes before the
        digest: a receiver that took the bare line first would show the origin
        reaped, not left. Only with news: tombstones are sampled into digests
        for good, and a leave each time would double them.
        """
        status = self.replica.status
        return [
            Leave(self.name, line.origin, line.generation, line.version, line.heartbeat)
            for line in lines
            if line.reaped
            and status.get(line.origin) == "left"
            and (line.origin in self._rumors or line.origin in missing)
        ]

    @property
    def suspect_after(self) -> float:
        """Seconds without news of an origin's heartbeat after which it is
        suspect (:func:`.liveness.suspect_after`)."""
        return self._liveness.suspect_after

    def reap(self, now: float) -> float:
        """Suspect the origins silent for :attr:`suspect_after`, tombstones for
        those silent for ``reap`` seconds; returns when to look again."""
        after = self.config.intervals.reap
        replica = self.replica
        for origin in reap_due(replica.entries, replica.heard, now, after, self.name):
            entry = replica[origin]
            silent = now - replica.heard[origin]
            self._take(origin, tombstone(entry), now, entry)
            self._counts["reaped"] += 1
            log.info("%s: reaped %s (silent for %.1f s)", self.name, origin, silent)
        self._assemblies.expire(now - after)
        due = next_reaping(replica.entries, replica.heard, now, after, self.name)
        suspects, look_again = self._liveness.check(now)
        for origin in suspects:
            self._set_status(origin, "suspect", now)
        return min(due, look_again)

    def leave(self, now: float) -> list[Send]:
        """We stop: a tombstone of ours one heartbeat on, told to a few random
        peers, who pass it on. Our replica holds it too: the node is done."""
        own = beat(self.own)
        self.replica.put(self.name, tombstone(own), now, changed=True)
        self._set_status(self.name, "left", now)  # an event: our watchers hear it too
        leave = Leave(self.name, self.name, own.generation, own.version, own.heartbeat)
        targets = self.rng.sample(self._others, min(LEAVE_FANOUT, len(self._others)))
        return [send for t in targets for send in self._sends([leave], self.config.address(t))]

    # -- inputs: datagrams -------------------------------------------------------

    def receive_untrusted(self, data: bytes, source: Address, now: float) -> list[Send]:
        """Act on one datagram from ``source``; return the datagrams to send back."""
        self._counts["datagrams_in"] += 1
        self._counts["bytes_in"] += len(data)
        out = self._handle_untrusted(data, source, now)
        if not out:  # most datagrams: nothing to answer
            return []
        for message in out:
            if isinstance(message, Want):
                self._fetch.asked(message, source, now)
        return self._sends(out, source)

    def _handle_untrusted(  # noqa: PLR0911 -- one return per kind of datagram
        self, data: bytes, source: Address, now: float
    ) -> list[Message]:
        try:
            message = decode_untrusted(self.config.keyring.open_untrusted(data))
        except BadDatagram as exc:
            return self._reject(exc.reason, source, str(exc), now)
        if isinstance(message, InfoRequest):
            return self._on_info_request(message, now)
        if isinstance(message, WatchRequest):
            return self._on_watch_request(message, source, now)
        if isinstance(message, (Info, EventNote)):
            return self._reject("unexpected", source, f"a {type(message).__name__}", now)
        if message.sender not in self._peers:
            return self._reject("unknown sender", source, message.sender, now)
        if self._by_address.get(source) != message.sender or message.sender == self.name:
            return self._reject("wrong address", source, message.sender, now)
        if isinstance(message, Digest):
            for line in message.lines:
                if line.origin not in self._peers:
                    return self._reject("unknown origin", source, line.origin, now)
            self._liveness.heard_from_peer(now)
            return self._on_digest(message, now)
        if message.origin not in self._peers:
            return self._reject("unknown origin", source, message.origin, now)
        self._liveness.heard_from_peer(now)
        if isinstance(message, Want):
            return self._on_want(message)
        if isinstance(message, Leave):
            return self._on_leave(message, now)
        return self._on_part(message, now, len(data))

    def _reject(self, reason: str, source: Address, detail: str, now: float) -> list[Message]:
        self._counters.reject(reason, source, detail, now)
        return []

    def _too_far_ahead(self, generation: int, limit: int | None = None) -> bool:
        """A generation no restart can have made yet (above ``limit``, by
        default the wall clock plus :data:`AHEAD`): counted, then ignored."""
        if generation > (self._wall_clock() + AHEAD if limit is None else limit):
            self._rejected["generation ahead"] += 1
            return True
        return False

    def _on_digest(self, digest: Digest, now: float) -> list[Message]:
        limit = self._wall_clock() + AHEAD  # read once per digest, not once per line
        others: list[Line] = []
        for line in digest.lines:
            if self._too_far_ahead(line.generation, limit):
                continue
            if line.origin == self.name:
                self._refute_if_outdone(line.key, now)
            else:
                others.append(line)
        entries = self.replica.entries
        out: list[Message] = []
        # Line by line, each origin looked up once: what a line proves and
        # what it wants touch only its own origin, and the codec refuses a
        # digest that names an origin twice.
        for line in others:
            held = entries.get(line.origin)
            entry = proof(held, line)
            if entry is not None and not entry.reaped:
                # The most common line of all: the origin's heartbeat went up.
                # A proof keeps the files we hold, so nothing else changed.
                self._beat(line.origin, entry, now)
                if entry.version == line.version:
                    continue  # the line is what we hold now: nothing to fetch
                held = entry
            elif entry is not None:  # a tombstone
                self._accept(line.origin, entry, now)
                held = entry
            want = self._fetch.want(line, held)
            if want is not None:
                out.append(want)
        lacking = self._digests.lacking(digest)
        if digest.reply:
            # Push-pull: first what the sender is missing, so it wants it back:
            # newer versions of the origins it listed, then origins it lacks.
            behind = ahead_of(self.replica.entries, digest.lines)
            answer = self._digests.answer(itertools.chain(behind, lacking))
            missing = {line.origin for line in itertools.chain(behind, lacking)}
            out += [*self._leaves(answer.lines, missing), answer]
        elif lacking:
            # The answer to our push summarised what its sender holds: the
            # third leg tells it the origins it lacks (Cassandra's ACK2).
            third = self._digests.lines(lacking, self._room)
            out += self._leaves(third, {line.origin for line in lacking})
            out.append(Digest(self.name, False, third))
        return out

    def _on_want(self, want: Want) -> list[Message]:
        return list(self._fetch.serve(want))

    def _on_part(self, part: Part, now: float, size: int) -> list[Message]:
        if self._too_far_ahead(part.generation):
            return []
        if part.origin == self.name:
            self._refute_if_outdone((part.generation, part.version, part.heartbeat, False), now)
            return []
        outcome = self._fetch.receive(part, now, size)
        if isinstance(outcome, Refused):
            return self._reject(
                outcome.reason, self.config.address(part.sender), outcome.detail, now
            )
        if isinstance(outcome, Entry):
            self._accept(part.origin, outcome, now)
            return []
        return [] if outcome is None else [outcome]

    def _on_leave(self, leave: Leave, now: float) -> list[Message]:
        if self._too_far_ahead(leave.generation):
            return []
        key = (leave.generation, leave.version, leave.heartbeat, True)
        if leave.origin == self.name:
            self._refute_if_outdone(key, now)  # we are here: outdo it
            return []
        held = self.replica.get(leave.origin)
        tomb = Entry(*key[:3], reaped=True)
        if newer(tomb, held):
            self._take(leave.origin, tomb, now, held, left=True)
            self._counts["accepted"] += 1
        elif held is not None and held.key == tomb.key:
            # The same tombstone, first heard of as a line: it left, not reaped.
            self._set_status(leave.origin, "left", now)
        return []

    def _on_watch_request(
        self, request: WatchRequest, source: Address, now: float
    ) -> list[Message]:
        note = self._watchers.register(source, request.nonce, now)
        if note is None:
            self._rejected["watchers full"] += 1
            return []
        return [note]

    def to_watchers(self, events: list[Event], now: float) -> list[Send]:
        """The datagrams that tell the watchers of ``events`` (see :mod:`.watchers`)."""
        return [
            send
            for note, address in self._watchers.notes(events, now)
            for send in self._sends([note], address)
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
        own = self.replica.entries[self.name]  # self.own, without two calls: once per digest
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

    def _accept(self, origin: str, entry: Entry, now: float) -> None:
        """Merge an entry about another origin (:func:`.state.merge` for one
        origin), and keep the books on what changed."""
        held = self.replica.get(origin)
        if newer(entry, held) and self._take(origin, entry, now, held):
            self._counts["accepted"] += 1

    def _take(
        self, origin: str, entry: Entry, now: float, old: Entry | None, *, left: bool = False
    ) -> bool:
        """Hold ``entry`` for another origin in place of ``old`` (what we held:
        older); whether more than its heartbeat changed. ``left``: a tombstone
        its origin made."""
        changed = old is None or (old.content, old.reaped) != (entry.content, entry.reaped)
        if not changed:
            self._beat(origin, entry, now)
            return False
        self.replica.put(origin, entry, now, changed=True)
        self._rumors.add(origin)
        self._assemblies.held(origin, entry)
        if entry.reaped:
            self._set_status(origin, "left" if left else "reaped", now)
            return True
        if self.replica.status.get(origin) == "suspect":
            self._set_status(origin, "alive", now)
        self.replica.set_status(origin, "alive", now)
        if old is None or old.reaped:
            self._event("joined", origin, old, entry, now)
        elif old.generation != entry.generation:
            self._event("restarted", origin, old, entry, now)
        else:
            self._event("changed", origin, old, entry, now)
        return True

    def _beat(self, origin: str, entry: Entry, now: float) -> None:
        """Hold ``entry`` for another origin: what we held but for a greater heartbeat."""
        self.replica.put(origin, entry, now, changed=False)
        if self.replica.status.get(origin) == "suspect":
            self._set_status(origin, "alive", now)

    def _set_status(self, origin: str, status: Status, now: float) -> None:
        """A status change that is news of its own (not a new version): an event."""
        entry = self.replica[origin]
        if self.replica.set_status(origin, status, now):
            self._event(status, origin, None, entry, now)

    def _event(self, kind: Kind, origin: str, old: Entry | None, new: Entry, now: float) -> None:
        with_files = kind in ("joined", "changed", "restarted")
        added, removed, changed = diff(old, new) if with_files else ((), (), ())
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
        return {
            "peer": self.name,
            "address": f"{host}:{port}",
            "folder": str(self.folder),
            "skipped": self.skipped,
        }

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
