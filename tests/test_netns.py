"""Peers as separate machines: Linux network namespaces, a switch, and a pulled cable.

Each peer process runs in a network namespace of its own, at its own address
on 192.0.2.0/24 (TEST-NET-1, which no real network uses), its ``eth0`` one end
of a veth pair whose other end is plugged into a bridge in a fourth, "switch"
namespace. No namespace has a default route or an uplink, so nothing can leave
them. Setting the switch end of a peer's veth down pulls its cable: a real
partition, which the peer's own kernel sees as a lost carrier.

Needs root and ``ip netns`` (iproute2); otherwise the test is skipped, saying why.
Every command has a timeout, every wait is a bounded poll, and the namespaces
and processes are removed whatever happens.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import attrs
import pytest

pytestmark = pytest.mark.slow

NAMES = "ABC"
PORT = 9101
PUSH = 0.1
REAP = 3.0
INTERVALS = {"scan": 0.2, "push": PUSH, "relay": 0.1, "reap": REAP}
#: Seconds the test may take from the first peer's start to the end.
TOTAL = 50.0
#: Seconds any one command may take.
COMMAND = 10.0
#: How far a reap or a return may be from where the rounds put it: ten push rounds.
ROUNDS = 10 * PUSH


def ip(*args: str) -> None:
    """Run ``ip ARGS``; a failure raises with ip's own message."""
    result = subprocess.run(
        ["ip", *args], capture_output=True, text=True, timeout=COMMAND, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {result.stderr.strip()}")


def netns_unavailable() -> str | None:
    """Why namespaces, veth pairs and bridges cannot be made here, or ``None``."""
    if os.geteuid() != 0:
        return f"needs root to create network namespaces (euid {os.geteuid()})"
    if shutil.which("ip") is None:
        return "needs the ip command (iproute2)"
    probe = f"tg-{secrets.token_hex(3)}-probe"
    try:
        ip("netns", "add", probe)
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        return f"cannot create a network namespace: {exc}"
    try:
        ip("-n", probe, "link", "add", "v0", "type", "veth", "peer", "name", "v1")
        ip("-n", probe, "link", "add", "br0", "type", "bridge")
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        return f"cannot create a veth pair and a bridge in a namespace: {exc}"
    finally:
        ip("netns", "del", probe)
    return None


@attrs.define
class Lan:
    """Namespaces ``<prefix>-a``, ``-b``, ``-c`` on one switch, ``<prefix>-s``."""

    prefix: str
    made: list[str] = attrs.field(factory=list)

    def ns(self, name: str) -> str:
        return f"{self.prefix}-{name.lower()}"

    @property
    def switch(self) -> str:
        return f"{self.prefix}-s"

    @staticmethod
    def host(name: str) -> str:
        return f"192.0.2.{NAMES.index(name) + 1}"

    @staticmethod
    def cable(name: str) -> str:
        """The switch end of the peer's veth pair."""
        return f"sw-{name.lower()}"

    def build(self) -> None:
        for ns in (self.switch, *map(self.ns, NAMES)):
            ip("netns", "add", ns)
            self.made.append(ns)
            ip("-n", ns, "link", "set", "lo", "up")  # a peer's --info to itself goes by lo
        ip("-n", self.switch, "link", "add", "br0", "type", "bridge")  # no STP: forwards at once
        ip("-n", self.switch, "link", "set", "br0", "up")
        for name in NAMES:
            cable, ns = self.cable(name), self.ns(name)
            ip("-n", self.switch, "link", "add", cable, "type", "veth", "peer", "name", "eth0")
            ip("-n", self.switch, "link", "set", "eth0", "netns", ns)
            ip("-n", self.switch, "link", "set", cable, "master", "br0", "up")
            ip("-n", ns, "addr", "add", f"{self.host(name)}/24", "dev", "eth0")
            ip("-n", ns, "link", "set", "eth0", "up")

    def unplug(self, name: str) -> None:
        ip("-n", self.switch, "link", "set", self.cable(name), "down")

    def plug(self, name: str) -> None:
        ip("-n", self.switch, "link", "set", self.cable(name), "up")

    def destroy(self) -> None:
        """Delete every namespace made; say so (after trying them all) if one stays."""
        # Deleting a namespace deletes the veth ends in it, and so their peers.
        failures = []
        for ns in reversed(self.made):
            try:
                ip("netns", "del", ns)
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                failures.append(str(exc))
        self.made.clear()
        if failures:
            raise RuntimeError(f"namespaces left behind: {'; '.join(failures)}")


@attrs.define
class Cluster:
    """Peer processes, one in each namespace of ``lan``, sharing ``config``."""

    lan: Lan
    config: Path
    logs: Path
    processes: dict[str, subprocess.Popen[bytes]] = attrs.field(factory=dict)
    _log_files: list[IO[str]] = attrs.field(factory=list)

    def command(self, name: str, *args: str) -> list[str]:
        program = [sys.executable, "-m", "trio_gossip", name, "--config", str(self.config)]
        return ["ip", "netns", "exec", self.lan.ns(name), *program, *args]

    def start(self, name: str) -> None:
        log = (self.logs / f"{name}.log").open("w")
        self._log_files.append(log)
        self.processes[name] = subprocess.Popen(
            self.command(name),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
            cwd=self.logs,
        )

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text()

    def logs_tail(self) -> str:
        return "\n".join(f"--- {n}:\n" + "\n".join(self.log(n).splitlines()[-15:]) for n in NAMES)

    def started(self) -> bool:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise AssertionError(f"peer {name} exited early:\n{self.logs_tail()}")
        return all(f"{n}: started on {self.lan.host(n)}:{PORT}" in self.log(n) for n in NAMES)

    def sample(self) -> Sample:
        """Every peer's ``--info --json`` snapshot, asked at once, each in its namespace."""
        begun = time.monotonic()
        asks = {
            name: subprocess.Popen(
                self.command(name, "--info", "--json"),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for name in NAMES
        }
        snapshots: dict[str, dict[str, Any]] = {}
        try:
            for name, ask in asks.items():
                out, err = ask.communicate(timeout=COMMAND)
                # 3: it answered, but heard from no other peer lately (a pulled cable).
                assert ask.returncode in (0, 3), f"{name} --info: {err}\n{self.logs_tail()}"
                snapshots[name] = json.loads(out)
        finally:
            for ask in asks.values():
                if ask.poll() is None:
                    ask.kill()
                    ask.communicate()
        return Sample(begun, time.monotonic(), snapshots)

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        for log in self._log_files:
            log.close()


@attrs.frozen
class Sample:
    """Snapshots taken between ``begun`` and ``ended`` (``time.monotonic()``)."""

    begun: float
    ended: float
    of: dict[str, dict[str, Any]]

    def moment(self, peer: str, ago: float) -> tuple[float, float]:
        """When something ``ago`` seconds old in ``peer``'s snapshot happened: the
        earliest and latest ``time.monotonic()`` it can have been."""
        return self.begun - ago - 0.001, self.ended - ago + 0.001  # ago is rounded to ms

    def summary(self) -> str:
        return "; ".join(
            f"{p}: live {sorted(s['origins'])}, reaped {sorted(s['reaped'])}"
            for p, s in self.of.items()
        )


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    reason = netns_unavailable()
    if reason is not None:
        pytest.skip(reason)
    lan = Lan(f"tg-{secrets.token_hex(3)}")
    config = tmp_path / "config.json"
    peers = {n: {"host": lan.host(n), "port": PORT, "folder": f"folders/{n}"} for n in NAMES}
    config.write_text(json.dumps({"peers": peers, "intervals": INTERVALS}))
    for name in NAMES:
        (tmp_path / "folders" / name).mkdir(parents=True)
        (tmp_path / "folders" / name / f"{name}.txt").write_text(f"from {name}\n")
    running = Cluster(lan, config, tmp_path)
    try:
        lan.build()
        yield running
    finally:
        running.stop()  # first: a namespace lives on while a process is in it
        lan.destroy()


def wait_for(
    cluster: Cluster, what: str, done: Callable[[Sample], bool], within: float, deadline: float
) -> Sample:
    """Sample until ``done``; fail after ``within`` seconds or at ``deadline``."""
    give_up = min(time.monotonic() + within, deadline)
    while True:
        sample = cluster.sample()
        if done(sample):
            return sample
        if time.monotonic() > give_up:
            raise AssertionError(
                f"{what}: not within {within:.1f} s; {sample.summary()}\n{cluster.logs_tail()}"
            )
        time.sleep(0.1)


def test_a_pulled_cable_is_reaped_both_ways_and_heals(cluster: Cluster, tmp_path: Path) -> None:
    files = {name: [f"{name}.txt"] for name in NAMES}

    def converged(sample: Sample) -> bool:
        for snapshot in sample.of.values():
            if sorted(snapshot["origins"]) != list(NAMES) or snapshot["reaped"]:
                return False
            for origin, entry in snapshot["origins"].items():
                own = sample.of[origin]["origins"][origin]
                if (entry["generation"], entry["version"]) != (own["generation"], own["version"]):
                    return False
                if [f["name"] for f in entry["files"]] != files[origin]:
                    return False
        return True

    def partitioned(sample: Sample) -> bool:
        a, b, c = (sample.of[n] for n in NAMES)
        return (
            sorted(a["origins"]) == sorted(b["origins"]) == ["A", "B"]
            and list(a["reaped"]) == list(b["reaped"]) == ["C"]
            and list(c["origins"]) == ["C"]
            and sorted(c["reaped"]) == ["A", "B"]
        )

    started = time.monotonic()
    deadline = started + TOTAL
    for name in NAMES:
        cluster.start(name)
    give_up = started + 15
    while not cluster.started():
        assert time.monotonic() < give_up, f"peers not started:\n{cluster.logs_tail()}"
        time.sleep(0.05)

    # 1. Three machines, one switch: everyone learns everyone's folder.
    before = wait_for(cluster, "converging", converged, 10, deadline)
    generations = {n: before.of[n]["origins"][n]["generation"] for n in NAMES}

    # 2. C's cable pulled. A change in C's folder meanwhile cannot reach A or B.
    cut_from = time.monotonic()
    cluster.lan.unplug("C")
    cut_to = time.monotonic()
    (tmp_path / "folders" / "C" / "C2.txt").write_text("made while cut off\n")
    files["C"] = ["C.txt", "C2.txt"]
    apart = wait_for(cluster, "reaping across the cut", partitioned, REAP + 5, deadline)
    for peer, origin in [("A", "C"), ("B", "C"), ("C", "A"), ("C", "B")]:
        earliest, latest = apart.moment(peer, apart.of[peer]["reaped"][origin]["reaped_ago"])
        # Not before `reap` seconds of silence (the last heartbeat came at most a
        # few rounds before the cut), and no later than `reap` after the cut.
        assert latest >= cut_from + REAP - ROUNDS, (peer, origin, latest - cut_from)
        assert earliest <= cut_to + REAP + ROUNDS, (peer, origin, earliest - cut_to)
    assert apart.of["C"]["origins"]["C"]["version"] > before.of["C"]["origins"]["C"]["version"]

    # 3. The cable back in: each side comes back to the other, with C's new file.
    healed_from = time.monotonic()
    cluster.lan.plug("C")
    healed_to = time.monotonic()
    after = wait_for(cluster, "converging after the heal", converged, REAP + 5, deadline)
    for peer, origin in [("A", "C"), ("B", "C"), ("C", "A"), ("C", "B")]:
        earliest, latest = after.moment(peer, after.of[peer]["origins"][origin]["changed_ago"])
        assert latest >= healed_from, (peer, origin)  # taken back after the heal, not before
        assert earliest <= healed_to + ROUNDS, (peer, origin, earliest - healed_to)
    # Back by their heartbeats, as themselves: no restart, no refutation.
    for name in NAMES:
        assert after.of[name]["origins"][name]["generation"] == generations[name]
        assert after.of[name]["statistics"]["refuted"] == 0
        assert after.of[name]["statistics"]["rejected"] == {}
    assert time.monotonic() < deadline
