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

import trio_gossip
from trio_gossip import cli, info
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
    assert line == f"trio-gossip: config.json: {expected}"
    assert not (tmp_path / "folders").exists()  # refused before any peer started


def test_an_unknown_peer_name(tmp_path: Path) -> None:
    write_config(tmp_path / "config.json")
    line = assert_one_line_error(run("Zed", cwd=tmp_path), 2)
    assert line == "trio-gossip: config.json: no peer named 'Zed' (peers: A, B, C)"


def test_an_unknown_peer_name_in_a_large_cluster_names_the_first_ten(tmp_path: Path) -> None:
    write_config(tmp_path / "config.json", names="ABCDEFGHIJKLMN")
    line = assert_one_line_error(run("Zed", cwd=tmp_path), 2)
    assert line.endswith("(peers: A, B, C, D, E, F, G, H, I, J and 4 more)")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param((), "give a peer NAME or --all", id="neither-name-nor-all"),
        pytest.param(("A", "--all"), "give a peer NAME or --all", id="name-and-all"),
        pytest.param(
            ("A", "--json"), "--json goes with --info, --find or --watch", id="json-alone"
        ),
        pytest.param(("--all", "--info"), "--info asks one peer", id="info-with-all"),
        pytest.param(("--all", "--find", "*"), "--find asks one peer", id="find-with-all"),
        pytest.param(
            ("A", "--info", "--find", "*"),
            "give one of --info, --find and --watch",
            id="info-and-find",
        ),
        pytest.param(("A", "--summary"), "--summary goes with --info", id="summary-alone"),
        pytest.param(("A", "--find", "*", "--summary"), "--summary goes", id="find-summary"),
        pytest.param(("A", "--info", "--summary", "--json"), "--summary is text", id="sum-json"),
        pytest.param(("A", "--find"), "expected one argument", id="find-without-glob"),
        pytest.param(("A", "--watch", "--info"), "give one of", id="watch-and-info"),
        pytest.param(("--all", "--watch"), "--watch asks one peer", id="watch-with-all"),
        pytest.param(
            ("A", "--watch", "--on-change", "true"), "--on-change goes", id="on-change-asking"
        ),
        pytest.param(("A", "--log-format", "xml"), "invalid choice: 'xml'", id="log-format"),
    ],
)
def test_a_bad_command_line(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    write_config(tmp_path / "config.json")
    line = assert_one_line_error(run(*args, cwd=tmp_path), 2)
    assert line.startswith("trio-gossip: ")
    assert message in line
    assert line.endswith(" (see --help)")


def test_version(tmp_path: Path) -> None:
    result = run("--version", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"trio-gossip {trio_gossip.__version__}\n"
    assert trio_gossip.__version__ == "0.1.0"


def test_help_names_the_real_commands(tmp_path: Path) -> None:
    result = run("--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: trio-gossip ")
    for command in (
        "trio-gossip A ",
        "python -m trio_gossip A",
        "trio-gossip --all",
        "trio-gossip A --info",
        "trio-gossip A --find '*.jpg'",
        "--summary",
        "exit statuses:",
    ):
        assert command in result.stdout


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
        "trio-gossip: config.json: keys[1]: expected a key of 16, 24 or 32 bytes, got 10"
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


@pytest.mark.parametrize(
    "other", [("A",), ("--all",), ("A", "--info"), ("A", "--find", "*"), ("--summary",)]
)
def test_keygen_goes_alone(tmp_path: Path, other: tuple[str, ...]) -> None:
    write_config(tmp_path / "config.json")
    line = assert_one_line_error(run("--keygen", *other, cwd=tmp_path), 2)
    assert line == "trio-gossip: --keygen goes alone (see --help)"


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
    assert capsys.readouterr().err == "trio-gossip: interrupted\n"


# -- --info and --find, what they print and their statuses ---------------------------


def file(name: str, size: int = 6) -> dict[str, Any]:
    return {"name": name, "size": size, "mtime_ns": 1_764_353_528_123_456_789}


def view(heard_b: float | None = 0.2, heartbeat: int = 1000, **files: list[str]) -> dict[str, Any]:
    """A snapshot from peer A, which knows B; A has run ``heartbeat`` push rounds."""

    def origin(name: str, heard: float | None) -> dict[str, Any]:
        names = files.get(name, [])
        return {
            "generation": 1,
            "version": 2,
            "heartbeat": heartbeat,
            "changed_ago": 30.0,
            "heard_ago": heard,
            "file_count": len(names),
            "files": [file(n) for n in names],
        }

    return {
        "peer": "A",
        "address": "127.0.0.1:9101",
        "folder": "/srv/A",
        "origins": {"A": origin("A", 0.0), "B": origin("B", heard_b)},
        "reaped": {},
    }


Ask = Callable[..., tuple[int, str, str]]


@pytest.fixture
def ask(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Ask:
    """``ask(snapshot, *args)``: ``main(["A", *args])`` with a peer A that
    answers ``snapshot``; the status, stdout and stderr."""
    write_config(tmp_path / "config.json", "AB")  # push 0.1 s: quiet after 10 s
    config = load_config(tmp_path / "config.json")

    def ask(snapshot: dict[str, Any], *args: str) -> tuple[int, str, str]:
        async def answer(address: tuple[str, int], *, keyring: object) -> dict[str, Any]:
            assert address == config.address("A")
            return snapshot

        monkeypatch.setattr(info, "query", answer)
        status = cli.main(["A", *args, "--config", str(tmp_path / "config.json")])
        out, err = capsys.readouterr()
        return status, out, err

    return ask


def test_summary_is_one_line_per_origin(
    ask: Ask,
) -> None:
    snapshot = view(A=["a.txt", "b.txt"], B=["c.txt"])
    status, out, err = ask(snapshot, "--info", "--summary")
    assert (status, err) == (0, "")
    assert out == (
        "peer A at 127.0.0.1:9101, folder /srv/A\n"
        "2 origin(s) known\n"
        "\n"
        "A (this peer): version 2, changed 30 s ago, heard just now, 2 file(s)\n"
        "B: version 2, changed 30 s ago, heard just now, 1 file(s)\n"
    )


def test_find_shows_who_holds_what(
    ask: Ask,
) -> None:
    snapshot = view(A=["a.jpg", "b.txt"], B=["photos/c.jpg", "d.png"])
    status, out, err = ask(snapshot, "--find", "*.jpg")
    assert (status, err) == (0, "")
    lines = out.splitlines()
    assert [line.split("  ")[:3] for line in lines] == [
        ["A (this peer): 1 file(s)"],
        ["", "a.jpg", "6 B"],
        ["B: 1 file(s)"],
        ["", "photos/c.jpg", "6 B"],
    ]


def test_find_as_json(
    ask: Ask,
) -> None:
    snapshot = view(A=["a.jpg", "b.txt"], B=["x\n\x1b.jpg"])
    status, out, err = ask(snapshot, "--find", "*.jpg", "--json")
    assert (status, err) == (0, "")
    assert json.loads(out) == {
        "peer": "A",
        "pattern": "*.jpg",
        "origins": {"A": [file("a.jpg")], "B": [file("x\n\x1b.jpg")]},  # exact, not escaped
    }


@pytest.mark.parametrize("as_json", [False, True])
def test_find_without_a_match_is_status_4(
    ask: Ask,
    as_json: bool,
) -> None:
    snapshot = view(A=["a.jpg"])
    more = ("--json",) if as_json else ()
    status, out, err = ask(snapshot, "--find", "*.gif", *more)
    assert (status, err) == (4, "")
    if as_json:
        assert json.loads(out) == {"peer": "A", "pattern": "*.gif", "origins": {}}
    else:
        assert out == ""


def test_names_cannot_forge_lines_or_reach_the_terminal(
    ask: Ask,
) -> None:
    hostile = ["two\nlines", "\x1b[2Jclear", "bell\a", "rtl\u202egpj.exe", "back\\slash", "\ud800"]
    snapshot = view(A=hostile)
    status, out, _ = ask(snapshot, "--info")
    assert status == 0
    lines = out.splitlines()
    assert all(line.isprintable() for line in lines)
    shown = [line.split("  ")[1] for line in lines if line.startswith("  ")]
    assert shown == [
        "two\\nlines",
        "\\x1b[2Jclear",
        "bell\\x07",
        "rtl\\u202egpj.exe",
        "back\\\\slash",
        "\\ud800",
    ]
    status, out, _ = ask(snapshot, "--info", "--json")
    assert status == 0
    assert json.loads(out) == snapshot  # --json is exact, a lone surrogate included


@pytest.mark.parametrize(
    ("args", "status"),
    [
        (("--info",), 3),
        (("--info", "--json"), 3),
        (("--info", "--summary"), 3),
        (("--find", "*"), 0),
    ],
)
def test_a_peer_that_heard_no_other_lately(
    ask: Ask,
    args: tuple[str, ...],
    status: int,
) -> None:
    snapshot = view(heard_b=42.4, A=["a.txt"])
    got, out, err = ask(snapshot, *args)
    assert got == status
    assert out  # what the peer said is shown all the same
    assert err == (
        "trio-gossip: peer A has heard from no other peer for 42 s (expected within 10 s)\n"
    )


@pytest.mark.parametrize(
    ("snapshot", "err", "status"),
    [
        pytest.param(view(heard_b=9.9), "", 0, id="heard-lately"),
        pytest.param(view(heard_b=None, heartbeat=99), "", 0, id="too-early-to-tell"),
        pytest.param(
            view(heard_b=None, heartbeat=100),
            "trio-gossip: peer A has heard from no other peer yet (expected within 10 s)\n",
            3,
            id="never-heard",
        ),
    ],
)
def test_the_health_check(
    ask: Ask,
    snapshot: dict[str, Any],
    err: str,
    status: int,
) -> None:
    assert ask(snapshot, "--info")[::2] == (status, err)


def test_ctrl_c_during_a_query_is_one_line_and_status_130(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    async def interrupted(*args: object, **kwargs: object) -> NoReturn:
        # Inside a nursery, as trio delivers it: a KeyboardInterrupt in a group.
        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.sleep_forever)
            raise KeyboardInterrupt

    write_config(tmp_path / "config.json")
    monkeypatch.setattr(info, "query", interrupted)
    assert cli.main(["A", "--info", "--config", str(tmp_path / "config.json")]) == 130
    assert capsys.readouterr() == ("", "trio-gossip: interrupted\n")


# -- --info of real processes: cut short, interrupted ---------------------------------


def test_info_piped_into_head_stops_quietly(tmp_path: Path) -> None:
    # More text than a pipe holds: the reader leaves while --info still writes.
    write_config(tmp_path / "config.json", "AB")
    folder = tmp_path / "folders" / "A"
    folder.mkdir(parents=True)
    for i in range(1_000):
        (folder / f"{'a-file-with-a-long-name-' * 8}{i:05d}.txt").write_text("x")
    with running((["A"], "A"), cwd=tmp_path, logs=tmp_path):
        whole = run("A", "--info", cwd=tmp_path)
        assert whole.returncode == 0, whole.stderr
        assert len(whole.stdout.encode()) > 3 * 65_536  # a pipe holds 65,536 bytes
        with subprocess.Popen(
            [sys.executable, "-m", "trio_gossip", "A", "--info"],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        ) as head:
            assert head.stdout is not None and head.stderr is not None
            first = head.stdout.readline()
            head.stdout.close()
            assert head.wait(timeout=TIMEOUT) == 141
            assert head.stderr.read() == b""  # no traceback, nothing at all
    assert first.decode() == whole.stdout.splitlines(keepends=True)[0]


def test_ctrl_c_while_info_waits_for_an_answer(tmp_path: Path) -> None:
    write_config(tmp_path / "config.json")  # nobody runs: --info waits 2 s for an answer
    with subprocess.Popen(
        [sys.executable, "-m", "trio_gossip", "A", "--info", "--log-level", "DEBUG"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        assert process.stdout is not None and process.stderr is not None
        asking = process.stderr.readline()  # main() runs: Ctrl-C is ours to catch
        assert "DEBUG asking peer A at 127.0.0.1:" in asking
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=TIMEOUT) == 130
        assert process.stderr.read() == "trio-gossip: interrupted\n"
        assert process.stdout.read() == ""
