"""What a peer knows of each origin, as frozen objects: the library's view.

The same facts as ``--info`` shows, for a program: status, counters, files,
and how long ago each thing happened.
"""

from __future__ import annotations

import attrs

from .replica import Replica, Status
from .state import live_files

__all__ = ["FileInfo", "Member", "members"]


@attrs.frozen
class FileInfo:
    """One file of an origin's folder: its path relative to the folder."""

    name: str
    size: int
    mtime_ns: int


@attrs.frozen
class Member:
    """What a peer knows of one origin (itself included), at one moment.

    Ages are seconds before that moment (``None``: never). A left or reaped
    origin has no files.
    """

    name: str
    status: Status
    generation: int
    version: int
    heartbeat: int
    files: tuple[FileInfo, ...]
    heard_ago: float | None
    changed_ago: float | None
    status_ago: float | None


def members(replica: Replica, me: str, at: float) -> dict[str, Member]:
    """Every origin in peer ``me``'s ``replica``, by name, as of ``at``."""

    def ago(t: float | None) -> float | None:
        return None if t is None else at - t

    out = {}
    for name, entry in sorted(replica.items()):
        out[name] = Member(
            name,
            replica.status.get(name, "reaped" if entry.reaped else "alive"),
            entry.generation,
            entry.version,
            entry.heartbeat,
            tuple(FileInfo(f.name, f.size, f.mtime_ns) for f in live_files(entry)),
            0.0 if name == me else ago(replica.heard.get(name)),
            ago(replica.changed.get(name)),
            ago(replica.status_since.get(name)),
        )
    return out
