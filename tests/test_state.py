"""The pure core: the laws of the merge, digests, scans, deltas, refutation and reaping.

Everything here is a plain function of plain data, so everything is tested as
one: properties over generated views and scan histories, and a state machine
of a few replicas that gossip with nothing but these functions.
"""

from __future__ import annotations

import math

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from strategies import ORIGINS, content_of, entries, views

from trio_gossip.state import (
    DELTA_HORIZON,
    Entry,
    FileMeta,
    Key,
    Line,
    apply_delta,
    beat,
    delta_records,
    first_entry,
    live_files,
    merge,
    newer,
    next_reaping,
    proven,
    reap_due,
    refute,
    rescan,
    tombstone,
)

Scanned = dict[str, tuple[int, int]]

# -- the laws of the merge -----------------------------------------------------


@given(views())
def test_idempotent_merge(a: dict[str, Entry]) -> None:
    assert merge(a, a) == a


@given(views(), views())
def test_idempotent_merge_of_a_merged_view(a: dict[str, Entry], b: dict[str, Entry]) -> None:
    ab = merge(a, b)
    assert merge(ab, b) == ab
    assert merge(ab, a) == ab


@given(views(), views())
def test_commutative_merge(a: dict[str, Entry], b: dict[str, Entry]) -> None:
    assert merge(a, b) == merge(b, a)


@given(views(), views(), views())
def test_associative_merge(a: dict[str, Entry], b: dict[str, Entry], c: dict[str, Entry]) -> None:
    assert merge(merge(a, b), c) == merge(a, merge(b, c))


@given(views())
def test_identity_merge(a: dict[str, Entry]) -> None:
    assert merge(a, {}) == a
    assert merge({}, a) == a


@given(views(), views())
def test_merge_is_monotonic(a: dict[str, Entry], b: dict[str, Entry]) -> None:
    merged = merge(a, b)
    assert merged.keys() == a.keys() | b.keys()
    for origin, entry in merged.items():
        assert origin not in a or entry.key >= a[origin].key
        assert origin not in b or entry.key >= b[origin].key
        # The winner is one of the two, never something new.
        assert entry in (a.get(origin), b.get(origin))


@given(views(), views())
def test_merge_does_not_change_its_arguments(a: dict[str, Entry], b: dict[str, Entry]) -> None:
    a_before, b_before = dict(a), dict(b)
    merge(a, b)
    assert (a, b) == (a_before, b_before)


@given(entries("A"), st.integers(0, 3))
def test_an_equal_key_never_replaces_the_held_entry(held: Entry, extra_files: int) -> None:
    # A dishonest copy: the same key, other content. Only a greater key may win.
    impostor = attrs.evolve(
        held, files=tuple(FileMeta(f"impostor/{i}", i, i, 1) for i in range(extra_files + 1))
    )
    assert not newer(impostor, held)
    assert merge({"A": held}, {"A": impostor})["A"] is held
    assert merge({"A": impostor}, {"A": held})["A"] is impostor


@given(entries("A"))
def test_a_greater_key_replaces_the_held_entry(held: Entry) -> None:
    later = beat(held)
    assert later == attrs.evolve(held, heartbeat=held.heartbeat + 1)
    assert newer(later, held)
    assert merge({"A": held}, {"A": later})["A"] is later
    assert newer(held, None)


@given(entries("A").filter(lambda e: not e.reaped))
def test_a_tombstone_beats_an_alive_entry_at_the_same_counters(alive: Entry) -> None:
    dead = tombstone(alive)
    assert dead.reaped
    assert dead.files == ()
    assert dead.content == alive.content
    assert dead.heartbeat == alive.heartbeat
    assert merge({"A": alive}, {"A": dead})["A"] == dead
    assert merge({"A": dead}, {"A": alive})["A"] == dead
    # ...but not a later heartbeat of the same content: the origin outlived its reaping.
    assert merge({"A": dead}, {"A": beat(alive)})["A"] == beat(alive)


# -- digests -------------------------------------------------------------------


