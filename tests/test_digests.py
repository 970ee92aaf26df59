"""What a digest carries: one datagram, priorities first, then a fair sample."""

from __future__ import annotations

import json
import random

from hypothesis import given
from hypothesis import strategies as st

from trio_gossip.digests import ENVELOPE, MIN_LINE, ahead_of, line_size, select
from trio_gossip.state import Entry, Line
from trio_gossip.wire import MAX_COUNTER, Digest, encode

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
    empty = encode(Digest("x" * 64, False, ()))
    assert len(empty) - len(b"[]") <= ENVELOPE
