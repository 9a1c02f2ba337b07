"""The options and argument types that several commands take, each defined once.

A command's parser composes these with the options only it has (those live in its module).
The execution options are one group that ``replay`` and ``batch`` both add: their defaults and
help text come from :class:`~barbus.daemon.core.broker.ExecutionConfig`, so a changed default
is changed in the help too. Nothing here imports more than the kernel's broker: building the
parser stays fast.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeAlias, get_args

from barbus.daemon.core.broker import ExecutionConfig, FillTiming

__all__ = [
    "STRATEGY_HELP",
    "Commands",
    "add_cache_dir",
    "add_data",
    "add_execution_options",
    "add_run_options",
    "data_paths",
    "execution_of",
    "given",
    "given_execution_flags",
    "period_ms",
    "port",
    "positive_int",
    "shown",
]

# What add_subparsers() returns: each command's module adds its parser to it.
Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

STRATEGY_HELP = (
    "a strategy: a name from `barbus strategies` (built-in or plugin), path/to/file.py:ClassName "
    "(relative to the current folder), or package.module:ClassName"
)


# -- argument types ------------------------------------------------------------------------


def param_pair(text: str) -> tuple[str, str]:
    """``NAME=VALUE`` as ``(name, value)``, both stripped."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected name=value, got {text!r}")
    return name.strip(), value.strip()


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number 0-65535, got {text!r}")
    return value


def given(value: object) -> bool:
    """Whether an option without a default was given (0 counts; a store_true flag's False not)."""
    return value is not None and value is not False


def shown(value: object) -> str:
    """A default as help text shows it: 10.0 as 10, 1e300 as 1e300, 400000 as 400000."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return repr(value).replace("e+", "e")


# -- options of several commands -----------------------------------------------------------


def add_cache_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="cache folder (default: $BARBUS_CACHE_DIR, else $XDG_CACHE_HOME/barbus); one "
        "that cannot be written is only read: data it lacks is parsed, with one warning",
    )


def add_data(parser: argparse.ArgumentParser, meaning: str) -> None:
    """``--data FILE|SYMBOL``, repeatable, and ``--data-dir``. Three commands take it with three
    meanings (the bars a replay runs on, the data axis of a batch's grid, the bars the sim
    serves): ``meaning`` is the command's help text, named in its module."""
    parser.add_argument(
        "--data",
        action="append",
        default=[],
        metavar="FILE|SYMBOL",
        help=f"{meaning}; a SYMBOL (or SYMBOL:INTERVAL) that names no file is read from the "
        "data folder across its month files (`barbus data download`)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="data folder for --data SYMBOL (default: $BARBUS_DATA_DIR, else "
        "$XDG_DATA_HOME/barbus)",
    )


def period_ms(args: argparse.Namespace) -> tuple[int | None, int | None]:
    """``--start``/``--end`` as epoch ms (None: open on that side)."""
    from barbus.replay.periods import parse_period

    return parse_period(args.start, args.end, what="--start/--end", names=("--start", "--end"))


def data_paths(args: argparse.Namespace) -> list[Path]:
    """The ``--data`` values as paths: files as given, symbols as their series folders."""
    from barbus.replay.folder_series import resolve_data

    return [resolve_data(value, args.data_dir) for value in args.data]


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """Options every backtest command shares: symbol, period, execution, parameters."""
    parser.add_argument("--symbol", help="symbol (default: from the file name, e.g. BTCUSDT_...)")
    parser.add_argument(
        "--start",
        help="first bar, inclusive: ISO date/time (UTC unless an offset is given), or epoch "
        "seconds (numbers below 1e11) or milliseconds",
    )
    parser.add_argument("--end", help="end, exclusive: same forms as --start")
    add_execution_options(parser)
    parser.add_argument(
        "--param",
        type=param_pair,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="strategy parameter, repeatable (e.g. --param fast=5)",
    )


# -- the execution options -----------------------------------------------------------------

_FILL_AT = {"next_open": "the next input bar's open", "close": "this bar's close"}


def _fill_at_ways(default: object) -> str:
    """Each way to fill, the default one marked."""
    return " or ".join(
        f"{_FILL_AT[way]}{' (default)' * (way == default)}" for way in get_args(FillTiming)
    )


@dataclass(frozen=True)
class _ExecutionFlag:
    """One execution option: the :class:`ExecutionConfig` field it sets and its help text, in
    which ``{default}`` is that field's default as ``show`` writes it."""

    flag: str
    field: str
    help: str
    options: Mapping[str, Any]  # add_argument's other keywords
    show: Callable[[object], str] = shown

    @property
    def dest(self) -> str:
        return self.flag.removeprefix("--").replace("-", "_")


_BPS = {"type": float, "metavar": "BPS"}
EXECUTION_FLAGS = (
    _ExecutionFlag(
        "--fee-bps",
        "fee_bps",
        "fee in basis points ({default}): sets both the maker and the taker fee",
        {"type": float},
    ),
    _ExecutionFlag(
        "--maker-fee-bps", "maker_fee_bps", "fee of limit order fills (default: --fee-bps)", _BPS
    ),
    _ExecutionFlag(
        "--taker-fee-bps",
        "taker_fee_bps",
        "fee of market and stop order fills, signals and bracket exits (default: --fee-bps)",
        _BPS,
    ),
    _ExecutionFlag(
        "--slippage-bps", "slippage_bps", "slippage in basis points ({default})", {"type": float}
    ),
    _ExecutionFlag(
        "--fill-at",
        "fill_at",
        "fill market orders at {default}",
        {"choices": get_args(FillTiming)},
        show=_fill_at_ways,
    ),
    _ExecutionFlag("--cash", "starting_cash", "starting cash ({default})", {"type": float}),
    _ExecutionFlag(
        "--allow-short",
        "allow_short",
        "let the account hold short positions (without it a short order halts the strategy: "
        "exit 2 naming the strategy and the bar); no leverage, margin or funding",
        {"action": "store_true"},
    ),
)


def add_execution_options(parser: argparse.ArgumentParser) -> None:
    """The execution options, without defaults (a flag not given leaves a config's value)."""
    defaults = ExecutionConfig()
    for option in EXECUTION_FLAGS:
        default = option.show(getattr(defaults, option.field))
        parser.add_argument(option.flag, help=option.help.format(default=default), **option.options)


def given_execution_flags(args: argparse.Namespace) -> list[str]:
    """The execution flags given on the command line, in the order of ``--help``."""
    return [option.flag for option in EXECUTION_FLAGS if given(getattr(args, option.dest))]


def execution_of(args: argparse.Namespace, base: ExecutionConfig | None = None) -> ExecutionConfig:
    """The execution options given on the command line, over ``base`` (default: defaults)."""
    options = {
        option.field: getattr(args, option.dest)
        for option in EXECUTION_FLAGS
        if given(getattr(args, option.dest))
    }
    if args.fee_bps is not None:  # --fee-bps sets both, over a config's maker and taker fees
        options.setdefault("maker_fee_bps", None)
        options.setdefault("taker_fee_bps", None)
    return replace(base or ExecutionConfig(), **options)
