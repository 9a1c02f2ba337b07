"""``barbus strategies`` and ``new-strategy``: list and describe strategies, write a skeleton.

Apart from the run commands because these only load strategy classes (or write files): no data,
no run.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from barbus.daemon.cli.options import STRATEGY_HELP, Commands

if TYPE_CHECKING:
    from barbus.strategies import StrategySource

__all__ = ["add_new_strategy", "add_strategies"]

log = logging.getLogger("barbus.cli")


def add_strategies(commands: Commands) -> None:
    listing = commands.add_parser(
        "strategies",
        help="list strategies, where each comes from, and their parameters",
        description="List the built-in strategies and installed plugins (entry-point group "
        "barbus.strategies), or describe the strategies the SPECs name.",
    )
    listing.add_argument("specs", nargs="*", metavar="SPEC", help=STRATEGY_HELP)
    listing.set_defaults(func=cmd_strategies)


def add_new_strategy(commands: Commands) -> None:
    new_strategy = commands.add_parser(
        "new-strategy",
        help="write a skeleton strategy and its test, both passing as written",
        description="Write DIR/NAME.py (class NAME in CamelCase: one parameter, one indicator, "
        "on_bar) and DIR/test_NAME.py (check_strategy plus one behaviour). Existing files are "
        "never overwritten (exit 2).",
    )
    new_strategy.add_argument("name", metavar="NAME", help="a Python identifier, e.g. my_breakout")
    new_strategy.add_argument(
        "--dir", type=Path, default=Path(), help="folder to write into (default: the current one)"
    )
    new_strategy.set_defaults(func=cmd_new_strategy)


def cmd_strategies(args: argparse.Namespace) -> int:
    from barbus.strategies import StrategySource, available_strategies, resolve_strategy

    listed: list[StrategySource] = []
    if args.specs:
        listed = [resolve_strategy(spec) for spec in args.specs]
    else:
        for found in available_strategies():
            if isinstance(found, StrategySource):
                listed.append(found)
            else:
                log.warning("%s", found)
    for source in listed:
        print(_describe_strategy(source))
    return 0


def cmd_new_strategy(args: argparse.Namespace) -> int:
    from barbus.strategies.skeleton import class_name, write_skeleton

    strategy, test = write_skeleton(args.name, args.dir)
    print(f"wrote {strategy} and {test}")
    print(f"next: pytest {test}; barbus replay --strategy {strategy}:{class_name(args.name)}")
    return 0


def _describe_strategy(source: StrategySource) -> str:
    """``name: first docstring line``, where it comes from, then each parameter's default."""
    import dataclasses

    from barbus.strategies.loader import module_docstring

    cls = source.cls
    module_doc = module_docstring(sys.modules[cls.__module__])
    # A built-in's module docstring starts with its name; a user file may hold several classes.
    first_choice = module_doc if source.origin == "built-in" else cls.__doc__
    doc = (first_choice or module_doc or cls.__doc__ or "").strip()
    first = doc.splitlines()[0].removeprefix(f"``{source.name}``: ") if doc else ""
    lines = [f"{source.name}: {first}".rstrip(), f"    from: {source.origin}"]
    if source.origin != "built-in":
        lines.append(f"    spec: {source.spec}   fingerprint: {source.fingerprint}")
    lines += [f"    {f.name} = {f.default!r}" for f in dataclasses.fields(cls.params_type)]
    return "\n".join(lines)
