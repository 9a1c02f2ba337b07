"""A listening socket for one of barbus's servers, and why a bind failed in words a person acts on.

The daemon's HTTP server and the simulated exchange listen on an address someone typed, and the
batch's ``--metrics-port`` words its bind failure the same way. It is apart from the HTTP server
because the sim exchange and the CLI bind sockets without serving the daemon's endpoints.
"""

from __future__ import annotations

import errno
import socket

from barbus.daemon.core.errors import ConfigError

__all__ = ["bind_problem", "listen"]


def bind_problem(host: str, port: int, exc: OSError) -> str:
    """Why ``host:port`` cannot be listened on, in words a person can act on."""
    if isinstance(exc, socket.gaierror) or (exc.errno or 0) < 0:  # getaddrinfo's EAI_* codes
        return f"cannot resolve the host name {host!r}"
    if exc.errno == errno.EADDRINUSE:
        return f"port {port} is already in use (another barbus, or another program, listens there)"
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"{host} is not an address of this machine"
    if exc.errno == errno.EACCES:
        return "permission denied (ports below 1024 need privileges)"
    return exc.strerror or str(exc)


def listen(host: str, port: int, what: str) -> socket.socket:
    """A listening socket on ``host:port``; a bind failure is one :class:`ConfigError` line
    starting with ``what`` (the option or config key that named the address)."""
    if not 0 <= port <= 65535:
        raise ConfigError(f"{what}: port {port} is out of range (0-65535)")
    invalid = f"{what} cannot listen on {host}:{port}: {host!r} is not a valid host name"
    if not _encodable(host):  # before a socket exists: create_server leaks it on this error
        raise ConfigError(invalid)
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        return socket.create_server((host, port), family=family)
    except OSError as exc:
        raise ConfigError(
            f"{what} cannot listen on {host}:{port}: {bind_problem(host, port, exc)}"
        ) from None
    except (UnicodeError, TypeError):  # the name cannot even be encoded (e.g. "ü..x", NUL)
        raise ConfigError(invalid) from None


def _encodable(host: str) -> bool:
    """Whether the socket module can encode ``host`` as it does for a bind: IDNA when it is not
    ASCII, and no NUL character."""
    try:
        return "\x00" not in host and (host.isascii() or bool(host.encode("idna")))
    except UnicodeError:
        return False
