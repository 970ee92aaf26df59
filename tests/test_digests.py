"""What a digest carries: one datagram, priorities first, then a fair sample."""

from __future__ import annotations

import base64
import json
import random
import zlib

from hypothesis import given
from hypothesis import strategies as st

from trio_gossip.codec import encode
from trio_gossip.digests import ENVELOPE, MIN_LINE, Roster, ahead_of, line_size, select
from trio_gossip.limits import MAX_COUNTER
from trio_gossip.messages import Digest
from trio_gossip.state import Entry, Line

names = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-", min_size=1, max_size=64)
counters = st.integers(0, MAX_COUNTER)
entries = st.builds(Entry, counters, counters, counters, reaped=st.booleans())
views = st.dictionaries(names, entries, max_size=400)


@given(names, counters, counters, counters, st.booleans())
def test_line_size_is_exact(origin: str, g: int, v: int, h: int, reaped: bool) -> None:
    line = Line(origin, g, v, h, reaped)
    encoded = json.dumps([origin, g, v, h, reaped], separators=(",", ":"))
    assert line_size(line) == len(encoded) + 1  # and its comma
    assert line_size(line) >= MIN_LINE


@given(views, st.integers(0, 2**32), st.sampled_from([1_200, 8_192, 65_507]))
def test_a_digest_always_fits_one_datagram(
    view: dict[str, Entry], seed: int, max_datagram: int
) -> None:
    origins = list(view)
    lines = select((), origins, view, random.Random(seed), max_datagram)
    assert len(encode(Digest("x" * 64, True, lines))) <= max_datagram
    assert len({line.origin for line in lines}) == len(lines)
    assert all(line == Line.of(line.origin, view[line.origin]) for line in lines)


@given(views, st.integers(0, 2**32))
def test_a_small_view_travels_whole(view: dict[str, Entry], seed: int) -> None:
    small = dict(list(view.items())[:50])
    lines = select((), list(small), small, random.Random(seed), 8_192)
    assert {line.origin for line in lines} == set(small)


def test_priorities_come_first_and_the_rest_is_a_fair_sample() -> None:
    view = {f"p{i:04d}": Entry(1, 1, i) for i in range(1_000)}
    first = [Line.of("p0999", view["p0999"]), Line.of("p0998", view["p0998"])]
    seen: dict[str, int] = {}
    rng = random.Random(7)
    for _ in range(200):
        lines = select(first, list(view), view, rng, 8_192)
        assert lines[:2] == tuple(first)
        assert 100 < len(lines) < 1_000  # bounded by the datagram, not the cluster
        for line in lines[2:]:
            seen[line.origin] = seen.get(line.origin, 0) + 1
    # Over 200 digests every other origin was sampled, none far more than others.
    assert len(seen) == 998
    assert max(seen.values()) < 3 * min(seen.values())


def test_ahead_of_names_what_the_sender_lacks() -> None:
    view = {"A": Entry(1, 2, 5), "B": Entry(1, 1, 1), "C": Entry(2, 1, 0, reaped=True)}
    incoming = [
        Line("A", 1, 1, 9),  # behind: an older version, whatever its heartbeat
        Line("B", 1, 1, 1),  # the same
        Line("C", 2, 1, 0),  # alive where we hold the tombstone at that key
        Line("D", 1, 1, 1),  # an origin we do not hold
    ]
    assert ahead_of(view, incoming) == [Line.of("A", view["A"]), Line.of("C", view["C"])]


def test_envelope_bounds_the_rest_of_a_digest() -> None:
    empty = encode(Digest("x" * 64, False, (), 2**32 - 1, ""))
    assert len(empty) - len(b"[]") <= ENVELOPE


@given(views, st.integers(0, 2**32), st.sampled_from([1_200, 8_192]))
def test_a_digest_with_a_summary_fits_one_datagram(
    view: dict[str, Entry], seed: int, max_datagram: int
) -> None:
    roster = Roster.of(view)
    summary = roster.summary(roster.bits(view))
    assert len(summary) == roster.size
    lines = select((), list(view), view, random.Random(seed), max_datagram - len(summary))
    digest = Digest("x" * 64, True, lines, roster.fingerprint, summary)
    assert len(encode(digest)) <= max_datagram


# -- the roster: one bit per peer ---------------------------------------------------

rosters = st.lists(names, min_size=1, max_size=300, unique=True)


@given(rosters, st.data())
def test_a_summary_reads_back_as_the_origins_it_was_made_of(
    peers: list[str], data: st.DataObject
) -> None:
    held = data.draw(st.sets(st.sampled_from(peers)))
    ours = Roster.of(peers)
    theirs = Roster.of(data.draw(st.permutations(peers)))  # their config lists them otherwise
    summary = theirs.summary(theirs.bits(held))
    assert theirs.fingerprint == ours.fingerprint
    bits = ours.read(theirs.fingerprint, summary)
    assert bits is not None
    assert set(ours.names_of(bits)) == held
    assert ours.names_of(bits) == sorted(held)


def test_the_summary_format_is_the_documented_one() -> None:
    roster = Roster.of(["b", "a", "é", "c", "d", "e", "f", "g", "h"])
    assert roster.names == ("a", "b", "c", "d", "e", "f", "g", "h", "é")
    assert roster.fingerprint == zlib.crc32("a\nb\nc\nd\ne\nf\ng\nh\né".encode())
    # a is bit 0 of byte 0, h bit 7 of byte 0, é bit 0 of byte 1.
    summary = roster.summary(roster.bits(["a", "c", "h", "é"]))
    assert base64.b64decode(summary) == bytes([0b1000_0101, 0b0000_0001])
    # The example of docs/protocol.md, section 9.6.
    abc = Roster.of("CBA")
    assert abc.fingerprint == 2854799246
    assert (abc.summary(abc.bits("ABC")), abc.summary(abc.bits("AB"))) == ("Bw==", "Aw==")


def test_a_summary_of_another_roster_or_shape_is_not_read() -> None:
    roster = Roster.of(["a", "b", "c"])
    good = roster.summary(0b101)
    assert roster.read(roster.fingerprint, good) == 0b101
    assert roster.read(roster.fingerprint ^ 1, good) is None
    assert roster.read(Roster.of(["a", "b", "d"]).fingerprint, good) is None
    assert roster.read(roster.fingerprint, base64.b64encode(b"\x05\x00").decode()) is None
    assert roster.read(roster.fingerprint, "") is None
    assert roster.read(roster.fingerprint, "!!!!") is None
    # Bits past the last peer are padding: ignored.
    assert roster.read(roster.fingerprint, base64.b64encode(b"\xfd").decode()) == 0b101


# -- writing a digest: the fast path, byte for byte --------------------------------

any_names = st.text(min_size=1, max_size=70)
any_lines = st.builds(Line, any_names, counters, counters, counters, st.booleans())
any_digests = st.builds(
    Digest,
    any_names,
    st.booleans(),
    st.lists(any_lines, max_size=20).map(tuple),
    st.integers(0, 2**32 - 1),
    st.text(max_size=40),
)


@given(any_digests)
def test_a_digest_is_written_as_the_converter_writes_it(digest: Digest) -> None:
    from trio_gossip.codec import _encode_any  # the generic path, the reference

    assert encode(digest) == _encode_any(digest)
