"""``--watch``, ``--on-change`` and ``--log-format json`` over real processes (bounded)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from test_cli import TIMEOUT, Running, poll, running, write_config

pytestmark = pytest.mark.slow


def _lines(path: Path) -> list[dict[str, Any]]:
    text = path.read_text() if path.exists() else ""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_watch_json_prints_one_object_per_event_and_ctrl_c_ends_it(tmp_path: Path) -> None:
    write_config(tmp_path / "config.json", names="AB")
    with running((["A"], "A"), (["B"], "B"), cwd=tmp_path, logs=tmp_path):
        out = tmp_path / "watch.jsonl"
        with out.open("w") as sink:
            watcher = subprocess.Popen(
                [sys.executable, "-m", "trio_gossip", "A", "--watch", "--json"],
                cwd=tmp_path,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.PIPE,
            )
            try:
                # Registered once it is up; a file written at B until A's watcher tells of it.
                deadline = time.monotonic() + TIMEOUT
                i = 0
                while not any(n["event"] == "changed" for n in _lines(out)):
                    assert time.monotonic() < deadline, "no event within the timeout"
                    (tmp_path / "folders" / "B" / f"new-{i}.txt").write_text("x")
                    i += 1
                    time.sleep(0.5)
                watcher.send_signal(signal.SIGINT)
                status = watcher.wait(timeout=5)
            finally:
                if watcher.poll() is None:
                    watcher.kill()
                    watcher.wait()
        assert status == 130
        assert watcher.stderr is not None
        with watcher.stderr:
            assert watcher.stderr.read().decode().strip() == "trio-gossip: interrupted"
        note = next(n for n in _lines(out) if n["event"] == "changed")
        assert note["origin"] == "B"
        assert note.keys() == {
            "event",
            "origin",
            "generation",
            "version",
            "added",
            "removed",
            "changed",
            "more",
        }
        assert note["added"] and all(name.startswith("new-") for name in note["added"])


def test_watch_of_a_peer_that_is_not_running_is_one_line_and_status_1(tmp_path: Path) -> None:
    write_config(tmp_path / "config.json", names="AB")
    result = subprocess.run(
        [sys.executable, "-m", "trio_gossip", "A", "--watch"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("trio-gossip: peer A is not answering:")
    assert len(result.stderr.splitlines()) == 1


def test_on_change_runs_a_command_per_event_and_the_log_can_be_json(tmp_path: Path) -> None:
    write_config(tmp_path / "config.json", names="AB")
    events = tmp_path / "events.jsonl"
    hook = f"cat >> {events}"
    args = ["A", "--on-change", hook, "--log-format", "json"]
    with running((args, "A"), (["B"], "B"), cwd=tmp_path, logs=tmp_path) as (a, _b):
        # B joined at A first, so that the new file is a change, not part of a join.
        poll(
            lambda: any(e["event"] == "joined" and e["origin"] == "B" for e in _lines(events)),
            TIMEOUT,
        )
        (tmp_path / "folders" / "B" / "hello.txt").write_text("hello")
        poll(lambda: any(e["event"] == "changed" for e in _lines(events)), TIMEOUT)
        change = next(e for e in _lines(events) if e["event"] == "changed")
        assert (change["peer"], change["origin"], change["added"]) == ("A", "B", ["hello.txt"])
        stopped(a)
    log = [json.loads(line) for line in a.log().splitlines()]
    assert all(line.keys() >= {"time", "level", "message"} for line in log)
    logged = [line for line in log if line.get("event") == "changed" and line["origin"] == "B"]
    assert logged and logged[0]["added"] == ["hello.txt"] and logged[0]["peer"] == "A"


def stopped(process: Running) -> None:
    assert process.stop(signal.SIGTERM) == 0, process.log()
