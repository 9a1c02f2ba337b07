"""``barbus new-strategy NAME``: a strategy file and its test, both passing as written.

The strategy has one parameter, one indicator and ``on_bar``, the smallest complete shape; the
test calls :func:`~barbus.strategies.testing.check_strategy` and checks one behaviour by hand.
Existing files are never overwritten.
"""

from __future__ import annotations

import importlib.util
import keyword
import string
import sys
from pathlib import Path

from barbus.daemon.core.errors import ConfigError

__all__ = ["class_name", "write_skeleton"]

STRATEGY_TEMPLATE = string.Template('''\
"""``${name}``: long while the close is above its moving average (a skeleton: make it yours).

Test it with ``pytest test_${name}.py``; replay it with
``barbus replay --strategy ${name}.py:${cls} --param window=50``.
"""

from __future__ import annotations

import dataclasses

from barbus.daemon.core.events import Bar, Signal
from barbus.daemon.core.strategy import BaseParams, Strategy, require
from barbus.strategies.indicators import SMA


@dataclasses.dataclass(frozen=True)
class ${cls}Params(BaseParams):
    """Parameters; ``timeframe`` (default 1m), ``stop_loss_pct``, ``take_profit_pct`` inherited."""

    window: int = 20

    def __post_init__(self) -> None:
        super().__post_init__()  # checks the inherited fields
        require(self.window >= 1, f"window must be >= 1, got {self.window}")


class ${cls}(Strategy[${cls}Params]):
    """BUY when the close is above its SMA over ``window`` bars, SELL when it is below."""

    name = "${name}"
    params_type = ${cls}Params

    def __init__(self, params: ${cls}Params) -> None:
        super().__init__(params)
        # Indicators and plain fields are the state: barbus saves and restores them for you.
        self._average = SMA(params.window)

    def on_bar(self, bar: Bar, position: float) -> Signal | None:
        average = self._average.update(bar.close)
        if not self._average.ready:
            return None
        if bar.close > average:
            return Signal.BUY  # ignored while long
        if bar.close < average:
            return Signal.SELL  # ignored while flat
        return None
''')

TEST_TEMPLATE = string.Template('''\
"""Tests of ``${name}``: the contract barbus relies on, then what the strategy should do."""

from __future__ import annotations

from barbus.daemon.core.events import Bar, Signal
from barbus.strategies.testing import check_strategy

from ${name} import ${cls}, ${cls}Params


def test_contract() -> None:
    """Valid parameters, repeatable runs, snapshots that restore, nothing before the warm-up."""
    check_strategy(${cls})


def test_buys_once_the_close_is_above_its_average() -> None:
    strategy = ${cls}(${cls}Params(window=3))
    closes = [10.0, 11.0, 12.0, 13.0]
    bars = [Bar("BTCUSDT", "1m", i * 60_000, c, c, c, c, 1.0) for i, c in enumerate(closes)]
    decisions = [strategy.on_bar(bar, 0.0) for bar in bars]
    # SMA(3) is ready at bar 3: mean(10, 11, 12) = 11 < 12, then 12 < 13.
    assert decisions == [None, None, Signal.BUY, Signal.BUY]
''')


def class_name(name: str) -> str:
    """``my_breakout`` -> ``MyBreakout`` (a name already in CamelCase stays)."""
    return "".join(part[:1].upper() + part[1:] for part in name.split("_") if part)


def _check_name(name: str) -> None:
    """A module name that its test can import, and a class name pytest does not collect."""
    if not name.isidentifier() or keyword.iskeyword(name) or not name.isascii():
        raise ConfigError(f"strategy name {name!r} is not a Python identifier (e.g. my_breakout)")
    if not class_name(name) or class_name(name).startswith("Test"):
        raise ConfigError(f"strategy name {name!r} makes a class pytest collects: pick another")
    if name in sys.stdlib_module_names or importlib.util.find_spec(name) is not None:
        raise ConfigError(f"strategy name {name!r} would shadow the module {name}: pick another")
    from barbus.strategies.loader import builtin_strategies

    if name in builtin_strategies():
        raise ConfigError(f"strategy name {name!r} is a built-in strategy's name: pick another")


def write_skeleton(name: str, directory: Path) -> tuple[Path, Path]:
    """Write ``directory/NAME.py`` and ``directory/test_NAME.py``; refuse existing files."""
    strategy = directory / f"{name}.py"
    test = directory / f"test_{name}.py"
    for path in (strategy, test):
        if path.exists() or path.is_symlink():
            raise ConfigError(f"{path} exists: not overwriting it")
    _check_name(name)
    values = {"name": name, "cls": class_name(name)}
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the folder {directory}: {exc}") from None
    try:
        with strategy.open("x", encoding="utf-8") as out:
            out.write(STRATEGY_TEMPLATE.substitute(values))
        with test.open("x", encoding="utf-8") as out:
            out.write(TEST_TEMPLATE.substitute(values))
    except FileExistsError as exc:
        raise ConfigError(f"{exc.filename} exists: not overwriting it") from None
    except OSError as exc:
        raise ConfigError(f"cannot write the skeleton in {directory}: {exc}") from None
    return strategy, test
