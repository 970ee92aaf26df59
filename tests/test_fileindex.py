"""The web page's file index: one row per name across origins; search, sort, pages."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trio_gossip.fileindex import SORTS, FileIndex, Row, Sort, index_key
from trio_gossip.state import Entry, FileMeta


def entry(*files: tuple[str, int, int], version: int = 1, heartbeat: int = 1) -> Entry:
    metas = tuple(sorted(FileMeta(n, s, m, 1) for n, s, m in files))
    return Entry(7, version, heartbeat, 0, metas)


VIEW = {
    "A": entry(("photos/b.jpg", 10, 200), ("README.md", 5, 100), ("x/Ünïcode.txt", 1, 1)),
    "B": entry(("README.md", 5, 100), ("photos/a.jpg", 30, 300)),
    "C": entry(("README.md", 6, 150), ("gone.txt", 1, 1)),
    "D": Entry(3, 4, 5, reaped=True),  # a tombstone: left or reaped, no files
}


def test_one_row_per_name_with_its_holders_and_the_newest_copy() -> None:
    index = FileIndex.build(VIEW)
    assert index.rows == [
        Row("README.md", 6, 150, ("A", "B", "C"), ("A", "B")),
        Row("gone.txt", 1, 1, ("C",), ()),
        Row("photos/a.jpg", 30, 300, ("B",), ()),
        Row("photos/b.jpg", 10, 200, ("A",), ()),
        Row("x/Ünïcode.txt", 1, 1, ("A",), ()),
    ]
    assert index.copies == 7
    assert index.holders == 3


def test_deleted_files_and_tombstones_hold_nothing() -> None:
    deleted = Entry(1, 2, 2, 0, (FileMeta("old.txt", 0, 0, 2, deleted=True),))
    assert FileIndex.build({"A": deleted, "D": VIEW["D"]}).rows == []


def test_the_key_follows_files_not_heartbeats() -> None:
    beat = {**VIEW, "A": entry(("README.md", 5, 100), heartbeat=99)}
    same = {**VIEW, "A": entry(("README.md", 5, 100))}
    newer = {**VIEW, "A": entry(("README.md", 5, 100), version=2)}
    assert index_key(beat) == index_key(same) != index_key(newer)
    assert "D" not in {o for o, _, _ in index_key(VIEW)}


def names(index: FileIndex, **query: object) -> list[str]:
    return [r.name for r in index.query(**query).rows]  # type: ignore[arg-type]


def test_search_ignores_case_and_needs_every_word() -> None:
    index = FileIndex.build(VIEW)
    assert names(index, q="readme") == ["README.md"]
    assert names(index, q="ÜNÏ") == ["x/Ünïcode.txt"]
    assert names(index, q="photos jpg") == ["photos/a.jpg", "photos/b.jpg"]
    assert names(index, q="photos  b") == ["photos/b.jpg"]
    assert names(index, q="nothing") == []
    assert index.query(q="photos").total == 2


def test_filter_by_holder() -> None:
    index = FileIndex.build(VIEW)
    assert names(index, holder="B") == ["README.md", "photos/a.jpg"]
    assert names(index, holder="B", q="photo") == ["photos/a.jpg"]
    assert names(index, holder="Z") == []


def test_sorts_keep_names_in_order_among_equals() -> None:
    index = FileIndex.build(VIEW)
    assert names(index, sort="size") == [
        "gone.txt", "x/Ünïcode.txt", "README.md", "photos/b.jpg", "photos/a.jpg"
    ]  # fmt: skip
    assert names(index, sort="size", descending=True) == [
        "photos/a.jpg", "photos/b.jpg", "README.md", "gone.txt", "x/Ünïcode.txt"
    ]  # fmt: skip
    assert names(index, sort="holders", descending=True)[0] == "README.md"
    assert names(index, sort="mtime", descending=True, q="photos") == [
        "photos/a.jpg",
        "photos/b.jpg",
    ]
    assert names(index, sort="name", descending=True) == [r.name for r in reversed(index.rows)]


def test_pages() -> None:
    index = FileIndex.build(VIEW)
    first, second, third = (index.query(page=p, per_page=2) for p in (1, 2, 3))
    assert [r.name for r in first.rows + second.rows + third.rows] == [r.name for r in index.rows]
    assert (first.total, len(third.rows)) == (5, 1)
    assert index.query(page=4, per_page=2).rows == []


def test_bad_queries() -> None:
    index = FileIndex.build(VIEW)
    with pytest.raises(ValueError, match="sort"):
        index.query(sort="color")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="page"):
        index.query(page=0)


file_names = st.text(alphabet="abAB/é. ", min_size=1, max_size=6)
folders = st.dictionaries(file_names, st.tuples(st.integers(0, 3), st.integers(0, 3)), max_size=8)


@given(
    view=st.dictionaries(st.sampled_from("ABC"), folders, max_size=3),
    q=st.text(alphabet="abAB/é. ", max_size=3),
    holder=st.none() | st.sampled_from("ABZ"),
    order=st.tuples(st.sampled_from(SORTS), st.booleans()),
    per_page=st.integers(1, 5),
)
def test_a_query_is_what_filtering_and_sorting_by_hand_gives(
    view: dict[str, dict[str, tuple[int, int]]],
    q: str,
    holder: str | None,
    order: tuple[Sort, bool],
    per_page: int,
) -> None:
    sort, descending = order
    entries = {o: entry(*((n, s, m) for n, (s, m) in files.items())) for o, files in view.items()}
    index = FileIndex.build(entries)
    # By hand: every name, its holders, filtered, then sorted with ties by name.
    held: dict[str, list[str]] = {}
    for origin in sorted(view):
        for name in view[origin]:
            held.setdefault(name, []).append(origin)
    words = q.casefold().split()
    wanted = [
        n
        for n in sorted(held)
        if all(w in n.casefold() for w in words) and (holder is None or holder in held[n])
    ]
    by_row = {r.name: r for r in index.rows}
    value = {
        "name": lambda n: 0,
        "size": lambda n: by_row[n].size,
        "mtime": lambda n: by_row[n].mtime_ns,
        "holders": lambda n: len(held[n]),
    }[sort]
    if sort == "name" and descending:
        wanted.reverse()
    else:
        wanted.sort(key=value, reverse=descending)
    pages = -(-len(wanted) // per_page) or 1
    got = []
    for page in range(1, pages + 1):
        result = index.query(
            q, holder=holder, sort=sort, descending=descending, page=page, per_page=per_page
        )
        assert result.total == len(wanted)
        got += [r.name for r in result.rows]
    assert got == wanted
    for name, row in by_row.items():
        assert row.holders == tuple(held[name])
        newest = max(view[o][name][::-1] for o in held[name])
        assert (row.mtime_ns, row.size) == newest
        assert row.stale == tuple(o for o in held[name] if view[o][name][::-1] != newest)
