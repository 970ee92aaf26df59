"""Free loopback UDP ports, for the tests that use real sockets and processes."""

from __future__ import annotations

import socket


def free_udp_ports(count: int) -> list[int]:
    """Ports nothing listens on right now: the kernel picks them, then we let go."""
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(count)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()
