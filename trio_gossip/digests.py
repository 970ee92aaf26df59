"""What a digest carries: choosing lines to fit one datagram. Pure.

A digest is always one datagram, whatever the size of the cluster, so a peer
sends a small, bounded number of datagrams per round. Lines that matter now
come first -- our own, what the receiver is missing, fresh news -- and the
rest of the datagram is filled with a random sample of everything else held,
so over a few rounds every line reaches every peer (anti-entropy). Cassandra
sends every endpoint's digest each round (over TCP); memberlist fills bounded
UDP packets with its least-sent broadcasts first: this is the UDP-bounded
middle ground.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence

from .state import Entry, Line

__all__ = ["ENVELOPE", "ahead_of", "line_size", "select"]

#: An upper bound on a digest's bytes besides its lines (a 64-character
#: sender, the keys, the brackets).
ENVELOPE = 128
#: The fewest bytes a line can take: a one-character origin, one-digit counters.
MIN_LINE = 1 + 3 + 8 + 4 + 1


def line_size(line: Line) -> int:
    """Encoded size of one line, ``["origin",g,v,h,false]``, with its comma."""
    numbers = len(str(line.generation)) + len(str(line.version)) + len(str(line.heartbeat))
    return len(line.origin) + numbers + 8 + (4 if line.reaped else 5) + 1


def select(
    first: Iterable[Line],
    rest: Sequence[str],
    view: Mapping[str, Entry],
    rng: random.Random,
    max_datagram: int,
) -> tuple[Line, ...]:
    """Lines for one digest of at most ``max_datagram`` bytes: ``first`` in
    order, as many as fit, then lines of the origins ``rest`` (held in
    ``view``) in random order. An origin appears once."""
    chosen: dict[str, Line] = {}
    budget = max_datagram - ENVELOPE

    def take(line: Line) -> bool:
        nonlocal budget
        if line.origin in chosen:
            return True
        size = line_size(line)
        if size > budget:
            return False
        chosen[line.origin] = line
        budget -= size
        return True

    for line in first:
        if not take(line):
            break
    # A line takes at least MIN_LINE bytes: sample no more origins than could
    # fit, so a round costs what one datagram holds, not what the cluster holds.
    count = min(len(rest), max(0, budget) // MIN_LINE + 1)
    for origin in rng.sample(rest, count):
        if not take(Line.of(origin, view[origin])):
            break
    return tuple(chosen.values())


def ahead_of(view: Mapping[str, Entry], lines: Iterable[Line]) -> list[Line]:
    """Our lines for the origins where ``lines`` are behind what we hold: the
    sender lacks those versions (or tombstones) and will want them."""
    ours = []
    for line in lines:
        held = view.get(line.origin)
        if held is not None and held.key > line.key:
            ours.append(Line.of(line.origin, held))
    return ours
