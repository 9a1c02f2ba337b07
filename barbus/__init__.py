"""barbus: one event bus for live paper trading and fast historical replay.

The repository keeps its top-level folders (``daemon/``, ``strategies/``, ``replay/``); they are
installed under this one namespace (``barbus.daemon``, ``barbus.strategies``, ``barbus.replay``),
so barbus claims no import name but ``barbus`` and a user's own ``strategies/`` folder cannot
shadow it. In the checkout those three are symbolic links to the folders.
"""

__version__ = "0.1.0"
