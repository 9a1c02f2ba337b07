"""barbus: one event bus for live paper trading and fast historical replay.

The repository keeps its top-level folders (``daemon/``, ``strategies/``, ``replay/``); they are
installed under this one namespace (``barbus.daemon``, ``barbus.strategies``, ``barbus.replay``),
so barbus claims no import name but ``barbus`` and a user's own ``strategies/`` folder cannot
shadow it. In the checkout those three are symbolic links to the folders.

``from barbus import backtest, sweep`` is the Python API (:mod:`barbus.replay.api`). It is
imported on first use, so ``import barbus.strategies`` still loads neither pandas nor the replay.

Importing barbus first decides which kernel runs, the compiled one or pure Python
(:mod:`barbus.kernel_build`), before any kernel module loads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from barbus import kernel_build

kernel_build.choose()

if TYPE_CHECKING:
    from barbus.replay.api import BacktestResult, backtest, sweep

__all__ = ["BacktestResult", "__version__", "backtest", "sweep"]

__version__ = "0.1.0"

_API = frozenset({"BacktestResult", "backtest", "sweep"})


def __getattr__(name: str) -> Any:
    """The Python API's names, imported when first asked for (PEP 562)."""
    if name in _API:
        from barbus.replay import api

        return getattr(api, name)
    raise AttributeError(f"module 'barbus' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_API})
