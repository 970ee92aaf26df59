"""The wire format and transfers: round trips, strictness, fuzzing, and parts that fit.

``decode_untrusted`` turns any bytes into a valid message or raises
``BadDatagram``, and nothing else; what it accepts, ``encode`` writes back the
same. ``transfer.prepare`` never makes a datagram larger than ``max_datagram``,
and ``Assemblies`` with ``finish`` puts the parts back together in any order.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from typing import Any

import attrs
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from trio_gossip.codec import BadDatagram, decode_untrusted, encode
from trio_gossip.messages import (
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
from trio_gossip.scanner import MAX_NAME_SIZE
from trio_gossip.sizes import max_name_size, name_size, record_size
from trio_gossip.state import Entry, FileMeta, Line, first_entry, rescan
from trio_gossip.transfer import Assemblies, finish, prepare

# The bounds of the protocol, as its contract states them.
MAX_COUNTER = 2**63 - 1
MIN_MTIME = -(2**63)
MAX_NAME = 64
MAX_PATH = 687  # bytes of a file name as it travels: a JSON string, quotes included
MAX_PARTS = 2**20
MAX_WANT_PARTS = 64
MAX_HELD = 12_000  # characters of a digest's summary
MAX_DATAGRAM = 65_507
MESSAGES = (Digest, Want, Part, InfoRequest, Info, Leave, WatchRequest, EventNote)
EVENT_KINDS = ("watching", "joined", "changed", "restarted", "suspect", "alive", "left", "reaped")

# -- strategies of valid messages -------------------------------------------------

counters = st.integers(0, MAX_COUNTER)
mtimes = st.integers(MIN_MTIME, MAX_COUNTER)
peer_names = st.text(st.characters(codec="utf-8"), min_size=1, max_size=MAX_NAME)
part_indexes = st.lists(st.integers(0, MAX_PARTS - 1), max_size=MAX_WANT_PARTS)

# Characters a file name may hold that JSON must escape, or that take several bytes.
AWKWARD = "\"\\\n\r\t\x01\x1f\x7f é€𝄞\u2028\ufeff'."
name_chars = st.sampled_from(AWKWARD) | st.characters(codec="utf-8", exclude_characters="/\x00")


def utf8_size(name: str) -> int:
    return len(name.encode())


@st.composite
def file_names(
    draw: st.DrawFn, max_bytes: int = 300, size: Callable[[str], int] = utf8_size
) -> str:
    """A valid relative POSIX path of at most ``max_bytes`` (as ``size`` counts), often near."""
    least = draw(st.sampled_from([1, max_bytes // 4, max_bytes // 2]))
    text = draw(st.text(name_chars, min_size=least, max_size=max_bytes))
    width = draw(st.integers(1, 64))
    parts = [text[i : i + width] for i in range(0, len(text), width)]
    while len(parts) > 1 and size("/".join(parts)) > max_bytes:
        parts.pop()
    while size(parts[0]) > max_bytes:
        parts[0] = parts[0][:-1]
    return "/".join("_" if p in (".", "..") else p for p in parts)


def file_metas(
    max_bytes: int = 300, size: Callable[[str], int] = utf8_size
) -> st.SearchStrategy[FileMeta]:
    return st.builds(
        FileMeta, file_names(max_bytes, size), counters, mtimes, counters, st.booleans()
    )


lines = st.builds(Line, peer_names, counters, counters, counters, st.booleans())
digests = st.builds(
    Digest,
    peer_names,
    st.booleans(),
    st.lists(lines, max_size=8, unique_by=lambda line: line.origin).map(tuple),
)


@st.composite
def wants(draw: st.DrawFn) -> Want:
    version = draw(counters)
    return Want(
        draw(peer_names),
        draw(peer_names),
        draw(counters),
        version,
        draw(st.integers(-1, MAX_COUNTER)),
        draw(st.integers(-1, MAX_COUNTER)),
        draw(st.integers(-1, version - 1)),
        tuple(draw(part_indexes)),
    )


@st.composite
def parts(draw: st.DrawFn) -> Part:
    """A part consistent in itself: ``floor <= base < version`` for a delta,
    records of the versions after ``base``, no more parts than records."""
    version = draw(counters)
    floor = draw(st.integers(0, version))
    base = draw(st.sampled_from([-1, *([floor] if floor < version else [])]))
    if base >= 0:
        base = draw(st.integers(floor, version - 1))
    seqs = st.integers(base + 1, version)
    metas = st.builds(FileMeta, file_names(), counters, mtimes, seqs, st.booleans())
    files = tuple(draw(st.lists(metas, max_size=6, min_size=1 if version > 0 else 0)))
    total = draw(st.integers(len(files), MAX_COUNTER)) if files else 0
    count = draw(st.integers(1, min(MAX_PARTS, max(1, total))))
    return Part(
        draw(peer_names),
        draw(peer_names),
        draw(counters),
        version,
        draw(counters),
        floor,
        base,
        draw(st.integers(0, count - 1)),
        count,
        total,
        files,
    )


info_requests = st.builds(InfoRequest, counters, part_indexes.map(tuple))


@st.composite
def infos(draw: st.DrawFn) -> Info:
    count = draw(st.integers(1, MAX_PARTS))
    return Info(
        draw(peer_names),
        draw(counters),
        draw(st.integers(0, count - 1)),
        count,
        draw(st.text(st.characters(codec="utf-8"))),
    )


leaves = st.builds(Leave, peer_names, peer_names, counters, counters, counters)
watch_requests = st.builds(WatchRequest, counters)
event_names = st.lists(file_names(60), max_size=3).map(tuple)
event_notes = st.builds(
    EventNote,
    peer_names,
    counters,
    counters,
    st.sampled_from(EVENT_KINDS),
    peer_names,
    counters,
    counters,
    event_names,
    event_names,
    event_names,
    counters,
)

BY_TYPE: dict[type[Message], st.SearchStrategy[Message]] = {
    Digest: digests,
    Want: wants(),
    Part: parts(),
    InfoRequest: info_requests,
    Info: infos(),
    Leave: leaves,
    WatchRequest: watch_requests,
    EventNote: event_notes,
}
messages: st.SearchStrategy[Message] = st.one_of(*BY_TYPE.values())


def check_decodes_to_valid_or_bad(data: bytes) -> None:
    """The decoder's whole contract for untrusted bytes."""
    try:
        message = decode_untrusted(data)
    except BadDatagram as exc:
        assert exc.reason
        return
    assert isinstance(message, MESSAGES)
    assert decode_untrusted(encode(message)) == message


