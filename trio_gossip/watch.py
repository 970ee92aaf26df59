"""``--watch``: follow a running peer's events as they happen, from anywhere.

The client registers with a ``watch?`` (sealed with the cluster's key when
there is one), renews it every third of :data:`.watchers.WATCH_TTL`, and
hands each ``event`` note to its caller. A gap in the notes' ``seq`` is notes
lost (UDP, or the peer's rate): the caller is told how many.
"""

from __future__ import annotations

import random
import socket
from collections.abc import Callable
from typing import Any, NoReturn

import trio

from .codec import BadDatagram, decode_untrusted, encode
from .events import Event
from .keyring import Keyring
from .limits import MAX_DATAGRAM
from .messages import EventNote, WatchRequest
from .transport import Address
from .watchers import WATCH_TTL

__all__ = ["NotWatching", "note_event", "note_json", "watch"]

#: Seconds to wait for the peer to say it registered us.
FIRST_ANSWER = 2.0


class NotWatching(Exception):
    """The peer did not answer the ``watch?`` (not running, wrong key, or full)."""


def note_event(note: EventNote) -> Event:
    """The event a note tells of (its time unknown: 0)."""
    kind: Any = note.kind  # one of the kinds the decoder checked
    names = (note.added, note.removed, note.changed)
    return Event(kind, note.origin, 0.0, note.generation, note.version, *names)


def note_json(note: EventNote, lost: int = 0) -> dict[str, Any]:
    """A note as the JSON object ``--watch --json`` prints (see docs/configuration.md)."""
    out = note_event(note).as_json()
    if "added" in out:
        out["more"] = note.more
    if lost:
        out["lost"] = lost
    return out


async def watch(
    address: Address,
    on_note: Callable[[EventNote, int], None],
    *,
    keyring: Keyring | None = None,
    first_answer: float = FIRST_ANSWER,
) -> NoReturn:
    """Watch the peer at ``address`` until cancelled: ``on_note(note, lost)``
    for each event, ``lost`` counting the notes missed just before it.

    Raises :class:`NotWatching` if the peer does not answer within
    ``first_answer`` seconds.
    """
    keys = keyring if keyring is not None else Keyring()
    family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
    nonce = random.getrandbits(63)
    request = keys.seal(encode(WatchRequest(nonce)))
    with trio.socket.socket(family, socket.SOCK_DGRAM) as sock:
        await sock.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", 0))

        async def renew(*, task_status: trio.TaskStatus[None]) -> NoReturn:
            task_status.started()
            while True:
                await sock.sendto(request, address)
                await trio.sleep(WATCH_TTL / 3)

        async with trio.open_nursery() as nursery:
            await nursery.start(renew)
            last = 0
            with trio.move_on_after(first_answer) as waiting:
                while True:
                    note = await _next_note(sock, address, keys, nonce)
                    if note.kind == "watching":
                        last = note.seq
                        break
            if waiting.cancelled_caught:
                nursery.cancel_scope.cancel()  # raised below, outside the nursery
            while not waiting.cancelled_caught:
                note = await _next_note(sock, address, keys, nonce)
                lost = max(0, note.seq - last - 1)
                last = max(last, note.seq)
                if note.kind != "watching":  # a renewal's answer
                    on_note(note, lost)
    raise NotWatching(f"no answer from {address[0]}:{address[1]} in {first_answer:g} s")


async def _next_note(
    sock: trio.socket.SocketType, address: Address, keys: Keyring, nonce: int
) -> EventNote:
    """The next note for us from the peer; anything else is passed over."""
    while True:
        try:
            data, source = await sock.recvfrom(MAX_DATAGRAM + 1)
        except ConnectionRefusedError:
            continue  # the ICMP answer to a watch?: nobody listens (yet)
        if (source[0], source[1]) != address:
            continue
        try:
            message = decode_untrusted(keys.open_untrusted(data))
        except BadDatagram:
            continue
        if isinstance(message, EventNote) and message.nonce == nonce:
            return message
