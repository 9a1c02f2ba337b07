"""``barbus sim-exchange``: the simulated exchange, its fault switches, and the port it tells.

Its own module because each field of :class:`~barbus.daemon.feeds.sim_faults.FaultConfig` is
a flag here, built from the field (name, type, default, and the help text and metavar in its
metadata): a new fault gets its flag without an edit here. Once the exchange listens, this
prints one JSON line ``{"host": ..., "port": ...}`` on stdout: the protocol by which tests and
the ops kit learn the port ``--port 0`` picked.
"""

from __future__ import annotations

import argparse
import dataclasses
from functools import partial
from typing import TYPE_CHECKING, Any

from barbus.daemon.cli.options import Commands, add_cache_dir, add_data, port, shown
from barbus.daemon.core.errors import ConfigError
from barbus.daemon.feeds.sim_faults import FaultConfig

if TYPE_CHECKING:
    from barbus.daemon.core.series import BarSeries

__all__ = ["add_sim_exchange", "fault_flags", "faults_of"]

# --data: the bars the exchange serves, one file per symbol.
BARS_TO_SERVE = "bar file, one per symbol, repeatable (default: the bundled BTCUSDT sample)"


def add_sim_exchange(commands: Commands) -> None:
    sim = commands.add_parser(
        "sim-exchange",
        help="serve cached bars over the Binance kline protocol, locally",
        description="A Binance-compatible exchange on localhost (REST /api/v3/klines and kline "
        "WebSocket streams) replaying historical bars, with switches to inject faults.",
    )
    add_data(sim, BARS_TO_SERVE)
    sim.add_argument("--start", help="first bar served, inclusive (same forms as replay's)")
    sim.add_argument("--end", help="end of the bars served, exclusive")
    sim.add_argument("--host", default="127.0.0.1", help="bind address (127.0.0.1)")
    sim.add_argument("--port", type=port, default=8765, help="port (8765; 0 = any free port)")
    sim.add_argument(
        "--speed", type=float, default=10.0, help="bars per second (10); 0 = real time"
    )
    sim.add_argument(
        "--history-bars",
        type=int,
        default=500,
        help="bars already closed when the clock starts, for warm-up (500)",
    )
    for name, options in fault_flags():
        sim.add_argument(name, **options)
    sim.add_argument("--exit-at-end", action="store_true", help="stop when the data ends")
    sim.add_argument(
        "--start-on-connect",
        action="store_true",
        help="hold the clock until the first WebSocket client connects (repeatable warm-ups)",
    )
    add_cache_dir(sim)
    sim.set_defaults(func=cmd_sim_exchange)


def _flagged() -> list[dataclasses.Field[Any]]:
    """The fields of :class:`FaultConfig` that are flags (all but those for tests only)."""
    return [f for f in dataclasses.fields(FaultConfig) if f.metadata.get("flag", True)]


def fault_flags() -> list[tuple[str, dict[str, Any]]]:
    """Each fault flag and its ``add_argument`` keywords, in the order of the fields."""
    flags = []
    for field in _flagged():
        default = field.default
        help_text = str(field.metadata.get("help", "")).format(default=shown(default))
        options: dict[str, Any] = {"help": help_text}
        if isinstance(default, bool):
            options["action"] = "store_true" if not default else argparse.BooleanOptionalAction
        else:
            options.update(type=type(default), default=default)
            options["metavar"] = field.metadata.get("metavar")
        flags.append(("--" + field.name.replace("_", "-"), options))
    return flags


def faults_of(args: argparse.Namespace) -> FaultConfig:
    """The fault flags as a :class:`FaultConfig`; a bad value is one line."""
    try:
        return FaultConfig(**{field.name: getattr(args, field.name) for field in _flagged()})
    except ValueError as exc:
        raise ConfigError(f"sim-exchange: {exc}") from None


def cmd_sim_exchange(args: argparse.Namespace) -> int:
    import uvloop

    from barbus.daemon.feeds.sim import serve

    faults = faults_of(args)  # before the data is loaded: a typo fails at once
    uvloop.run(
        serve(
            _served_series(args),
            host=args.host,
            port=args.port,
            speed=args.speed,
            history_bars=args.history_bars,
            faults=faults,
            listening=partial(_tell_port, args.host),
            exit_at_end=args.exit_at_end,
            start_on_connect=args.start_on_connect,
        )
    )
    return 0


def _served_series(args: argparse.Namespace) -> list[BarSeries]:
    from barbus.daemon.cli.options import data_paths, period_ms
    from barbus.replay.cache import BarCache
    from barbus.replay.files import bundled_data_path
    from barbus.replay.folder_series import load_data
    from barbus.replay.runner import cut_period

    start, end = period_ms(args)
    cache = BarCache(args.cache_dir)
    paths = data_paths(args) or [bundled_data_path()]
    series = [cut_period(load_data(path, None, cache, start, end), start, end) for path in paths]
    cache.flush_stats()  # now: the exchange serves until it is stopped
    return series


def _tell_port(host: str, port: int) -> None:
    """The line that tells the bound port: one JSON object, flushed at once."""
    import json

    print(json.dumps({"host": host, "port": port}), flush=True)
