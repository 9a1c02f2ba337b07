"""``barbus run``, ``parity`` and ``trades``: the paper-trading daemon and its state file.

One module for the three because they share their object: ``run`` writes a state file,
``parity`` replays what it recorded and ``trades`` lists the trades in it (read-only).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from barbus.daemon.cli.options import Commands
from barbus.daemon.core.errors import ConfigError
from barbus.daemon.log import configure_logging

if TYPE_CHECKING:
    from barbus.daemon.core.events import Trade

__all__ = ["add_parity", "add_run", "add_trades"]


def _add_state(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--state", type=Path, required=True, help="daemon state file (SQLite)")


def add_run(commands: Commands) -> None:
    run = commands.add_parser(
        "run",
        help="run the paper-trading daemon",
        description="Paper-trade the configured strategies on a live (or simulated) feed. A "
        "[[strategy]] strategy = takes any --strategy spec (file paths from the config's folder); "
        "a restart refuses a strategy whose spec, code (fingerprint) or parameters changed.",
    )
    run.add_argument("--config", type=Path, required=True, help="daemon config file (TOML)")
    run.add_argument(
        "--new-state",
        action="store_true",
        help="accept the state file as it is now although its marker (<state>.id) says it was "
        "emptied or replaced: a missing or empty file starts a new state; nothing is deleted",
    )
    run.set_defaults(func=cmd_run)


def add_parity(commands: Commands) -> None:
    parity = commands.add_parser(
        "parity",
        help="replay what the daemon recorded and compare trade logs",
        description="Exit 0 when replaying the recorded bars gives the daemon's trades exactly. "
        "Each strategy runs from its recorded spec; a strategy whose code changed since (its "
        "fingerprint differs from the recorded one) is refused with one line, exit 2.",
    )
    _add_state(parity)
    parity.add_argument(
        "--export",
        type=Path,
        metavar="DIR",
        help="also write the recorded bars as CSV (one file per symbol) to DIR and print the "
        "barbus replay commands that reproduce each strategy's trades",
    )
    parity.set_defaults(func=cmd_parity)


def add_trades(commands: Commands) -> None:
    trades = commands.add_parser(
        "trades",
        help="list the trades a daemon recorded in its state file",
        description="List the closed trades recorded in a daemon state file, oldest exit first. "
        "Opens the file read-only without the daemon's lock: works while the daemon runs, and "
        "on a read-only copy.",
    )
    _add_state(trades)
    trades.add_argument("--strategy", metavar="NAME", help="only this strategy ([[strategy]] name)")
    trades.add_argument(
        "--since",
        metavar="TIME",
        help="only trades closed at or after TIME (same forms as replay --start: ISO "
        "date/time UTC, epoch seconds below 1e11 or milliseconds)",
    )
    trades.add_argument(
        "--format",
        choices=("table", "csv", "json"),
        default="table",
        help="table: aligned columns, ISO UTC times, rounded numbers (default); csv: the "
        "columns of replay's trades.csv, exact; json: a list of objects with those keys",
    )
    trades.set_defaults(func=cmd_trades)


def cmd_run(args: argparse.Namespace) -> int:
    from barbus.daemon.config import load_config
    from barbus.daemon.service import run_daemon

    config = load_config(args.config)
    configure_logging(args.log_level if args.log_level_given else config.log_level)
    return run_daemon(config, new_state=args.new_state)


def cmd_parity(args: argparse.Namespace) -> int:
    from barbus.daemon.parity import check_parity, export_recorded

    if args.export is not None:
        for path, commands in export_recorded(args.state, args.export):
            print(f"wrote {path}; replay it with:")
            for command in commands:
                print(f"    {command}")

    reports = check_parity(args.state)
    for r in reports:
        verdict = "identical" if r.identical else f"DIFFERENT: {r.first_difference}"
        print(
            f"{r.name}: {r.daemon_trades} daemon trades, {r.replay_trades} replay trades, "
            f"equity {r.daemon_equity:.2f} vs {r.replay_equity:.2f}: {verdict}"
        )
    return 0 if all(r.identical for r in reports) else 1


def cmd_trades(args: argparse.Namespace) -> int:
    """The closed trades a daemon recorded, read-only (also while it runs, or from a copy)."""
    trades = _recorded_trades(args.state, args.strategy, _since_ms(args.since))
    _print_trades(trades, args.format)
    return 0


def _since_ms(since: str | None) -> int | None:
    from barbus.replay.periods import parse_time

    if since is None:
        return None
    since_ms = parse_time(since, "--since")
    if not -(2**62) < since_ms < 2**62:
        raise ConfigError(f"--since {since[:50]!r} is out of range")
    return since_ms


def _recorded_trades(state: Path, strategy: str | None, since_ms: int | None) -> list[Trade]:
    """The trades in ``state`` (of ``strategy`` only, if given: an unknown name is an error)."""
    from barbus.daemon.core.errors import did_you_mean
    from barbus.daemon.state import StateStore

    store = StateStore(state, read_only=True)
    try:
        if strategy is not None:
            names = sorted(store.engines())
            if strategy not in names:
                known = ", ".join(names) or "none yet"
                raise ConfigError(
                    f"{state}: no strategy named {strategy!r} (strategies: {known})"
                    + did_you_mean(strategy, names)
                )
        return store.trades(strategy, since_ms=since_ms)
    finally:
        store.close()


def _print_trades(trades: list[Trade], form: str) -> None:
    import json

    from barbus.daemon.core.tradelog import format_trades_table, trade_dict, write_trades

    if form == "csv":
        write_trades(sys.stdout, trades)
    elif form == "json":
        print(json.dumps([trade_dict(t) for t in trades], indent=1))
    elif trades:
        print("\n".join(format_trades_table(trades)))
    else:
        print("no trades", file=sys.stderr)