# -- round trips --------------------------------------------------------------------


@pytest.mark.parametrize("kind", MESSAGES, ids=lambda kind: kind.__name__)
@given(data=st.data())
def test_round_trip(kind: type[Message], data: st.DataObject) -> None:
    message = data.draw(BY_TYPE[kind])
    assert type(message) is kind
    encoded = encode(message)
    assert decode_untrusted(encoded) == message
    assert json.loads(encoded)["proto"] == 1


def test_round_trip_at_the_bounds() -> None:
    longest = "n" * MAX_NAME
    deepest = "/".join(["d" * 254] * 16)[: MAX_PATH - 2].rstrip("/")
    assert name_size(deepest) <= MAX_PATH
    samples: list[Message] = [
        Digest(longest, True, (Line(longest, MAX_COUNTER, 0, MAX_COUNTER, True),)),
        Want("A", "B", 0, 0, -1, -1, -1, tuple(range(MAX_WANT_PARTS))),
        Part(
            "A",
            "B",
            0,
            MAX_COUNTER,
            0,
            MAX_COUNTER - 1,
            MAX_COUNTER - 1,
            MAX_PARTS - 1,
            MAX_PARTS,
            MAX_COUNTER,
            (
                FileMeta("x" * (MAX_PATH - 2), MAX_COUNTER, MIN_MTIME, MAX_COUNTER, True),
                FileMeta(deepest, 0, -1, MAX_COUNTER),
            ),
        ),
        InfoRequest(MAX_COUNTER, (MAX_PARTS - 1,)),
        Info("A", 0, 0, 1, ""),
        Leave(longest, longest, MAX_COUNTER, MAX_COUNTER, MAX_COUNTER),
        WatchRequest(MAX_COUNTER),
        EventNote(
            longest,
            MAX_COUNTER,
            MAX_COUNTER,
            "restarted",
            longest,
            MAX_COUNTER,
            MAX_COUNTER,
            ("x" * (MAX_PATH - 2), deepest),
            ("a",),
            ("é/ü",),
            MAX_COUNTER,
        ),
    ]
    for message in samples:
        assert decode_untrusted(encode(message)) == message


