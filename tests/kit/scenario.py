"""What a process scenario runs: the engines of a daemon config, its config file, the bar slice.

The sim's history (the daemon's warm-up), its speed and the feed faults the scenarios inject
live here too, so every module that writes a daemon config writes the same one.
"""

from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from barbus.daemon.core.series import BarSeries
from barbus.replay.bars_out import write_bars
from barbus.replay.loader import load_bars
from tests.factories import bars_of

HISTORY = 500  # bars closed before the sim's clock starts = the daemon's warm-up
ROWS = 3_000
SPEED = 200.0  # bars per second: long enough to kill and restart a daemon three times
FAULTS = (
    "--drop-every",
    "200",
    "--malformed-every",
    "50",
    "--duplicate-probability",
    "0.05",
    "--reorder-probability",
    "0.05",
)


@dataclass(frozen=True)
class Engine:
    """One [[strategy]] table; the daemon runs all of them side by side."""

    name: str
    strategy: str
    params: dict[str, str | int | float | bool] = field(default_factory=dict)
    symbol: str = "BTCUSDT"
    account: str | None = None  # a shared [[account]]; None: its own with capital 10000
    allow_short: bool = False  # on its own account

    def toml(self) -> str:
        params = ", ".join(f"{k} = {json.dumps(v)}" for k, v in self.params.items())
        if self.account is not None:
            books = f'account = "{self.account}"\n'
        else:
            books = "capital = 10000\n" + ("allow_short = true\n" if self.allow_short else "")
        return (
            f'[[strategy]]\nname = "{self.name}"\nstrategy = "{self.strategy}"\n'
            f'symbol = "{self.symbol}"\n{books}params = {{ {params} }}\n'
        )


ENGINES = (
    Engine("sma-1m", "sma_cross"),
    Engine("metatrend-15m", "metatrend"),
    Engine("bbrs-5m", "bbrs", {"timeframe": "5m"}),
    Engine("random-7", "random", {"seed": 7}),
)
ENGINE_NAMES = [e.name for e in ENGINES]


def write_slice(
    source: Path, start: int, rows: int, folder: Path, symbol: str = "BTCUSDT"
) -> BarSeries:
    """Rows ``start .. start+rows`` of a bundled file as ``folder/<symbol>_1m_slice.csv``."""
    bars = bars_of(load_bars(source))[start : start + rows]
    series = load_bars(write_bars(folder / f"{symbol}_1m_slice.csv", bars))
    assert bars_of(series) == bars
    return series


def write_config(
    path: Path,
    *,
    sim_port: int,
    http_port: int,
    state: Path,
    level: str = "INFO",
    engines: tuple[Engine, ...] = ENGINES,
    symbols: tuple[str, ...] = ("BTCUSDT",),
    accounts: str = "",
    http: str = "",
    feed: str = "",
) -> Path:
    """A daemon config; ``accounts`` is TOML text of ``[[account]]`` tables, ``http`` and
    ``feed`` more lines of the ``[http]`` and ``[feed]`` tables."""
    path.write_text(
        textwrap.dedent(
            f"""\
            [feed]
            rest_url = "http://127.0.0.1:{sim_port}"
            ws_url = "ws://127.0.0.1:{sim_port}"
            symbols = {json.dumps(list(symbols))}
            warmup_bars = {HISTORY}
            reconnect_initial_seconds = 0.05
            reconnect_max_seconds = 0.5
            request_timeout_seconds = 5
            @FEED@
            [state]
            path = "{state}"

            [http]
            port = {http_port}
            @HTTP@
            [log]
            level = "{level}"
            """
        )
        .replace("@HTTP@\n", http)
        .replace("@FEED@\n", feed)
        + accounts
        + "\n".join(e.toml() for e in engines),
        encoding="utf-8",
    )
    return path


def one_engine_config(folder: Path, *, sim_port: int, http_port: int) -> Path:
    """``folder/barbus.toml`` with the first engine only, its state in ``folder/state.sqlite``."""
    return write_config(
        folder / "barbus.toml",
        sim_port=sim_port,
        http_port=http_port,
        state=folder / "state.sqlite",
        engines=ENGINES[:1],
    )


def tuned(config: Path, **feed: object) -> Path:
    """Set ``[feed]`` keys in a config written by ``write_config`` (its first table)."""
    lines = config.read_text(encoding="utf-8").splitlines()
    lines = [line for line in lines if line.split(" = ")[0] not in feed]
    extra = [f"{key} = {json.dumps(value)}" for key, value in feed.items()]
    text = "\n".join([lines[0], *extra, *lines[1:]]) + "\n"
    config.write_text(text, encoding="utf-8")
    return config
