"""A running peer: one trio nursery supervising five tasks around a :class:`.node.Node`.

* receiver -- hands every datagram to the node and sends what it answers;
* scanner  -- rescans the peer's folder in a worker thread, hands the result over;
* pusher   -- every round, the node's push digest to a random other peer;
* relayer  -- every round, the node's fresh news to a random third peer;
* reaper   -- wakes when the node says an origin may be due to be reaped.

Every decision is the node's; this module binds the socket, waits for time
or bytes, runs scans and sends.
"""

from __future__ import annotations

import functools
import logging
import math
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import trio

from .config import Config
from .counters import Statistics
from .digests import Roster
from .hub import EventHub, Subscription
from .logs import files, log_event, when
from .node import Node, Send
from .scanner import Scan, ScanError, Skipped, scan_folder
from .shared import SharedEntries
from .state import Entry
from .transport import Address, Network, Transport

if TYPE_CHECKING:
    from .hooks import Hook
    from .members import Member

__all__ = ["Peer", "StartupError", "Statistics", "next_tick"]

log = logging.getLogger("trio_gossip")

#: Seconds a stopping peer may take to say that it leaves.
LEAVE_TIME = 0.5
#: Milliseconds without a new change after which the watcher reports a burst.
WATCH_STEP = 50


@functools.lru_cache(maxsize=16)
def _roster(names: tuple[str, ...]) -> Roster:
    """One roster per cluster, shared by the peers of one process (``--all``)."""
    return Roster.of(names)


@functools.cache
def _scan_limiter() -> trio.CapacityLimiter:
    """The worker threads scans run in, shared by the peers of one process.

    Not trio's default limiter: each folder watcher holds one of those for as
    long as it watches, and with ``--all`` and more than 40 peers the scans
    of the next peers to start would wait for them forever. (Beyond 40 peers
    in one process, the later peers' watchers wait for a thread in turn: they
    scan every ``scan`` seconds only; see docs/configuration.md, ``watch``.)
    """
    return trio.CapacityLimiter(4)


def next_tick(deadline: float, interval: float, now: float) -> float:
    """The tick after ``deadline``, skipping those already missed by ``now``.

    A loop paced by ``deadline += interval`` fires back to back after a stall
    to catch up; gossip gains nothing from a burst, so the ticks missed are
    skipped (tokio's ``MissedTickBehavior::Skip``), keeping the phase.
    """
    deadline += interval
    if deadline <= now:
        deadline += math.ceil((now - deadline) / interval) * interval
        if deadline <= now:  # floating point: one more step
            deadline += interval
    return deadline


class StartupError(Exception):
    """The peer cannot start (address in use, folder unreadable); one line for the user."""