def lines_of(view: dict[str, Entry]) -> list[Line]:
    return [Line.of(origin, entry) for origin, entry in view.items()]


@given(views(), views())
def test_proven_takes_heartbeats_and_tombstones_never_content(
    held: dict[str, Entry], sent: dict[str, Entry]
) -> None:
    derived = proven(held, lines_of(sent))
    assert derived.keys() <= sent.keys()
    for origin, entry in derived.items():
        line = Line.of(origin, sent[origin])
        assert newer(entry, held.get(origin))
        if entry.reaped:
            assert entry.key == line.key
            assert entry.files == ()
        else:
            # A heartbeat-only update: the version and files are the ones we
            # held, even when the line's version is newer (those must be fetched).
            before = held[origin]
            assert not before.reaped
            assert before.generation == line.generation
            assert before.version <= line.version
            assert entry == attrs.evolve(before, heartbeat=line.heartbeat)
    # And it takes every such proof there is.
    for origin, entry in sent.items():
        mine = held.get(origin)
        beats_ours = (
            mine is not None
            and not mine.reaped
            and not entry.reaped
            and mine.generation == entry.generation
            and mine.version <= entry.version
            and mine.heartbeat < entry.heartbeat
        )
        assert (origin in derived) == ((entry.reaped and newer(entry, mine)) or beats_ours)


@given(views(), views())
def test_proven_then_merge_keeps_the_laws_honest(
    held: dict[str, Entry], sent: dict[str, Entry]
) -> None:
    # What a digest proves is what a full exchange would have brought, or less.
    via_digest = merge(held, proven(held, lines_of(sent)))
    via_files = merge(held, sent)
    for origin, entry in via_digest.items():
        assert entry.key <= via_files[origin].key
        if entry.key == via_files[origin].key:
            assert entry == via_files[origin]


def test_proven_ignores_new_content_and_stale_lines() -> None:
    held = {"A": Entry(1, 2, 5, 0, content_of("A", 1, 2))}
    assert proven(held, [Line("A", 1, 3, 0)]) == {}  # new content: to be fetched
    assert proven(held, [Line("A", 1, 2, 4)]) == {}  # an older heartbeat
    assert proven(held, [Line("A", 1, 2, 5)]) == {}  # what we hold
    assert proven(held, [Line("B", 1, 1, 9)]) == {}  # an origin we know nothing of
    assert proven(held, [Line("A", 1, 2, 7)]) == {"A": attrs.evolve(held["A"], heartbeat=7)}
    assert proven(held, [Line("A", 1, 1, 9, reaped=True)]) == {}  # a tombstone below ours
    assert proven(held, [Line("B", 1, 1, 0, reaped=True)]) == {"B": Entry(1, 1, 0, reaped=True)}


# -- scanning --------------------------------------------------------------------

NAMES = ["a", "b", "dir/c", "dir/sub/d", "é"]

scans = st.dictionaries(
    st.sampled_from(NAMES), st.tuples(st.integers(0, 2), st.integers(-1, 1)), max_size=len(NAMES)
)


def files_of(entry: Entry) -> Scanned:
    return {f.name: (f.size, f.mtime_ns) for f in live_files(entry)}


def check_well_formed(entry: Entry) -> None:
    names = [f.name for f in entry.files]
    assert names == sorted(set(names))
    assert all(entry.floor < f.seq <= entry.version for f in entry.files if f.deleted)
    assert all(0 < f.seq <= entry.version for f in entry.files)


