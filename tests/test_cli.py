"""``python -m trio_gossip`` as a user runs it: real processes, each with a timeout."""

from __future__ import annotations

import base64
import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import pytest
import trio
from ports import free_udp_ports

from trio_gossip import cli
from trio_gossip.config import load_config

pytestmark = pytest.mark.slow

TIMEOUT = 20.0  # seconds any one command may take


def run(*args: str, cwd: Path, timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trio_gossip", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], status: int) -> str:
    """The command failed with ``status`` and said why in exactly one line."""
    assert result.returncode == status, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].strip()
    assert result.stdout == ""
    return lines[0]


def write_config(path: Path, names: str = "ABC") -> dict[str, Any]:
    """A cluster of ``names`` on free loopback ports, folders next to the config."""
    ports = free_udp_ports(len(names))
    config = {
        "peers": {
            name: {"host": "127.0.0.1", "port": port, "folder": f"folders/{name}"}
            for name, port in zip(names, ports, strict=True)
        },
        "intervals": {"scan": 0.2, "push": 0.1, "relay": 0.1, "reap": 30},
    }
    path.write_text(json.dumps(config))
    return config


# -- mistakes: exit status 2, one line -----------------------------------------------


def test_a_missing_config_file(tmp_path: Path) -> None:
    line = assert_one_line_error(run("A", "--config", "nowhere.json", cwd=tmp_path), 2)
    assert "nowhere.json" in line


def test_the_default_config_file_missing(tmp_path: Path) -> None:
    line = assert_one_line_error(run("A", cwd=tmp_path), 2)
    assert "config.json" in line


def test_invalid_json(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"peers": {')
    line = assert_one_line_error(run("A", cwd=tmp_path), 2)
    assert "JSON" in line


def test_a_value_of_the_wrong_type(tmp_path: Path) -> None:
    config = write_config(tmp_path / "config.json")
    config["peers"]["B"]["port"] = "9000"
    (tmp_path / "config.json").write_text(json.dumps(config))
    line = assert_one_line_error(run("A", cwd=tmp_path), 2)
    assert "peers.B.port" in line


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        pytest.param(
            lambda c: c["peers"]["B"].update(host="0.0.0.0"),
            'peers.B.host: expected an address the others can send to, got "0.0.0.0",'
            " a wildcard address: every datagram from it would come from another address",
            id="wildcard-host",
        ),
        pytest.param(
            lambda c: c["intervals"].update(push=10),
            "intervals.reap: expected at least 7 push intervals (70 s) with 3 peers, got 30 s:"
            " a live peer's heartbeat needs a few push rounds to reach every peer,"
            " and a shorter reap reaps live peers",
            id="reap-too-short",
        ),
        pytest.param(
            lambda c: c["peers"]["C"].update(folder=""),
            'peers.C.folder: expected a path, got ""',
            id="empty-folder",
        ),
    ],
)
def test_a_config_that_cannot_work(tmp_path: Path, change: Any, expected: str) -> None:
    config = write_config(tmp_path / "config.json")
    change(config)
    (tmp_path / "config.json").write_text(json.dumps(config))
    line = assert_one_line_error(run("--all", cwd=tmp_path), 2)
    assert line == f"trio_gossip: config.json: {expected}"
    assert not (tmp_path / "folders").exists()  # refused before any peer started


def test_an_unknown_peer_name(tmp_path: Path) -> None:
    write_config(tmp_path / "config.json")
    line = assert_one_line_error(run("Zed", cwd=tmp_path), 2)
    assert "Zed" in line


@pytest.mark.parametrize(
    "args",
    [
        pytest.param((), id="neither-name-nor-all"),
        pytest.param(("A", "--all"), id="name-and-all"),
        pytest.param(("A", "--json"), id="json-without-info"),
        pytest.param(("--all", "--info"), id="info-with-all"),
    ],
)
def test_a_bad_command_line(tmp_path: Path, args: tuple[str, ...]) -> None:
    write_config(tmp_path / "config.json")
    assert_one_line_error(run(*args, cwd=tmp_path), 2)


