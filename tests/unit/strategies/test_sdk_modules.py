"""Each name of the strategy SDK has one home, and every path strategy files import from hands out
that same object.

The kernel keeps the parameter model (``core.params``), finding and saving a strategy's indicators
(``core.indicator_state``) and the base class (``core.strategy``) apart; strategy files import from
``barbus.strategies.base`` (the README's guide, ``examples/``) or ``barbus.daemon.core.strategy``
(the ``new-strategy`` skeleton). The indicators share one set of argument and snapshot checks and
one set of exact-sum grids, each in its own module.
"""

from __future__ import annotations

import importlib
import pkgutil
import types

import pytest

from barbus.daemon.core import indicator_state, params, strategy
from barbus.daemon.core.events import Bar
from barbus.strategies import indicators
from barbus.strategies.indicators import checks, exact_sums

HOMES: dict[str, types.ModuleType] = {
    "BaseParams": params,
    "ParamValue": params,
    "parse_params": params,
    "require": params,
    "Indicator": indicator_state,
    "AnyStrategy": strategy,
    "Strategy": strategy,
    "snake_case": strategy,
}
INDICATOR_MODULES = [
    importlib.import_module(f"{indicators.__name__}.{info.name}")
    for info in pkgutil.iter_modules(indicators.__path__)
    if info.name not in ("checks", "exact_sums")
]
CHECKS = ("_require_period", "_require_positive", "_check_state")
GRIDS = ("_BINARY_BITS", "_DECIMAL_INT_SCALE", "_ages", "_binary_units", "_decimal_units")


@pytest.mark.parametrize("path", ["barbus.strategies.base", "barbus.daemon.core.strategy"])
def test_strategy_files_get_each_name_from_its_home(path: str) -> None:
    module = importlib.import_module(path)
    assert set(HOMES) <= set(module.__all__)
    for name, home in HOMES.items():
        assert getattr(module, name) is getattr(home, name), f"{path}.{name}"
        assert name in home.__all__


def test_the_parameter_model_and_indicator_state_live_in_their_own_modules() -> None:
    assert params.BaseParams.__module__ == "barbus.daemon.core.params"
    assert indicator_state.Indicator.__module__ == "barbus.daemon.core.indicator_state"

    class Flat(strategy.Strategy[params.BaseParams]):
        def on_bar(self, bar: Bar, position: float) -> None:
            return None

    assert Flat.params_type is params.BaseParams  # the base's default parameter type


def test_every_indicator_module_uses_the_one_set_of_checks_and_grids() -> None:
    users = {name: 0 for name in (*CHECKS, *GRIDS)}
    for module in INDICATOR_MODULES:
        for name in users:
            if name in vars(module):
                home = checks if name in CHECKS else exact_sums
                assert vars(module)[name] is getattr(home, name), f"{module.__name__}.{name}"
                users[name] += 1
    assert all(count >= 1 for count in users.values()), users
    for name in CHECKS:
        assert getattr(checks, name).__module__ == checks.__name__
    for name in ("_ages", "_binary_units", "_decimal_units"):
        assert getattr(exact_sums, name).__module__ == exact_sums.__name__
