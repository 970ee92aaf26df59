"""What changes in a peer's replica, as events: for its log, its API and its watchers.

The node (:mod:`.node`) records an :class:`Event` for each change it makes:
an origin that joins, changes its files, restarts, falls silent, leaves or is
reaped. Pure data; :func:`diff` says which files a new version added,
removed and changed.
"""

from __future__ import annotations

from typing import Any, Literal

import attrs

from .state import Entry, live_files

__all__ = ["Event", "Kind", "diff"]

#: ``joined``: first heard of (or back after being reaped or leaving, in a new
#: generation); ``changed``: new files in the same generation; ``restarted``:
#: a new generation of an origin we held; ``suspect``: nothing heard for
#: longer than news takes to spread; ``alive``: heard again after suspect;
#: ``left``: said it leaves; ``reaped``: silent for ``reap`` seconds.
Kind = Literal["joined", "changed", "restarted", "suspect", "alive", "left", "reaped"]


@attrs.frozen
class Event:
    """One change in a peer's replica. ``at`` is the peer's clock (trio's)."""

    kind: Kind
    origin: str
    at: float
    generation: int
    version: int
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        """The event as a JSON object (``--watch --json``, hooks, the web API)."""
        out: dict[str, Any] = {
            "event": self.kind,
            "origin": self.origin,
            "generation": self.generation,
            "version": self.version,
        }
        if self.kind in ("joined", "changed", "restarted"):
            out.update(
                added=list(self.added), removed=list(self.removed), changed=list(self.changed)
            )
        return out


def diff(old: Entry | None, new: Entry) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """The names ``new`` added, removed and changed against ``old`` (live files,
    sorted); against nothing (or a tombstone), every file is added."""
    before = {} if old is None or old.reaped else {f.name: f for f in live_files(old)}
    added: list[str] = []
    changed: list[str] = []
    after = live_files(new)
    for f in after:
        was = before.pop(f.name, None)
        if was is None:
            added.append(f.name)
        elif (was.size, was.mtime_ns) != (f.size, f.mtime_ns):
            changed.append(f.name)
    return tuple(added), tuple(sorted(before)), tuple(changed)
