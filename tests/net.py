"""Loopback helpers shared by the tests that run real servers."""

from __future__ import annotations

import json
import socket
import urllib.request
from typing import Any

__all__ = ["free_port", "free_ports", "get_json"]


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct ports nothing listens on (all held at once while choosing)."""
    socks = [socket.socket() for _ in range(count)]
    try:
        for sock in socks:
            sock.bind((host, 0))
        return [int(sock.getsockname()[1]) for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def free_port(host: str = "127.0.0.1") -> int:
    """One port nothing listens on (bound once by the OS, then released)."""
    [port] = free_ports(1, host)
    return port


def get_json(url: str, timeout: float = 5.0) -> Any:
    """The JSON body of ``GET url``."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.load(response)
