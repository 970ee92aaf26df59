"""A snapshot (``--info``) as text for a person.

Everything in a snapshot came over the network, and a file's name may hold
any character its filesystem allows: every string shown goes through
:func:`escape` first, so that no name can forge a line of the output or
send a control sequence to the terminal.
"""

from __future__ import annotations

import datetime
from typing import Any

__all__ = ["escape", "format_info", "format_matches", "format_summary"]

_NAMED = {"\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def escape(text: str) -> str:
    """``text`` with every character that is not printable written as an
    escape: ``\\n``, ``\\t``, ``\\r``, ``\\x1b``, ``\\u202e``, ``\\U000e0001``;
    and a backslash as ``\\\\``, so that the output reads back one way only.

    Printable means :meth:`str.isprintable`: letters, marks, numbers,
    punctuation, symbols and the ASCII space. Control characters (C0, DEL, C1),
    format characters (bidirectional overrides and marks, zero-width ones),
    separators other than the space, surrogates and unassigned code points
    are escaped.
    """
    if "\\" not in text and text.isprintable():
        return text  # the common case, at C speed
    return "".join(_escape_char(c) for c in text)


def _escape_char(c: str) -> str:
    named = _NAMED.get(c)
    if named is not None:
        return named
    if c.isprintable():
        return c
    code = ord(c)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if abs(value) < 1024 or unit == "GB":
            return f"{n} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


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


def _when(mtime_ns: int) -> str:
    """A modification time in the local time zone; as a number if no date holds it."""
    try:
        moment = datetime.datetime.fromtimestamp(mtime_ns / 1e9)
    except (OverflowError, OSError, ValueError):
        return f"mtime_ns {mtime_ns}"
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _file_line(f: dict[str, Any]) -> str:
    return f"  {escape(f['name'])}  {_size(f['size'])}  {_when(f['mtime_ns'])}"


def _origin_line(snapshot: dict[str, Any], name: str, o: dict[str, Any]) -> str:
    me = " (this peer)" if name == snapshot["peer"] else ""
    return (
        f"{escape(name)}{me}: version {o['version']}, changed {_ago(o['changed_ago'])}, "
        f"heard {_ago(o['heard_ago'])}, {o['file_count']} file(s)"
    )


def _head(snapshot: dict[str, Any]) -> list[str]:
    return [
        f"peer {escape(snapshot['peer'])} at {escape(snapshot['address'])}, "
        f"folder {escape(snapshot['folder'])}",
        f"{len(snapshot['origins'])} origin(s) known",
    ]


def _tail(snapshot: dict[str, Any]) -> list[str]:
    lines = []
    if snapshot.get("reaped"):
        reaped = ", ".join(
            f"{escape(n)} (version {r['version']}, {_ago(r['reaped_ago'])})"
            for n, r in snapshot["reaped"].items()
        )
        lines += ["", f"reaped: {reaped}"]
    s = snapshot.get("statistics")
    if s:
        rejected = ", ".join(f"{escape(k)} {v}" for k, v in sorted(s["rejected"].items())) or "none"
        lines += [
            "",
            f"datagrams in {s['datagrams_in']} ({_size(s['bytes_in'])}), "
            f"out {s['datagrams_out']} ({_size(s['bytes_out'])}); rejected: {rejected}; "
            f"accepted {s['accepted']}, reaped {s['reaped']}",
        ]
    return lines


def format_info(snapshot: dict[str, Any]) -> str:
    """The snapshot as text for a person: every origin and its files."""
    lines = _head(snapshot)
    for name, o in snapshot["origins"].items():
        lines += ["", _origin_line(snapshot, name, o)]
        lines += [_file_line(f) for f in o["files"]]
    return "\n".join(lines + _tail(snapshot))


def format_summary(snapshot: dict[str, Any]) -> str:
    """The snapshot without its files: one line per origin (``--info --summary``)."""
    lines = [*_head(snapshot), ""]
    lines += [_origin_line(snapshot, name, o) for name, o in snapshot["origins"].items()]
    return "\n".join(lines + _tail(snapshot))


def format_matches(snapshot: dict[str, Any], matches: dict[str, list[dict[str, Any]]]) -> str:
    """The files of ``matches`` (``--find``): by origin, each origin's files
    under one line naming it; empty if nothing matched."""
    lines: list[str] = []
    for name, files in matches.items():
        me = " (this peer)" if name == snapshot["peer"] else ""
        lines.append(f"{escape(name)}{me}: {len(files)} file(s)")
        lines += [_file_line(f) for f in files]
    return "\n".join(lines)
