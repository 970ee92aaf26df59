"""``--watch``'s client against real peers over loopback (real time, bounded)."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import attrs
import pytest
import trio
from test_api import loopback

from trio_gossip import Keyring, generate_key, open_peer
from trio_gossip.messages import EventNote
from trio_gossip.watch import NotWatching, note_json, watch


async def test_a_watcher_sees_another_peers_change_with_its_files(tmp_path: Path) -> None:
    config = loopback(tmp_path, "AB", scan=600.0)
    notes: list[tuple[EventNote, int]] = []
    seen = trio.Event()

    def on_note(note: EventNote, lost: int) -> None:
        notes.append((note, lost))
        if note.kind == "changed" and note.origin == "B":
            seen.set()

    with trio.fail_after(20):
        async with (
            open_peer(config, "A") as a,
            open_peer(config, "B"),
            trio.open_nursery() as nursery,
        ):
            nursery.start_soon(partial(watch, a.address, on_note))
            await trio.sleep(0.5)  # registered (and the watchers are set up)
            (tmp_path / "B" / "news.txt").write_text("hello")
            await seen.wait()
            nursery.cancel_scope.cancel()
    note, lost = next((n, lost) for n, lost in notes if n.kind == "changed")
    assert (note.origin, note.added, note.removed, note.changed) == ("B", ("news.txt",), (), ())
    assert lost == 0
    assert note_json(note) == {
        "event": "changed",
        "origin": "B",
        "generation": note.generation,
        "version": note.version,
        "added": ["news.txt"],
        "removed": [],
        "changed": [],
        "more": 0,
    }


async def test_a_watcher_without_the_key_gets_nothing(tmp_path: Path) -> None:
    config = attrs.evolve(loopback(tmp_path, "AB"), keyring=Keyring.from_texts([generate_key()]))
    with trio.fail_after(10):
        async with open_peer(config, "A") as a:
            with pytest.raises(NotWatching):
                await watch(a.address, lambda note, lost: None, first_answer=0.5)
            # With the key, the peer answers.
            with trio.move_on_after(1.0) as scope:
                await watch(a.address, lambda note, lost: None, keyring=config.keyring)
            assert scope.cancelled_caught  # it watched on until told to stop