# -- fuzzing ------------------------------------------------------------------------


@given(st.binary(max_size=512))
@example(b"")
@example(b"null")
@example(b'"digest"')
@example(b"[]")
@example(b"{}")
@example(b'{"proto":1}')
@example(b'{"proto":1,"type":"digest"}')
@example(b'{"proto":1,"type":[]}')
def test_arbitrary_bytes_decode_to_a_message_or_bad_datagram(data: bytes) -> None:
    check_decodes_to_valid_or_bad(data)


mutations = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 10_000), st.integers(0, 7)),
    st.tuples(st.just("truncate"), st.integers(0, 10_000), st.just(0)),
    st.tuples(st.just("delete"), st.integers(0, 10_000), st.just(0)),
    st.tuples(st.just("insert"), st.integers(0, 10_000), st.integers(0, 255)),
    st.tuples(st.just("digit"), st.integers(0, 10_000), st.integers(0, 9)),
)


def mutate(data: bytes, how: tuple[str, int, int]) -> bytes:
    kind, at, value = how
    if not data:
        return bytes([value])
    at %= len(data)
    match kind:
        case "flip":
            return data[:at] + bytes([data[at] ^ (1 << value)]) + data[at + 1 :]
        case "truncate":
            return data[:at]
        case "delete":
            return data[:at] + data[at + 1 :]
        case "insert":
            return data[:at] + bytes([value]) + data[at:]
        case _:
            return data[:at] + str(value).encode() + data[at:]


@given(messages, st.lists(mutations, min_size=1, max_size=4))
def test_mutated_datagrams_decode_to_a_message_or_bad_datagram(
    message: Message, how: list[tuple[str, int, int]]
) -> None:
    data = encode(message)
    for mutation in how:
        data = mutate(data, mutation)
    check_decodes_to_valid_or_bad(data)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats()
    | st.text(max_size=8)
    | st.sampled_from(["a", "A", "../x", "\ud800"]),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=12,
)


@st.composite
def json_bodies(draw: st.DrawFn) -> dict[str, Any]:
    """Well-formed envelopes of one message type, with any JSON in (some of) its fields."""
    kind, strategy = draw(st.sampled_from(list(BY_TYPE.items())))
    valid = json.loads(encode(draw(strategy)))
    body: dict[str, Any] = {"proto": 1, "type": valid["type"]}
    for field in attrs.fields(kind):
        choice = draw(st.integers(0, 5))
        if choice == 0:
            continue  # missing
        body[field.name] = draw(json_values) if choice == 1 else valid[field.name]
    if draw(st.booleans()):
        body.update(draw(st.dictionaries(st.text(max_size=6), json_values, max_size=2)))
    return body


@given(json_bodies())
def test_any_json_decodes_to_a_message_or_bad_datagram(body: dict[str, Any]) -> None:
    data = json.dumps(body, ensure_ascii=True).encode()
    check_decodes_to_valid_or_bad(data)


# -- strictness: what the decoder refuses, and why ---------------------------------


def valid_body(message: Message) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(encode(message))
    return body


def reason(data: bytes) -> str:
    with pytest.raises(BadDatagram) as info:
        decode_untrusted(data)
    return info.value.reason


def reason_of(body: Any) -> str:
    return reason(json.dumps(body).encode())


WANT = Want("A", "B", 3, 4, 3, 2, -1, ())
DIGEST = Digest("A", False, (Line("B", 1, 2, 3, False),), 7, "AQ==")
PART = Part("A", "B", 1, 2, 0, 0, -1, 0, 1, 1, (FileMeta("dir/f", 1, -5, 2),))
NOTE = EventNote("A", 1, 2, "changed", "B", 3, 4, ("new",), ("old",), ("same",), 0)


