"""The one shared strategy of honest views, for the laws of the merge and their friends.

In an honest view the files of an entry are a function of ``(origin,
generation, version)``: two holders of the same key hold the same content,
which is what the merge's laws assume (see :func:`trio_gossip.state.merge`).
The counters are small so that different views often hold equal keys.
"""

from __future__ import annotations

from hypothesis import strategies as st

from trio_gossip.state import Entry, FileMeta

__all__ = ["ORIGINS", "content_of", "entries", "views"]

ORIGINS = "ABCDE"


def content_of(origin: str, generation: int, version: int) -> tuple[FileMeta, ...]:
    """The files an honest ``origin`` publishes at ``(generation, version)``."""
    count = (generation + 2 * version + ord(origin)) % 4
    return tuple(
        FileMeta(
            f"{origin}/g{generation}/f{i}",
            size=100 * version + i,
            mtime_ns=1_000 * generation + version,
            seq=version,
        )
        for i in range(count)
    )


@st.composite
def entries(draw: st.DrawFn, origin: str) -> Entry:
    """An honest entry of ``origin``: alive with its content, or (sometimes) a tombstone."""
    generation = draw(st.integers(0, 2))
    version = draw(st.integers(1, 3))
    heartbeat = draw(st.integers(0, 2))
    if draw(st.integers(0, 3)) == 0:
        return Entry(generation, version, heartbeat, reaped=True)
    return Entry(generation, version, heartbeat, 0, content_of(origin, generation, version))


@st.composite
def views(draw: st.DrawFn) -> dict[str, Entry]:
    """A view: some origins of :data:`ORIGINS`, each with an honest entry."""
    origins = draw(st.lists(st.sampled_from(ORIGINS), unique=True))
    return {origin: draw(entries(origin)) for origin in origins}