def check_rescan(old: Entry, scanned: Scanned, new: Entry | None) -> None:
    """``new`` is exactly what :func:`rescan` should make of ``old`` and ``scanned``."""
    before = files_of(old)
    if before == scanned:
        assert new is None
        return
    assert new is not None
    assert (new.generation, new.version, new.heartbeat) == (
        old.generation,
        old.version + 1,
        old.heartbeat,
    )
    assert not new.reaped
    assert new.floor == max(old.floor, new.version - DELTA_HORIZON)
    assert files_of(new) == scanned
    check_well_formed(new)
    old_records = {f.name: f for f in old.files}
    for record in new.files:
        if record.deleted:
            changed = record.name in before
        else:
            changed = before.get(record.name) != scanned[record.name]
        if changed:
            assert record.seq == new.version
        else:
            assert record == old_records[record.name]
    # A name that went away has a deletion record unless it was pruned.
    for name in before.keys() - scanned.keys():
        assert FileMeta(name, 0, 0, new.version, deleted=True) in new.files
    pruned = {f.name for f in old.files if f.deleted} - {f.name for f in new.files}
    for name in pruned:
        assert old_records[name].seq <= new.floor


def history(generation: int, steps: list[tuple[Scanned, int]], busy: int = 0) -> list[Entry]:
    """An origin's versions: a first scan, then each later scan (after some push
    rounds), then ``busy`` more versions in which only one file changes."""
    first, _ = steps[0]
    entry = first_entry(generation, first)
    out = [entry]
    folder = dict(first)
    for scanned, beats in [*steps[1:], *(({**folder, "busy": (i, i)}, 0) for i in range(busy))]:
        for _ in range(beats):
            entry = beat(entry)
        new = rescan(entry, scanned)
        check_rescan(entry, scanned, new)
        folder = dict(scanned)
        if new is not None:
            entry = new
            out.append(entry)
    return out


def test_first_entry() -> None:
    entry = first_entry(7, {"z": (1, 2), "a/b": (3, -4)})
    assert entry == Entry(7, 1, 0, 0, (FileMeta("a/b", 3, -4, 1), FileMeta("z", 1, 2, 1)))


@given(
    st.integers(0, 5),
    st.lists(st.tuples(scans, st.integers(0, 2)), min_size=1, max_size=12),
    st.integers(0, DELTA_HORIZON + 8),
)
def test_rescan(generation: int, steps: list[tuple[Scanned, int]], busy: int) -> None:
    versions = history(generation, steps, busy)  # checks every step against the spec
    assert [e.version for e in versions] == list(range(1, len(versions) + 1))
    for entry in versions:
        check_well_formed(entry)


def test_rescan_examples() -> None:
    own = first_entry(1, {"a": (1, 10), "b": (2, 20)})
    assert rescan(own, {"a": (1, 10), "b": (2, 20)}) is None
    changed = rescan(own, {"a": (1, 11), "b": (2, 20), "c": (0, 30)})
    assert changed == Entry(
        1,
        2,
        0,
        0,
        (FileMeta("a", 1, 11, 2), FileMeta("b", 2, 20, 1), FileMeta("c", 0, 30, 2)),
    )
    deleted = rescan(changed, {"a": (1, 11)})
    assert deleted is not None
    assert deleted.version == 3
    assert deleted.files == (
        FileMeta("a", 1, 11, 2),
        FileMeta("b", 0, 0, 3, deleted=True),
        FileMeta("c", 0, 0, 3, deleted=True),
    )
    # Deleted and deleted again is no change; coming back is one.
    assert rescan(deleted, {"a": (1, 11)}) is None
    back = rescan(deleted, {"a": (1, 11), "b": (5, 50)})
    assert back is not None
    assert back.files == (
        FileMeta("a", 1, 11, 2),
        FileMeta("b", 5, 50, 4),
        FileMeta("c", 0, 0, 3, deleted=True),
    )


def test_deletion_records_are_pruned_below_the_horizon() -> None:
    own = first_entry(1, {"gone": (1, 1), "busy": (0, 0)})
    deleted = rescan(own, {"busy": (0, 0)})
    assert deleted is not None
    assert FileMeta("gone", 0, 0, 2, deleted=True) in deleted.files
    entry = deleted
    for i in range(1, DELTA_HORIZON + 1):
        new = rescan(entry, {"busy": (0, i)})
        assert new is not None
        entry = new
        assert entry.floor == max(0, entry.version - DELTA_HORIZON)
        assert (FileMeta("gone", 0, 0, 2, deleted=True) in entry.files) == (entry.floor < 2)
    assert entry.version == DELTA_HORIZON + 2
    assert entry.floor == 2
    assert entry.files == (FileMeta("busy", 0, DELTA_HORIZON, entry.version),)