@pytest.mark.parametrize(
    ("message", "field", "value"),
    [
        (WANT, "generation", "123"),  # a string is not an int
        (WANT, "generation", True),  # a boolean is not an int
        (WANT, "generation", 3.0),  # a float is not an int
        (WANT, "generation", None),
        (WANT, "sender", 5),  # an int is not a string
        (WANT, "parts", "abc"),  # a string is not a list
        (WANT, "parts", ""),  # ...even one with nothing in it
        (WANT, "parts", {}),
        (WANT, "parts", {"0": 1}),  # an object is not a list
        (WANT, "parts", ["1"]),
        (DIGEST, "reply", 1),  # an int is not a boolean
        (DIGEST, "reply", "false"),
        (DIGEST, "lines", "B"),
        (DIGEST, "lines", [["B", 1, 2, 3]]),  # a line is an array of five
        (DIGEST, "lines", [["B", 1, 2, 3, 0]]),  # ...its last a boolean
        (DIGEST, "lines", [["B", "1", 2, 3, False]]),
        (DIGEST, "lines", [{"origin": "B", "generation": 1}]),
        (PART, "files", [["dir/f", 1, -5, 2, False, "extra"]]),
        (PART, "files", [["dir/f", 1.0, -5, 2, False]]),
        (PART, "files", [["dir/f", True, -5, 2, False]]),
        (PART, "files", [[5, 1, -5, 2, False]]),
        (NOTE, "added", "new"),  # a string is not a list of names
        (NOTE, "added", [1]),
        (NOTE, "more", True),
        (NOTE, "kind", ["changed"]),
        (WatchRequest(1), "nonce", "1"),
    ],
)
def test_no_coercion(message: Message, field: str, value: Any) -> None:
    body = valid_body(message)
    assert decode_untrusted(json.dumps(body).encode()) == message  # the control
    body[field] = value
    assert reason_of(body) == "malformed"


@pytest.mark.parametrize(
    "message", [WANT, DIGEST, PART, NOTE, WatchRequest(1), Leave("A", "B", 1, 2, 3)]
)
def test_extra_and_missing_keys(message: Message) -> None:
    body = valid_body(message)
    assert reason_of({**body, "extra": 1}) == "malformed"
    for field in attrs.fields(type(message)):
        short = dict(body)
        del short[field.name]
        if field.default is attrs.NOTHING:
            assert reason_of(short) == "malformed", field.name
        else:  # an optional key: a digest without a summary
            assert decode_untrusted(json.dumps(short).encode()) == attrs.evolve(
                message, **{field.name: field.default}
            )


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"type": "nope"}, "unknown type"),
        ({"type": "Digest"}, "unknown type"),
        ({"type": None}, "protocol version"),
        ({"type": 1}, "protocol version"),
        ({"proto": 2}, "protocol version"),
        ({"proto": 0}, "protocol version"),
        ({"proto": "1"}, "protocol version"),
        ({"proto": True}, "protocol version"),  # true is not 1
        ({"proto": 1.0}, "protocol version"),  # nor is 1.0
        ({"proto": [1]}, "protocol version"),
    ],
)
def test_envelope(change: dict[str, Any], expected: str) -> None:
    assert reason_of({**valid_body(WANT), **change}) == expected


def test_missing_envelope_keys() -> None:
    body = valid_body(WANT)
    del body["proto"]
    assert reason_of(body) == "protocol version"
    body = valid_body(WANT)
    del body["type"]
    assert reason_of(body) == "protocol version"


@pytest.mark.parametrize("body", [[], "want", 1, None, True, [{"proto": 1, "type": "want"}]])
def test_not_an_object(body: Any) -> None:
    assert reason_of(body) == "not an object"


def test_pickle_is_not_json() -> None:
    for payload in (valid_body(WANT), WANT, [1, 2, 3]):
        assert reason(pickle.dumps(payload)) == "not json"


def test_a_key_twice_is_not_json() -> None:
    # Python would keep the last, other parsers the first: refused, whichever comes first.
    data = encode(WANT)
    assert reason(data.replace(b'{"proto":1', b'{"proto":1,"proto":1')) == "not json"
    assert reason(data.replace(b'"origin":"B"', b'"origin":"A","origin":"B"')) == "not json"
    with pytest.raises(BadDatagram, match='the key "origin" twice'):
        decode_untrusted(data.replace(b'"origin":"B"', b'"origin":"B","origin":"B"'))


