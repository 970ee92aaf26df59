"""``--info``: ask a running peer for its view, and show it to a person.

The peer answers an ``info?`` request with a snapshot of its view, split into
``info`` parts; this client asks for the parts it is missing until it has
them all, so a large view arrives whole or not at all.
"""

from __future__ import annotations

import datetime
import json
import random
import socket
from typing import Any

import trio

from .codec import BadDatagram, decode_untrusted, encode
from .keyring import Keyring
from .limits import MAX_DATAGRAM
from .messages import Info, InfoRequest
from .transport import Address

__all__ = ["NoAnswer", "format_info", "query"]

NO_KEY = Keyring()

#: Seconds to wait for the first part, and between two asks for missing parts.
FIRST_ANSWER = 2.0
RETRY = 0.5
WINDOW = 16


class NoAnswer(Exception):
    """The peer did not answer."""


async def query(
    address: Address, *, keyring: Keyring = NO_KEY, first_answer: float = FIRST_ANSWER
) -> dict[str, Any]:
    """The snapshot of the peer at ``address``: a JSON object. With the
    cluster's ``keyring`` when it has one: a keyed peer answers nothing else.

    Raises :class:`NoAnswer` when no part arrives within ``first_answer``
    seconds, or when the parts stop coming for as long.
    """
    family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
    nonce = random.getrandbits(63)
    parts: dict[int, str] = {}
    count: int | None = None
    with trio.socket.socket(family, socket.SOCK_DGRAM) as sock:
        await sock.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", 0))

        async def ask() -> None:
            missing = () if count is None else [i for i in range(count) if i not in parts][:WINDOW]
            request = keyring.seal(encode(InfoRequest(nonce, tuple(missing))))
            await sock.sendto(request, address)

        last_progress = trio.current_time()
        while count is None or len(parts) < count:
            await ask()
            with trio.move_on_after(RETRY):
                while count is None or len(parts) < count:
                    data, source = await _receive(sock)
                    if (source[0], source[1]) != address:
                        continue  # only the peer asked answers
                    try:
                        message = decode_untrusted(keyring.open_untrusted(data))
                    except BadDatagram:
                        continue
                    if not isinstance(message, Info) or message.nonce != nonce:
                        continue
                    if count is not None and message.count != count:
                        continue
                    count = message.count
                    if message.index not in parts:
                        parts[message.index] = message.data
                        last_progress = trio.current_time()
            incomplete = count is None or len(parts) < count
            if incomplete and trio.current_time() - last_progress >= first_answer:
                raise NoAnswer(
                    f"nothing came from {address[0]}:{address[1]} for {first_answer:g} s"
                )
    text = "".join(parts[i] for i in range(count))
    try:
        snapshot: dict[str, Any] = json.loads(text)
    except ValueError:
        raise NoAnswer(f"the answer from {address[0]}:{address[1]} is not JSON") from None
    return snapshot


async def _receive(sock: trio.socket.SocketType) -> tuple[bytes, Any]:
    while True:
        try:
            return await sock.recvfrom(MAX_DATAGRAM + 1)
        except ConnectionRefusedError:
            continue  # the ICMP answer to an ask: nobody listens (yet)


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"


def _ago(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    if seconds < 1:
        return "just now"
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"


def format_info(snapshot: dict[str, Any]) -> str:
    """The snapshot as text for a person."""
    origins = snapshot["origins"]
    lines = [f"peer {snapshot['peer']} at {snapshot['address']}, folder {snapshot['folder']}"]
    lines.append(f"{len(origins)} origin(s) known")
    for name, o in origins.items():
        me = " (this peer)" if name == snapshot["peer"] else ""
        lines.append("")
        lines.append(
            f"{name}{me}: version {o['version']}, changed {_ago(o['changed_ago'])}, "
            f"heard {_ago(o['heard_ago'])}, {o['file_count']} file(s)"
        )
        for f in o["files"]:
            when = datetime.datetime.fromtimestamp(f["mtime_ns"] / 1e9).strftime(
                "%Y-%m-%d %H:%M:%S"
            )
            lines.append(f"  {f['name']}  {_size(f['size'])}  {when}")
    if snapshot.get("reaped"):
        lines.append("")
        reaped = ", ".join(
            f"{n} (version {r['version']}, {_ago(r['reaped_ago'])})"
            for n, r in snapshot["reaped"].items()
        )
        lines.append(f"reaped: {reaped}")
    s = snapshot.get("statistics")
    if s:
        rejected = ", ".join(f"{k} {v}" for k, v in sorted(s["rejected"].items())) or "none"
        lines.append("")
        lines.append(
            f"datagrams in {s['datagrams_in']} ({_size(s['bytes_in'])}), "
            f"out {s['datagrams_out']} ({_size(s['bytes_out'])}); rejected: {rejected}; "
            f"accepted {s['accepted']}, reaped {s['reaped']}"
        )
    return "\n".join(lines)