# -- deltas ----------------------------------------------------------------------


@given(
    st.integers(0, 5),
    st.lists(st.tuples(scans, st.integers(0, 2)), min_size=1, max_size=12),
    st.integers(0, DELTA_HORIZON + 8),
)
def test_delta_round_trip(generation: int, steps: list[tuple[Scanned, int]], busy: int) -> None:
    versions = history(generation, steps, busy)
    newest = versions[-1]
    for base in versions[:-1]:
        records = delta_records(newest, base.version)
        if base.version < newest.floor:
            assert records is None
            continue
        assert records is not None
        assert all(r.seq > base.version for r in records)
        rebuilt = apply_delta(base, newest.version, newest.heartbeat, newest.floor, records)
        assert rebuilt == newest
    assert delta_records(newest, newest.version) is None
    assert delta_records(newest, newest.version + 1) is None


def test_delta_records_examples() -> None:
    one = first_entry(3, {"a": (1, 1), "b": (1, 1)})
    two = rescan(one, {"a": (2, 2)})
    assert two is not None
    assert delta_records(two, 1) == (FileMeta("a", 2, 2, 2), FileMeta("b", 0, 0, 2, deleted=True))
    assert delta_records(two, 0) == two.files
    assert delta_records(two, -1) is None
    assert delta_records(two, 2) is None
    assert apply_delta(one, 2, 0, 0, delta_records(two, 1) or ()) == two


# -- refutation ------------------------------------------------------------------

keys = st.tuples(st.integers(0, 10), st.integers(0, 10), st.integers(0, 10), st.booleans())


@given(entries("A"), keys, st.integers(0, 12))
def test_refute_outdoes_the_key_seen(own: Entry, seen: Key, wall: int) -> None:
    new = refute(own, seen, wall)
    assert new.generation > seen[0]
    assert new.generation > own.generation
    # Never below the wall clock: a peer that refutes with its clock ahead of
    # every generation seen takes a generation no earlier run of it made.
    assert new.generation >= wall
    assert new.generation == max(own.generation + 1, seen[0] + 1, wall)
    assert new.key > seen
    assert new.key > own.key
    assert not new.reaped
    assert files_of(new) == files_of(own)
    assert new == first_entry(new.generation, files_of(own))
    seen_entry = Entry(*seen[:3], reaped=seen[3])
    assert merge({"A": seen_entry}, {"A": new})["A"] == new


# -- reaping ---------------------------------------------------------------------


def test_reap_due_and_next_reaping_examples() -> None:
    view = {
        "A": Entry(1, 1, 0),
        "B": Entry(1, 1, 0),
        "C": Entry(1, 1, 0),
        "D": Entry(1, 1, 0, reaped=True),
    }
    heard = {"A": 0.0, "B": 10.0, "C": 50.0, "D": 0.0}
    assert reap_due(view, heard, 109.5, 100.0, "A") == []
    assert reap_due(view, heard, 110.0, 100.0, "A") == ["B"]
    assert sorted(reap_due(view, heard, 1e9, 100.0, "A")) == ["B", "C"]
    assert next_reaping(view, heard, 0.0, 100.0, "A") == 110.0
    assert next_reaping(view, heard, 0.0, 100.0, "B") == 100.0  # A is alive to B
    only_us = {"A": view["A"], "D": view["D"]}
    assert reap_due(only_us, heard, 1e9, 100.0, "A") == []
    assert next_reaping(only_us, heard, 42.0, 100.0, "A") == 142.0
    assert next_reaping({}, {}, 42.0, 100.0, "A") == 142.0


times = st.floats(0, 1e7, allow_nan=False)


