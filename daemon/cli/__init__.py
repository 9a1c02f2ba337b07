"""The ``barbus`` command line: parse arguments, call one library function, report.

The composition root: the only package that imports every layer. Each command (or group of
commands on one object) has its module with its options and its ``cmd_*`` handlers; options
that several commands take are defined once in :mod:`.options`. Handlers import heavy modules
inside them so ``barbus --help`` stays fast. Any :class:`~daemon.core.errors.BarbusError` becomes
one line on stderr and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from barbus import __version__, kernel_build
from barbus.daemon.cli.batch import add_batch
from barbus.daemon.cli.cache import add_cache
from barbus.daemon.cli.daemon import add_parity, add_run, add_trades
from barbus.daemon.cli.data import add_data_commands
from barbus.daemon.cli.replay import add_replay
from barbus.daemon.cli.sim import add_sim_exchange
from barbus.daemon.cli.strategies import add_new_strategy, add_strategies
from barbus.daemon.core.errors import BarbusError
from barbus.daemon.log import configure_logging

__all__ = ["build_parser", "main"]

# In the order `barbus --help` lists them.
_COMMANDS = (
    add_replay,
    add_cache,
    add_data_commands,
    add_batch,
    add_sim_exchange,
    add_run,
    add_parity,
    add_trades,
    add_strategies,
    add_new_strategy,
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every sub-command."""
    parser = argparse.ArgumentParser(
        prog="barbus",
        description="Event-driven trading: the same strategies in replay and live paper trading.",
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"barbus {__version__}, {kernel_build.describe()}",
        help="print the version and which kernel runs (compiled or pure Python), then exit",
    )
    parser.add_argument(
        "--log-level", default=None, help="logging level (default INFO, or the daemon config's)"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in _COMMANDS:
        add(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``barbus`` console script; returns the process exit code.

    Output piped into a reader that stops early (``barbus strategies | head -1``) ends quietly
    with exit 0: stdout is flushed here, where a closed pipe can still be caught, and then
    pointed at /dev/null so the interpreter's own final flush has nowhere to fail.
    """
    try:
        try:
            return _main(argv)
        finally:
            sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 0


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.log_level_given = args.log_level is not None
    args.log_level = args.log_level or "INFO"
    try:
        configure_logging(args.log_level)
    except ValueError:
        parser.error(f"unknown log level {args.log_level!r}")
    try:
        code: int = args.func(args)
    except BarbusError as exc:
        print(f"barbus: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("barbus: interrupted", file=sys.stderr)
        return 130
    return code
