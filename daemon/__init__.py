"""barbus daemon package: events, bus, engine, broker, portfolio and the CLI.

Everything shared by live trading and replay lives here. Importing it starts nothing and imports
no event loop or network library; those load lazily in the modules that need them.
"""
