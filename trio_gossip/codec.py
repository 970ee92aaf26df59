"""The wire format: encoding messages, and the one function that decodes untrusted bytes.

A datagram is one UTF-8 JSON object with a protocol version ``"proto": 1`` and
a type tag ``"type"``; ``docs/protocol.md`` is the contract. Messages
(:mod:`.messages`) are unstructured by a private cattrs converter, and read
back by a structurer per class that refuses to coerce: ``"123"`` is not an
int, ``true`` is not ``1``, a string is not a list. All functions that take
network bytes end in ``_untrusted`` and raise only :class:`BadDatagram`.
"""

from __future__ import annotations

import binascii
import json
import sys
import typing
from base64 import b64decode
from collections.abc import Callable
from typing import Any, Final

import attrs
import cattrs
from cattrs.preconf.json import make_converter

from .limits import (
    MAX_COUNTER,
    MAX_DATAGRAM,
    MAX_HELD,
    MAX_LINES,
    MAX_NAME,
    MAX_PARTS,
    MAX_WANT_PARTS,
    MIN_MTIME,
    PROTOCOL,
)
from .messages import (
    Digest,
    EventNote,
    Info,
    InfoRequest,
    Leave,
    Message,
    Part,
    Want,
    WatchRequest,
)
from .sizes import MAX_PATH, name_size
from .state import FileMeta, Line

__all__ = ["BadDatagram", "decode_untrusted", "encode", "unique_keys"]


