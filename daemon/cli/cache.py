"""``barbus cache``: ingest bar files into the memory-mapped cache, list it, count, clear.

Its own module because ``cache`` has sub-commands of its own (one handler each), all on the
cache folder that ``--cache-dir`` names.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from barbus.daemon.cli.options import Commands, add_cache_dir

__all__ = ["add_cache"]


def add_cache(commands: Commands) -> None:
    cache = commands.add_parser(
        "cache",
        help="the on-disk bar cache (ingest, ls, stats, clear)",
        description="Parse bar files once into memory-mappable columns; later loads map them.",
    )
    actions = cache.add_subparsers(dest="cache_command", required=True, metavar="ACTION")
    ingest = actions.add_parser("ingest", help="cache one or more data files")
    ingest.add_argument("files", nargs="+", type=Path, metavar="FILE")
    ingest.add_argument("--symbol", help="symbol for every file (default: from each file name)")
    ingest.add_argument("--force", action="store_true", help="rebuild even if up to date")
    ingest.set_defaults(func=cmd_cache_ingest)
    for action, help_text, handler in (
        ("ls", "list cached series", cmd_cache_ls),
        (
            "stats",
            "memory hits, disk hits, builds, evictions, peak mapped (all processes)",
            cmd_cache_stats,
        ),
        ("clear", "delete every cache entry and the counters", cmd_cache_clear),
    ):
        actions.add_parser(action, help=help_text).set_defaults(func=handler)
    for sub in actions.choices.values():
        add_cache_dir(sub)


def cmd_cache_ingest(args: argparse.Namespace) -> int:
    import time

    from barbus.replay.cache import BarCache
    from barbus.replay.cache_listing import format_entries

    cache = BarCache(args.cache_dir)
    for path in args.files:
        started = time.perf_counter()
        entry = cache.ingest(path, args.symbol, force=args.force)
        elapsed = time.perf_counter() - started
        print(f"{format_entries([entry])}    ({elapsed:.2f} s)")
    cache.flush_stats()
    return 0


def cmd_cache_ls(args: argparse.Namespace) -> int:
    from barbus.replay.cache import BarCache
    from barbus.replay.cache_listing import format_entries

    cache = BarCache(args.cache_dir)
    print(f"cache {cache.root}")
    print(format_entries(cache.entries()) or "(empty)")
    return 0


def cmd_cache_stats(args: argparse.Namespace) -> int:
    from barbus.replay.cache import BarCache
    from barbus.replay.cache_listing import format_stats

    print(format_stats(BarCache(args.cache_dir)))
    return 0


def cmd_cache_clear(args: argparse.Namespace) -> int:
    from barbus.replay.cache import BarCache

    cache = BarCache(args.cache_dir)
    print(f"removed {cache.clear()} entries from {cache.root}")
    return 0
