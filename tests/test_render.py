"""The text a person reads: what a snapshot shows, and that no name it holds
can forge a line or reach the terminal as a control sequence."""

from __future__ import annotations

import ast
import datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trio_gossip import format_info
from trio_gossip.render import escape, format_matches, format_summary


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        pytest.param("photo.jpg", "photo.jpg", id="plain"),
        pytest.param("données/資料 проект.txt", "données/資料 проект.txt", id="non-ascii"),
        pytest.param("a\nb", "a\\nb", id="newline"),
        pytest.param("a\tb\rc", "a\\tb\\rc", id="tab-cr"),
        pytest.param("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m", id="escape"),
        pytest.param("bell\a", "bell\\x07", id="bel"),
        pytest.param("\x00\x7f\x85\x9b", "\\x00\\x7f\\x85\\x9b", id="nul-del-c1"),
        pytest.param("evil\u202egpj.exe", "evil\\u202egpj.exe", id="right-to-left-override"),
        pytest.param("a\u200fb\u200bc\ufeff", "a\\u200fb\\u200bc\\ufeff", id="marks-zero-width"),
        pytest.param("x\u2028y", "x\\u2028y", id="line-separator"),
        pytest.param("no\xa0break", "no\\xa0break", id="other-spaces"),
        pytest.param("\ud800lone", "\\ud800lone", id="lone-surrogate"),
        pytest.param("tag\U000e0001", "tag\\U000e0001", id="astral-format"),
        pytest.param("back\\slash", "back\\\\slash", id="backslash"),
        pytest.param("\\n", "\\\\n", id="an-escape-written-out"),
    ],
)
def test_escape(text: str, shown: str) -> None:
    assert escape(text) == shown


every_character = st.characters(exclude_categories=())  # surrogates too


@given(st.text(every_character))
def test_escaped_text_is_printable_and_reads_back(text: str) -> None:
    shown = escape(text)
    assert shown.isprintable()
    # Python's own string literals read the escapes back: one text per output.
    assert ast.literal_eval('"' + shown.replace('"', '\\"') + '"') == text


def file(name: str, size: int = 6, mtime_ns: int = 1_764_353_528_123_456_789) -> dict[str, Any]:
    return {"name": name, "size": size, "mtime_ns": mtime_ns}


def origin(*files: dict[str, Any], heard: float | None = 0.156) -> dict[str, Any]:
    return {
        "generation": 1,
        "version": 3,
        "heartbeat": 40,
        "changed_ago": 42.866,
        "heard_ago": heard,
        "file_count": len(files),
        "files": list(files),
    }


def snapshot(origins: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {
        "peer": "A",
        "address": "127.0.0.1:9101",
        "folder": "/srv/A",
        "origins": origins,
        "reaped": {},
        "statistics": {
            "datagrams_in": 57,
            "datagrams_out": 80,
            "bytes_in": 9225,
            "bytes_out": 13099,
            "rejected": {"wrong address": 2},
            "accepted": 2,
            "reaped": 0,
            "refuted": 0,
            "scans": 22,
            "scan_failures": 0,
        },
        **more,
    }


def local(mtime_ns: int) -> str:
    return datetime.datetime.fromtimestamp(mtime_ns / 1e9).strftime("%Y-%m-%d %H:%M:%S")


def test_format_info_shows_every_origin_and_file() -> None:
    view = snapshot(
        {
            "A": origin(file("hello.txt")),
            "B": origin(file("notes/todo.md", 120), file("photo.jpg", 2_480_133)),
        },
        reaped={"C": {"generation": 1, "version": 1, "reaped_ago": 20.052}},
    )
    when = local(1_764_353_528_123_456_789)
    assert format_info(view).split("\n") == [
        "peer A at 127.0.0.1:9101, folder /srv/A",
        "2 origin(s) known",
        "",
        "A (this peer): version 3, changed 43 s ago, heard just now, 1 file(s)",
        f"  hello.txt  6 B  {when}",
        "",
        "B: version 3, changed 43 s ago, heard just now, 2 file(s)",
        f"  notes/todo.md  120 B  {when}",
        f"  photo.jpg  2.4 MB  {when}",
        "",
        "reaped: C (version 1, 20 s ago)",
        "",
        "datagrams in 57 (9.0 KB), out 80 (12.8 KB); rejected: wrong address 2; "
        "accepted 2, reaped 0",
    ]


HOSTILE = [
    "two\nlines.txt",
    "\x1b]0;owned\x07title",
    "\x1b[2J\x1b[Hcleared",
    "bell\a",
    "evil\u202egpj.exe",
    "back\\n-slash",
    "cr\roverwrite",
    "\u2029paragraph",
]


def test_no_name_forges_a_line_or_reaches_the_terminal() -> None:
    hostile = "B\n\x1b[31m"  # a peer is not trusted more than a file
    view = snapshot(
        {"A": origin(*(file(n) for n in HOSTILE)), hostile: origin(file("x"))},
        folder="/srv/\x1b[0m\nA",
        reaped={"\rD": {"generation": 1, "version": 1, "reaped_ago": None}},
    )
    view["statistics"]["rejected"] = {"forged\nreason": 1}
    for text in (format_info(view), format_summary(view)):
        lines = text.split("\n")
        assert all(line.isprintable() for line in lines)
    info = format_info(view).split("\n")
    # Header 2, then per origin a blank and its line, a line per file; reaped 2, statistics 2.
    assert len(info) == 2 + (2 + len(HOSTILE)) + (2 + 1) + 2 + 2
    files = [line for line in info if line.startswith("  ")]
    assert [f.split("  ")[1] for f in files[: len(HOSTILE)]] == [escape(n) for n in HOSTILE]
    assert "B\\n\\x1b[31m: version 3" in format_info(view)
    assert "reaped: \\rD (version 1, never)" in format_info(view)


def test_summary_is_one_line_per_origin_without_files() -> None:
    view = snapshot(
        {
            "A": origin(file("hello.txt")),
            "B": origin(file("photo.jpg"), heard=None),
            "C": origin(heard=301.0),
        }
    )
    assert format_summary(view).split("\n") == [
        "peer A at 127.0.0.1:9101, folder /srv/A",
        "3 origin(s) known",
        "",
        "A (this peer): version 3, changed 43 s ago, heard just now, 1 file(s)",
        "B: version 3, changed 43 s ago, heard never, 1 file(s)",
        "C: version 3, changed 43 s ago, heard 5 min ago, 0 file(s)",
        "",
        "datagrams in 57 (9.0 KB), out 80 (12.8 KB); rejected: wrong address 2; "
        "accepted 2, reaped 0",
    ]


def test_matches_by_origin() -> None:
    view = snapshot({"A": origin(), "B": origin()})
    matches = {"A": [file("a.jpg")], "B": [file("x/b.jpg", 3 << 30), file("c\n.jpg")]}
    when = local(1_764_353_528_123_456_789)
    assert format_matches(view, matches).split("\n") == [
        "A (this peer): 1 file(s)",
        f"  a.jpg  6 B  {when}",
        "B: 2 file(s)",
        f"  x/b.jpg  3.0 GB  {when}",
        f"  c\\n.jpg  6 B  {when}",
    ]
    assert format_matches(view, {}) == ""


def test_a_time_no_date_holds_is_shown_as_its_number() -> None:
    huge = 10**30  # past the year 9999
    view = snapshot({"A": origin(file("far.txt", mtime_ns=huge))})
    assert f"  far.txt  6 B  mtime_ns {huge}" in format_info(view).split("\n")