@given(
    views(),
    st.dictionaries(st.sampled_from(ORIGINS), times, min_size=len(ORIGINS)),
    times,
    st.floats(1e-3, 1e4),
    st.sampled_from(ORIGINS),
)
def test_next_reaping_is_exactly_when_reap_due_has_work(
    view: dict[str, Entry], heard: dict[str, float], now: float, after: float, own: str
) -> None:
    due = reap_due(view, heard, now, after, own)
    assert own not in due
    assert all(not view[o].reaped for o in due)
    candidates = [o for o, e in view.items() if o != own and not e.reaped]
    assert set(due) <= set(candidates)
    wake = next_reaping(view, heard, now, after, own)
    if not candidates:
        assert wake == now + after
        return
    # Woken at that time the reaper finds work -- else it would wake again at
    # once, and spin -- and a moment earlier it finds none.
    assert reap_due(view, heard, wake, after, own) != []
    assert reap_due(view, heard, math.nextafter(wake, -math.inf), after, own) == []
    # Once due, always due.
    assert set(due) <= set(reap_due(view, heard, max(now, wake), after, own))


# -- several replicas ------------------------------------------------------------

REPLICAS = "ABCD"
folder_edits = st.tuples(
    st.sampled_from(NAMES), st.none() | st.tuples(st.integers(0, 2), st.integers(0, 2))
)


