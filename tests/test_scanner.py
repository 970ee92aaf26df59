"""The folder scanner: every regular file below the root, by relative POSIX name."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trio_gossip.scanner import MAX_NAME_SIZE, Scan, ScanError, scan_folder
from trio_gossip.sizes import name_size


def put(root: Path, name: str, data: bytes, mtime_ns: int) -> None:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, ns=(mtime_ns, mtime_ns))


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    put(root, "a.txt", b"abc", 1_000_000_001)
    put(root, "empty", b"", 2_000_000_002)
    put(root, ".hidden", b"h", 3)
    put(root, "dir/sub/deep.bin", b"\x00" * 1000, 1_700_000_000_123_456_789)
    put(root, "ünï/çødé €.txt", "ü".encode(), 5)
    put(root, "dir/old", b"x", -1_000_000_000)  # before 1970
    (root / "dir" / "empty-dir").mkdir()
    outside = tmp_path / "outside"
    put(outside, "secret", b"s", 7)
    (root / "link-to-file").symlink_to(root / "a.txt")
    (root / "link-to-dir").symlink_to(root / "dir")
    (root / "link-outside").symlink_to(outside)
    (root / "dangling").symlink_to(root / "nothing")
    os.mkfifo(root / "dir" / "pipe")
    return root


def test_scan_a_tree(tree: Path) -> None:
    scan = scan_folder(tree)
    assert scan == Scan(
        {
            "a.txt": (3, 1_000_000_001),
            "empty": (0, 2_000_000_002),
            ".hidden": (1, 3),
            "dir/sub/deep.bin": (1000, 1_700_000_000_123_456_789),
            "ünï/çødé €.txt": (2, 5),
            "dir/old": (1, -1_000_000_000),
        },
        (),
    )


def test_sizes_and_times_are_the_files(tree: Path) -> None:
    for name, (size, mtime_ns) in scan_folder(tree).files.items():
        info = (tree / name).lstat()
        assert stat.S_ISREG(info.st_mode)
        assert (size, mtime_ns) == (info.st_size, info.st_mtime_ns)


def test_an_empty_folder(tmp_path: Path) -> None:
    assert scan_folder(tmp_path) == Scan({}, ())


def test_a_missing_root(tmp_path: Path) -> None:
    with pytest.raises(ScanError) as info:
        scan_folder(tmp_path / "nope")
    assert str(info.value) == f"{tmp_path / 'nope'}: no such folder"


def test_a_root_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(ScanError) as info:
        scan_folder(tmp_path / "file")
    assert str(info.value) == f"{tmp_path / 'file'}: cannot read: Not a directory"


def test_a_root_that_is_a_link_to_a_folder(tree: Path, tmp_path: Path) -> None:
    # The root itself is where the user points: it may be a link.
    (tmp_path / "via").symlink_to(tree)
    assert scan_folder(tmp_path / "via") == scan_folder(tree)


@pytest.mark.skipif(
    os.geteuid() == 0, reason="root reads a chmod 000 directory; see the monkeypatched case"
)
def test_an_unreadable_subdirectory(tree: Path) -> None:
    locked = tree / "dir" / "sub"
    locked.chmod(0)
    try:
        with pytest.raises(ScanError) as info:
            scan_folder(tree)
    finally:
        locked.chmod(0o755)
    assert str(info.value) == f"{locked}: cannot read: Permission denied"


def failing_scandir(monkeypatch: pytest.MonkeyPatch, where: Path, error: OSError) -> list[str]:
    """Make ``os.scandir`` of ``where`` fail with ``error``; returns the paths scanned."""
    real = os.scandir
    seen: list[str] = []

    def scandir(path: Any) -> Iterator[os.DirEntry[str]]:
        seen.append(os.fspath(path))
        if os.fspath(path) == os.fspath(where):
            raise error
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)  # the scanner calls os.scandir
    return seen


def test_an_unreadable_subdirectory_fails_the_whole_scan(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    locked = tree / "dir" / "sub"
    seen = failing_scandir(monkeypatch, locked, PermissionError(13, "Permission denied"))
    with pytest.raises(ScanError) as info:
        scan_folder(tree)
    assert str(info.value) == f"{locked}: cannot read: Permission denied"
    assert os.fspath(locked) in seen


def test_an_unreadable_root(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    failing_scandir(monkeypatch, tree, PermissionError(13, "Permission denied"))
    with pytest.raises(ScanError) as info:
        scan_folder(tree)
    assert str(info.value) == f"{tree}: cannot read: Permission denied"


def test_a_subdirectory_removed_while_scanning_is_gone(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    failing_scandir(monkeypatch, tree / "dir", FileNotFoundError(2, "No such file or directory"))
    files = scan_folder(tree).files
    assert sorted(files) == [".hidden", "a.txt", "empty", "ünï/çødé €.txt"]


def test_names_that_are_not_utf8_are_skipped(tree: Path) -> None:
    raw = os.fsencode(tree)
    for name in (b"bad\xff.txt", b"dir/\xe9t\xe9"):
        with open(os.path.join(raw, name), "wb") as f:
            f.write(b"x")
    os.mkdir(os.path.join(raw, b"bad\xfedir"))
    with open(os.path.join(raw, b"bad\xfedir", b"inside"), "wb") as f:
        f.write(b"y")
    scan = scan_folder(tree)
    assert scan.files == scan_folder_without_bad(tree)
    assert sorted(scan.skipped) == ["bad\ufffd.txt", "bad\ufffddir/inside", "dir/\ufffdt\ufffd"]
    assert all(name.encode() for name in scan.files)


def scan_folder_without_bad(tree: Path) -> dict[str, tuple[int, int]]:
    """What the scan held before the bad names came."""
    return {
        name: ((tree / name).stat().st_size, (tree / name).stat().st_mtime_ns)
        for name in [".hidden", "a.txt", "empty", "dir/sub/deep.bin", "ünï/çødé €.txt", "dir/old"]
    }


def long_name(length: int, char: str = "d") -> str:
    """A relative name of exactly ``length`` characters, in components of at most 200."""
    parts: list[str] = []
    left = length
    while left > 0:
        take = min(200, left if left <= 200 else left - 2)  # leave room: no empty part
        parts.append(char * take)
        left -= take + 1
    name = "/".join(parts)
    assert len(name) == length
    return name


def test_names_too_long_to_travel_are_skipped(tmp_path: Path) -> None:
    # The limit counts bytes as a record carries them: two quotes around the name.
    fits = long_name(MAX_NAME_SIZE - 2)
    too_long = long_name(MAX_NAME_SIZE - 1, "e")
    # Short on disk, long on the wire: a quote travels as two bytes.
    escaped = long_name(MAX_NAME_SIZE // 2 + 2, '"')
    assert name_size(fits) == MAX_NAME_SIZE
    assert name_size(too_long) == MAX_NAME_SIZE + 1
    assert len(escaped.encode()) < MAX_NAME_SIZE < name_size(escaped)
    for name in (fits, too_long, escaped):
        put(tmp_path, name, b"1", 1)
    scan = scan_folder(tmp_path)
    assert scan.files == {fits: (1, 1)}
    assert sorted(scan.skipped) == sorted([too_long, escaped])
    # A caller that knows its datagrams are larger may allow more.
    assert set(scan_folder(tmp_path, max_name=2 * MAX_NAME_SIZE).files) == {
        fits,
        too_long,
        escaped,
    }


@given(st.text(st.characters(exclude_categories=["Cs"])))
def test_the_size_of_a_name_is_its_size_as_json(name: str) -> None:
    # Without a character JSON escapes, name_size skips writing it as JSON.
    assert name_size(name) == len(json.dumps(name, ensure_ascii=False).encode())
