"""Signals to real peer processes: SIGHUP rescans, SIGTERM leaves the cluster."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from test_cli import TIMEOUT, assert_stopped_cleanly, poll, run, running, write_config

pytestmark = pytest.mark.slow


def info(name: str, config: Path) -> dict[str, Any]:
    """Peer ``name``'s ``--info --json``."""
    result = run(name, "--info", "--json", "--config", str(config), cwd=config.parent)
    assert result.returncode == 0, result.stderr
    snapshot: dict[str, Any] = json.loads(result.stdout)
    return snapshot


def test_sighup_rescans_at_once_and_the_peer_runs_on(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    settings = write_config(config, names="AB")
    # No watcher and a scan an hour apart: only SIGHUP can make A see a new file.
    settings["watch"] = False
    settings["intervals"]["scan"] = 3600
    config.write_text(json.dumps(settings))
    with running((["A"], "A"), cwd=tmp_path, logs=tmp_path) as (a,):
        (tmp_path / "folders" / "A" / "late.txt").write_text("late\n")
        time.sleep(1.0)  # ten push rounds: time enough for a scan that should not happen
        assert info("A", config)["origins"]["A"]["files"] == []

        a.process.send_signal(signal.SIGHUP)
        poll(lambda: "late.txt" in json.dumps(info("A", config)["origins"]["A"]), 5.0, 0.1)
        assert "SIGHUP received, rescanning" in a.log()
        assert a.process.poll() is None  # still running
        assert info("A", config)["origins"]["A"]["version"] == 2
        assert_stopped_cleanly(a, signal.SIGTERM)


def test_sigterm_leaves_and_the_others_show_it_left_at_once(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    write_config(config, names="ABC")  # push every 0.1 s, reap after 30 s
    processes = [([name], name) for name in "ABC"]
    with running(*processes, cwd=tmp_path, logs=tmp_path) as (a, b, c):

        def everyone_knows_everyone() -> bool:
            return all(set(info(n, config)["origins"]) == set("ABC") for n in "AC")

        poll(everyone_knows_everyone, TIMEOUT, step=0.2)
        began = time.monotonic()
        assert_stopped_cleanly(b, signal.SIGTERM)  # exit status 0
        assert "B: left the cluster (told 2 peers)" in b.log()

        def both_show_b_left() -> bool:
            shown = [info(n, config) for n in "AC"]
            return all(s["reaped"].get("B", {}).get("status") == "left" for s in shown)

        # Two others, both told at once: at once (far from reap); each look is
        # an --info process, which takes most of the time asking.
        poll(both_show_b_left, 5.0, step=0.05)
        assert time.monotonic() - began < 5.0
        for name in "AC":
            assert "B" not in info(name, config)["origins"]
        assert_stopped_cleanly(a, signal.SIGTERM)
        assert_stopped_cleanly(c, signal.SIGTERM)
