"""The strategy SDK's import path for strategy files: the base class, parameters and checks.

The classes live in the kernel (:mod:`barbus.daemon.core.strategy`, ``params`` and
``indicator_state``); user strategies import them from here, so a file written for barbus keeps
working wherever the kernel's modules move.
"""

from barbus.daemon.core.events import Bar, Signal
from barbus.daemon.core.indicator_state import Indicator
from barbus.daemon.core.orders import Cancel, Order, OrderKind
from barbus.daemon.core.params import BaseParams, ParamValue, parse_params, require
from barbus.daemon.core.strategy import AnyStrategy, Strategy, snake_case

__all__ = [
    "AnyStrategy",
    "Bar",
    "BaseParams",
    "Cancel",
    "Indicator",
    "Order",
    "OrderKind",
    "ParamValue",
    "Signal",
    "Strategy",
    "parse_params",
    "require",
    "snake_case",
]
