"""Issue 10, item 13: every number finite and in range, every URL parsed, at load time.

TOML can spell ``nan`` and ``inf``; before this, ``heartbeat_seconds = nan`` crashed the daemon
after warm-up and ``receive_timeout_seconds = nan`` made it reconnect forever. Binding the HTTP
port beyond loopback exposes metrics and status, so it needs ``[http] expose = true``.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from barbus.daemon.config import DaemonConfig, load_config
from barbus.daemon.core.errors import ConfigError
from tests.kit.processes import checkout_env

REPO_ROOT = Path(__file__).resolve().parents[3]

FEED_URLS = 'rest_url = "http://127.0.0.1:8765"\nws_url = "ws://127.0.0.1:8765"\n'
FEED = "[feed]\n" + FEED_URLS + 'symbols = ["BTCUSDT"]\n'
STRATEGY = '[[strategy]]\nname = "sma-btc"\nstrategy = "sma_cross"\nsymbol = "BTCUSDT"\n'


def load_text(folder: Path, text: str) -> DaemonConfig:
    path = folder / "barbus.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return load_config(path)


def config_error(folder: Path, text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load_text(folder, text)
    message = str(caught.value)
    assert "\n" not in message, message
    return message


FEED_TIMES = [
    "heartbeat_seconds",
    "receive_timeout_seconds",
    "request_timeout_seconds",
    "reconnect_initial_seconds",
    "reconnect_max_seconds",
    "max_bar_age_seconds",
]
BAD_NUMBERS = ["nan", "inf", "-inf", "-5", "0", "1e300"]


@pytest.mark.parametrize("value", BAD_NUMBERS)
@pytest.mark.parametrize("key", FEED_TIMES)
def test_feed_durations_must_be_finite_positive_and_bounded(
    tmp_path: Path, key: str, value: str
) -> None:
    message = config_error(tmp_path, FEED + f"{key} = {value}\n" + STRATEGY)

    assert "[feed]" in message
    assert key in message
    assert "must be > 0" in message  # the accepted range is spelled out ...
    assert "<=" in message  # ... with its upper bound


@pytest.mark.parametrize("key", FEED_TIMES)
def test_feed_durations_in_range_load(tmp_path: Path, key: str) -> None:
    config = load_text(tmp_path, FEED + f"{key} = 20.5\n" + STRATEGY)

    if key == "max_bar_age_seconds":
        assert config.max_bar_age_seconds == 20.5
    else:
        assert getattr(config.feed, key) == 20.5


def test_reconnect_max_below_the_initial_delay_is_rejected(tmp_path: Path) -> None:
    text = FEED + "reconnect_initial_seconds = 10\nreconnect_max_seconds = 5\n" + STRATEGY

    message = config_error(tmp_path, text)

    assert "reconnect_max_seconds" in message
    assert "reconnect_initial_seconds" in message


@pytest.mark.parametrize(
    ("section", "key"), [("execution", "fee_bps"), ("execution", "slippage_bps")]
)
@pytest.mark.parametrize("value", ["nan", "inf", "-1"])
def test_fees_and_slippage_must_be_finite_and_not_negative(
    tmp_path: Path, section: str, key: str, value: str
) -> None:
    message = config_error(tmp_path, FEED + STRATEGY + f"[{section}]\n{key} = {value}\n")

    assert f"[{section}]" in message
    assert key in message
    assert "[0, 10000)" in message


@pytest.mark.parametrize("value", ["nan", "inf", "-1"])
def test_capital_must_be_finite_and_positive(tmp_path: Path, value: str) -> None:
    message = config_error(tmp_path, FEED + STRATEGY + f"capital = {value}\n")

    assert "capital must be > 0" in message


@pytest.mark.parametrize("port", [-1, 65536])
def test_http_port_outside_the_tcp_range_is_rejected(tmp_path: Path, port: int) -> None:
    message = config_error(tmp_path, FEED + STRATEGY + f"[http]\nport = {port}\n")

    assert "[http] port must be in [0, 65535]" in message


@pytest.mark.parametrize(
    ("key", "url", "expected"),
    [
        ("rest_url", "127.0.0.1:8765", "http or https"),
        ("rest_url", "ftp://127.0.0.1:8765", "http or https"),
        ("rest_url", "ws://127.0.0.1:8765", "http or https"),
        ("rest_url", "http://", "no host"),
        ("rest_url", "http://127.0.0.1:99999", "port"),
        ("rest_url", "http://exa mple.com", "space"),
        ("ws_url", "http://127.0.0.1:8765", "ws or wss"),
        ("ws_url", "wss://:9443", "no host"),
        ("ws_url", "", "ws or wss"),
    ],
)
def test_feed_urls_are_parsed_at_load(tmp_path: Path, key: str, url: str, expected: str) -> None:
    text = FEED.replace(
        f'{key} = "{"http" if key == "rest_url" else "ws"}://127.0.0.1:8765"', f'{key} = "{url}"'
    )
    assert url in text

    message = config_error(tmp_path, text + STRATEGY)

    assert f"[feed] {key}" in message
    assert expected in message


@pytest.mark.parametrize(
    ("rest", "ws"),
    [
        ("https://api.binance.com", "wss://stream.binance.com:9443"),
        ("http://[::1]:8765/", "ws://localhost:8765/"),
    ],
)
def test_good_feed_urls_load(tmp_path: Path, rest: str, ws: str) -> None:
    text = f'[feed]\nrest_url = "{rest}"\nws_url = "{ws}"\nsymbols = ["BTCUSDT"]\n'

    config = load_text(tmp_path, text + STRATEGY)

    assert (config.feed.rest_url, config.feed.ws_url) == (rest, ws)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "", "example.org"])
def test_binding_beyond_loopback_needs_the_explicit_opt_in(tmp_path: Path, host: str) -> None:
    message = config_error(tmp_path, FEED + STRATEGY + f'[http]\nhost = "{host}"\n')

    assert "[http] host" in message
    assert "expose" in message
    assert "network" in message
    assert "expose = true" in message


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20"])
def test_the_opt_in_allows_a_non_loopback_host(tmp_path: Path, host: str) -> None:
    config = load_text(tmp_path, FEED + STRATEGY + f'[http]\nhost = "{host}"\nexpose = true\n')

    assert config.http.host == host
    assert config.http.expose is True
    assert config.http.exposed


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.53", "::1", "localhost"])
def test_loopback_hosts_need_no_opt_in(tmp_path: Path, host: str) -> None:
    config = load_text(tmp_path, FEED + STRATEGY + f'[http]\nhost = "{host}"\n')

    assert config.http.host == host
    assert not config.http.exposed


def test_expose_must_be_a_boolean(tmp_path: Path) -> None:
    message = config_error(tmp_path, FEED + STRATEGY + '[http]\nexpose = "yes"\n')

    assert "[http].expose: expected bool" in message


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("max_connections", "0", "[1, 10000]"),
        ("max_connections", "100000", "[1, 10000]"),
        ("idle_timeout_seconds", "nan", "must be > 0"),
        ("idle_timeout_seconds", "0", "must be > 0"),
        ("idle_timeout_seconds", "1e9", "<= 3600"),
    ],
)
def test_http_limits_are_in_range(tmp_path: Path, key: str, value: str, expected: str) -> None:
    message = config_error(tmp_path, FEED + STRATEGY + f"[http]\n{key} = {value}\n")

    assert f"[http] {key}" in message
    assert expected in message


def test_http_limits_have_defaults_and_load(tmp_path: Path) -> None:
    default = load_text(tmp_path, FEED + STRATEGY).http
    text = FEED + STRATEGY + "[http]\nmax_connections = 20\nidle_timeout_seconds = 2.5\n"
    custom = load_text(tmp_path, text).http

    assert (default.max_connections, default.idle_timeout_seconds) == (100, 15.0)
    assert (custom.max_connections, custom.idle_timeout_seconds) == (20, 2.5)


@pytest.mark.process
def test_barbus_run_with_a_nan_heartbeat_exits_2_with_one_line(tmp_path: Path) -> None:
    # Before: accepted, and the daemon crashed with a traceback after its warm-up.
    path = tmp_path / "barbus.toml"
    path.write_text(FEED + "heartbeat_seconds = nan\n" + STRATEGY, encoding="utf-8")
    env = checkout_env()

    done = subprocess.run(
        [sys.executable, "-m", "barbus.daemon.cli", "run", "--config", str(path)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "[feed] heartbeat_seconds must be > 0 and <= 3600 seconds, got nan" in lines[0]
