"""The protocol's numbers: its version and the bounds every valid datagram keeps.

``docs/protocol.md`` section 4 is the contract; each number here is named there.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "MAX_COUNTER",
    "MAX_DATAGRAM",
    "MAX_HELD",
    "MAX_LINES",
    "MAX_NAME",
    "MAX_PARTS",
    "MAX_WANT_PARTS",
    "MIN_DATAGRAM",
    "MIN_MTIME",
    "PROTOCOL",
    "SEAL_OVERHEAD",
]

PROTOCOL: Final = 1
#: The largest UDP payload IPv4 can carry; nothing larger is ever sent.
MAX_DATAGRAM: Final = 65_507
#: The smallest ``max_datagram`` a config may choose: a part with one largest record fits.
MIN_DATAGRAM: Final = 1_200

MAX_NAME: Final = 64  # a peer's name, in characters
MAX_LINES: Final = 4_096  # lines in one digest datagram
MAX_HELD: Final = 12_000  # characters of a digest's summary: 72,000 peers
MAX_WANT_PARTS: Final = 64  # part indexes one want may ask for
MAX_PARTS: Final = 1 << 20  # parts of one transfer
MAX_COUNTER: Final = (1 << 63) - 1  # generation, version, heartbeat, floor, seq, size
MIN_MTIME: Final = -(1 << 63)

#: Bytes sealing with a cluster key adds to a datagram (see :mod:`.keyring`).
SEAL_OVERHEAD: Final = 1 + 12 + 16  # version byte, nonce, AES-GCM tag