def test_an_address_already_in_use(tmp_path: Path) -> None:
    config = write_config(tmp_path / "config.json")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as squatter:
        squatter.bind(("127.0.0.1", config["peers"]["A"]["port"]))
        line = assert_one_line_error(run("A", cwd=tmp_path), 2)
    assert str(config["peers"]["A"]["port"]) in line


def test_info_of_a_peer_that_is_not_running(tmp_path: Path) -> None:
    write_config(tmp_path / "config.json")
    line = assert_one_line_error(run("C", "--info", cwd=tmp_path), 1)
    assert "not answering" in line


def test_a_bad_key_is_one_line_without_the_key(tmp_path: Path) -> None:
    config = write_config(tmp_path / "config.json")
    short = base64.b64encode(b"0123456789").decode()
    config["keys"] = [base64.b64encode(bytes(32)).decode(), short]
    (tmp_path / "config.json").write_text(json.dumps(config))
    line = assert_one_line_error(run("A", cwd=tmp_path), 2)
    assert line == (
        "trio_gossip: config.json: keys[1]: expected a key of 16, 24 or 32 bytes, got 10"
    )
    assert short not in line


# -- --keygen ----------------------------------------------------------------------


def test_keygen_prints_a_new_key(tmp_path: Path) -> None:
    # No config.json here: a key is made before there is a config to put it in.
    first, second = run("--keygen", cwd=tmp_path), run("--keygen", cwd=tmp_path)
    for result in (first, second):
        assert result.returncode == 0, result.stderr
        assert result.stderr == ""
        assert result.stdout.endswith("\n")
        assert result.stdout.count("\n") == 1
        assert len(base64.b64decode(result.stdout.strip(), validate=True)) == 32
    assert first.stdout != second.stdout
    assert not list(tmp_path.iterdir())
    # What it prints is what keys and key_file take.
    (tmp_path / "cluster.keys").write_text(first.stdout)
    config = write_config(tmp_path / "config.json")
    config["key_file"] = "cluster.keys"
    (tmp_path / "config.json").write_text(json.dumps(config))
    keyring = load_config(tmp_path / "config.json").keyring
    assert keyring.keys == (base64.b64decode(first.stdout),)


@pytest.mark.parametrize("other", [("A",), ("--all",), ("A", "--info")])
def test_keygen_goes_alone(tmp_path: Path, other: tuple[str, ...]) -> None:
    write_config(tmp_path / "config.json")
    line = assert_one_line_error(run("--keygen", *other, cwd=tmp_path), 2)
    assert line == "trio_gossip: --keygen goes alone (see --help)"


# -- running peers -----------------------------------------------------------------


class Running:
    """A ``trio_gossip`` process running ``peers``; its log in a file, so nothing blocks."""

    def __init__(self, args: list[str], peers: str, cwd: Path, logs: Path) -> None:
        self.peers = peers
        self.log_path = logs / f"{peers}.log"
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "trio_gossip", *args],
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
        )

    def log(self) -> str:
        return self.log_path.read_text()

    def started(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"exited early: {self.log()}")
        return all(f"{name}: started" in self.log() for name in self.peers)

    def stop(self, signum: int) -> int:
        """Send ``signum``; the exit status, which must come within a few seconds."""
        self.process.send_signal(signum)
        try:
            return self.process.wait(timeout=5)
        finally:
            self.close()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=5)
        self._log.close()