class BadDatagram(Exception):
    """A datagram that is not a valid message. ``reason`` is a short label for counters."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


# Only ever append to this table: a tag, once used, keeps its meaning.
_TAGS: Final[dict[str, type[Message]]] = {
    "digest": Digest,
    "want": Want,
    "part": Part,
    "info?": InfoRequest,
    "info": Info,
    "leave": Leave,
    "watch?": WatchRequest,
    "event": EventNote,
}
_TAG_OF: Final = {cls: tag for tag, cls in _TAGS.items()}


def _make_converter() -> cattrs.Converter:
    # Only for writing: reading untrusted bytes is :func:`_structurer`'s.
    converter = make_converter()
    # Files and digest lines are the bulk of the traffic: they travel as arrays.
    converter.register_unstructure_hook(
        FileMeta, lambda f: [f.name, f.size, f.mtime_ns, f.seq, f.deleted]
    )
    converter.register_unstructure_hook(
        Line, lambda x: [x.origin, x.generation, x.version, x.heartbeat, x.reaped]
    )
    return converter


class _Malformed(Exception):
    """A value of the wrong shape or type (becomes the reason "malformed")."""


def _array(cls: Callable[..., Any], kinds: tuple[type, ...]) -> Callable[[Any], Any]:
    # The receiver's hottest path: plain comparisons, no generator per record.
    # The first field, a name, is interned (see _NAMES).
    a, b, c, d, e = kinds
    intern: Callable[[Any], str] = sys.intern

    def read(value: Any) -> Any:
        if type(value) is not list or len(value) != 5:
            raise _Malformed("expected an array of 5")
        v, w, x, y, z = value
        if type(v) is not a or type(w) is not b or type(x) is not c:
            raise _Malformed("wrong type in array")
        if type(y) is not d or type(z) is not e:
            raise _Malformed("wrong type in array")
        return cls(intern(v), w, x, y, z)

    return read


#: How a record inside a message travels: an array of five.
_RECORDS: Final = {
    FileMeta: _array(FileMeta, (str, int, int, int, bool)),
    Line: _array(Line, (str, int, int, int, bool)),
}
_SCALARS: Final = {str: "a string", int: "an integer", bool: "a boolean"}
#: Fields that name a peer, interned like the names in records: a peer keeps
#: the names it reads (keys of its replica, in its entries' files), and every
#: datagram brings its own copies -- with ``--all``, a thousand peers would
#: each hold a copy of every name. Interned strings are freed like others
#: when nothing holds them.
_NAMES: Final = frozenset({"origin", "sender"})


def _structurer(cls: type[Message]) -> Callable[[dict[str, Any]], Message]:
    """The function that makes a ``cls`` from a JSON object, refusing any
    coercion, unknown key or missing required key (raising :class:`_Malformed`
    or ``KeyError``).

    Written out as Python source once per class from its attrs fields, as
    cattrs does, but with every check inline: a generic converter's call per
    field and per hook cost more than the checks themselves."""
    hints = typing.get_type_hints(cls)
    fields = attrs.fields(cls)
    env: dict[str, Any] = {
        "cls": cls,
        "Malformed": _Malformed,
        "keys": {f.name for f in fields},
        "intern": sys.intern,
    }
    code = [
        "def structure(body):",
        "    if not body.keys() <= keys:",
        "        raise Malformed('unknown keys')",
    ]
    for f in fields:
        name, kind = f.name, hints[f.name]
        if f.default is attrs.NOTHING:
            code.append(f"    {name} = body[{name!r}]")
        else:
            env[f"default_{name}"] = f.default
            code.append(f"    {name} = body.get({name!r}, default_{name})")
        if kind in _SCALARS:
            env[kind.__name__] = kind
            code += [
                f"    if type({name}) is not {kind.__name__}:",
                f"        raise Malformed({f'{name}: expected {_SCALARS[kind]}'!r})",
            ]
            if name in _NAMES:
                code.append(f"    {name} = intern({name})")
            continue
        (item, _ellipsis) = typing.get_args(kind)  # tuple[X, ...], which travels as a list
        code += [
            f"    if type({name}) is not list:",
            f"        raise Malformed({f'{name}: expected a list'!r})",
        ]
        if item in _SCALARS:
            env[item.__name__] = item
            code += [
                f"    for item in {name}:",
                f"        if type(item) is not {item.__name__}:",
                f"            raise Malformed({f'{name}: expected {_SCALARS[item]}s'!r})",
                f"    {name} = tuple({name})",
            ]
        else:
            env[f"read_{name}"] = _RECORDS[item]
            code.append(f"    {name} = tuple(map(read_{name}, {name}))")
    code.append(f"    return cls({', '.join(f.name for f in fields)})")
    exec("\n".join(code), env)  # our own source, made from our own classes
    structure: Callable[[dict[str, Any]], Message] = env["structure"]
    return structure


_STRUCTURE: Final = {cls: _structurer(cls) for cls in _TAGS.values()}


_converter: Final = _make_converter()


def encode(message: Message) -> bytes:
    """The datagram for ``message``: compact JSON, UTF-8, keys in class order."""
    if type(message) is Digest:
        return _encode_digest(message)
    return _encode_any(message)


def _encode_any(message: Message) -> bytes:
    """Any message through the converter: what :func:`_encode_digest` must match."""
    body = {"proto": PROTOCOL, "type": _TAG_OF[type(message)]}
    body.update(_converter.unstructure(message))
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


#: Names as JSON strings, for digests: a peer writes the same few names all day.
_names: dict[str, str] = {}
#: Names held at most; past that the memo starts again (a bound, not a policy).
_NAMES_HELD: Final = 65_536


def _name(name: str) -> str:
    text = _names.get(name)
    if text is None:
        if len(_names) >= _NAMES_HELD:
            _names.clear()
        text = _names[name] = json.dumps(name, ensure_ascii=False)
    return text


def _encode_digest(digest: Digest) -> bytes:
    """What :func:`encode` writes for a digest, byte for byte, without building
    a dict and a list per line: digests are most of what a peer writes."""
    lines = ",".join(
        f"[{_name(x.origin)},{x.generation},{x.version},{x.heartbeat},"
        f"{'true' if x.reaped else 'false'}]"
        for x in digest.lines
    )
    return (
        f'{{"proto":{PROTOCOL},"type":"digest","sender":{_name(digest.sender)},'
        f'"reply":{"true" if digest.reply else "false"},"lines":[{lines}],'
        f'"roster":{digest.roster},"held":{json.dumps(digest.held, ensure_ascii=False)}}}'
    ).encode()


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object's pairs as a dict; ``ValueError`` if a key comes twice.

    Python keeps the last of two equal keys, other parsers the first: a text
    two parsers read differently is refused (for ``json.loads``'s
    ``object_pairs_hook``)."""
    body = dict(pairs)
    if len(body) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f"the key {json.dumps(key)[:40]} twice")
            seen.add(key)
    return body


