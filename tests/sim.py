"""A small harness: real :class:`Peer` s, their five tasks, over a :class:`MemoryNetwork`.

Run it under ``MockClock(autojump_threshold=0)``. Every source of chance is
seeded, and none depends on the order in which trio's scheduler runs the
tasks that are ready together (it picks that order at random): the network
draws from one generator per link, each peer from one stream per task
(:class:`TaskRandom`). So a simulation repeats exactly, run after run
(``test_a_simulation_does_not_depend_on_the_scheduler`` checks it). Folders
are plain dicts the test mutates; a fake scanner reads them in the trio
thread, because under an autojumping clock virtual time would jump while a
scanner thread runs.

    async with open_sim("ABCDE", seed=1, loss=0.2) as sim:
        sim.folders["A"]["new.txt"] = (3, 1)
        await sim.wait_until(lambda: sim.everyone_holds("A"), within=20)
"""

from __future__ import annotations

import contextlib
import random
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from pathlib import Path

import trio

from trio_gossip import Config, Entry, Intervals, MemoryNetwork, Peer, PeerConfig, Scan, ScanError
from trio_gossip.config import DEFAULT_MAX_DATAGRAM
from trio_gossip.keyring import Keyring
from trio_gossip.memory import TaskRandom
from trio_gossip.messages import Message
from trio_gossip.state import live_files
from trio_gossip.transport import Address

__all__ = [
    "GENERATION",
    "INTERVALS",
    "Folder",
    "Sim",
    "files_of",
    "handle",
    "make_config",
    "open_sim",
]

#: A folder: relative name -> (size, mtime_ns), as a scan reports it.
Folder = dict[str, tuple[int, int]]

#: The wall clock (ns) peers start with unless told otherwise: their first generation.
GENERATION = 1_700_000_000_000_000_000

#: Rounds of a second, a scan every five, a silent peer reaped after thirty.
INTERVALS = Intervals(scan=5.0, push=1.0, relay=1.0, reap=30.0)
NO_KEY = Keyring()


def make_config(
    names: Iterable[str],
    intervals: Intervals = INTERVALS,
    max_datagram: int = DEFAULT_MAX_DATAGRAM,
    keyring: Keyring = NO_KEY,
) -> Config:
    """A cluster of ``names``, each at its own made-up address."""
    peers = {name: PeerConfig(f"10.0.0.{i + 1}", 7000) for i, name in enumerate(names)}
    return Config(peers=peers, intervals=intervals, max_datagram=max_datagram, keyring=keyring)


def handle(peer: Peer, data: bytes, source: Address, now: float) -> list[Message]:
    """What ``peer``'s node answers to one datagram, as messages."""
    return [send.message for send in peer.node.receive_untrusted(data, source, now)]


def files_of(entry: Entry) -> Folder:
    """The live files of ``entry`` in the shape of a :data:`Folder`."""
    return {f.name: (f.size, f.mtime_ns) for f in live_files(entry)}


