"""Real peers over real loopback UDP, with real folders and real time.

Short intervals keep these quick; each test has an absolute ``fail_after``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
import trio
from ports import free_udp_ports

from trio_gossip import (
    Config,
    Intervals,
    NoAnswer,
    Peer,
    PeerConfig,
    UdpNetwork,
    query,
    scan_folder,
)
from trio_gossip.info import FIRST_PARTS
from trio_gossip.state import live_files

pytestmark = pytest.mark.slow

NAMES = "ABC"


def write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def cluster(tmp_path: Path) -> Config:
    ports = free_udp_ports(len(NAMES))
    peers = {
        name: PeerConfig("127.0.0.1", port, str(tmp_path / name))
        for name, port in zip(NAMES, ports, strict=True)
    }
    return Config(peers=peers, intervals=Intervals(scan=0.1, push=0.05, relay=0.05, reap=30.0))


def shown(peer: Peer, origin: str) -> dict[str, tuple[int, int]] | None:
    entry = peer.view().get(origin)
    if entry is None:
        return None
    return {f.name: (f.size, f.mtime_ns) for f in live_files(entry)}


async def until(predicate: Callable[[], bool], step: float = 0.02) -> None:
    """Poll ``predicate`` in real time (the caller's ``fail_after`` bounds it)."""
    while True:
        if predicate():
            return
        await trio.sleep(step)


async def test_three_peers_converge_over_loopback_and_answer_info(tmp_path: Path) -> None:
    config = cluster(tmp_path)
    write(tmp_path / "A" / "a.txt", b"alpha")
    # Enough files, with long names, that B's list and any snapshot take many datagrams.
    for i in range(1_000):
        write(tmp_path / "B" / f"deep/{i % 10}/a-rather-long-file-name-number-{i:04}.dat", b"b" * i)
    (tmp_path / "C").mkdir()

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            peers = {
                name: Peer(name, config, network=UdpNetwork(), folder=tmp_path / name)
                for name in NAMES
            }
            for peer in peers.values():
                assert await nursery.start(peer.run) == config.address(peer.name)

            def everyone_shows(origin: str) -> bool:
                folder = scan_folder(tmp_path / origin).files
                return all(shown(peer, origin) == folder for peer in peers.values())

            await until(lambda: all(everyone_shows(origin) for origin in NAMES))
            assert len(shown(peers["C"], "B") or {}) == 1_000

            # A new file on A: the next scan sees it, the others follow.
            write(tmp_path / "A" / "sub" / "new.bin", os.urandom(1234))
            await until(lambda: everyone_shows("A"))
            assert "sub/new.bin" in (shown(peers["C"], "A") or {})

            snapshot = await query(config.address("C"))
            assert snapshot["peer"] == "C"
            assert set(snapshot["origins"]) == set(NAMES)
            files = {f["name"]: f for f in snapshot["origins"]["A"]["files"]}
            new = (tmp_path / "A" / "sub" / "new.bin").stat()
            assert files["sub/new.bin"] == {
                "name": "sub/new.bin",
                "size": 1234,
                "mtime_ns": new.st_mtime_ns,
            }
            assert snapshot["origins"]["B"]["file_count"] == 1_000
            assert len(snapshot["origins"]["B"]["files"]) == 1_000
            assert snapshot["statistics"]["datagrams_in"] > 0
            # More parts than the first answer holds: the query asked for the rest.
            size = len(json.dumps(snapshot, separators=(",", ":")))
            assert size > FIRST_PARTS * config.max_datagram // 2
            nursery.cancel_scope.cancel()


async def test_query_of_a_port_without_a_peer_raises_no_answer() -> None:
    (port,) = free_udp_ports(1)
    with trio.fail_after(10):
        start = trio.current_time()
        with pytest.raises(NoAnswer):
            await query(("127.0.0.1", port), first_answer=0.3)
        assert trio.current_time() - start >= 0.3
