"""The systemd notify protocol (sd_notify) in a dozen lines, no dependency.

``READY=1`` after warm-up, ``WATCHDOG=1`` while the event loop is healthy, ``STOPPING=1`` on
shutdown, ``STATUS=...`` for ``systemctl status``. Outside systemd (no ``$NOTIFY_SOCKET``) every
call is a no-op that returns False.
"""

from __future__ import annotations

import os
import socket

__all__ = ["sd_notify", "watchdog_interval_seconds"]


def sd_notify(*states: str) -> bool:
    """Send ``states`` (e.g. ``"READY=1"``, ``"STATUS=warming up"``) to the service manager."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]  # abstract namespace socket
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        sock.connect(address)
        sock.sendall("\n".join(states).encode())
    return True


def watchdog_interval_seconds() -> float | None:
    """Half the watchdog timeout systemd set for this process, or None when there is none."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and int(pid) != os.getpid()):
        return None
    return int(usec) / 1_000_000 / 2