def test_deep_nesting() -> None:
    assert reason(b"[" * 100_000) == "too large"
    # Within the size limit, the parser's recursion limit is hit, and caught.
    assert reason(b"[" * 30_000 + b"]" * 30_000) == "not json"
    body = json.dumps({**valid_body(DIGEST), "lines": "LINES"}).encode()
    assert reason(body.replace(b'"LINES"', b"[" * 20_000 + b"]" * 20_000)) == "not json"


def test_huge_integers() -> None:
    huge = json.dumps({**valid_body(WANT), "generation": "HUGE"}).encode()
    assert reason(huge.replace(b'"HUGE"', b"1" + b"0" * 5000)) == "not json"  # digit limit
    assert reason_of({**valid_body(WANT), "generation": 2**70}) == "out of bounds"
    assert reason_of({**valid_body(WANT), "generation": 2**63}) == "out of bounds"
    assert decode_untrusted(json.dumps({**valid_body(WANT), "generation": 2**63 - 1}).encode())


def test_not_utf8() -> None:
    data = encode(WANT)
    assert reason(data.replace(b'"A"', b'"\xff"')) == "not json"
    assert reason(data.replace(b'"A"', b'"\xed\xa0\x80"')) == "not json"  # an encoded surrogate
    assert reason(data.replace(b'"A"', b'"\xc3"')) == "not json"  # a cut sequence
    # Valid JSON in another encoding is still not a UTF-8 datagram.
    for encoding in ("utf-16", "utf-16-le", "utf-32", "utf-8-sig"):
        assert reason(data.decode().encode(encoding)) == "not json", encoding


def test_lone_surrogate_in_a_file_name() -> None:
    body = valid_body(PART)
    body["files"][0][0] = "dir/\ud800"
    data = json.dumps(body).encode()  # ASCII, with the escape \ud800
    assert b"\\ud800" in data
    assert reason(data) == "out of bounds"


def test_oversized_datagram() -> None:
    envelope = len(encode(Info("A", 0, 0, 1, "")))
    fits = Info("A", 0, 0, 1, "x" * (MAX_DATAGRAM - envelope))
    assert len(encode(fits)) == MAX_DATAGRAM
    assert decode_untrusted(encode(fits)) == fits
    too_big = Info("A", 0, 0, 1, "x" * (MAX_DATAGRAM - envelope + 1))
    assert reason(encode(too_big)) == "too large"
    assert reason(b" " * (MAX_DATAGRAM + 1)) == "too large"