class Replicas(RuleBasedStateMachine):
    """A few peers that gossip with the pure functions and nothing else.

    Each replica is an origin with a folder and a view. The model keeps the
    books the invariants need: every key each origin ever produced, with its
    content, and the last key each replica held for each origin.
    """

    def __init__(self) -> None:
        super().__init__()
        self.names: str = ""
        self.folders: dict[str, Scanned] = {}
        self.views: dict[str, dict[str, Entry]] = {}
        self.produced: dict[str, set[tuple[int, int, int]]] = {}
        self.contents: dict[tuple[str, int, int], tuple[FileMeta, ...]] = {}
        self.last_keys: dict[tuple[str, str], Key] = {}

    def _name(self, index: int) -> str:
        return self.names[index % len(self.names)]

    def _publish(self, name: str, entry: Entry) -> None:
        self.views[name][name] = entry
        self.produced[name].add(entry.key[:3])
        self.contents.setdefault((name, entry.generation, entry.version), entry.files)

    @initialize(
        count=st.integers(3, len(REPLICAS)),
        folders=st.lists(scans, min_size=len(REPLICAS), max_size=len(REPLICAS)),
        generations=st.lists(st.integers(1, 5), min_size=len(REPLICAS), max_size=len(REPLICAS)),
    )
    def start(self, count: int, folders: list[Scanned], generations: list[int]) -> None:
        self.names = REPLICAS[:count]
        for name, folder, generation in zip(self.names, folders, generations, strict=False):
            self.folders[name] = dict(folder)
            self.views[name] = {}
            self.produced[name] = set()
            self._publish(name, first_entry(generation, folder))

    # -- what an origin does to its own entry

    @rule(who=st.integers(0, 3), edit=folder_edits)
    def change_folder(self, who: int, edit: tuple[str, tuple[int, int] | None]) -> None:
        name = self._name(who)
        file, meta = edit
        folder = self.folders[name]
        if meta is None:
            folder.pop(file, None)
        else:
            folder[file] = meta
        own = self.views[name][name]
        new = rescan(own, folder)
        check_rescan(own, folder, new)
        if new is not None:
            self._publish(name, new)

    @rule(who=st.integers(0, 3), receiver=st.integers(0, 3))
    def push_round(self, who: int, receiver: int) -> None:
        # The origin's heartbeat goes up, and a digest tells one other replica.
        name = self._name(who)
        self._publish(name, beat(self.views[name][name]))
        self.exchange_digest(who, receiver)

    @rule(who=st.integers(0, 3), later=st.integers(1, 3))
    def restart(self, who: int, later: int) -> None:
        # A restart forgets the view; the new generation is past any before it.
        name = self._name(who)
        generation = max(g for g, _, _ in self.produced[name]) + later
        self.views[name] = {}
        for key in [k for k in self.last_keys if k[0] == name]:
            del self.last_keys[key]
        self._publish(name, first_entry(generation, self.folders[name]))

    # -- what a replica does to others' entries

    @rule(who=st.integers(0, 3), victim=st.integers(0, 3))
    def reap(self, who: int, victim: int) -> None:
        name, other = self._name(who), self._name(victim)
        entry = self.views[name].get(other)
        if other != name and entry is not None and not entry.reaped:
            self.views[name][other] = tombstone(entry)

    def _refute_if_outdone(self, name: str, seen: Key) -> None:
        own = self.views[name][name]
        if seen > own.key:
            self._publish(name, refute(own, seen))

    def _transfer(self, source: str, target: str) -> None:
        """``target`` fetches every entry ``source`` holds newer, by delta when it can."""
        mine = self.views[target]
        for origin, entry in self.views[source].items():
            if origin == target:
                self._refute_if_outdone(target, entry.key)
                continue
            held = mine.get(origin)
            if not newer(entry, held):
                continue
            fetched = entry
            if (
                held is not None
                and not held.reaped
                and not entry.reaped
                and held.generation == entry.generation
            ):
                records = delta_records(entry, held.version)
                if records is not None:
                    fetched = apply_delta(
                        held, entry.version, entry.heartbeat, entry.floor, records
                    )
                    assert fetched == entry
            self.views[target] = mine = merge(mine, {origin: fetched})

    @rule(source=st.integers(0, 3), receiver=st.integers(0, 3))
    def exchange(self, source: int, receiver: int) -> None:
        if self._name(source) != self._name(receiver):
            self._transfer(self._name(source), self._name(receiver))

    @rule(source=st.integers(0, 3), receiver=st.integers(0, 3))
    def exchange_digest(self, source: int, receiver: int) -> None:
        name, other = self._name(receiver), self._name(source)
        if name == other:
            return
        lines = lines_of(self.views[other])
        for line in lines:
            if line.origin == name:
                self._refute_if_outdone(name, line.key)
        others = [line for line in lines if line.origin != name]
        self.views[name] = merge(self.views[name], proven(self.views[name], others))

    @rule()
    def everyone_exchanges_with_everyone(self) -> None:
        for _ in range(len(self.names) + 2):
            for source in self.names:
                for target in self.names:
                    if source != target:
                        self._transfer(source, target)
            if all(view == self.views[self.names[0]] for view in self.views.values()):
                break
        # Converged: every replica holds every origin's own entry.
        newest = {name: self.views[name][name] for name in self.names}
        for name in self.names:
            assert self.views[name] == newest

    # -- invariants

    @invariant()
    def own_entry_is_the_newest(self) -> None:
        for name in self.names:
            own = self.views[name][name]
            assert not own.reaped
            for view in self.views.values():
                held = view.get(name)
                if held is None or held.key <= own.key:
                    continue
                # Only a tombstone of the very counters we are at, not yet refuted.
                assert held.reaped
                assert held.key[:3] == own.key[:3]

    @invariant()
    def keys_never_go_down(self) -> None:
        for name, view in self.views.items():
            for (holder, origin), key in self.last_keys.items():
                if holder == name:
                    assert origin in view
                    assert view[origin].key >= key
            for origin, entry in view.items():
                self.last_keys[name, origin] = entry.key

    @invariant()
    def nothing_is_invented(self) -> None:
        for view in self.views.values():
            for origin, entry in view.items():
                # The version was produced, and a heartbeat the origin reached in
                # that generation (a digest carries a newer version's heartbeat
                # onto the version held: see state.proven).
                produced = self.produced[origin]
                assert (entry.generation, entry.version) in {(g, v) for g, v, _ in produced}
                assert entry.heartbeat <= max(h for g, _, h in produced if g == entry.generation)
                if entry.reaped:
                    assert entry.files == ()
                else:
                    assert entry.files == self.contents[origin, entry.generation, entry.version]

    def teardown(self) -> None:
        if self.names:
            self.everyone_exchanges_with_everyone()


Replicas.TestCase.settings = settings(stateful_step_count=30, deadline=None)
TestReplicas = Replicas.TestCase