# Made once: ``json.loads`` with a hook would make a decoder per call.
_json_decoder: Final = json.JSONDecoder(object_pairs_hook=unique_keys)
#: The decoder's own scanner (the C one, set by its ``__init__``; typeshed omits it).
_Scanner = Callable[[str, int], tuple[Any, int]]
_scan_once: Final[_Scanner] = _json_decoder.scan_once  # type: ignore[attr-defined]


def _parse_json(text: str) -> Any:
    """``_json_decoder.decode(text)``: the same value, or the same error.

    A text that is one JSON value and nothing else, as every datagram a peer
    writes, goes straight to the C scanner: ``decode`` wraps it in two Python
    calls and two regular expressions for the white space around the value,
    about a third of the JSON's cost for a small digest. Any other text --
    white space around the value, something after it, no value -- goes the
    whole way, to be taken or refused exactly as ``decode`` does."""
    try:
        value, end = _scan_once(text, 0)
    except StopIteration:  # no value at the very start
        return _json_decoder.decode(text)
    if end != len(text):
        return _json_decoder.decode(text)
    return value


def decode_untrusted(data: bytes) -> Message:
    """Turn any bytes into a valid message, or raise :class:`BadDatagram`."""
    if len(data) > MAX_DATAGRAM:
        raise BadDatagram("too large")
    try:
        # Decoded here: json.loads would also take UTF-16, UTF-32 and a BOM.
        body = _parse_json(data.decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # JSON, UTF-8, digit-limit, key errors
        raise BadDatagram("not json", str(exc)[:80]) from None
    if type(body) is not dict:
        raise BadDatagram("not an object")
    proto = body.pop("proto", None)
    # ``type`` first: ``true == 1`` and ``1.0 == 1`` in Python.
    if type(proto) is not int or proto != PROTOCOL or type(body.get("type")) is not str:
        raise BadDatagram("protocol version")
    cls = _TAGS.get(body.pop("type"))
    if cls is None:
        raise BadDatagram("unknown type")
    try:
        message = _STRUCTURE[cls](body)
    except (_Malformed, KeyError) as exc:  # KeyError: a required key missing
        raise BadDatagram("malformed", str(exc)[:80]) from None
    problem = _check(message)
    if problem:
        raise BadDatagram("out of bounds", problem)
    return message


def _bad_counter(value: int, low: int = 0) -> bool:
    return not low <= value <= MAX_COUNTER


def _bad_text(text: str) -> bool:
    if text.isascii():  # O(1): a flag of the string; no escape made a surrogate
        return False
    try:
        text.encode()
    except UnicodeEncodeError:  # a lone surrogate from a \ud800 escape
        return True
    return False


def _bad_base64(text: str) -> bool:
    if len(text) > MAX_HELD:
        return True
    try:
        b64decode(text, validate=True)
    except (binascii.Error, ValueError):  # ValueError: a non-ASCII character
        return True
    return False


def _bad_peer(name: str) -> bool:
    return not 0 < len(name) <= MAX_NAME or (not name.isascii() and _bad_text(name))


def _bad_path(name: str) -> bool:
    if _bad_text(name):
        return True
    size = name_size(name)
    parts = name.split("/")
    return not 0 < size <= MAX_PATH or "\x00" in name or any(p in ("", ".", "..") for p in parts)


def _check_file(f: FileMeta) -> str:
    if _bad_path(f.name):
        return "file name"
    if _bad_counter(f.size) or _bad_counter(f.seq) or _bad_counter(f.mtime_ns, MIN_MTIME):
        return "file field"
    return ""


def _check(message: Message) -> str:  # noqa: PLR0911 -- one early return per rule
    """The first bound ``message`` breaks, or ``""``."""
    match message:
        case Digest():
            return _check_digest(message)
        case Want():
            wanted = (message.generation, message.version)
            haves = (message.have_generation, message.have_version, message.base)
            if (
                _bad_peer(message.sender)
                or _bad_peer(message.origin)
                or any(_bad_counter(c) for c in wanted)
                or any(_bad_counter(c, -1) for c in haves)
                or not message.base < message.version
                or len(message.parts) > MAX_WANT_PARTS
                or any(not 0 <= p < MAX_PARTS for p in message.parts)
            ):
                return "want"
        case Part():
            return _check_part(message)
        case InfoRequest(nonce, parts):
            if _bad_counter(nonce) or len(parts) > MAX_WANT_PARTS:
                return "info request"
            if any(not 0 <= p < MAX_PARTS for p in parts):
                return "info request"
        case Leave(sender, origin, generation, version, heartbeat):
            if _bad_peer(sender) or _bad_peer(origin):
                return "leave"
            if any(_bad_counter(c) for c in (generation, version, heartbeat)):
                return "leave"
        case WatchRequest(nonce):
            if _bad_counter(nonce):
                return "watch request"
        case EventNote():
            return _check_event(message)
        case Info(sender, nonce, index, count, _):
            if _bad_peer(sender) or _bad_counter(nonce) or not 0 <= index < count <= MAX_PARTS:
                return "info"
            if _bad_text(message.data):
                return "info"
    return ""


def _check_digest(digest: Digest) -> str:
    lines = digest.lines
    if _bad_peer(digest.sender) or len(lines) > MAX_LINES:
        return "digest"
    if not 0 <= digest.roster <= 0xFFFF_FFFF or (digest.held and _bad_base64(digest.held)):
        return "digest summary"
    origins: set[str] = set()
    for line in lines:
        origin = line.origin
        counters_ok = (
            0 <= line.generation <= MAX_COUNTER
            and 0 <= line.version <= MAX_COUNTER
            and 0 <= line.heartbeat <= MAX_COUNTER
        )
        if not counters_ok or _bad_peer(origin):
            return "digest line"
        origins.add(origin)
    # Two lines about one origin: which one counts would be a guess.
    if len(origins) != len(lines):
        return "digest repeats an origin"
    return ""


def _check_part(part: Part) -> str:
    counters = (part.generation, part.version, part.heartbeat, part.floor, part.total)
    if (
        _bad_peer(part.sender)
        or _bad_peer(part.origin)
        or any(_bad_counter(c) for c in counters)
        or part.floor > part.version
        # A delta applies from ``base``, which the holder still reaches: floor <= base < version.
        or not (part.base == -1 or part.floor <= part.base < part.version)
        or not 0 <= part.index < part.count <= MAX_PARTS
        # Every part of a transfer carries at least one record, but the one
        # part of an empty list: no more parts than records, no more records than the total.
        or part.count > max(1, part.total)
        or len(part.files) > part.total
        or (part.total > 0 and not part.files)
    ):
        return "part"
    base, version = part.base, part.version
    for f in part.files:
        problem = _check_file(f)
        if problem:
            return problem
        if not base < f.seq <= version:
            return "file field"
    return ""


#: The kinds of event a note may name (see :mod:`.events`), and "watching",
#: the answer to a ``watch?``.
EVENT_KINDS: Final = frozenset(
    ("watching", "joined", "changed", "restarted", "suspect", "alive", "left", "reaped")
)


def _check_event(note: EventNote) -> str:
    if _bad_peer(note.sender) or _bad_peer(note.origin) or note.kind not in EVENT_KINDS:
        return "event"
    counters = (note.nonce, note.seq, note.generation, note.version, note.more)
    if any(_bad_counter(c) for c in counters):
        return "event"
    if any(_bad_path(name) for names in (note.added, note.removed, note.changed) for name in names):
        return "file name"
    return ""
