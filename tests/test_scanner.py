"""The folder scanner: every regular file below the root, by relative POSIX name;
what it cannot read or cannot share is skipped and said, never a failure of the
whole scan unless it is the folder itself."""

from __future__ import annotations

import errno
import json
import os
import pwd
import shutil
import stat
import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import trio_gossip.scanner
from trio_gossip.scanner import (
    CHECK_EVERY,
    LINK,
    MAX_NAME_SIZE,
    NOT_UTF8,
    SPECIAL,
    TOO_LONG,
    UNREADABLE,
    Scan,
    ScanError,
    ScanStopped,
    Skipped,
    scan_folder,
)
from trio_gossip.sizes import name_size

#: What the ``tree`` fixture holds besides its regular files.
TREE_SKIPPED = {
    LINK: ("dangling", "link-outside", "link-to-dir", "link-to-file"),
    SPECIAL: ("dir/pipe",),
}


def put(root: Path, name: str, data: bytes, mtime_ns: int) -> None:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, ns=(mtime_ns, mtime_ns))


def make_tree(root: Path, outside: Path) -> None:
    put(root, "a.txt", b"abc", 1_000_000_001)
    put(root, "empty", b"", 2_000_000_002)
    put(root, ".hidden", b"h", 3)
    put(root, "dir/sub/deep.bin", b"\x00" * 1000, 1_700_000_000_123_456_789)
    put(root, "ünï/çødé €.txt", "ü".encode(), 5)
    put(root, "dir/old", b"x", -1_000_000_000)  # before 1970
    (root / "dir" / "empty-dir").mkdir()
    put(outside, "secret", b"s", 7)
    (root / "link-to-file").symlink_to(root / "a.txt")
    (root / "link-to-dir").symlink_to(root / "dir")
    (root / "link-outside").symlink_to(outside)
    (root / "dangling").symlink_to(root / "nothing")
    os.mkfifo(root / "dir" / "pipe")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    make_tree(tmp_path / "root", tmp_path / "outside")
    return tmp_path / "root"


TREE_FILES = {
    "a.txt": (3, 1_000_000_001),
    "empty": (0, 2_000_000_002),
    ".hidden": (1, 3),
    "dir/sub/deep.bin": (1000, 1_700_000_000_123_456_789),
    "ünï/çødé €.txt": (2, 5),
    "dir/old": (1, -1_000_000_000),
}


def without(files: dict[str, tuple[int, int]], *gone: str) -> dict[str, tuple[int, int]]:
    return {name: v for name, v in files.items() if not name.startswith(gone)}


def test_scan_a_tree(tree: Path) -> None:
    # Links are not followed, the fifo is not a file: both are said, not shared.
    assert scan_folder(tree) == Scan(TREE_FILES, Skipped(TREE_SKIPPED))


def test_sizes_and_times_are_the_files(tree: Path) -> None:
    for name, (size, mtime_ns) in scan_folder(tree).files.items():
        info = (tree / name).lstat()
        assert stat.S_ISREG(info.st_mode)
        assert (size, mtime_ns) == (info.st_size, info.st_mtime_ns)


def test_an_empty_folder(tmp_path: Path) -> None:
    assert scan_folder(tmp_path) == Scan({}, Skipped({}))
    assert scan_folder(tmp_path).skipped.total == 0


# -- the folder itself: the only ScanError ------------------------------------


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


class Listing:
    """What ``os.scandir`` returns, from a list of entries, with a hook between them."""

    def __init__(self, entries: list[os.DirEntry[str]], hook: Callable[[int], None]) -> None:
        self._entries = entries
        self._hook = hook

    def __enter__(self) -> Listing:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def __iter__(self) -> Iterator[os.DirEntry[str]]:
        for index, entry in enumerate(self._entries):
            self._hook(index)
            yield entry


