"""What a peer's log says, for a person (text) or a program (``--log-format json``).

Each line about an event carries the event's facts as fields: the text line
is written from them, and the JSON line holds them as they are.
"""

from __future__ import annotations

import datetime
import json
import logging
from typing import Any

from .events import Event

__all__ = ["JsonFormatter", "describe", "files", "log_event", "when"]

log = logging.getLogger("trio_gossip")


def files(count: int) -> str:
    """``1 file``, ``12,000 files``."""
    return "1 file" if count == 1 else f"{count:,} files"


def when(generation: int) -> str:
    """A generation (wall-clock nanoseconds at a start) as a time, UTC."""
    try:
        moment = datetime.datetime.fromtimestamp(generation / 1e9, datetime.UTC)
    except (OverflowError, OSError, ValueError):
        return "not a time"
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _names(names: tuple[str, ...], most: int = 3) -> str:
    shown = ", ".join(repr(n) for n in names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


_STATUS = {
    "suspect": "is suspect: nothing heard of it lately",
    "alive": "is alive again",
    "left": "left the cluster",
    "reaped": "was reaped: silent too long",
}


def describe(event: Event, me: str = "") -> str:
    """One line about ``event``, as peer ``me`` would log it."""
    origin = "own folder" if event.origin == me else event.origin
    status = _STATUS.get(event.kind)
    if status is not None:
        return f"{origin} {status} (version {event.version})"
    what = [
        f"{label} {len(names)}: {_names(names)}"
        for label, names in (
            ("added", event.added),
            ("removed", event.removed),
            ("changed", event.changed),
        )
        if names
    ]
    detail = "; ".join(what) or "no file changed"
    if event.kind == "restarted":
        return (
            f"{origin} restarted (generation of {when(event.generation)}), "
            f"version {event.version}: {detail}"
        )
    return f"{origin} {event.kind}, version {event.version}: {detail}"


def log_event(me: str, event: Event) -> None:
    """Log ``event`` of peer ``me``: a line, and the event's fields for JSON."""
    log.info("%s: %s", me, describe(event, me), extra={"fields": {"peer": me, **event.as_json()}})


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, the message, and the record's fields."""

    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, Any] = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(),
            "level": record.levelname.lower(),
            "message": record.getMessage(),
        }
        body.update(getattr(record, "fields", {}))
        if record.exc_info:
            body["error"] = self.formatException(record.exc_info)
        return json.dumps(body, ensure_ascii=False)
