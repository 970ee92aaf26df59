"""trio_gossip: peers that gossip the metadata of their folders over UDP, with trio.

The public names, each from the module that owns it: a peer to embed
(:func:`.api.open_peer`, :class:`.peer.Peer`, its :class:`.members.Member`
view and :class:`.events.Event` stream), the protocol without I/O
(:class:`.node.Node`), the pure merge (:mod:`.state`), the wire format
(:mod:`.messages`, :mod:`.codec`), the transports (:mod:`.transport`; real
UDP in :mod:`.udp`, in memory in :mod:`.memory`), the configuration
(:mod:`.config`) and the cluster key (:mod:`.keyring`).
"""

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