def patch_scandir(
    monkeypatch: pytest.MonkeyPatch,
    where: Path,
    *,
    error: OSError | None = None,
    hook: Callable[[int], None] = lambda index: None,
) -> list[str]:
    """Make ``os.scandir`` of ``where`` raise ``error``, or list it and call
    ``hook(i)`` before its ``i``-th entry (sorted by name). Returns the paths scanned."""
    real = os.scandir
    seen: list[str] = []

    def scandir(path: Any) -> Any:
        if isinstance(path, int):  # shutil.rmtree's, by file descriptor
            return real(path)
        seen.append(os.fspath(path))
        if os.fspath(path) != os.fspath(where):
            return real(path)
        if error is not None:
            raise error
        with real(path) as entries:
            listed = sorted(entries, key=lambda e: e.name)
        return Listing(listed, hook)

    monkeypatch.setattr(os, "scandir", scandir)  # the scanner calls os.scandir
    return seen


def at_first(action: Callable[[], object]) -> Callable[[int], None]:
    """A hook that does ``action`` before the listing's first entry."""

    def hook(index: int) -> None:
        if index == 0:
            action()

    return hook


def test_an_unreadable_root(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    patch_scandir(monkeypatch, tree, error=PermissionError(13, "Permission denied"))
    with pytest.raises(ScanError) as info:
        scan_folder(tree)
    assert str(info.value) == f"{tree}: cannot read: Permission denied"


def test_a_root_whose_listing_breaks_off(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def hook(index: int) -> None:
        if index == 3:
            raise OSError(errno.EIO, "Input/output error")

    patch_scandir(monkeypatch, tree, hook=hook)
    with pytest.raises(ScanError) as info:
        scan_folder(tree)
    assert str(info.value) == f"{tree}: cannot read: Input/output error"


def test_a_folder_removed_while_scanning(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Half of it was read before it went: that half is not the folder.
    patch_scandir(monkeypatch, tree / "dir", hook=at_first(lambda: shutil.rmtree(tree)))
    with pytest.raises(ScanError) as info:
        scan_folder(tree)
    assert str(info.value) == f"{tree}: removed while scanning"


def test_a_folder_deleted_and_recreated(
    tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def replace(index: int) -> None:
        if index == 0:
            shutil.rmtree(tree)
            put(tree, "new", b"n", 9)

    # While a scan reads it: what it read mixes two folders, so none of it counts.
    patch_scandir(monkeypatch, tree / "dir", hook=replace)
    with pytest.raises(ScanError) as info:
        scan_folder(tree)
    assert str(info.value) == f"{tree}: replaced while scanning"
    monkeypatch.undo()
    # The next scan reads the new folder.
    assert scan_folder(tree) == Scan({"new": (1, 9)})
    # Between scans: gone is a ScanError, back is a folder like any other.
    shutil.rmtree(tree)
    with pytest.raises(ScanError, match="no such folder"):
        scan_folder(tree)
    make_tree(tree, tmp_path / "outside2")
    assert scan_folder(tree) == Scan(TREE_FILES, Skipped(TREE_SKIPPED))


# -- inside the folder: skipped, said, the rest shared ------------------------


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A temporary directory that user nobody can reach (pytest's own is private)."""
    path = Path(tempfile.mkdtemp())
    path.chmod(0o755)
    if any(not p.stat().st_mode & stat.S_IXOTH for p in path.parents):
        pytest.skip(f"others cannot reach {path.parent}")  # e.g. a private TMPDIR
    try:
        yield path
    finally:
        for dirpath, _, _ in os.walk(path):
            os.chmod(dirpath, 0o755)  # so that a user who is not root can remove it
        shutil.rmtree(path)


def scan_unprivileged(root: Path) -> Scan:
    """``scan_folder(root)`` by a user the permission bits apply to: ourselves,
    or, as root (who reads everything), user nobody in a child process."""
    if os.geteuid() != 0:
        return scan_folder(root)
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user nobody to drop root's privileges to")
    read, write = os.pipe()
    with warnings.catch_warnings():
        # Python 3.12 warns that forking with threads may deadlock; the child
        # only scans and writes, and takes no lock another thread may hold.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # pragma: no cover -- the child
        status = 1
        try:
            os.close(read)
            os.setgroups([])
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
            scan = scan_folder(root)
            with os.fdopen(write, "w") as out:
                json.dump({"files": scan.files, "skipped": dict(scan.skipped.names)}, out)
            status = 0
        finally:
            os._exit(status)
    os.close(write)
    with os.fdopen(read) as pipe:
        text = pipe.read()
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    got = json.loads(text)
    return Scan(
        {name: (size, mtime) for name, (size, mtime) in got["files"].items()},
        Skipped({kind: tuple(names) for kind, names in got["skipped"].items()}),
    )


def test_unreadable_directories_and_files_are_skipped(shared_tmp: Path) -> None:
    root = shared_tmp / "root"
    make_tree(root, shared_tmp / "outside")
    # No permission at all: not even listed.
    (root / "dir" / "sub").chmod(0)
    # Listed but not searchable: the names are there, their metadata is not.
    put(root, "listed/file", b"f", 1)
    (root / "listed" / "inner").mkdir()
    (root / "listed").chmod(0o444)
    assert scan_unprivileged(root) == Scan(
        without(TREE_FILES, "dir/sub/"),
        Skipped({**TREE_SKIPPED, UNREADABLE: ("dir/sub/", "listed/file", "listed/inner/")}),
    )


def test_an_unreadable_subdirectory_is_skipped(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    locked = tree / "dir" / "sub"
    seen = patch_scandir(monkeypatch, locked, error=OSError(errno.EIO, "Input/output error"))
    assert scan_folder(tree) == Scan(
        without(TREE_FILES, "dir/sub/"), Skipped({**TREE_SKIPPED, UNREADABLE: ("dir/sub/",)})
    )
    assert os.fspath(locked) in seen


def test_a_listing_that_breaks_off_keeps_what_it_gave(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    put(tree, "dir/zzz", b"z", 1)

    def hook(index: int) -> None:
        if index == 3:  # after empty-dir, old, pipe
            raise OSError(errno.EIO, "Input/output error")

    patch_scandir(monkeypatch, tree / "dir", hook=hook)
    scan = scan_folder(tree)
    assert scan.files == without(TREE_FILES, "dir/sub/")
    # The directory counts as unreadable: its other names are unknown.
    assert scan.skipped == Skipped({**TREE_SKIPPED, UNREADABLE: ("dir/",)})
    assert scan.skipped.hides("dir/zzz")


def test_a_subdirectory_removed_while_scanning_is_gone(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Listed, then removed before the scan goes into it.
    patch_scandir(monkeypatch, tree, hook=at_first(lambda: shutil.rmtree(tree / "dir")))
    assert scan_folder(tree) == Scan(
        without(TREE_FILES, "dir/"), Skipped({LINK: TREE_SKIPPED[LINK]})
    )


def test_a_file_removed_while_scanning_is_gone(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Listed, then removed before the scan reads its size.
    gone = tree / "dir" / "old"
    patch_scandir(monkeypatch, tree / "dir", hook=at_first(gone.unlink))
    assert scan_folder(tree) == Scan(without(TREE_FILES, "dir/old"), Skipped(TREE_SKIPPED))


def test_names_that_are_not_utf8_are_skipped(tree: Path) -> None:
    raw = os.fsencode(tree)
    for name in (b"bad\xff.txt", b"dir/\xe9t\xe9"):
        with open(os.path.join(raw, name), "wb") as f:
            f.write(b"x")
    os.mkdir(os.path.join(raw, b"bad\xfedir"))
    with open(os.path.join(raw, b"bad\xfedir", b"inside"), "wb") as f:
        f.write(b"y")
    scan = scan_folder(tree)
    assert scan.files == TREE_FILES
    # A directory's name stands for everything in it; bytes not UTF-8 show as U+FFFD.
    not_utf8 = ("bad\ufffd.txt", "bad\ufffddir/", "dir/\ufffdt\ufffd")
    assert scan.skipped == Skipped({**TREE_SKIPPED, NOT_UTF8: not_utf8})
    assert all(name.encode() for names in scan.skipped.names.values() for name in names)


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
    assert scan.skipped == Skipped({TOO_LONG: tuple(sorted([too_long, escaped]))})
    # A caller that knows its datagrams are larger may allow more.
    assert set(scan_folder(tmp_path, max_name=2 * MAX_NAME_SIZE).files) == {
        fits,
        too_long,
        escaped,
    }


def test_a_directory_too_long_to_travel_is_skipped_whole(tmp_path: Path) -> None:
    # "x" is the shortest name inside a directory: a directory where that
    # would not fit holds nothing that does, and is not read. (A quote
    # travels as two bytes.)
    base = "q" * 200 + "/" + '"' * 50 + "/" + "d" * 200
    fits = base + "/" + "d" * (MAX_NAME_SIZE - name_size(base + "//x"))
    assert name_size(fits + "/x") == MAX_NAME_SIZE
    too_long = fits + "e"
    put(tmp_path, fits + "/x", b"", 1)
    put(tmp_path, fits + "/xy", b"", 1)
    put(tmp_path, too_long + "/x", b"", 1)
    scan = scan_folder(tmp_path)
    assert scan.files == {fits + "/x": (0, 1)}
    assert scan.skipped == Skipped({TOO_LONG: (fits + "/xy", too_long + "/")})


def deep_tree(root: Path, depth: int, part: str) -> None:
    """``root/part/part/…/file``, ``depth`` directories deep, and ``root/part/top``:
    made relative to each directory, as its whole path may be too long to open."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for level in range(depth):
            os.mkdir(part, dir_fd=fd)
            inner = os.open(part, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = inner
            if level == 0:
                os.close(os.open("top", os.O_WRONLY | os.O_CREAT, dir_fd=fd))
        os.close(os.open("file", os.O_WRONLY | os.O_CREAT, dir_fd=fd))
    finally:
        os.close(fd)


def test_a_path_too_long_for_the_os_is_skipped(tmp_path: Path) -> None:
    path_max = os.pathconf(tmp_path, "PC_PATH_MAX")
    part = "d" * 200
    deep_tree(tmp_path, path_max // len(part) + 2, part)
    # A datagram of this size never travels; the OS's limit is what stops the scan.
    scan = scan_folder(tmp_path, max_name=10 * path_max)
    assert list(scan.files) == [part + "/top"]
    [deepest] = scan.skipped.names[TOO_LONG]
    assert deepest.endswith("/")
    assert set(scan.skipped.names) == {TOO_LONG}
    # The first directory whose path is too long to open, and not its parent.
    assert len(os.fsencode(tmp_path / deepest)) >= path_max
    assert len(os.fsencode(tmp_path / deepest[: -len(part) - 1])) < path_max
    # At the usual limit, the directory that can hold no name short enough
    # to travel is passed over long before.
    shallow = scan_folder(tmp_path).skipped.names[TOO_LONG]
    assert len(shallow) == 1
    assert name_size(shallow[0]) >= MAX_NAME_SIZE > name_size(shallow[0][: -len(part) - 1])


def test_special_files_are_skipped(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    put(tmp_path, "plain", b"p", 1)
    (tmp_path / "link").symlink_to("plain")
    assert scan_folder(tmp_path) == Scan(
        {"plain": (1, 1)}, Skipped({SPECIAL: ("fifo",), LINK: ("link",)})
    )


# -- what a person is told ----------------------------------------------------


def test_one_warning_line_per_kind() -> None:
    long = "long/" + "x" * 100 + ".txt"
    skipped = Skipped.of(
        {
            LINK: ["b", "a"],
            UNREADABLE: ["dir/sub/", "c", long, "zz"],
            NOT_UTF8: ["bad\ufffd"],
            SPECIAL: [],
            "new kind": ["q"],
        }
    )
    assert skipped.total == 8
    assert skipped.lines() == [
        "skipped 4 paths that cannot be read: 'c', 'dir/sub/' and 2 more",
        "skipped 1 name that is not UTF-8: 'bad\ufffd'",
        "skipped 2 symbolic links (not followed): 'a', 'b'",
        "skipped 1 new kind: 'q'",
    ]
    # A long name keeps its start and its end, 60 characters in all.
    assert Skipped({TOO_LONG: (long,)}).lines() == [
        f"skipped 1 name too long to share: '{long[:29]}…{long[-30:]}'"
    ]
    assert len(long[:29] + "…" + long[-30:]) == 60
    # A name cannot forge a log line.
    assert Skipped({SPECIAL: ("evil\nINFO ok",)}).lines() == [
        "skipped 1 special file (fifo, socket or device): 'evil\\nINFO ok'"
    ]


def test_warnings_again_only_for_what_changed() -> None:
    before = Skipped.of({LINK: ["a", "b"], UNREADABLE: ["x/"]})
    # Found in another order, the same names: nothing new to say.
    assert Skipped.of({LINK: ["b", "a"], UNREADABLE: ["x/"]}) == before
    assert Skipped.of({LINK: ["b", "a"], UNREADABLE: ["x/"]}).lines(since=before) == []
    after = Skipped.of({LINK: ["a", "b", "c"], UNREADABLE: ["x/"]})
    assert after != before
    assert after.lines(since=before) == [
        "skipped 3 symbolic links (not followed): 'a', 'b' and 1 more"
    ]
    # Everything readable again: nothing to warn about.
    assert Skipped().lines(since=before) == []


def test_what_an_unreadable_path_hides() -> None:
    skipped = Skipped({UNREADABLE: ("locked/", "secret"), LINK: ("link",)})
    assert skipped.hides("locked/a/b")
    assert skipped.hides("secret")
    assert not skipped.hides("secrets")
    assert not skipped.hides("locked")  # a file where the directory was is listed if there
    assert not skipped.hides("link")  # a link is no file: a file that became one is gone
    assert not Skipped().hides("anything")


# -- long scans: progress and stopping ----------------------------------------


@pytest.fixture
def flat(tmp_path: Path) -> Path:
    """A folder of 1,000 files: checked after 256, 512 and 768 entries."""
    for i in range(1000):
        (tmp_path / f"f{i:04d}").write_bytes(b"")
    assert 1000 // CHECK_EVERY == 3
    return tmp_path


def test_progress_counts_the_files_so_far(flat: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    counts: list[int] = []
    scan = scan_folder(flat, progress=counts.append, progress_every=0)
    assert counts == [256, 512, 768]
    assert len(scan.files) == 1000
    # A clock that moves one second per look: at most once every two seconds.
    ticks = iter(range(100))
    monkeypatch.setattr(trio_gossip.scanner, "monotonic", lambda: float(next(ticks)))
    counts.clear()
    scan_folder(flat, progress=counts.append, progress_every=2.0)
    assert counts == [512]  # started at 0, looked at 1, 2 and 3


def test_progress_with_directories_counts_files(tmp_path: Path) -> None:
    for i in range(300):
        (tmp_path / f"d{i:03d}").mkdir()
    counts: list[int] = []
    scan = scan_folder(tmp_path, progress=counts.append, progress_every=0)
    assert (scan.files, counts) == ({}, [0])


def test_should_stop_is_honoured(flat: Path) -> None:
    asked = 0

    def should_stop() -> bool:
        nonlocal asked
        asked += 1
        return asked == 2

    with pytest.raises(ScanStopped):
        scan_folder(flat, should_stop=should_stop)
    assert asked == 2
    # Asked every CHECK_EVERY entries while it says no; then the scan is whole.
    asked = -100
    assert len(scan_folder(flat, should_stop=should_stop).files) == 1000
    assert asked == -97


@given(st.text(st.characters(exclude_categories=["Cs"])))
def test_the_size_of_a_name_is_its_size_as_json(name: str) -> None:
    # Without a character JSON escapes, name_size skips writing it as JSON.
    assert name_size(name) == len(json.dumps(name, ensure_ascii=False).encode())
