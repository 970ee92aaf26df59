"""Reading a folder's metadata: every regular file below it, recursively.

What cannot be read or cannot travel inside the folder (an unreadable
directory, a name too long or not UTF-8, a fifo, a link) is skipped and
recorded in :class:`Skipped`; the rest is returned. Only the folder itself
fails a scan as a whole (:class:`ScanError`), so a folder never stops its
peer. Blocking: the peer runs it in a worker thread, which it can abandon
(``should_stop``, :class:`ScanStopped`).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from time import monotonic
from typing import Final

import attrs

from .sizes import MAX_PATH, name_size

__all__ = ["Scan", "ScanError", "ScanStopped", "Skipped", "scan_folder"]


#: The longest name (in bytes as it travels, see :func:`.sizes.name_size`)
#: whose record fits one datagram at the smallest ``max_datagram`` a config allows.
MAX_NAME_SIZE: Final = MAX_PATH

#: The kinds of :class:`Skipped`, in the order its warning lines come in.
UNREADABLE: Final = "unreadable"  # permission denied, I/O error: its metadata is unknown
TOO_LONG: Final = "too long"  # longer than a record carries, or than the OS opens
NOT_UTF8: Final = "not UTF-8"
SPECIAL: Final = "special file"  # fifo, socket, device
LINK: Final = "symbolic link"  # never followed
KINDS: Final = (UNREADABLE, TOO_LONG, NOT_UTF8, SPECIAL, LINK)

_WHAT: Final = {
    UNREADABLE: ("path that cannot be read", "paths that cannot be read"),
    TOO_LONG: ("name too long to share", "names too long to share"),
    NOT_UTF8: ("name that is not UTF-8", "names that are not UTF-8"),
    SPECIAL: ("special file (fifo, socket or device)", "special files (fifos, sockets, devices)"),
    LINK: ("symbolic link (not followed)", "symbolic links (not followed)"),
}

#: Entries between two looks at ``should_stop`` and the clock for ``progress``.
CHECK_EVERY: Final = 256
_SHOWN: Final = 2  # names a warning line shows
_WIDTH: Final = 60  # characters of each


class ScanError(Exception):
    """The folder itself is missing, not a directory, unreadable, or was
    removed or replaced while it was scanned."""


class ScanStopped(Exception):  # not an ...Error: the caller asked for it
    """``should_stop`` returned true: the scan was abandoned, with no result."""


@attrs.frozen
class Skipped:
    """What a scan passed over: kind (one of :data:`KINDS`) -> relative
    names, sorted; a directory's ends with ``/`` and stands for all inside it.

    Names are as a person can read them: bytes that are not UTF-8 show as
    U+FFFD. Equal when the same names were skipped for the same reasons, so
    a caller can warn again only when that changes (:meth:`lines`).
    """

    names: Mapping[str, tuple[str, ...]] = attrs.field(factory=dict)

    @classmethod
    def of(cls, found: Mapping[str, Iterable[str]]) -> Skipped:
        """From names in any order: sorted, kinds without names left out."""
        sorted_ = {kind: tuple(sorted(names)) for kind, names in found.items()}
        return cls({kind: names for kind, names in sorted_.items() if names})

    @property
    def total(self) -> int:
        """How many names were skipped, of every kind."""
        return sum(len(names) for names in self.names.values())

    def lines(self, since: Skipped | None = None) -> list[str]:
        """One short warning line per kind, leaving out the kinds whose names
        are the same as in ``since`` (the previous scan's): e.g.
        ``skipped 5 symbolic links (not followed): 'a', 'b/c' and 3 more``."""
        lines = []
        for kind in sorted(self.names, key=_rank):
            names = self.names[kind]
            if since is not None and since.names.get(kind) == names:
                continue
            one, many = _WHAT.get(kind, (kind, kind))
            shown = ", ".join(repr(_shorten(name)) for name in names[:_SHOWN])
            more = f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else ""
            lines.append(f"skipped {len(names)} {one if len(names) == 1 else many}: {shown}{more}")
        return lines

    def hides(self, name: str) -> bool:
        """Whether file ``name`` may exist although the scan did not list it:
        it, or a directory above it, could not be read. Such a name's absence
        is no sign that it was deleted."""
        unreadable = self.names.get(UNREADABLE, ())
        return name in unreadable or name.startswith(
            tuple(n for n in unreadable if n.endswith("/"))
        )


def _rank(kind: str) -> tuple[int, str]:
    return (KINDS.index(kind) if kind in KINDS else len(KINDS), kind)


def _shorten(name: str) -> str:
    # The middle goes: the start says where, the end what.
    if len(name) <= _WIDTH:
        return name
    head = (_WIDTH - 1) // 2
    return name[:head] + "…" + name[head + 1 - _WIDTH :]


def _readable(name: str) -> str:
    """``name`` with the bytes that are not UTF-8 (surrogate escapes) as U+FFFD."""
    return name.encode(errors="surrogateescape").decode(errors="replace")


@attrs.frozen
class Scan:
    """Relative POSIX path -> (size, mtime_ns); and what was passed over."""

    files: dict[str, tuple[int, int]]
    skipped: Skipped = attrs.field(factory=Skipped)


def scan_folder(
    root: Path,
    max_name: int = MAX_NAME_SIZE,
    *,
    progress: Callable[[int], None] | None = None,
    progress_every: float = 2.0,
    should_stop: Callable[[], bool] | None = None,
) -> Scan:
    """Every regular file below ``root``, by relative POSIX name, and what was skipped.

    Skipped (see :class:`Skipped`): symbolic links (not followed; ``root``
    itself may be one), fifos, sockets and devices; names that are not
    UTF-8 or longer than ``max_name`` bytes as they travel (JSON-escaped
    UTF-8, see :func:`.wire.name_size`), or that the OS cannot open; what
    cannot be read (a directory with all inside it). A file or directory
    removed while the scan looks is gone: not skipped, not listed.

    ``ScanError`` only when ``root`` cannot be read, or was removed or
    replaced while it was scanned (what was read may mix two folders).

    Every :data:`CHECK_EVERY` entries, ``should_stop()`` is asked (a true
    answer raises :class:`ScanStopped`) and, once ``progress_every``
    seconds have passed since the start or the last call, ``progress`` is
    called with the number of files found so far.
    """
    top = os.fspath(root)
    try:
        # Held open to the end, so that the directory's inode cannot be
        # reused by a folder made in its place while we scan.
        held = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise ScanError(_cannot_read(top, exc)) from None
    try:
        scan = _walk(top, max_name, progress, progress_every, should_stop)
        try:
            now = os.stat(top)
        except FileNotFoundError:
            raise ScanError(f"{root}: removed while scanning") from None
        except OSError as exc:
            raise ScanError(_cannot_read(top, exc)) from None
        was = os.fstat(held)
        if (now.st_dev, now.st_ino) != (was.st_dev, was.st_ino):
            raise ScanError(f"{root}: replaced while scanning")
        return scan
    finally:
        os.close(held)


def _cannot_read(root: str, exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError):
        return f"{root}: no such folder"
    return f"{root}: cannot read: {exc.strerror or exc}"


def _walk(  # one loop, kept whole: it is the hot path
    top: str,
    max_name: int,
    progress: Callable[[int], None] | None,
    progress_every: float,
    should_stop: Callable[[], bool] | None,
) -> Scan:
    files: dict[str, tuple[int, int]] = {}
    found: dict[str, list[str]] = {}
    next_progress = monotonic() + progress_every if progress is not None else 0.0
    countdown = CHECK_EVERY + 1  # the first look after CHECK_EVERY entries
    # (relative name ending in "/", its bytes as it travels without quotes, path)
    stack: list[tuple[str, int, str]] = [("", 0, top)]
    while stack:
        prefix, before, path = stack.pop()
        try:
            listing = os.scandir(path)
        except OSError as exc:
            if not prefix:
                raise ScanError(_cannot_read(top, exc)) from None
            if isinstance(exc, FileNotFoundError | NotADirectoryError):
                continue  # gone (or now a file) since its parent was listed
            kind = TOO_LONG if exc.errno == errno.ENAMETOOLONG else UNREADABLE
            found.setdefault(kind, []).append(prefix)
            continue
        try:
            with listing:
                for entry in listing:
                    countdown -= 1
                    if not countdown:
                        countdown = CHECK_EVERY
                        if should_stop is not None and should_stop():
                            raise ScanStopped
                        if progress is not None:
                            now = monotonic()
                            if now >= next_progress:
                                next_progress = now + progress_every
                                progress(len(files))
                    name = prefix + entry.name
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            name += "/"
                            try:
                                # JSON escapes each character alone: sizes add up.
                                size = before + name_size(entry.name) + 1
                            except UnicodeEncodeError:
                                found.setdefault(NOT_UTF8, []).append(name)
                                continue
                            # Each name inside is at least one byte longer.
                            if size >= max_name:
                                found.setdefault(TOO_LONG, []).append(name)
                                continue
                            stack.append((name, size - 2, entry.path))
                        elif entry.is_file(follow_symlinks=False):
                            try:
                                size = before + name_size(entry.name)
                            except UnicodeEncodeError:
                                found.setdefault(NOT_UTF8, []).append(name)
                                continue
                            if size > max_name:
                                found.setdefault(TOO_LONG, []).append(name)
                                continue
                            stat = entry.stat(follow_symlinks=False)
                            files[name] = (stat.st_size, stat.st_mtime_ns)
                        elif entry.is_symlink():
                            found.setdefault(LINK, []).append(name)
                        else:
                            # Or gone, if the type came from an lstat that failed.
                            entry.stat(follow_symlinks=False)
                            found.setdefault(SPECIAL, []).append(name)
                    except FileNotFoundError:
                        continue  # removed while we looked: it is gone
                    except OSError as exc:
                        kind = TOO_LONG if exc.errno == errno.ENAMETOOLONG else UNREADABLE
                        found.setdefault(kind, []).append(name)
        except OSError as exc:
            # The listing broke off: what it gave is kept, the rest is unknown.
            if not prefix:
                raise ScanError(_cannot_read(top, exc)) from None
            found.setdefault(UNREADABLE, []).append(prefix)
    skipped = Skipped.of({kind: map(_readable, names) for kind, names in found.items()})
    return Scan(files, skipped)
