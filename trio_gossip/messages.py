"""The messages peers send each other, as plain frozen data.

How they travel (JSON, tags, strict decoding) is :mod:`.codec`; the bounds
they keep are :mod:`.limits`; ``docs/protocol.md`` is the contract.
"""

from __future__ import annotations

import attrs

from .state import FileMeta, Line

__all__ = [
    "Digest",
    "EventNote",
    "Info",
    "InfoRequest",
    "Leave",
    "Message",
    "Part",
    "Want",
    "WatchRequest",
]


@attrs.frozen
class Digest:
    """The sender's summary: one line per origin it holds (or a selection).

    ``reply`` asks the receiver to answer with a digest of its own, which makes
    one push-pull exchange. ``held``, when not empty, summarises every origin
    the sender holds, one bit per peer of the roster whose fingerprint is
    ``roster`` (see :class:`.digests.Roster`).
    """

    sender: str
    reply: bool
    lines: tuple[Line, ...]
    roster: int = 0
    held: str = ""


@attrs.frozen
class Want:
    """Asks the receiver for ``origin``'s metadata at ``(generation, version)`` or newer.

    ``have_generation``/``have_version`` say what the asker holds (-1 for nothing),
    so the holder can send a delta. A non-empty ``parts`` continues a transfer:
    the holder sends exactly those parts of the transfer from ``base``.
    """

    sender: str
    origin: str
    generation: int
    version: int
    have_generation: int
    have_version: int
    base: int
    parts: tuple[int, ...]


@attrs.frozen
class Part:
    """One part of a transfer of ``origin``'s metadata at ``(generation, version)``.

    ``base`` is -1 for the whole list, else the version of the same generation
    the records apply to. ``total`` is the number of records in all ``count`` parts.
    """

    sender: str
    origin: str
    generation: int
    version: int
    heartbeat: int
    floor: int
    base: int
    index: int
    count: int
    total: int
    files: tuple[FileMeta, ...]


@attrs.frozen
class InfoRequest:
    """Asks a peer for parts of a snapshot of its view (``--info``)."""

    nonce: int
    parts: tuple[int, ...]


@attrs.frozen
class Info:
    """One part of a snapshot: ``data`` of all ``count`` parts joined is a JSON text."""

    sender: str
    nonce: int
    index: int
    count: int
    data: str


@attrs.frozen
class Leave:
    """``origin`` left the cluster at ``(generation, version, heartbeat)``.

    Sent by a stopping peer about itself (one heartbeat past its last), and
    passed on by those who hear it, like any news: every holder replaces the
    origin's entry with a tombstone at that key and shows the origin as left.
    """

    sender: str
    origin: str
    generation: int
    version: int
    heartbeat: int


@attrs.frozen
class WatchRequest:
    """Asks a peer to send its events to the sender's address for a while
    (``--watch``); sent again to stay registered."""

    nonce: int


@attrs.frozen
class EventNote:
    """One event of a peer, to a watcher: ``seq`` counts the notes sent to
    that watcher (a gap is notes lost); ``more`` counts the file names left
    out of ``added``, ``removed`` and ``changed`` to fit the datagram."""

    sender: str
    nonce: int
    seq: int
    kind: str
    origin: str
    generation: int
    version: int
    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[str, ...]
    more: int


Message = Digest | Want | Part | InfoRequest | Info | Leave | WatchRequest | EventNote