class Peer:
    """Peer ``name`` of the cluster in ``config``, sharing ``folder``.

    ``rng`` and ``wall_clock`` (nanoseconds, for the generation) are injected
    so simulations are deterministic; the scan function runs in a thread
    unless ``scan_in_thread`` is false, for a fake scanner that does no I/O:
    under an autojumping ``MockClock`` virtual time jumps while a thread runs,
    so a simulation's times would depend on the OS scheduler. The peers of
    one process (``--all``) hold equal entries once if given the same
    ``shared`` store; a peer alone has no use for one (it costs a few
    microseconds per entry taken).
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
        watch: bool | None = None,
        on_change: str | None = None,
        http: tuple[str, int] | None = None,
        shared: SharedEntries | None = None,
    ) -> None:
        self.name = name
        self.config = config
        self.folder = folder
        self.address: Address = config.address(name)
        self.node = Node(
            name,
            config,
            rng=rng,
            wall_clock=wall_clock,
            roster=_roster(tuple(config.peers)),
            folder=folder,
            shared=shared,
        )
        self._rng = self.node.rng
        self._network = network
        self._scanner = scanner
        self._scan_in_thread = scan_in_thread
        #: Watch the folder for changes (default: the config's ``watch``).
        self.watch = config.watch if watch is None else watch
        self._rescan = trio.Event()
        #: Subscribers of the peer's events (:meth:`events`).
        self.hub = EventHub()
        command = config.on_change if on_change is None else on_change
        #: The event handler (``on_change``), if any.
        self.hook: Hook | None = None
        if command:
            from .hooks import Hook  # only a peer with a hook runs commands

            self.hook = Hook(command, name)
        #: Where to serve the web page (host, port; :mod:`.web`), or ``None``.
        self.http = http
        #: The page's address once served (``http://HOST:PORT/``).
        self.http_url: str | None = None
        self._transport: Transport | None = None
        self._skipped = Skipped()
        #: On a stop (cancellation), tell the cluster that we leave; a
        #: simulation sets it false to stop as a crash does.
        self.leave_on_stop = True

    # -- what the peer knows -----------------------------------------------------

    def view(self) -> dict[str, Entry]:
        """Every live origin's entry, ours included (tombstones left out)."""
        return self.node.view()

    def entry(self, origin: str) -> Entry | None:
        """What we hold about ``origin`` (a tombstone if reaped), without copying the view."""
        return self.node.replica.get(origin)

    def reaped(self) -> dict[str, Entry]:
        """The tombstones: origins reaped, with the key they were reaped at."""
        return self.node.replica.reaped()

    def statistics(self) -> Statistics:
        return self.node.statistics()

    def snapshot(self, now: float) -> dict[str, Any]:
        """What ``--info`` shows: every origin, its version, ages and files."""
        return self.node.snapshot(now)

    def members(self, now: float | None = None) -> dict[str, Member]:
        """Every origin this peer knows of (itself, the left and reaped
        included), as of ``now`` (default: trio's clock)."""
        from .members import members  # for programs: a peer run from the command line never asks

        at = trio.current_time() if now is None else now
        return members(self.node.replica, self.name, at)

    def events(self, buffer: int = 256) -> Subscription:
        """The peer's events from now on: ``async with peer.events() as events:``,
        then ``async for event in events``. A subscriber that falls more than
        ``buffer`` events behind loses some (counted in its ``dropped``); it
        never slows the peer."""
        return self.hub.subscribe(buffer)

    # -- the supervisor ----------------------------------------------------------

    async def run(
        self, *, task_status: trio.TaskStatus[Address] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Bind, scan once, start the five tasks (and the web page, if asked),
        report the address; run until cancelled."""
        try:
            self._transport = await self._network.bind(self.address)
        except OSError as exc:
            where = f"{self.address[0]}:{self.address[1]}"
            raise StartupError(
                f"peer {self.name}: cannot listen on {where}: {exc.strerror or exc}"
            ) from None
        http_socket = None
        try:
            if self.http is not None:
                from .web import listen  # hypercorn and Starlette: only when asked for

                http_socket = await listen(self.name, self.http)
            try:
                scan = await self._scan()
            except ScanError as exc:
                raise StartupError(f"peer {self.name}: {exc}") from None
            self.node.start(scan.files, trio.current_time())
            own = self.node.own
            log.info(
                "%s: started on %s:%d, folder %s, generation %d (%s), %s",
                self.name,
                *self.address,
                self.folder,
                own.generation,
                when(own.generation),
                files(len(scan.files)),
            )
            self.node.take_events()  # our start, said above
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._receive_loop)
                nursery.start_soon(self._scan_loop)
                nursery.start_soon(self._push_loop)
                nursery.start_soon(self._relay_loop)
                nursery.start_soon(self._reap_loop)
                if self.watch:
                    nursery.start_soon(self._watch_loop)
                if self.hook is not None:
                    nursery.start_soon(self.hook.run)
                if http_socket is not None:
                    from .web import serve_http

                    self.http_url = await nursery.start(serve_http, self, http_socket)
                task_status.started(self.address)
        finally:
            if self.leave_on_stop and self.name in self.node.replica:
                await self._leave()
            self._transport.close()
            if http_socket is not None:
                http_socket.close()  # unless the server took it (detached: a no-op)
            self.hub.close()
            log.info("%s: stopped", self.name)

    # -- the five tasks ----------------------------------------------------------

    async def _receive_loop(self) -> NoReturn:
        assert self._transport is not None
        while True:
            data, source = await self._transport.receive()
            await self._send(self.node.receive_untrusted(data, source, trio.current_time()))

    def rescan_now(self) -> None:
        """Scan the folder as soon as the last scan allows (SIGHUP, the watcher)."""
        self._rescan.set()

    async def _scan_loop(self) -> NoReturn:
        interval = self.config.intervals.scan
        deadline = trio.current_time()
        earliest = -math.inf  # the next asked-for scan, after the last one's cost
        while True:
            deadline = next_tick(deadline, interval, trio.current_time())
            with trio.move_on_at(deadline):
                await self._rescan.wait()
                # Asked for: at once, but never scanning more than a third of the time.
                await trio.sleep_until(earliest)
            self._rescan = trio.Event()
            began = trio.current_time()
            try:
                scan = await self._scan()
            except ScanError as exc:
                self.node.scan_failed()
                log.warning(
                    "%s: scan failed, keeping version %d: %s", self.name, self.node.own.version, exc
                )
                continue
            finally:
                took = trio.current_time() - began
                earliest = trio.current_time() + 2 * took
            self.node.scanned(self._visible(scan), trio.current_time())
            await self._send([])

    async def _watch_loop(self) -> None:
        """Ask for a scan whenever something in the folder changes; the periodic
        scan stays as the safety net, and the only scan where watching fails."""
        try:
            from watchfiles import awatch
        except ImportError:  # pragma: no cover -- a dependency; said once, then polled
            log.warning(
                "%s: watchfiles is missing: scanning every %g s only",
                self.name,
                self.config.intervals.scan,
            )
            return
        stop = trio.Event()

        async def stop_on_cancel() -> None:
            # The watching thread cannot be cancelled: it stops when ``stop`` is set.
            try:
                await trio.sleep_forever()
            finally:
                stop.set()

        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(stop_on_cancel)
                async for _ in awatch(
                    self.folder, watch_filter=None, step=WATCH_STEP, stop_event=stop
                ):
                    self.rescan_now()
        except (OSError, RuntimeError) as exc:
            log.warning(
                "%s: cannot watch %s (%s): scanning every %g s only",
                self.name,
                self.folder,
                exc,
                self.config.intervals.scan,
            )

    async def _push_loop(self) -> NoReturn:
        interval = self.config.intervals.push
        deadline = trio.current_time() + self._rng.uniform(0, interval)
        while True:
            await trio.sleep_until(deadline)
            deadline = next_tick(deadline, interval, trio.current_time())
            await self._send(self.node.push(trio.current_time()))

    async def _relay_loop(self) -> NoReturn:
        interval = self.config.intervals.relay
        deadline = trio.current_time() + self._rng.uniform(0, interval)
        while True:
            await trio.sleep_until(deadline)
            deadline = next_tick(deadline, interval, trio.current_time())
            await self._send(self.node.relay(trio.current_time()))

    async def _reap_loop(self) -> NoReturn:
        while True:
            due = self.node.reap(trio.current_time())
            await self._send([])
            await trio.sleep_until(due)

    # -- helpers of the tasks ----------------------------------------------------

    async def _leave(self) -> None:
        """Tell a few peers that we leave, within :data:`LEAVE_TIME`, even while
        being cancelled: a stop is when it matters."""
        with trio.CancelScope(shield=True) as scope:
            scope.deadline = trio.current_time() + LEAVE_TIME
            sends = self.node.leave(trio.current_time())
            await self._send(sends)
            log.info("%s: left the cluster (told %d peers)", self.name, len(sends))

    def _visible(self, scan: Scan) -> dict[str, tuple[int, int]]:
        """The scan's files, and the ones it could not see but we published:
        a file under a folder that turned unreadable is not deleted."""
        files = scan.files
        if not scan.skipped.total:
            return files
        kept = {
            f.name: (f.size, f.mtime_ns)
            for f in self.node.own.files
            if not f.deleted and f.name not in files and scan.skipped.hides(f.name)
        }
        return {**files, **kept} if kept else files

    async def _scan(self) -> Scan:
        if self._scan_in_thread:
            stop = threading.Event()
            scanner = self._scanner
            if scanner is scan_folder:  # ours: it says how far it got, and it can stop

                def progress(count: int) -> None:
                    log.info("%s: scanning %s: %s so far", self.name, self.folder, files(count))

                scanner = functools.partial(scan_folder, progress=progress, should_stop=stop.is_set)
            try:
                scan = await trio.to_thread.run_sync(
                    scanner, self.folder, abandon_on_cancel=True, limiter=_scan_limiter()
                )
            finally:
                stop.set()  # cancelled (a signal): the abandoned thread stops soon too
        else:
            await trio.lowlevel.checkpoint()
            scan = self._scanner(self.folder)
        for line in scan.skipped.lines(since=self._skipped):  # what changed since the last scan
            log.warning("%s: %s", self.name, line)
        self._skipped = scan.skipped
        self.node.skipped = scan.skipped.total
        return scan

    async def _send(self, sends: list[Send]) -> None:
        """Send ``sends``, after telling of what the node did since the last
        time: the log, the subscribers, the hook, the watchers."""
        events = self.node.take_events()
        if events:
            for event in events:
                log_event(self.name, event)
                self.hub.publish(event)
                if self.hook is not None:
                    self.hook.offer(event)
            sends = sends + self.node.to_watchers(events, trio.current_time())
        assert self._transport is not None
        for send in sends:
            await self._transport.send(send.data, send.address)
