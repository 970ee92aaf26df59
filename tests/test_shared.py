"""Entries held once by the peers of one process, and names read once."""

from __future__ import annotations

import gc
import random

from hypothesis import given
from hypothesis import strategies as st

from trio_gossip.codec import decode_untrusted, encode
from trio_gossip.config import Config, Intervals, PeerConfig
from trio_gossip.messages import Digest, Part
from trio_gossip.node import Node
from trio_gossip.shared import SharedEntries
from trio_gossip.state import Entry, FileMeta, Line

FILES = (FileMeta("a.txt", 1, 2, 1), FileMeta("b.txt", 3, 4, 1))


def copy(entry: Entry, **changes: object) -> Entry:
    """An equal entry that shares no object with ``entry`` (as if decoded afresh)."""
    fields = {
        "generation": entry.generation,
        "version": entry.version,
        "heartbeat": entry.heartbeat,
        "floor": entry.floor,
        "files": tuple(FileMeta(f.name, f.size, f.mtime_ns, f.seq, f.deleted) for f in entry.files),
        "reaped": entry.reaped,
    }
    fields.update(changes)
    return Entry(**fields)  # type: ignore[arg-type]


def test_an_equal_entry_is_the_one_held_already() -> None:
    shared = SharedEntries()
    first = shared.get("p", Entry(7, 2, 5, 0, FILES))
    again = shared.get("p", copy(first))
    assert again is first


def test_another_heartbeat_of_a_version_shares_its_files() -> None:
    shared = SharedEntries()
    first = shared.get("p", Entry(7, 2, 5, 0, FILES))
    later = shared.get("p", copy(first, heartbeat=6))
    assert later is not first
    assert later == copy(first, heartbeat=6)
    assert later.files is first.files


def test_the_same_key_of_another_origin_is_not_shared() -> None:
    shared = SharedEntries()
    first = shared.get("p", Entry(7, 2, 5, 0, FILES))
    other = shared.get("q", copy(first))
    assert other is not first
    assert other.files is not first.files


def test_other_files_under_the_same_key_are_not_shared() -> None:
    # An origin that made one generation twice, or a forger: each holder keeps
    # what it took, never the other list.
    shared = SharedEntries()
    first = shared.get("p", Entry(7, 2, 5, 0, FILES))
    other_files = (FileMeta("c.txt", 1, 2, 1),)
    other = shared.get("p", Entry(7, 2, 5, 0, other_files))
    assert other.files is other_files
    assert first.files is FILES
    # Another heartbeat of the second list takes the second list's files.
    assert shared.get("p", Entry(7, 2, 6, 0, (FileMeta("c.txt", 1, 2, 1),))).files is other_files


def test_an_entry_nobody_holds_is_forgotten_once_its_origin_moved_on() -> None:
    shared = SharedEntries()
    shared.get("p", Entry(7, 2, 5, 0, FILES))
    gc.collect()
    assert len(shared) == 1  # the last one of its origin is kept
    shared.get("p", Entry(7, 2, 6, 0, FILES))
    gc.collect()
    assert len(shared) == 1


def test_the_last_entry_of_an_origin_is_handed_out_again() -> None:
    shared = SharedEntries()
    first = shared.get("p", Entry(7, 2, 5, 0, FILES))
    assert shared.get("p", copy(first)) is first
    assert shared.get("p", copy(first, heartbeat=4)) is not first  # an older one
    assert shared.get("p", copy(first, floor=1)) != first


entries = st.builds(
    Entry,
    generation=st.integers(1, 3),
    version=st.integers(1, 3),
    heartbeat=st.integers(0, 3),
    floor=st.integers(0, 1),
    files=st.sampled_from([(), FILES, FILES[:1]]),
    reaped=st.booleans(),
)


@given(st.lists(st.tuples(st.sampled_from("pq"), entries), max_size=30))
def test_what_is_held_is_always_equal_to_what_was_given(given_: list[tuple[str, Entry]]) -> None:
    shared = SharedEntries()
    held = []  # keeps every returned entry alive, as replicas would
    for origin, entry in given_:
        got = shared.get(origin, copy(entry))
        assert got == entry
        held.append(got)


def test_nodes_of_one_process_hold_each_entry_once() -> None:
    names = ["a", "b", "c"]
    config = Config(
        peers={n: PeerConfig("127.0.0.1", 7000 + i) for i, n in enumerate(names)},
        intervals=Intervals(scan=60.0, push=1.0, relay=1.0, reap=300.0),
    )
    shared = SharedEntries()
    nodes = {
        n: Node(n, config, rng=random.Random(n), wall_clock=lambda: 10**18, shared=shared)
        for n in names
    }
    for node in nodes.values():
        node.start({"x.txt": (1, 2)}, 0.0)
    by_address = {config.address(n): n for n in names}
    # Push rounds until every node holds every origin, delivering everything.
    for step in range(1, 40):
        for node in nodes.values():
            queue = [(node, send) for send in node.push(float(step))]
            while queue:
                source, send = queue.pop()
                target = nodes[by_address[send.address]]
                answers = target.receive_untrusted(send.data, source.address, float(step))
                queue += [(target, answer) for answer in answers]
        if all(len(node.replica) == 3 for node in nodes.values()):
            break
    assert all(len(node.replica) == 3 for node in nodes.values())
    held = [nodes[n].replica["a"] for n in ("b", "c")]
    assert held[0].files is held[1].files
    if held[0].key == held[1].key:
        assert held[0] is held[1]


def test_names_read_from_datagrams_are_one_object() -> None:
    part = Part(
        "sender-name", "origin-name", 1, 2, 0, 0, -1, 0, 1, 1, (FileMeta("file-name.txt", 1, 2, 1),)
    )
    digest = Digest("sender-name", True, (Line("origin-name", 1, 2, 3),), 0, "")
    one, two = decode_untrusted(encode(part)), decode_untrusted(encode(part))
    assert isinstance(one, Part) and isinstance(two, Part)
    assert one.origin is two.origin
    assert one.files[0].name is two.files[0].name
    three = decode_untrusted(encode(digest))
    assert isinstance(three, Digest)
    assert three.lines[0].origin is one.origin
    assert three.sender is one.sender