@pytest.mark.parametrize(
    "name",
    [
        "",
        ".",
        "..",
        "/abs",
        "dir/",
        "a//b",
        "a/./b",
        "a/../b",
        "../up",
        "nul\x00byte",
        "x" * (MAX_PATH - 1),
        "é" * ((MAX_PATH - 2) // 2 + 1),  # under the limit in characters, over it in bytes
        '"' * ((MAX_PATH - 2) // 2 + 1),  # under the limit in characters, over it escaped
    ],
)
def test_bad_file_names(name: str) -> None:
    body = valid_body(PART)
    body["files"][0][0] = name
    assert reason_of(body) == "out of bounds"


@pytest.mark.parametrize("name", ["a", "...", ".hidden", "a/b.c/d", "x" * (MAX_PATH - 2), "é/ü\\b"])
def test_good_file_names(name: str) -> None:
    message = attrs.evolve(PART, files=(FileMeta(name, 0, 0, 1),))
    assert decode_untrusted(encode(message)) == message


@pytest.mark.parametrize(
    ("message", "changes"),
    [
        (WANT, {"sender": ""}),
        (WANT, {"origin": "x" * (MAX_NAME + 1)}),
        (WANT, {"version": -1}),
        (WANT, {"have_version": -2}),
        (WANT, {"base": -2}),
        (WANT, {"parts": list(range(MAX_WANT_PARTS + 1))}),
        (WANT, {"parts": [MAX_PARTS]}),
        (WANT, {"parts": [-1]}),
        (DIGEST, {"sender": ""}),
        (DIGEST, {"lines": [["", 1, 2, 3, False]]}),
        (DIGEST, {"lines": [["B", 1, -1, 3, False]]}),
        (DIGEST, {"roster": -1}),
        (DIGEST, {"roster": 2**32}),
        (DIGEST, {"held": "AQ="}),  # not base64: a missing pad
        (DIGEST, {"held": "A Q=="}),
        (DIGEST, {"held": "AQ==\n"}),
        (DIGEST, {"held": "é" * 4}),
        (DIGEST, {"held": "A" * (MAX_HELD + 4)}),
        (PART, {"base": 2}),  # not below the version
        (PART, {"base": -2}),
        (PART, {"index": 1}),  # not below the count
        (PART, {"index": -1}),
        (PART, {"count": MAX_PARTS + 1, "index": 0}),
        (PART, {"heartbeat": -1}),
        (PART, {"floor": MAX_COUNTER + 1}),
        (PART, {"files": [["f", -1, 0, 1, False]]}),
        (PART, {"files": [["f", 0, MIN_MTIME - 1, 1, False]]}),
        (PART, {"files": [["f", 0, 0, MAX_COUNTER + 1, False]]}),
        # Consistent in itself, or refused (issue 8): the counts, the floor, the base.
        (PART, {"count": MAX_PARTS, "total": 0, "files": []}),  # 2**20 parts of nothing
        (PART, {"count": 2}),  # two parts, one record
        (PART, {"total": 0}),  # fewer records in all than in this part
        (PART, {"total": 2, "files": []}),  # an empty part of a list that has records
        (PART, {"floor": 3}),  # a floor above the version
        (PART, {"floor": 1, "base": 0}),  # a delta from below the floor
        (PART, {"files": [["f", 0, 0, 3, False]]}),  # a record newer than the version
        (PART, {"base": 1, "floor": 1, "files": [["f", 0, 0, 1, False]]}),  # not after the base
        (WANT, {"base": 4}),  # a delta from the version asked for
        (WANT, {"base": 5}),
        (DIGEST, {"lines": [["B", 1, 2, 3, False], ["B", 1, 2, 3, True]]}),  # an origin twice
        (InfoRequest(1, ()), {"nonce": -1}),
        (InfoRequest(1, ()), {"parts": [MAX_PARTS]}),
        (Info("A", 1, 0, 1, ""), {"index": 1}),
        (Info("A", 1, 0, 1, ""), {"sender": "x" * (MAX_NAME + 1)}),
        (Leave("A", "B", 1, 2, 3), {"origin": ""}),
        (Leave("A", "B", 1, 2, 3), {"heartbeat": -1}),
        (Leave("A", "B", 1, 2, 3), {"generation": MAX_COUNTER + 1}),
        (WatchRequest(1), {"nonce": -1}),
        (WatchRequest(1), {"nonce": MAX_COUNTER + 1}),
        (NOTE, {"kind": "deleted"}),  # not a kind of event
        (NOTE, {"kind": "Joined"}),
        (NOTE, {"kind": ""}),
        (NOTE, {"sender": ""}),
        (NOTE, {"origin": "x" * (MAX_NAME + 1)}),
        (NOTE, {"seq": -1}),
        (NOTE, {"more": -1}),
        (NOTE, {"version": MAX_COUNTER + 1}),
        (NOTE, {"added": ["../up"]}),  # not a relative path
        (NOTE, {"added": ["ok", "/abs"]}),
        (NOTE, {"removed": [""]}),
        (NOTE, {"changed": ["a//b"]}),
        (NOTE, {"added": ["x" * (MAX_PATH - 1)]}),  # one byte too long
        (NOTE, {"added": ["nul\x00byte"]}),
    ],
)
def test_out_of_bounds(message: Message, changes: dict[str, Any]) -> None:
    assert decode_untrusted(encode(message)) == message  # the control
    assert reason_of({**valid_body(message), **changes}) == "out of bounds"


# -- transfers ---------------------------------------------------------------------

LONGEST_SENDER = "s" * MAX_NAME
LONGEST_ORIGIN = "o" * MAX_NAME


@st.composite
def entries_to_send(draw: st.DrawFn) -> Entry:
    """Entries of names as long as a scan lets through, with awkward characters."""
    # Short records fill a part to within a few bytes; wide numbers widen both.
    widest = st.just(MAX_COUNTER) | counters
    names = file_names(8, name_size) | file_names(MAX_NAME_SIZE, name_size)
    metas = st.builds(FileMeta, names, widest, st.just(MIN_MTIME) | mtimes, widest, st.booleans())
    files = draw(st.lists(metas, max_size=40, unique_by=lambda f: f.name))
    version = draw(st.integers(1, MAX_COUNTER) | st.just(MAX_COUNTER))
    records = tuple(sorted(attrs.evolve(f, seq=1 + f.seq % version) for f in files))
    return Entry(draw(widest), version, draw(widest), draw(st.integers(0, version)), records)


@pytest.mark.parametrize("max_datagram", [1_200, 8_192, MAX_DATAGRAM])
@given(data=st.data())
def test_parts_fit_max_datagram(max_datagram: int, data: st.DataObject) -> None:
    entry = data.draw(entries_to_send())
    transfer = prepare(LONGEST_ORIGIN, entry, -1, max_datagram)
    assert transfer.total == len(entry.files)
    assert tuple(r for part in transfer.parts for r in part) == entry.files
    assert all(transfer.parts) or transfer.parts == ((),)
    sizes = [
        len(encode(transfer.part(LONGEST_SENDER, MAX_COUNTER, i)))
        for i in range(len(transfer.parts))
    ]
    assert max(sizes) <= max_datagram
    last = transfer.part(LONGEST_SENDER, MAX_COUNTER, len(transfer.parts) - 1)
    assert decode_untrusted(encode(last)) == last


@given(file_metas(MAX_NAME_SIZE, name_size))
def test_record_size_is_exact(record: FileMeta) -> None:
    empty = Part("A", "B", 1, 2, 3, 0, -1, 0, 1, 1, ())
    one = attrs.evolve(empty, files=(record,))
    two = attrs.evolve(empty, files=(record, record))
    assert record_size(record) == len(encode(two)) - len(encode(one))  # with its comma
    assert name_size(record.name) == len(json.dumps(record.name, ensure_ascii=False).encode())


@pytest.mark.parametrize("max_datagram", [1_200, 1_201, 8_192, MAX_DATAGRAM])
@pytest.mark.parametrize("char", ["x", "é", "\x01", '"'])
def test_the_longest_name_fits_and_no_longer(max_datagram: int, char: str) -> None:
    def largest_part(name: str) -> int:
        record = FileMeta(name, MAX_COUNTER, MIN_MTIME, MAX_COUNTER)
        entry = Entry(MAX_COUNTER, MAX_COUNTER, 0, MAX_COUNTER, (record,))
        transfer = prepare(LONGEST_ORIGIN, entry, -1, max_datagram)
        return max(
            len(encode(transfer.part(LONGEST_SENDER, MAX_COUNTER, i)))
            for i in range(len(transfer.parts))
        )

    limit = max_name_size(max_datagram)
    longest = char * ((limit - name_size("")) // (name_size(char) - name_size("")))
    assert name_size(longest) <= limit < name_size(longest + char)
    size = largest_part(longest)
    assert size <= max_datagram
    # And not wasteful: what is left is the overhead's slack, and the room
    # for fields this part has narrower than their widest (index, count,
    # total, base), the comma a last record does not need, and less than
    # one more character.
    assert max_datagram - size < 16 + 47 + 1 + name_size(char) - name_size("")


def test_the_scanners_limit_is_the_smallest_datagrams() -> None:
    assert max_name_size(1_200 - 29) == MAX_NAME_SIZE == MAX_PATH  # room for a cluster key
    assert name_size('a"b') == 6
    assert name_size("\x01") == 8
    assert name_size("é") == 4


def scan_of(names: list[str], salt: int) -> dict[str, tuple[int, int]]:
    return {name: (len(name) + salt, -salt) for name in names}


@st.composite
def transfers(draw: st.DrawFn) -> tuple[Entry | None, Entry, int]:
    """A held entry (or none), the newest, and the transfer's base (-1: the whole list)."""
    names = draw(st.lists(file_names(200), min_size=1, max_size=40, unique=True))
    first = first_entry(draw(counters), scan_of(names, 0))
    kept = draw(st.lists(st.sampled_from(names), unique=True))
    newest = rescan(first, scan_of(kept, 1) | scan_of(["new/" + n for n in kept], 0))
    if newest is None or draw(st.booleans()):
        return None, newest or first, -1
    return first, newest, first.version


@given(transfers(), st.data())
def test_assemblies_reassemble_in_any_order(
    case: tuple[Entry | None, Entry, int], data: st.DataObject
) -> None:
    held, newest, base = case
    transfer = prepare("B", newest, base, 1_200)
    count = len(transfer.parts)
    order = data.draw(st.permutations(range(count)))
    repeats = data.draw(st.lists(st.integers(0, count - 1), max_size=count))
    arrivals = data.draw(st.permutations([*order, *repeats]))
    assemblies = Assemblies()
    seen: set[int] = set()
    received = None
    for index in arrivals:
        received, _ = assemblies.add(transfer.part("C", newest.heartbeat, index), now=0.0)
        seen.add(index)
        if len(seen) < count:
            assert received is None, "an entry before all its parts"
        else:
            break
    assert received is not None
    assert finish(received, base, held) == newest
    assert len(assemblies) == 0


def test_assemblies_keep_the_newest_transfer() -> None:
    names = [f"dir{i}/" + "f" * 200 for i in range(12)]
    old = first_entry(5, scan_of(names, 0))
    new = rescan(old, scan_of(names, 1))
    assert new is not None
    old_parts, new_parts = prepare("B", old, -1, 1_200), prepare("B", new, -1, 1_200)
    assert len(old_parts.parts) > 1
    assemblies = Assemblies()
    assert assemblies.add(new_parts.part("C", 0, 0), 0.0)[0] is None
    # A part of an older version does not disturb the newer transfer under way.
    for i in range(len(old_parts.parts)):
        assert assemblies.add(old_parts.part("C", 0, i), 0.0)[0] is None
    received = None
    for i in range(1, len(new_parts.parts)):
        received, _ = assemblies.add(new_parts.part("C", 0, i), 0.0)
    assert received is not None
    assert finish(received, -1, None) == new


def test_assemblies_refuse_parts_that_miscount_their_records() -> None:
    files = (FileMeta("a", 1, 1, 1), FileMeta("b", 1, 1, 1))
    assemblies = Assemblies()
    half = Part("C", "B", 1, 1, 0, 0, -1, 0, 2, 3, files)  # says 3 records in 2 parts
    assert assemblies.add(half, 0.0)[0] is None
    with pytest.raises(ValueError, match="2 records, the parts said 3"):
        assemblies.add(attrs.evolve(half, index=1, files=()), 0.0)
    assert len(assemblies) == 0
    whole = attrs.evolve(half, count=1, total=2)
    assert assemblies.add(whole, 0.0)[0] == Entry(1, 1, 0, 0, files)


def test_finish_refuses_inconsistent_transfers() -> None:
    one = first_entry(1, {"a": (1, 1), "b": (2, 2)})
    two = rescan(one, {"a": (1, 1), "b": (3, 3)})
    assert two is not None
    assert finish(two, -1, None) == two
    unsorted = attrs.evolve(two, files=tuple(reversed(two.files)))
    assert finish(unsorted, -1, None) is None
    twice = attrs.evolve(two, files=(two.files[0], two.files[0]))
    assert finish(twice, -1, None) is None
    beyond = attrs.evolve(two, files=(FileMeta("a", 1, 1, 3),))
    assert finish(beyond, -1, None) is None
    # A delta needs the version it applies to, alive.
    delta = attrs.evolve(two, files=(FileMeta("b", 3, 3, 2),))
    assert finish(delta, 1, one) == two
    assert finish(delta, 1, None) is None
    assert finish(delta, 1, two) is None
    assert finish(delta, 1, attrs.evolve(one, reaped=True)) is None
    stale = attrs.evolve(two, files=(FileMeta("a", 1, 1, 1),))
    assert finish(stale, 1, one) is None  # a record not newer than the base