def poll(predicate: Callable[[], bool], timeout: float, step: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s")
        time.sleep(step)


@contextmanager
def running(*processes: tuple[list[str], str], cwd: Path, logs: Path) -> Iterator[list[Running]]:
    """Start ``(arguments, peers)`` processes and wait until each says its peers started."""
    started: list[Running] = []
    try:
        for args, peers in processes:
            started.append(Running(args, peers, cwd, logs))
        for process in started:
            poll(process.started, TIMEOUT)
        yield started
    finally:
        for process in started:
            process.close()


def assert_stopped_cleanly(process: Running, signum: signal.Signals) -> None:
    assert process.stop(signum) == 0, process.log()
    log = process.log()
    assert "Traceback" not in log
    assert f"{signum.name} received, stopping" in log
    for name in process.peers:
        assert f"{name}: stopped" in log


def test_three_peer_processes_share_a_new_file_and_stop_on_sigterm(tmp_path: Path) -> None:
    # The config elsewhere than the working directory: folders are relative to the config.
    (tmp_path / "cluster").mkdir()
    (tmp_path / "work").mkdir()
    config = tmp_path / "cluster" / "config.json"
    write_config(config)
    cwd = tmp_path / "work"
    processes = [(["--config", str(config), name], name) for name in "ABC"]
    with running(*processes, cwd=cwd, logs=tmp_path) as peers:
        hello = tmp_path / "cluster" / "folders" / "A" / "hello.txt"
        hello.write_text("hello, world\n")
        snapshot: dict[str, Any] = {}

        def c_shows_the_file() -> bool:
            nonlocal snapshot
            result = run("C", "--info", "--json", "--config", str(config), cwd=cwd)
            assert result.returncode == 0, result.stderr
            snapshot = json.loads(result.stdout)
            files = snapshot["origins"].get("A", {}).get("files", [])
            return any(f["name"] == "hello.txt" for f in files)

        poll(c_shows_the_file, TIMEOUT, step=0.2)
        assert snapshot["peer"] == "C"
        ports = json.loads(config.read_text())["peers"]
        assert snapshot["address"] == f"127.0.0.1:{ports['C']['port']}"
        assert snapshot["folder"] == str((tmp_path / "cluster" / "folders" / "C").resolve())
        assert list(snapshot["origins"]) == ["A", "B", "C"]
        a = snapshot["origins"]["A"]
        assert type(a["version"]) is int
        assert a["version"] >= 2  # the empty folder was version 1
        assert a["files"] == [
            {"name": "hello.txt", "size": 13, "mtime_ns": hello.stat().st_mtime_ns}
        ]
        assert a["file_count"] == 1
        assert not list(cwd.iterdir())  # nothing was made in the working directory

        for peer in peers:
            assert_stopped_cleanly(peer, signal.SIGTERM)


def test_a_peer_process_stops_on_sigint(tmp_path: Path) -> None:
    write_config(tmp_path / "config.json", names="AB")
    with running((["A"], "A"), cwd=tmp_path, logs=tmp_path) as (a,):
        assert_stopped_cleanly(a, signal.SIGINT)


def test_all_peers_in_one_process_answer_info_and_stop_on_sigterm(tmp_path: Path) -> None:
    write_config(tmp_path / "config.json")
    (tmp_path / "folders" / "B").mkdir(parents=True)
    (tmp_path / "folders" / "B" / "notes.md").write_text("# notes\n")
    with running((["--all"], "ABC"), cwd=tmp_path, logs=tmp_path) as (everyone,):

        def a_shows_the_notes() -> bool:
            result = run("A", "--info", cwd=tmp_path)
            assert result.returncode == 0, result.stderr
            return "notes.md" in result.stdout

        poll(a_shows_the_notes, TIMEOUT, step=0.2)
        text = run("A", "--info", cwd=tmp_path).stdout
        assert text.startswith("peer A at 127.0.0.1:")
        assert "3 origin(s) known" in text
        assert_stopped_cleanly(everyone, signal.SIGTERM)


async def test_a_signal_while_the_peers_start_stops_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A peer whose start never ends (think --all binding and scanning a
    # thousand folders): SIGTERM must still stop serve, not wait for the start.
    starting = trio.Event()

    class NeverStarts:
        def __init__(self, *args: object, **kwargs: object) -> None:
            pass

        async def run(self, *, task_status: trio.TaskStatus[None]) -> None:
            starting.set()
            await trio.sleep_forever()

    monkeypatch.setattr(cli, "Peer", NeverStarts)
    write_config(tmp_path / "config.json", "AB")
    config = load_config(tmp_path / "config.json")
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(cli.serve, config, ["A"])
            await starting.wait()
            signal.raise_signal(signal.SIGTERM)


def test_ctrl_c_while_the_config_loads_is_one_line_and_status_130(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted(*args: object) -> NoReturn:
        raise KeyboardInterrupt  # as if Ctrl-C came while a host was being looked up

    write_config(tmp_path / "config.json")
    monkeypatch.setattr(cli, "resolve_hosts", interrupted)
    assert cli.main(["A", "--config", str(tmp_path / "config.json")]) == 130
    assert capsys.readouterr().err == "trio_gossip: interrupted\n"
