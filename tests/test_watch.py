"""The folder watcher and SIGHUP's rescan, over real files (real time, bounded)."""

from __future__ import annotations

import time
from pathlib import Path

import trio
from sim import make_config
from test_udp import until

from trio_gossip import Intervals, MemoryNetwork, Peer

#: A scan interval no test waits for: only the watcher (or a rescan asked for) can be fast.
SLOW_SCAN = Intervals(scan=600.0, push=1.0, relay=1.0, reap=60.0)


async def test_a_write_is_seen_at_once_without_a_periodic_scan(tmp_path: Path) -> None:
    config = make_config("AB", SLOW_SCAN)
    peer = Peer("A", config, network=MemoryNetwork(), folder=tmp_path)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(peer.run)
            assert peer.node.own.version == 1
            await trio.sleep(0.2)  # the watcher is set up in its own task
            began = time.monotonic()
            (tmp_path / "new.txt").write_text("hello")
            await until(lambda: peer.node.own.version == 2)
            seen = time.monotonic() - began
            assert {f.name for f in peer.node.own.files} == {"new.txt"}
            # A burst of writes is one version, or a few: not one per write.
            for i in range(50):
                (tmp_path / f"burst-{i}.txt").write_text("x")
            await until(lambda: len(peer.node.own.files) == 51)
            assert peer.node.own.version <= 5
            nursery.cancel_scope.cancel()
    assert seen < 1.0, f"the watcher took {seen:.2f} s"


async def test_without_the_watcher_a_rescan_can_be_asked_for(tmp_path: Path) -> None:
    config = make_config("AB", SLOW_SCAN)
    peer = Peer("A", config, network=MemoryNetwork(), folder=tmp_path, watch=False)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(peer.run)
            (tmp_path / "new.txt").write_text("hello")
            await trio.sleep(0.3)
            assert peer.node.own.version == 1  # nobody looked
            peer.rescan_now()  # what SIGHUP does
            await until(lambda: peer.node.own.version == 2)
            nursery.cancel_scope.cancel()
