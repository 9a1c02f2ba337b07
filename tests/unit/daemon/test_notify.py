"""sd_notify over real AF_UNIX datagram sockets, and the watchdog interval from the environment."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from barbus.daemon.notify import sd_notify, watchdog_interval_seconds


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A folder under /tmp: pytest's tmp_path can exceed the 107-byte AF_UNIX path limit."""
    folder = Path(tempfile.mkdtemp(prefix="barbus-notify-", dir="/tmp"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def listener(short_dir: Path) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(short_dir / "notify.sock"))
    sock.settimeout(5.0)
    try:
        yield sock
    finally:
        sock.close()


@pytest.fixture
def abstract_listener() -> Iterator[tuple[str, socket.socket]]:
    name = f"barbus-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(5.0)
    try:
        yield "@" + name, sock
    finally:
        sock.close()


def test_states_arrive_as_one_datagram_of_newline_separated_lines(
    listener: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", listener.getsockname())

    sent = sd_notify("READY=1", "STATUS=trading 2 strategies on BTCUSDT")

    assert sent is True
    assert listener.recv(4096) == b"READY=1\nSTATUS=trading 2 strategies on BTCUSDT"


def test_each_call_is_its_own_datagram_in_order(
    listener: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", listener.getsockname())

    for state in ("STATUS=starting", "WATCHDOG=1", "STOPPING=1"):
        assert sd_notify(state)

    assert [listener.recv(4096) for _ in range(3)] == [
        b"STATUS=starting",
        b"WATCHDOG=1",
        b"STOPPING=1",
    ]


def test_abstract_socket_name_with_at_sign_is_reached(
    abstract_listener: tuple[str, socket.socket], monkeypatch: pytest.MonkeyPatch
) -> None:
    address, sock = abstract_listener
    monkeypatch.setenv("NOTIFY_SOCKET", address)

    sent = sd_notify("WATCHDOG=1")

    assert sent is True
    assert sock.recv(4096) == b"WATCHDOG=1"


def test_utf8_status_text_is_sent_as_utf8(
    listener: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", listener.getsockname())

    sd_notify("STATUS=équité 10 000 €")

    assert listener.recv(4096).decode("utf-8") == "STATUS=équité 10 000 €"


@pytest.mark.parametrize("value", [None, ""], ids=["unset", "empty"])
def test_without_notify_socket_nothing_is_sent_and_false_returned(
    monkeypatch: pytest.MonkeyPatch, value: str | None
) -> None:
    if value is None:
        monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    else:
        monkeypatch.setenv("NOTIFY_SOCKET", value)

    assert sd_notify("READY=1") is False


def test_watchdog_interval_is_half_of_watchdog_usec(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "200000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)

    assert watchdog_interval_seconds() == pytest.approx(0.1)


def test_watchdog_for_this_pid_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))

    assert watchdog_interval_seconds() == pytest.approx(15.0)


def test_watchdog_meant_for_another_pid_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))

    assert watchdog_interval_seconds() is None


@pytest.mark.parametrize("value", [None, ""], ids=["unset", "empty"])
def test_no_watchdog_usec_means_no_watchdog(
    monkeypatch: pytest.MonkeyPatch, value: str | None
) -> None:
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    if value is None:
        monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    else:
        monkeypatch.setenv("WATCHDOG_USEC", value)

    assert watchdog_interval_seconds() is None
