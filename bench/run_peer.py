"""Run ``python -m trio_gossip ARGS...`` with chosen UDP receive and send strategies.

    python bench/run_peer.py --receive recvfrom --send trio -- A --config config.json

``--receive drain`` waits until the socket is readable and reads what it
holds without blocking; ``recvfrom`` is one ``await sock.recvfrom()`` per
datagram. ``--send direct`` writes to the socket without trio's per-call
address resolution and scheduling pass; ``trio`` is ``await sock.sendto()``.
Nothing else differs from the command line a user runs: this sets the class
defaults of :class:`trio_gossip.UdpNetwork` and calls the same ``main``.
"""

from __future__ import annotations

import argparse
import sys

from trio_gossip import UdpNetwork
from trio_gossip.cli import main as cli_main

RECEIVE = {"drain": True, "recvfrom": False}
SEND = {"direct": True, "trio": False}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--receive", choices=sorted(RECEIVE), default="drain")
    parser.add_argument("--send", choices=sorted(SEND), default="direct")
    parser.add_argument(
        "--receive-buffer", type=int, help="SO_RCVBUF asked per socket, bytes (default 4 MiB)"
    )
    parser.add_argument("args", nargs=argparse.REMAINDER, help="-- and trio_gossip's arguments")
    args = parser.parse_args()
    rest = args.args[1:] if args.args[:1] == ["--"] else args.args
    UdpNetwork.drain = RECEIVE[args.receive]
    UdpNetwork.direct_send = SEND[args.send]
    if args.receive_buffer is not None:
        UdpNetwork.receive_buffer = args.receive_buffer
    return cli_main(rest)


if __name__ == "__main__":
    sys.exit(main())