class Sim:
    """Peers of one config over one network, started and stopped at will."""

    def __init__(
        self,
        config: Config,
        network: MemoryNetwork,
        nursery: trio.Nursery,
        folders: dict[str, Folder],
        seed: int,
        *,
        generator: Callable[[str], random.Random] = TaskRandom,
    ) -> None:
        self.config = config
        self.network = network
        self.folders = folders
        self.seed = seed
        #: Makes each peer's generator from a seed string.
        self.generator = generator
        #: Peers whose folder cannot be read: their scans fail.
        self.unreadable: set[str] = set()
        #: The running peers by name.
        self.peers: dict[str, Peer] = {}
        #: The generation (wall clock, ns) each peer last started with.
        self.generations: dict[str, int] = {}
        #: The virtual time each peer last started at: its scan ticks count from there.
        self.started: dict[str, float] = {}
        self._nursery = nursery
        self._stops: dict[str, tuple[trio.CancelScope, trio.Event]] = {}
        self._starts: dict[str, int] = {}

    def address(self, name: str) -> Address:
        return self.config.address(name)

    def _scan(self, folder: Path) -> Scan:
        if folder.name in self.unreadable:
            raise ScanError(f"{folder}: cannot read: Permission denied")
        return Scan(dict(self.folders[folder.name]))

    async def start(self, name: str, *, generation: int = GENERATION) -> Peer:
        """Start peer ``name`` with the wall clock at ``generation``; return once it runs."""
        if name in self.peers:
            raise RuntimeError(f"peer {name} is running")
        self.folders.setdefault(name, {})
        incarnation = self._starts[name] = self._starts.get(name, 0) + 1
        peer = Peer(
            name,
            self.config,
            network=self.network,
            folder=Path(name),
            rng=self.generator(f"{self.seed}/{name}/{incarnation}"),
            wall_clock=lambda: generation,
            scanner=self._scan,
            scan_in_thread=False,
            watch=False,  # folders are dicts here; tests/test_watch.py watches real ones
        )
        peer.leave_on_stop = False  # see stop(): a simulation's end is no leave
        scope = trio.CancelScope()
        stopped = trio.Event()

        async def run(*, task_status: trio.TaskStatus[Address]) -> None:
            try:
                with scope:
                    await peer.run(task_status=task_status)
            finally:
                stopped.set()

        self.started[name] = trio.current_time()
        await self._nursery.start(run)
        self.peers[name] = peer
        self.generations[name] = generation
        self._stops[name] = (scope, stopped)
        return peer

    async def stop(self, name: str, *, leave: bool = False) -> Peer:
        """Cancel peer ``name`` (its socket closes with it); return the stopped peer.

        Without ``leave`` it stops as a crash does, telling no one; with it, as
        a clean stop does, announcing that it leaves."""
        scope, stopped = self._stops.pop(name)
        self.peers[name].leave_on_stop = leave
        scope.cancel()
        await stopped.wait()
        return self.peers.pop(name)

    async def restart(self, name: str, *, generation: int) -> Peer:
        """Stop ``name`` if it runs, and start it afresh with the wall clock at ``generation``."""
        if name in self.peers:
            await self.stop(name)
        return await self.start(name, generation=generation)

    def next_scan(self, name: str, after: float) -> float:
        """The first scan tick of running peer ``name`` later than ``after``.

        Added up tick by tick as the scan loop does, so the float is the same.
        """
        tick = self.started[name]
        while tick <= after:
            tick += self.config.intervals.scan
        return tick

    async def wait_until(
        self, predicate: Callable[[], bool], *, within: float, step: float = 0.01, what: str = ""
    ) -> float:
        """Poll ``predicate`` every ``step`` virtual seconds; the time it first held.

        Fails (``AssertionError``) if it does not hold within ``within`` seconds.
        """
        deadline = trio.current_time() + within
        while not predicate():
            if trio.current_time() >= deadline:
                raise AssertionError(f"not within {within} s: {what or predicate}")
            await trio.sleep(step)
        return trio.current_time()

    # -- what the cluster knows -----------------------------------------------

    def shows_folder(self, name: str, origin: str) -> bool:
        """Whether running peer ``name`` shows ``origin`` with the files its folder has now."""
        entry = self.peers[name].view().get(origin)
        return entry is not None and files_of(entry) == self.folders[origin]

    def everyone_holds(self, origin: str) -> bool:
        """Whether every running peer shows running ``origin``'s current version.

        Compares keys, not files: honest holders of one version hold the same files.
        """
        own = self.peers[origin].view()[origin]
        return all(
            (entry := peer.view().get(origin)) is not None and entry.content == own.content
            for peer in self.peers.values()
        )

    def converged(self) -> bool:
        """Whether every running peer shows every running peer's current version."""
        return all(self.everyone_holds(origin) for origin in self.peers)


@contextlib.asynccontextmanager
async def open_sim(
    names: Iterable[str],
    *,
    seed: int = 0,
    loss: float = 0.0,
    duplicate: float = 0.0,
    delay: tuple[float, float] = (0.0, 0.0),
    intervals: Intervals = INTERVALS,
    max_datagram: int = DEFAULT_MAX_DATAGRAM,
    folders: Mapping[str, Folder] | None = None,
    real_timeout: float = 60.0,
    keyring: Keyring = NO_KEY,
    network_type: type[MemoryNetwork] = MemoryNetwork,
    generator: Callable[[str], random.Random] = TaskRandom,
    running: Iterable[str] | None = None,
) -> AsyncIterator[Sim]:
    """Start peers ``names`` (one file each unless ``folders`` says) and yield the :class:`Sim`.

    ``running``: start only these of ``names`` (the others can join later, by
    :meth:`Sim.start`).

    Everything is cancelled when the block ends, or after ``real_timeout``
    seconds of real time, which then fails.
    """
    names = list(names)
    network = network_type(seed=seed, loss=loss, duplicate=duplicate, delay=delay)
    if folders is None:
        folders = {n: {f"{n}.txt": (len(n), 1_000 + i)} for i, n in enumerate(names)}
    token = trio.lowlevel.current_trio_token()
    expired = False
    async with trio.open_nursery() as nursery:

        def expire() -> None:
            nonlocal expired
            expired = True
            nursery.cancel_scope.cancel()

        def from_timer() -> None:
            with contextlib.suppress(trio.RunFinishedError):
                token.run_sync_soon(expire)

        # Virtual time cannot bound a task that spins without sleeping: real time does.
        timer = threading.Timer(real_timeout, from_timer)
        timer.daemon = True
        timer.start()
        try:
            await nursery.start(network.run)
            config = make_config(names, intervals, max_datagram, keyring)
            copies = {n: dict(f) for n, f in folders.items()}
            sim = Sim(config, network, nursery, copies, seed, generator=generator)
            for name in names if running is None else running:
                await sim.start(name)
            yield sim
            nursery.cancel_scope.cancel()
        finally:
            timer.cancel()
    if expired:
        raise AssertionError(f"the simulation ran for more than {real_timeout} real seconds")
