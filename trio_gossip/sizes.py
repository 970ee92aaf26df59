"""Size arithmetic: how many bytes a name, a record or a part's envelope take
on the wire, without writing them (the scanner and the splitter of transfers
ask for every file).
"""

from __future__ import annotations

import json
import re
from typing import Final

import attrs

from .limits import MAX_COUNTER, MAX_NAME, MAX_PARTS, MIN_DATAGRAM, MIN_MTIME, SEAL_OVERHEAD
from .messages import Part
from .state import FileMeta

__all__ = ["MAX_PATH", "max_name_size", "name_size", "overhead", "record_size"]

#: The characters JSON escapes when it writes a string (``json.dumps`` with
#: ``ensure_ascii=False``): quote, backslash and the controls.
_escaped: Final = re.compile(r'[\x00-\x1f"\\]').search


def name_size(name: str) -> int:
    """Bytes of a file name as a record carries it: UTF-8, JSON escapes and quotes.

    A name without a character JSON escapes (almost every name) travels as
    its UTF-8 bytes in quotes: no need to write it as JSON to measure it.
    ``UnicodeEncodeError`` for a name with a lone surrogate, which cannot travel."""
    if _escaped(name) is None:
        return len(name.encode()) + 2
    return len(json.dumps(name, ensure_ascii=False).encode())


def record_size(f: FileMeta) -> int:
    """Encoded size of one record as :func:`.codec.encode` writes it, with its comma."""
    numbers = len(str(f.size)) + len(str(f.mtime_ns)) + len(str(f.seq))
    # [name,size,mtime_ns,seq,deleted] : brackets, four commas, the boolean, a comma
    return name_size(f.name) + numbers + 6 + (4 if f.deleted else 5) + 1


def overhead() -> int:
    """An upper bound on a part's size without its records: every field at its
    widest, as :func:`.codec.encode` writes them (keys in class order), and a margin."""
    widest: dict[str, object] = {"proto": 1, "type": "part"}
    for field in attrs.fields(Part):
        if field.name in ("sender", "origin"):
            widest[field.name] = "x" * MAX_NAME
        elif field.name in ("index", "count"):
            widest[field.name] = MAX_PARTS
        else:
            widest[field.name] = [] if field.name == "files" else MAX_COUNTER
    return len(json.dumps(widest, separators=(",", ":"))) + 16


def max_name_size(max_datagram: int) -> int:
    """The largest :func:`name_size` whose record, whatever its numbers, fits a
    part of ``max_datagram`` bytes. A record is never split: a longer name
    would make a part larger than ``max_datagram``."""
    widest = record_size(FileMeta("", MAX_COUNTER, MIN_MTIME, MAX_COUNTER))
    return max_datagram - overhead() - widest + name_size("")


#: The longest file name, in bytes as it travels (:func:`name_size`): its record
#: fits a part at the smallest ``max_datagram``, sealed, so every peer can pass it on.
MAX_PATH: Final = max_name_size(MIN_DATAGRAM - SEAL_OVERHEAD)
