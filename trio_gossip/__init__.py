"""trio_gossip: peers that gossip the metadata of their folders over UDP, with trio.

The public names, each from the module that owns it: a peer to embed
(:func:`.api.open_peer`, :class:`.peer.Peer`, its :class:`.members.Member`
view and :class:`.events.Event` stream), the protocol without I/O
(:class:`.node.Node`), the pure merge (:mod:`.state`), the wire format
(:mod:`.messages`, :mod:`.codec`), the transports (:mod:`.transport`; real
UDP in :mod:`.udp`, in memory in :mod:`.memory`), the configuration
(:mod:`.config`) and the cluster key (:mod:`.keyring`).

Each name is imported from its module on first use (PEP 562), so that
``import trio_gossip`` costs nothing and ``python -m trio_gossip A`` imports
only what a peer runs, not the client, the renderer or the in-memory network.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    # The same names, as type checkers and IDEs should see them.
    from .api import open_peer
    from .codec import BadDatagram, decode_untrusted, encode
    from .config import Config, ConfigError, Intervals, PeerConfig, load_config, parse_config
    from .events import Event
    from .hub import Subscription
    from .info import NoAnswer, query
    from .keyring import Keyring, generate_key
    from .members import FileInfo, Member
    from .memory import MemoryNetwork
    from .messages import Message
    from .node import Node, Send
    from .peer import Peer, StartupError, Statistics
    from .render import format_info
    from .scanner import Scan, ScanError, ScanStopped, Skipped, scan_folder
    from .state import Entry, FileMeta, Line, merge
    from .transport import Address, Network, Transport
    from .udp import UdpNetwork

#: The module that owns each public name (keep in step with the imports above).
_OWNERS: dict[str, tuple[str, ...]] = {
    "api": ("open_peer",),
    "codec": ("BadDatagram", "decode_untrusted", "encode"),
    "config": ("Config", "ConfigError", "Intervals", "PeerConfig", "load_config", "parse_config"),
    "events": ("Event",),
    "hub": ("Subscription",),
    "info": ("NoAnswer", "query"),
    "keyring": ("Keyring", "generate_key"),
    "members": ("FileInfo", "Member"),
    "memory": ("MemoryNetwork",),
    "messages": ("Message",),
    "node": ("Node", "Send"),
    "peer": ("Peer", "StartupError", "Statistics"),
    "render": ("format_info",),
    "scanner": ("Scan", "ScanError", "ScanStopped", "Skipped", "scan_folder"),
    "state": ("Entry", "FileMeta", "Line", "merge"),
    "transport": ("Address", "Network", "Transport"),
    "udp": ("UdpNetwork",),
}
_OWNER_OF: dict[str, str] = {name: module for module, names in _OWNERS.items() for name in names}

__all__ = [
    "Address",
    "BadDatagram",
    "Config",
    "ConfigError",
    "Entry",
    "Event",
    "FileInfo",
    "FileMeta",
    "Intervals",
    "Keyring",
    "Line",
    "Member",
    "MemoryNetwork",
    "Message",
    "Network",
    "NoAnswer",
    "Node",
    "Peer",
    "PeerConfig",
    "Scan",
    "ScanError",
    "ScanStopped",
    "Send",
    "Skipped",
    "StartupError",
    "Statistics",
    "Subscription",
    "Transport",
    "UdpNetwork",
    "decode_untrusted",
    "encode",
    "format_info",
    "generate_key",
    "load_config",
    "merge",
    "open_peer",
    "parse_config",
    "query",
    "scan_folder",
]

__version__ = "0.1.0"


if not TYPE_CHECKING:  # a module __getattr__ would let mypy accept any name at all

    def __getattr__(name: str) -> Any:
        """A public name, imported from its module the first time it is asked for."""
        module = _OWNER_OF.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f".{module}", __name__), name)
        globals()[name] = value  # later look-ups find it without coming here
        return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
