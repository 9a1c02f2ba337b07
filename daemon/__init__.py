"""barbus daemon package: the trading kernel (``core``) and the paper-trading service around it.

The kernel in ``core/`` is shared by live trading and replay; the rest of the package is the
long-running service (feeds, state, books, recovery, status, metrics, HTTP, lifecycle) and the
``barbus`` command line (``cli/``). Importing it starts nothing and imports no event loop or
network library; those load lazily in the modules that need them.
"""
