"""Reading a folder's metadata: every regular file below it, recursively.

A scan either sees the whole folder or fails as a whole (:class:`ScanError`),
so a half-scanned folder is never published. Blocking: the peer runs it in a
worker thread.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

import attrs

from .sizes import MAX_PATH, name_size

__all__ = ["Scan", "ScanError", "scan_folder"]


#: The longest name (in bytes as it travels, see :func:`.sizes.name_size`)
#: whose record fits one datagram at the smallest ``max_datagram`` a config allows.
MAX_NAME_SIZE: Final = MAX_PATH


class ScanError(Exception):
    """The folder (or a directory inside it) could not be read."""


@attrs.frozen
class Scan:
    """Relative POSIX path -> (size, mtime_ns); and the names that were passed over."""

    files: dict[str, tuple[int, int]]
    skipped: tuple[str, ...] = ()


def scan_folder(root: Path, max_name: int = MAX_NAME_SIZE) -> Scan:
    """Scan ``root``. Symbolic links are not followed. Names that are not
    UTF-8, or longer than ``max_name`` bytes as they travel (JSON-escaped
    UTF-8, see :func:`.sizes.name_size`), cannot travel and are skipped."""
    files: dict[str, tuple[int, int]] = {}
    skipped: list[str] = []
    stack: list[tuple[str, str]] = [("", os.fspath(root))]
    while stack:
        prefix, path = stack.pop()
        try:
            with os.scandir(path) as entries:
                for entry in entries:
                    name = prefix + entry.name
                    if entry.is_dir(follow_symlinks=False):
                        stack.append((name + "/", entry.path))
                        continue
                    if not entry.is_file(follow_symlinks=False):
                        continue  # sockets, fifos, devices, links
                    try:
                        size = name_size(name)
                    except UnicodeEncodeError:  # not UTF-8 on disk
                        skipped.append(
                            name.encode(errors="surrogateescape").decode(errors="replace")
                        )
                        continue
                    if size > max_name:
                        skipped.append(name)
                        continue
                    try:
                        stat = entry.stat(follow_symlinks=False)
                    except FileNotFoundError:
                        continue  # removed while we looked: it is gone
                    files[name] = (stat.st_size, stat.st_mtime_ns)
        except FileNotFoundError:
            if not prefix:
                raise ScanError(f"{root}: no such folder") from None
            # A subdirectory removed while we looked: it is gone, with its files.
        except OSError as exc:
            where = root if not prefix else Path(root, prefix)
            raise ScanError(f"{where}: cannot read: {exc.strerror or exc}") from None
    return Scan(files, tuple(skipped))
