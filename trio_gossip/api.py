"""A peer as a library: ``async with open_peer(config, name) as peer:``.

The command line uses the same calls. Inside the block the peer runs (its
five tasks in a nursery of its own); leaving the block stops it and tells
the cluster that it leaves. :meth:`.peer.Peer.members` is what ``--info`` shows,
as frozen objects; :meth:`.peer.Peer.events` is what changes, as it happens.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import trio

from .config import Config
from .peer import Peer
from .transport import Network
from .udp import UdpNetwork

__all__ = ["open_peer"]


@contextlib.asynccontextmanager
async def open_peer(
    config: Config,
    name: str,
    *,
    folder: Path | None = None,
    network: Network | None = None,
    http: tuple[str, int] | None = None,
) -> AsyncIterator[Peer]:
    """Run peer ``name`` of ``config`` for the duration of the block.

    ``folder`` defaults to the config's; ``network`` to real UDP. With
    ``http`` (host, port), the peer also serves its web page there
    (:attr:`.peer.Peer.http_url`); the config's ``http`` is the command
    line's, not used here. Raises :class:`.peer.StartupError` (one line) if
    the peer cannot start, and ``ValueError`` if ``name`` is not in the
    config or has no folder.
    """
    if name not in config.peers:
        known = ", ".join(sorted(config.peers))
        raise ValueError(f"peer {name}: not in the config (its peers: {known})")
    where = folder if folder is not None else config.folder(name)
    if where is None:
        raise ValueError(f"peer {name}: no folder in the config; pass folder=")
    peer = Peer(name, config, network=network or UdpNetwork(), folder=where, http=http)
    failure: BaseException | None = None
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(peer.run)
            try:
                yield peer
            finally:
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        # The nursery wraps whatever ends it -- the peer's StartupError, the
        # block's own exception, Ctrl-C's KeyboardInterrupt -- in a group, and
        # the peer's own nursery may have wrapped it once already (Ctrl-C
        # landing in one of its tasks). The caller of a context manager
        # expects that exception itself.
        failure = group
        while isinstance(failure, BaseExceptionGroup) and len(failure.exceptions) == 1:
            failure = failure.exceptions[0]
        if failure is group:
            raise
    if failure is not None:
        raise failure
