"""Where the web page is served: ``http`` in the config and ``--http``, read strictly."""

from __future__ import annotations

import base64
import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from ports import free_udp_ports

from trio_gossip.config import ConfigError, parse_config, parse_http

KEY = base64.b64encode(bytes(range(32))).decode()


def config(**extra: Any) -> dict[str, Any]:
    return {
        "peers": {
            "A": {"host": "127.0.0.1", "port": 9101},
            "B": {"host": "127.0.0.1", "port": 9102},
        },
        **extra,
    }


@pytest.mark.parametrize(
    ("value", "address"),
    [
        (8080, ("127.0.0.1", 8080)),
        ("8080", ("127.0.0.1", 8080)),
        (0, ("127.0.0.1", 0)),
        ("localhost:80", ("localhost", 80)),
        ("0.0.0.0:8080", ("0.0.0.0", 8080)),
        ("[::1]:8080", ("::1", 8080)),
        ("[::]:1", ("::", 1)),
    ],
)
def test_where_the_page_is_served(value: Any, address: tuple[str, int]) -> None:
    assert parse_http(value) == address
    assert parse_config(json.dumps(config(http=value))).http == address


def test_no_page_by_default() -> None:
    parsed = parse_config(json.dumps(config()))
    assert (parsed.http, parsed.http_public) == (None, False)
    assert parse_config(json.dumps(config(http=None))).http is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("x", 'http: expected a port or "HOST:PORT", got "x"'),
        ("host:", 'http: expected a port or "HOST:PORT", got "host:"'),
        (":8080", 'http: expected a port or "HOST:PORT", got ":8080"'),
        ("::1:8080", 'got "::1:8080": write [::1]:8080'),
        (True, 'http: expected a port or "HOST:PORT", got true'),
        (8080.0, 'http: expected a port or "HOST:PORT", got 8080.0'),
        ("٨٠", 'http: expected a port or "HOST:PORT"'),
        (65536, "http: expected a port from 0 to 65535, got 65536"),
        (-1, "http: expected a port from 0 to 65535, got -1"),
    ],
)
def test_a_bad_http_is_one_line(value: Any, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(json.dumps(config(http=value)))
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_http_public_is_true_or_false() -> None:
    with pytest.raises(ConfigError, match="http_public: expected true or false, got 1"):
        parse_config(json.dumps(config(http_public=1)))


def test_with_a_key_the_page_stays_on_loopback_unless_the_config_says_so() -> None:
    for host in ("127.0.0.1", "127.8.9.10", "localhost", "[::1]"):
        parse_config(json.dumps(config(keys=[KEY], http=f"{host}:8080")))
    for host in ("0.0.0.0", "192.0.2.7", "[::]", "gossip.example"):
        with pytest.raises(ConfigError, match=r"http: .* is not a loopback address.*http_public"):
            parse_config(json.dumps(config(keys=[KEY], http=f"{host}:8080")))
    public = parse_config(json.dumps(config(keys=[KEY], http="0.0.0.0:8080", http_public=True)))
    assert (public.http, public.http_public) == (("0.0.0.0", 8080), True)
    # Without a key there is nothing the page would give away that the traffic does not.
    assert parse_config(json.dumps(config(http="0.0.0.0:8080"))).http == ("0.0.0.0", 8080)


def run(tmp_path: Path, raw: dict[str, Any], *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "config.json").write_text(json.dumps(raw))
    return subprocess.run(
        [sys.executable, "-m", "trio_gossip", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("raw", "args", "message"),
    [
        (config(), ("A", "--http", "x"), 'trio-gossip: --http: expected a port or "HOST:PORT"'),
        (
            config(keys=[KEY]),
            ("A", "--http", "0.0.0.0:8080"),
            "trio-gossip: --http: 0.0.0.0 is not a loopback address",
        ),
        (config(), ("A", "--info", "--http", "8080"), "--http goes with running peers"),
        (config(), ("--keygen", "--http", "8080"), "--keygen goes alone"),
    ],
)
def test_a_bad_http_option_is_one_line_and_status_2(
    tmp_path: Path, raw: dict[str, Any], args: tuple[str, ...], message: str
) -> None:
    result = run(tmp_path, raw, *args)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_a_peer_process_serves_its_page_and_stops_with_it(tmp_path: Path) -> None:
    udp = free_udp_ports(2)
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    port = listening.getsockname()[1]
    listening.close()
    raw = {
        "peers": {
            n: {"host": "127.0.0.1", "port": p, "folder": n} for n, p in zip("AB", udp, strict=True)
        },
        "keys": [KEY],
        "http": port,  # on loopback: fine with a key
    }
    (tmp_path / "config.json").write_text(json.dumps(raw))
    process = subprocess.Popen(
        [sys.executable, "-m", "trio_gossip", "A"],
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/api/peers", timeout=5)
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline, "the page never came up"
                assert process.poll() is None, process.communicate()[1]
                time.sleep(0.1)
        assert [p["name"] for p in answer.json()] == ["A", "B"]
        assert answer.json()[1]["status"] == "unknown"  # B was never started
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=20)
    finally:
        process.kill()
    assert process.returncode == 0
    assert f"A: the web page is at http://127.0.0.1:{port}/" in stderr
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/api/peers", timeout=5)
