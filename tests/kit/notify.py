"""systemd's side of sd_notify: a datagram socket the daemon's notifications arrive on."""

from __future__ import annotations

import shutil
import socket
import tempfile
import threading
from pathlib import Path


class NotifyListener:
    """A bound AF_UNIX datagram socket under /tmp, drained by a thread (systemd's side)."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="barbus-sd-", dir="/tmp"))
        self.address = str(self.folder / "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.address)
        self.sock.settimeout(0.1)
        self.messages: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while not self._stop.is_set():
            try:
                self.messages.append(self.sock.recv(65536).decode())
            except TimeoutError:
                continue
            except OSError:
                return

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()
        shutil.rmtree(self.folder, ignore_errors=True)
