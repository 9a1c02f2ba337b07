"""The import path of the record types for strategy files written before the kernel package.

The types live in :mod:`barbus.daemon.core.events`; strategies (the shipped ones included, whose
code fingerprints should not change with a move) import ``Bar`` and ``Signal`` from here.
"""

from barbus.daemon.core.events import *  # noqa: F403
from barbus.daemon.core.events import __all__ as __all__
