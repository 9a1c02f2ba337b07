"""The import path of the synthetic bars for tests written before they moved to the kernel.

:func:`synthetic_series` lives in the kernel (:mod:`barbus.daemon.core.synthetic`) so the
strategy SDK's contract check can use it without importing the replay.
"""

from barbus.daemon.core.synthetic import synthetic_series

__all__ = ["synthetic_series"]
