"""``barbus data``: download and update history from an exchange into the data folder, list it.

Its own module because ``data`` has sub-commands of its own, all on the folder ``--data-dir``
names (default: ``$BARBUS_DATA_DIR``, else ``$XDG_DATA_HOME/barbus``).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from barbus.daemon.cli.options import Commands
from barbus.daemon.core.data_folder import DataFolder, default_data_dir, gaps_of
from barbus.daemon.core.errors import ConfigError

__all__ = ["add_data_commands"]

DEFAULT_REST_URL = "https://api.binance.com"
BINANCE_ARCHIVE_URL = "https://data.binance.vision"


def add_data_commands(commands: Commands) -> None:
    data = commands.add_parser(
        "data",
        help="download and update exchange history in the data folder (download, update, ls)",
        description="Bars by symbol, interval and month in the data folder, from an exchange's "
        "REST klines: re-runs fetch only what is missing; the exchange's own gaps are reported, "
        "never filled.",
    )
    actions = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    download = actions.add_parser("download", help="download SYMBOL... from --start to --end")
    download.add_argument("symbols", nargs="+", metavar="SYMBOL")
    download.add_argument("--start", required=True, help="first bar's day or time (UTC)")
    download.add_argument("--end", help="end, exclusive (default: the last closed candle)")
    download.set_defaults(func=cmd_data_download)
    update = actions.add_parser(
        "update", help="extend every downloaded symbol to the last closed candle"
    )
    update.set_defaults(func=cmd_data_update)
    for sub in (download, update):
        sub.add_argument("--interval", default="1m", help="candle interval (default 1m)")
        sub.add_argument(
            "--rest-url",
            default=DEFAULT_REST_URL,
            help=f"the exchange's REST base URL (default {DEFAULT_REST_URL}; a sim-exchange's "
            "http://127.0.0.1:PORT works the same)",
        )
        sub.add_argument(
            "--archive-url",
            default=None,
            help="base URL of the exchange's public archive of monthly and daily kline zips "
            f"(default: {BINANCE_ARCHIVE_URL} with the default --rest-url, else none; "
            "'' for none): whole past months and days come from there, checksums verified",
        )
    ls = actions.add_parser("ls", help="symbols, intervals, periods, gaps and sizes")
    ls.set_defaults(func=cmd_data_ls)
    for sub in actions.choices.values():
        sub.add_argument(
            "--data-dir",
            type=Path,
            default=None,
            help="data folder (default: $BARBUS_DATA_DIR, else $XDG_DATA_HOME/barbus)",
        )


def _folder(args: argparse.Namespace) -> DataFolder:
    return DataFolder(args.data_dir or default_data_dir())


def cmd_data_download(args: argparse.Namespace) -> int:
    from barbus.replay.periods import parse_time

    start = parse_time(args.start, "--start")
    end = parse_time(args.end, "--end") if args.end else None
    if end is not None and end <= start:
        raise ConfigError(f"--end {args.end} is not after --start {args.start}")
    return _run(args, [(symbol.upper(), start) for symbol in args.symbols], end)


def cmd_data_update(args: argparse.Namespace) -> int:
    folder = _folder(args)
    todo = []
    for symbol, interval in folder.series():
        fetched = folder.fetched(symbol, interval)
        if interval == args.interval and fetched:
            todo.append((symbol, fetched[0][0]))
    if not todo:
        raise ConfigError(
            f"{folder.root} holds no downloaded {args.interval} series: "
            "`barbus data download SYMBOL --start DATE` first"
        )
    return _run(args, todo, None)


def _run(args: argparse.Namespace, todo: list[tuple[str, int]], end: int | None) -> int:
    from tqdm import tqdm

    from barbus.daemon.core.events import format_time_ms
    from barbus.daemon.download import download

    folder = _folder(args)
    archive = args.archive_url
    if archive is None:
        archive = BINANCE_ARCHIVE_URL if args.rest_url == DEFAULT_REST_URL else ""
    with tqdm(unit=" bars", disable=not sys.stderr.isatty(), leave=False) as bar:

        def progress(symbol: str, written: int) -> None:
            bar.set_description(symbol)
            bar.n = written
            bar.refresh()

        reports = []
        for symbol, start in todo:
            reports += asyncio.run(
                download(
                    folder,
                    [symbol],
                    args.interval,
                    start,
                    end,
                    args.rest_url,
                    archive_url=archive or None,
                    progress=progress,
                )
            )
    for r in reports:
        span = (
            f"{format_time_ms(r.first_ms)} .. {format_time_ms(r.last_ms)}"
            if r.first_ms is not None and r.last_ms is not None
            else "no bars"
        )
        gaps = (
            f"{r.gaps} exchange gap(s), largest {r.largest_gap_bars} bar(s)"
            if r.gaps
            else "no gaps"
        )
        refused = sum(r.refused_rows.values())
        archives = (
            f"{r.archives - r.archives_failed} of {r.archives} archive(s) and "
            if r.archives
            else ""
        )
        print(
            f"{r.symbol} {r.interval}: {r.bars_written:,} new bars from {archives}"
            f"{r.requests} request(s)"
            f"{f', {r.retries} retried' if r.retries else ''}"
            f"{f', {refused} row(s) refused' if refused else ''}; stored {r.stored_bars:,} "
            f"bars {span}; {gaps} (never filled)"
        )
    print(f"data folder: {folder.root}")
    return 0


def cmd_data_ls(args: argparse.Namespace) -> int:
    from barbus.daemon.core.events import INTERVAL_MS, format_time_ms

    folder = _folder(args)
    found = folder.series()
    if not found:
        print(f"{folder.root}: no data (barbus data download SYMBOL --start DATE)")
        return 0
    print(
        f"{'symbol':<12} {'interval':<8} {'first':<20} {'last':<20} {'bars':>10} "
        f"{'gaps':>6} {'largest':>8} {'MB':>8}"
    )
    for symbol, interval in found:
        times = folder.open_times(symbol, interval)
        size = sum(path.stat().st_size for path in folder.month_files(symbol, interval)) / 1e6
        gaps, largest = gaps_of(times, INTERVAL_MS.get(interval, 60_000))
        first = format_time_ms(times[0]) if times else "-"
        last = format_time_ms(times[-1]) if times else "-"
        print(
            f"{symbol:<12} {interval:<8} {first:<20} {last:<20} {len(times):>10,} "
            f"{gaps:>6} {largest:>8} {size:>8.1f}"
        )
    return 0
