"""trio_gossip: peers that gossip the metadata of their folders over UDP, with trio.

The public names, each from the module that owns it:
the pure core (:mod:`.state`), the wire format (:mod:`.wire`), the
transports (:mod:`.transport`), the configuration (:mod:`.config`), the
cluster key (:mod:`.keyring`) and the running peer (:mod:`.peer`).
"""

from .config import Config, ConfigError, Intervals, PeerConfig, load_config, parse_config
from .info import NoAnswer, query
from .keyring import Keyring, generate_key
from .peer import Peer, StartupError, Statistics
from .render import format_info
from .scanner import Scan, ScanError, scan_folder
from .state import Entry, FileMeta, Line, merge
from .transport import Address, MemoryNetwork, Network, Transport, UdpNetwork
from .wire import BadDatagram, Message, decode_untrusted, encode

__all__ = [
    "Address",
    "BadDatagram",
    "Config",
    "ConfigError",
    "Entry",
    "FileMeta",
    "Intervals",
    "Keyring",
    "Line",
    "MemoryNetwork",
    "Message",
    "Network",
    "NoAnswer",
    "Peer",
    "PeerConfig",
    "Scan",
    "ScanError",
    "StartupError",
    "Statistics",
    "Transport",
    "UdpNetwork",
    "decode_untrusted",
    "encode",
    "format_info",
    "generate_key",
    "load_config",
    "merge",
    "parse_config",
    "query",
    "scan_folder",
]

__version__ = "0.1.0"
