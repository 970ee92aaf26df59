"""What a digest carries: choosing lines to fit one datagram. Pure.

A digest is always one datagram, whatever the size of the cluster, so a peer
sends a small, bounded number of datagrams per round. Lines that matter now
come first -- our own, what the receiver is missing, fresh news -- then, in a
push, the lines of the origins we heard of least recently (:func:`stale_lines`
of them), then a small random sample of everything else held.

Nothing fills the datagram for its own sake: once the cluster has converged,
what must flow is each origin's heartbeat, often enough that no live origin
falls silent for ``suspect_after``. The stalest lines do that: they ask the
receiver, whose answer carries what it holds newer (push-pull), and every
origin comes round in them every :func:`refresh_rounds` rounds. Cassandra
sends every endpoint's digest each round (over TCP); memberlist fills bounded
UDP packets with its least-sent broadcasts first and exchanges full state
only now and then: this is the UDP-bounded middle ground.
"""

from __future__ import annotations

import base64
import binascii
import math
import random
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence

import attrs

from .state import Entry, Line

__all__ = [
    "CYCLES",
    "ENVELOPE",
    "RANDOM_LINES",
    "STALE_LINES",
    "Roster",
    "ahead_of",
    "line_size",
    "refresh_rounds",
    "select",
    "stale_lines",
]

#: An upper bound on a digest's bytes besides its lines and its summary (a
#: 64-character sender, the keys, the largest roster, the brackets and quotes).
ENVELOPE = 160
#: The fewest bytes a line can take: a one-character origin, one-digit counters.
MIN_LINE = 1 + 3 + 8 + 4 + 1
#: The fewest origins a push asks about with its stalest lines (all of them
#: in a smaller cluster): cheap, and quick to notice a silent origin.
STALE_LINES = 32
#: How many times every origin comes round in a peer's stalest lines before it
#: may be suspect. A simulation of the exchange (each peer asking about its
#: stalest origins, each answer carrying what is newer) found the longest
#: silence of a live origin at 2 to 3.5 refresh periods over a million pairs.
CYCLES = 6
#: Lines of a random sample after the lines that matter: a little mixing.
RANDOM_LINES = 8


def stale_lines(peers: int, push: float, reap: float) -> int:
    """How many of its least recently heard origins a push carries, in a
    cluster of ``peers``: :data:`STALE_LINES`, or more where every origin must
    come round :data:`CYCLES` times within ``reap / 2`` (its latest suspicion)."""
    rounds = reap / 2 / push
    others = peers - 1
    return max(1, min(others, STALE_LINES), math.ceil(CYCLES * others / rounds))


def refresh_rounds(peers: int, stale: int) -> int:
    """Push rounds in which every other origin comes round in ``stale`` lines."""
    return max(1, math.ceil((peers - 1) / stale))


@attrs.frozen
class Roster:
    """The cluster's peer names in one order every peer agrees on, for a
    summary of which origins a peer holds: one bit per peer.

    A digest's lines are a sample of what its sender holds; the summary is all
    of it, in an eighth of a byte per peer. The peer answering a push reads it
    and lists the origins the pusher lacks altogether, first -- so a new peer
    fills its view in a few exchanges instead of waiting for each origin to
    turn up in a random sample (a coupon collector's wait: ln N times longer).
    Cassandra's SYN carries every endpoint's digest for the same reason.

    ``fingerprint`` is the CRC-32 of the names, sorted, joined by newlines,
    as UTF-8: a summary made against another list of peers is ignored.
    """

    names: tuple[str, ...]
    fingerprint: int
    _index: Mapping[str, int]

    @classmethod
    def of(cls, names: Iterable[str]) -> Roster:
        ordered = tuple(sorted(set(names)))
        index = {name: i for i, name in enumerate(ordered)}
        return cls(ordered, zlib.crc32("\n".join(ordered).encode()), index)

    @property
    def _bytes(self) -> int:
        """Bytes of a summary before base64: one bit per peer."""
        return (len(self.names) + 7) // 8

    @property
    def size(self) -> int:
        """Bytes of a summary as it travels (base64 of one bit per peer)."""
        return 4 * ((self._bytes + 2) // 3)

    def bits(self, origins: Iterable[str]) -> int:
        """Bit ``i`` set for each origin that is the ``i``-th name."""
        out = 0
        for origin in origins:
            out |= 1 << self._index[origin]
        return out

    def summary(self, bits: int) -> str:
        """``bits`` as they travel: base64 of ``ceil(N / 8)`` bytes, name ``i``
        being bit ``i % 8`` (least significant first) of byte ``i // 8``."""
        raw = bits.to_bytes(self._bytes, "little")
        return base64.b64encode(raw).decode("ascii")

    def read(self, fingerprint: int, summary: str) -> int | None:
        """The bits of a summary made against this roster; ``None`` for any other."""
        if fingerprint != self.fingerprint:
            return None
        try:
            raw = base64.b64decode(summary, validate=True)
        except (binascii.Error, ValueError):
            return None
        if len(raw) != self._bytes:
            return None
        return int.from_bytes(raw, "little") & ((1 << len(self.names)) - 1)

    def names_of(self, bits: int) -> list[str]:
        """The names whose bits are set, in roster order."""
        out = []
        while bits:
            low = bits & -bits
            out.append(self.names[low.bit_length() - 1])
            bits ^= low
        return out


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
    *,
    most: int | None = None,
    line_of: Callable[[str], Line] | None = None,
) -> tuple[Line, ...]:
    """Lines for one digest of at most ``max_datagram`` bytes: ``first`` in
    order, as many as fit, then lines of at most ``most`` origins of ``rest``
    (held in ``view``; ``line_of`` makes their lines, if given) in random
    order. An origin appears once."""
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
    if most is not None:
        count = min(count, most)
    make = line_of if line_of is not None else (lambda origin: Line.of(origin, view[origin]))
    for origin in rng.sample(rest, count):
        if not take(make(origin)):
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
