"""The on-disk bar cache on real files and real cache folders: build, map, LRU, staleness,
corruption, concurrency between processes, shared counters and the ``barbus cache`` commands.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import multiprocessing
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from barbus.daemon.core.errors import DataError
from barbus.daemon.core.series import BarSeries
from barbus.replay.cache import BarCache, default_cache_dir
from barbus.replay.cache_entry import COLUMNS, FORMAT_VERSION
from barbus.replay.cache_stats import CacheStats
from barbus.replay.loader import load_bars
from tests.kit.processes import barbus

REPO_ROOT = Path(__file__).resolve().parents[3]
NPY_HEADER_BYTES = 128
ROWS_2023 = 71_041
ROWS_2025 = 130_708

ChildResult = tuple[str, dict[str, str], dict[str, int]]


# --------------------------------------------------------------------------------------------
# helpers and fixtures


def utc_ms(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> int:
    return int(datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp()) * 1000


def assert_same_columns(actual: BarSeries, expected: BarSeries) -> None:
    assert actual.symbol == expected.symbol
    assert len(actual) == len(expected)
    for name in COLUMNS:
        assert np.array_equal(getattr(actual, name), getattr(expected, name)), name


def column_digests(series: BarSeries) -> dict[str, str]:
    return {
        name: hashlib.sha256(np.ascontiguousarray(getattr(series, name)).tobytes()).hexdigest()
        for name in COLUMNS
    }


def entry_dir(root: Path) -> Path:
    """The folder of the one entry cached under ``root``."""
    (entry,) = BarCache(root).entries()
    return root / entry.key


def entry_dirs(root: Path) -> list[Path]:
    """Every entry folder (temporary and trash folders start with a dot)."""
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def read_meta(directory: Path) -> dict[str, Any]:
    meta: dict[str, Any] = json.loads((directory / "meta.json").read_text(encoding="utf-8"))
    return meta


def gunzip_to(source: Path, target: Path) -> Path:
    target.write_bytes(gzip.decompress(source.read_bytes()))
    return target


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "barbus.cache" and r.levelno == logging.WARNING
    ]


@pytest.fixture(scope="module")
def btc_2023(btc_2023_path: Path) -> BarSeries:
    return load_bars(btc_2023_path)


@pytest.fixture(scope="module")
def btc_2025(btc_2025_path: Path) -> BarSeries:
    return load_bars(btc_2025_path)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.fixture
def source(tmp_path: Path, btc_2023_path: Path) -> Path:
    """A private copy of the 2023 sample, free to modify or delete."""
    return Path(shutil.copy(btc_2023_path, tmp_path / "BTCUSDT_1m_2023.csv.gz"))


@pytest.fixture
def cache_log(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> Any:
    """caplog seeing ``barbus.cache`` records even if the CLI's logging set-up ran in-process."""
    monkeypatch.setattr(logging.getLogger("barbus"), "propagate", True)
    caplog.set_level(logging.INFO, logger="barbus.cache")
    return caplog


# --------------------------------------------------------------------------------------------
# first load builds, later loads map


def test_first_load_builds_the_entry_and_serves_the_source_values(
    root: Path, btc_2023_path: Path, btc_2023: BarSeries
) -> None:
    cache = BarCache(root)

    series = cache.load(btc_2023_path)

    assert cache.stats.builds == 1
    assert cache.stats.misses == 1
    assert cache.stats.hits == 0
    assert cache.stats.rebuilds == 0
    assert_same_columns(series, btc_2023)
    assert len(entry_dirs(root)) == 1


def test_second_instance_maps_the_entry_instead_of_parsing(
    root: Path, btc_2023_path: Path, btc_2023: BarSeries
) -> None:
    BarCache(root).load(btc_2023_path)
    fresh = BarCache(root)

    series = fresh.load(btc_2023_path)

    assert fresh.stats.builds == 0
    assert fresh.stats.rebuilds == 0
    assert (fresh.stats.disk_hits, fresh.stats.memory_hits, fresh.stats.misses) == (1, 0, 0)
    for name in COLUMNS:
        column = getattr(series, name)
        assert isinstance(column, np.memmap), name
        assert not column.flags.writeable, name
    assert series.open_time_ms.dtype == np.dtype("<i8")
    assert series.close.dtype == np.dtype("<f8")
    assert_same_columns(series, btc_2023)
    assert series.interval == "1m"
    assert series.source == str(btc_2023_path.resolve())


def test_entry_metadata_describes_the_2023_source(root: Path, btc_2023_path: Path) -> None:
    BarCache(root).load(btc_2023_path)

    (entry,) = BarCache(root).entries()
    meta = read_meta(root / entry.key)

    expected_sha = hashlib.sha256(btc_2023_path.read_bytes()).hexdigest()
    assert re.fullmatch(r"BTCUSDT-[0-9a-f]{16}", entry.key)
    assert entry.symbol == "BTCUSDT"
    assert entry.interval == "1m"
    assert entry.rows == ROWS_2023
    assert entry.first_open_time_ms == utc_ms(2023, 3, 16, 22, 15)
    assert entry.last_open_time_ms == utc_ms(2023, 5, 5, 7, 35)
    assert entry.source.sha256 == expected_sha
    assert entry.source.size == btc_2023_path.stat().st_size
    assert entry.source.mtime_ns == btc_2023_path.stat().st_mtime_ns
    assert entry.source.path == str(btc_2023_path.resolve())
    assert entry.gaps["count"] == 1
    assert entry.gaps["largest_minutes"] == 80
    assert entry.gaps["missing_minutes"] == 80
    assert entry.zero_volume_bars == 72
    assert entry.format_version == FORMAT_VERSION == 1
    assert meta["format_version"] == FORMAT_VERSION
    assert meta["source"]["sha256"] == expected_sha
    assert meta["rows"] == ROWS_2023
    for name in COLUMNS:
        on_disk = (root / entry.key / f"{name}.npy").stat().st_size
        assert entry.column_bytes[name] == on_disk == NPY_HEADER_BYTES + 8 * ROWS_2023
    assert entry.nbytes == 6 * (NPY_HEADER_BYTES + 8 * ROWS_2023)


def test_bundled_2025_file_round_trips_through_the_cache_exactly(
    root: Path, btc_2025_path: Path, btc_2025: BarSeries
) -> None:
    BarCache(root).load(btc_2025_path)

    series = BarCache(root).load(btc_2025_path)

    assert len(series) == ROWS_2025
    assert_same_columns(series, btc_2025)
    assert BarCache(root).entries()[0].gaps["count"] == 0


def test_same_file_under_two_symbols_gets_two_entries(root: Path, btc_2023_path: Path) -> None:
    cache = BarCache(root)

    a = cache.load(btc_2023_path)
    b = cache.load(btc_2023_path, symbol="XBTUSD")

    assert (a.symbol, b.symbol) == ("BTCUSDT", "XBTUSD")
    assert cache.stats.builds == 2
    assert [e.symbol for e in cache.entries()] == ["BTCUSDT", "XBTUSD"]


# --------------------------------------------------------------------------------------------
# the in-process LRU


def test_hit_on_the_same_instance_returns_the_same_object(root: Path, btc_2023_path: Path) -> None:
    cache = BarCache(root)
    first = cache.load(btc_2023_path)

    second = cache.load(btc_2023_path)

    assert second is first
    assert (cache.stats.memory_hits, cache.stats.disk_hits) == (1, 0)
    assert cache.stats.misses == 1
    assert cache.stats.builds == 1


def test_budget_below_two_entries_evicts_the_older_one(
    root: Path, btc_2023_path: Path, btc_2025_path: Path, btc_2023: BarSeries
) -> None:
    size_2023 = 6 * (NPY_HEADER_BYTES + 8 * ROWS_2023)
    size_2025 = 6 * (NPY_HEADER_BYTES + 8 * ROWS_2025)
    cache = BarCache(root, budget_bytes=size_2025 + 1)
    old = cache.load(btc_2023_path)
    assert cache.stats.bytes_mapped == size_2023

    cache.load(btc_2025_path)

    assert cache.stats.evictions == 1
    assert cache.stats.bytes_mapped == size_2025
    assert cache.stats.peak_bytes_mapped == size_2023 + size_2025
    # An evicted series stays usable by whoever still holds it.
    assert_same_columns(old, btc_2023)
    # Loading it again is a disk hit (mapped, no build) that evicts the other one.
    again = cache.load(btc_2023_path)
    assert again is not old
    assert (cache.stats.memory_hits, cache.stats.disk_hits, cache.stats.builds) == (0, 1, 2)
    assert cache.stats.misses == 2
    assert cache.stats.evictions == 2
    assert cache.stats.bytes_mapped == size_2023


def test_lru_evicts_the_least_recently_used_not_the_oldest(
    tmp_path: Path, root: Path, btc_2023_path: Path
) -> None:
    a, b, c = (
        Path(shutil.copy(btc_2023_path, tmp_path / f"BTCUSDT_{name}.csv.gz"))
        for name in ("a", "b", "c")
    )
    size = 6 * (NPY_HEADER_BYTES + 8 * ROWS_2023)
    cache = BarCache(root, budget_bytes=2 * size + size // 2)
    series_a = cache.load(a)
    cache.load(b)
    assert cache.load(a) is series_a  # a is now more recent than b

    cache.load(c)

    assert cache.stats.evictions == 1
    assert cache.stats.bytes_mapped == 2 * size
    # The new entry is mapped before the least recently used one is dropped.
    assert cache.stats.peak_bytes_mapped == 3 * size
    hits_before = cache.stats.hits
    assert cache.load(a) is series_a
    assert cache.stats.hits == hits_before + 1
    disk_hits_before = cache.stats.disk_hits
    cache.load(b)  # evicted: mapped again from disk, not parsed
    assert cache.stats.disk_hits == disk_hits_before + 1


def test_budget_smaller_than_one_entry_still_keeps_the_last_one(
    root: Path, btc_2023_path: Path
) -> None:
    cache = BarCache(root, budget_bytes=1)

    first = cache.load(btc_2023_path)

    assert cache.stats.evictions == 0
    assert cache.load(btc_2023_path) is first
    assert cache.stats.hits == 1


# --------------------------------------------------------------------------------------------
# a changed source is rebuilt, never served stale


def test_source_rewritten_with_other_content_is_rebuilt_on_a_new_instance(
    root: Path, source: Path, btc_2025_path: Path, btc_2025: BarSeries, cache_log: Any
) -> None:
    BarCache(root).load(source)
    source.write_bytes(btc_2025_path.read_bytes())
    cache = BarCache(root)

    series = cache.load(source)

    assert cache.stats.rebuilds == 1
    assert cache.stats.builds == 0
    assert_same_columns(series, btc_2025)
    assert any("the source file changed" in m for m in warnings_of(cache_log))
    (entry,) = cache.entries()
    assert entry.rows == ROWS_2025
    assert entry.source.sha256 == hashlib.sha256(source.read_bytes()).hexdigest()


def test_source_rewritten_while_in_the_lru_is_rebuilt_not_a_hit(
    root: Path, source: Path, btc_2025_path: Path, btc_2025: BarSeries
) -> None:
    cache = BarCache(root)
    old = cache.load(source)
    source.write_bytes(btc_2025_path.read_bytes())

    series = cache.load(source)

    assert series is not old
    assert cache.stats.hits == 0
    assert cache.stats.rebuilds == 1
    assert_same_columns(series, btc_2025)
    assert cache.stats.bytes_mapped == 6 * (NPY_HEADER_BYTES + 8 * ROWS_2025)


def test_same_size_source_with_one_digit_changed_is_rebuilt(
    tmp_path: Path, root: Path, btc_2023_path: Path
) -> None:
    source = gunzip_to(btc_2023_path, tmp_path / "BTCUSDT_1m_2023.csv")
    cache = BarCache(root)
    before = cache.load(source)
    old_volume = float(before.volume[0])
    text = source.read_text(encoding="utf-8")
    lines = text.split("\n")
    last = lines[1][-1]
    lines[1] = lines[1][:-1] + str((int(last) + 1) % 10)  # last digit of the first volume
    old_stat = source.stat()
    source.write_text("\n".join(lines), encoding="utf-8")
    os.utime(source, ns=(old_stat.st_atime_ns, old_stat.st_mtime_ns + 1_000_000_000))
    assert source.stat().st_size == old_stat.st_size

    after = cache.load(source)

    assert cache.stats.rebuilds == 1
    assert float(after.volume[0]) != old_volume
    assert_same_columns(after, load_bars(source))
    assert BarCache(root).load(source).volume[0] == after.volume[0]


def test_touched_source_is_not_rebuilt_and_its_new_mtime_is_recorded(
    root: Path, source: Path, btc_2023: BarSeries, cache_log: Any
) -> None:
    BarCache(root).load(source)
    old_mtime = source.stat().st_mtime_ns
    os.utime(source, ns=(old_mtime + 5_000_000_000, old_mtime + 5_000_000_000))
    new_mtime = source.stat().st_mtime_ns
    assert new_mtime != old_mtime
    cache = BarCache(root)

    series = cache.load(source)

    assert (cache.stats.builds, cache.stats.rebuilds) == (0, 0)
    assert isinstance(series.close, np.memmap)
    assert_same_columns(series, btc_2023)
    assert read_meta(entry_dir(root))["source"]["mtime_ns"] == new_mtime
    assert warnings_of(cache_log) == []


def test_touched_source_while_in_the_lru_is_remapped_then_hit(
    root: Path, source: Path, btc_2023: BarSeries
) -> None:
    # BUG: _open_or_build refreshes meta.json but returns the entry read before the refresh, so
    # the LRU keeps the old mtime and the next load is a needless miss (re-map + checksums).
    cache = BarCache(root)
    first = cache.load(source)
    mtime = source.stat().st_mtime_ns + 3_000_000_000
    os.utime(source, ns=(mtime, mtime))

    second = cache.load(source)
    third = cache.load(source)

    assert second is not first
    assert third is second
    assert (cache.stats.builds, cache.stats.rebuilds) == (1, 0)
    assert (cache.stats.disk_hits, cache.stats.memory_hits) == (1, 1)  # re-mapped, then hit
    assert_same_columns(second, btc_2023)
    assert read_meta(entry_dir(root))["source"]["mtime_ns"] == source.stat().st_mtime_ns


def test_ingest_after_a_touch_returns_the_refreshed_fingerprint(root: Path, source: Path) -> None:
    # BUG: same cause as above; ``barbus cache ingest`` reports the pre-touch mtime.
    BarCache(root).ingest(source)
    mtime = source.stat().st_mtime_ns + 7_000_000_000
    os.utime(source, ns=(mtime, mtime))

    entry = BarCache(root).ingest(source)

    assert entry.source.mtime_ns == source.stat().st_mtime_ns
    assert read_meta(entry_dir(root))["source"]["mtime_ns"] == source.stat().st_mtime_ns


def test_forced_ingest_rebuilds_an_up_to_date_entry(root: Path, source: Path) -> None:
    cache = BarCache(root)
    cache.ingest(source)
    created = cache.entries()[0].created_unix

    entry = cache.ingest(source, force=True)

    assert (cache.stats.builds, cache.stats.rebuilds) == (1, 1)
    assert entry.rows == ROWS_2023
    assert entry.created_unix >= created


# --------------------------------------------------------------------------------------------
# corrupt entries are detected, logged and rebuilt


def truncate_column(entry: Path) -> None:
    path = entry / "close.npy"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def truncate_column_inside_its_header(entry: Path) -> None:
    path = entry / "high.npy"
    path.write_bytes(path.read_bytes()[:50])


def append_bytes_to_column(entry: Path) -> None:
    with (entry / "low.npy").open("ab") as handle:
        handle.write(b"\0" * 8)


def flip_byte_mid_column(entry: Path) -> None:
    path = entry / "close.npy"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def replace_column_with_another_dtype(entry: Path) -> None:
    path = entry / "open.npy"
    np.save(path, np.zeros(ROWS_2023, dtype=np.int64), allow_pickle=False)


def garbage_meta(entry: Path) -> None:
    (entry / "meta.json").write_bytes(bytes(range(256)))


def half_written_meta(entry: Path) -> None:
    path = entry / "meta.json"
    text = path.read_text(encoding="utf-8")
    path.write_text(text[: len(text) // 2], encoding="utf-8")


def meta_with_format_version(version: int) -> Callable[[Path], None]:
    def damage(entry: Path) -> None:
        meta = read_meta(entry)
        meta["format_version"] = version
        (entry / "meta.json").write_text(json.dumps(meta), encoding="utf-8")

    return damage


def meta_without_a_field(entry: Path) -> None:
    meta = read_meta(entry)
    del meta["checksums"]
    (entry / "meta.json").write_text(json.dumps(meta), encoding="utf-8")


def delete_column(entry: Path) -> None:
    (entry / "volume.npy").unlink()


def delete_meta(entry: Path) -> None:
    (entry / "meta.json").unlink()


CORRUPTIONS: list[tuple[str, Callable[[Path], None], str]] = [
    ("truncated-column", truncate_column, r"close\.npy"),
    ("column-truncated-inside-its-header", truncate_column_inside_its_header, r"high\.npy"),
    ("column-with-extra-bytes", append_bytes_to_column, r"low\.npy: \d+ bytes, expected"),
    ("flipped-byte", flip_byte_mid_column, r"close\.npy: checksum mismatch"),
    ("column-of-wrong-dtype", replace_column_with_another_dtype, r"open\.npy: int64"),
    ("garbage-meta", garbage_meta, r"unreadable metadata"),
    ("half-written-meta", half_written_meta, r"unreadable metadata"),
    ("future-format-version", meta_with_format_version(FORMAT_VERSION + 1), r"format version"),
    ("past-format-version", meta_with_format_version(0), r"format version"),
    ("meta-missing-a-field", meta_without_a_field, r"unreadable metadata"),
    ("missing-column-file", delete_column, r"volume\.npy: unreadable"),
]


@pytest.mark.parametrize(
    ("damage", "reason"),
    [pytest.param(damage, reason, id=name) for name, damage, reason in CORRUPTIONS],
)
def test_corrupt_entry_is_rebuilt_with_a_warning(
    root: Path,
    source: Path,
    btc_2023: BarSeries,
    cache_log: Any,
    damage: Callable[[Path], None],
    reason: str,
) -> None:
    BarCache(root).ingest(source)
    damage(entry_dir(root))
    cache = BarCache(root, verify_checksums=True)

    series = cache.load(source)

    assert (cache.stats.builds, cache.stats.rebuilds) == (0, 1)
    assert_same_columns(series, btc_2023)
    (warning,) = warnings_of(cache_log)
    assert "rebuilding cache entry" in warning
    assert str(source) in warning
    assert re.search(reason, warning), warning
    # The rebuilt entry is healthy: the next instance maps it without any rebuild.
    healthy = BarCache(root)
    assert_same_columns(healthy.load(source), btc_2023)
    assert (healthy.stats.builds, healthy.stats.rebuilds) == (0, 0)
    assert len(entry_dirs(root)) == 1


def test_deleted_meta_json_is_built_again_as_a_new_entry(
    root: Path, source: Path, btc_2023: BarSeries
) -> None:
    BarCache(root).ingest(source)
    delete_meta(entry_dir(root))
    cache = BarCache(root)

    series = cache.load(source)

    assert (cache.stats.builds, cache.stats.rebuilds) == (1, 0)
    assert_same_columns(series, btc_2023)
    assert len(entry_dirs(root)) == 1


@pytest.mark.parametrize("text", ["[]", "null"], ids=["list", "null"])
def test_meta_json_that_is_valid_json_but_not_an_object_is_rebuilt(
    root: Path, source: Path, btc_2023: BarSeries, cache_log: Any, text: str
) -> None:
    # BUG: CacheEntry.from_json formats its error with raw.get(...) on a non-dict, so an
    # AttributeError escapes instead of the ValueError that triggers a rebuild.
    BarCache(root).ingest(source)
    (entry_dir(root) / "meta.json").write_text(text, encoding="utf-8")
    cache = BarCache(root)

    series = cache.load(source)

    assert cache.stats.rebuilds == 1
    assert_same_columns(series, btc_2023)
    assert any("unreadable metadata" in m for m in warnings_of(cache_log))


def test_entries_skips_unreadable_metadata_with_a_warning(
    root: Path, source: Path, btc_2025_path: Path, tmp_path: Path, cache_log: Any
) -> None:
    other = Path(shutil.copy(btc_2025_path, tmp_path / "ETHUSDT_1m.csv.gz"))
    cache = BarCache(root)
    cache.ingest(source)
    cache.ingest(other)
    damaged = root / next(e.key for e in cache.entries() if e.symbol == "ETHUSDT")
    garbage_meta(damaged)

    listed = BarCache(root).entries()

    assert [e.symbol for e in listed] == ["BTCUSDT"]
    assert any("unreadable cache metadata" in m for m in warnings_of(cache_log))


def test_fast_mode_without_checksums_does_not_detect_a_flipped_byte(
    root: Path, source: Path, btc_2023: BarSeries, cache_log: Any
) -> None:
    # verify_checksums=False is the fast open used by batch workers after the parent process
    # has verified the entry: only lengths, dtypes and shapes are checked, not the contents.
    BarCache(root).ingest(source)
    entry = entry_dir(root)
    size = (entry / "close.npy").stat().st_size
    flip_byte_mid_column(entry)
    flipped_row = (size // 2 - NPY_HEADER_BYTES) // 8
    fast = BarCache(root, verify_checksums=False)

    series = fast.load(source)

    assert (fast.stats.builds, fast.stats.rebuilds) == (0, 0)
    assert warnings_of(cache_log) == []
    differs = np.flatnonzero(np.asarray(series.close) != btc_2023.close)
    assert differs.tolist() == [flipped_row]
    for name in ("open_time_ms", "open", "high", "low", "volume"):
        assert np.array_equal(getattr(series, name), getattr(btc_2023, name)), name
    # A verifying open of the same entry catches it and rebuilds.
    careful = BarCache(root, verify_checksums=True)
    assert_same_columns(careful.load(source), btc_2023)
    assert careful.stats.rebuilds == 1


# --------------------------------------------------------------------------------------------
# the source is gone


def test_corrupt_entry_with_source_deleted_raises_data_error_naming_the_source(
    root: Path, source: Path
) -> None:
    BarCache(root).ingest(source)
    truncate_column(entry_dir(root))
    source.unlink()

    with pytest.raises(DataError) as info:
        BarCache(root).load(source)

    message = str(info.value)
    assert message.startswith(f"{source}: no such data file")
    assert "no usable cache entry" in message
    assert "close.npy" in message


def test_garbage_meta_with_source_deleted_raises_data_error(root: Path, source: Path) -> None:
    BarCache(root).ingest(source)
    garbage_meta(entry_dir(root))
    source.unlink()

    with pytest.raises(DataError, match=re.escape(f"{source}: no such data file")):
        BarCache(root).load(source)


def test_valid_entry_with_source_deleted_is_served_with_a_warning(
    root: Path, source: Path, btc_2023: BarSeries, cache_log: Any
) -> None:
    BarCache(root).ingest(source)
    source.unlink()
    cache = BarCache(root)

    series = cache.load(source)

    assert_same_columns(series, btc_2023)
    assert (cache.stats.builds, cache.stats.rebuilds) == (0, 0)
    (warning,) = warnings_of(cache_log)
    assert "source is gone" in warning
    assert str(source) in warning


def test_never_cached_missing_source_raises_data_error(root: Path, tmp_path: Path) -> None:
    missing = tmp_path / "BTCUSDT_1m_missing.csv"

    with pytest.raises(DataError, match=re.escape(f"{missing}: no such data file")):
        BarCache(root).load(missing)

    assert not root.exists() or entry_dirs(root) == []


# --------------------------------------------------------------------------------------------
# bad sources are rejected at ingest


def test_duplicated_open_time_is_rejected_at_ingest_naming_the_line(
    tmp_path: Path, root: Path, btc_2023_path: Path
) -> None:
    text = gzip.decompress(btc_2023_path.read_bytes()).decode("utf-8")
    lines = text.split("\n")
    # File line 101 (index 100) gets the open time of line 100.
    lines[100] = lines[99].split(",", 1)[0] + "," + lines[100].split(",", 1)[1]
    source = tmp_path / "BTCUSDT_1m_dup.csv"
    source.write_text("\n".join(lines), encoding="utf-8")
    cache = BarCache(root)

    with pytest.raises(DataError, match=r": line 101: duplicated open time") as info:
        cache.load(source)

    assert str(info.value).startswith(str(source))
    assert cache.entries() == []
    assert not root.exists() or entry_dirs(root) == []
    assert (cache.stats.builds, cache.stats.rebuilds) == (0, 0)


# --------------------------------------------------------------------------------------------
# where the cache lives


def test_cache_dir_comes_from_barbus_cache_dir_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BARBUS_CACHE_DIR", str(tmp_path / "explicit"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))

    assert default_cache_dir() == tmp_path / "explicit"
    assert BarCache().root == tmp_path / "explicit"


def test_cache_dir_falls_back_to_xdg_cache_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BARBUS_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))

    assert default_cache_dir() == tmp_path / "xdg" / "barbus"
    assert BarCache().root == tmp_path / "xdg" / "barbus"


def test_empty_barbus_cache_dir_is_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BARBUS_CACHE_DIR", "")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))

    assert default_cache_dir() == tmp_path / "xdg" / "barbus"


def test_cache_dir_falls_back_to_home_dot_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BARBUS_CACHE_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))

    assert default_cache_dir() == tmp_path / "home" / ".cache" / "barbus"


def test_cache_built_through_the_env_var_lands_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, btc_2023_path: Path
) -> None:
    monkeypatch.setenv("BARBUS_CACHE_DIR", str(tmp_path / "env-cache"))

    BarCache().load(btc_2023_path)

    assert len(entry_dirs(tmp_path / "env-cache")) == 1


# --------------------------------------------------------------------------------------------
# several processes


def load_in_child(root: str, source: str, barrier: Barrier, results: Queue[ChildResult]) -> None:
    """Spawned worker: wait for the others, load through the cache, report and flush counters."""
    try:
        barrier.wait(timeout=120)
        cache = BarCache(Path(root))
        series = cache.load(Path(source))
        digests = column_digests(series)
        cache.flush_stats()
        results.put(("ok", digests, cache.stats.as_dict()))
    except BaseException as exc:  # report anything, the parent asserts on it
        results.put((f"{type(exc).__name__}: {exc}", {}, {}))


def run_children(root: Path, source: Path, count: int) -> list[ChildResult]:
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(count)
    results: Queue[ChildResult] = context.Queue()
    children = [
        context.Process(target=load_in_child, args=(str(root), str(source), barrier, results))
        for _ in range(count)
    ]
    for child in children:
        child.start()
    try:
        outcomes = [results.get(timeout=120) for _ in children]
    finally:
        for child in children:
            child.join(timeout=60)
        results.close()
        results.join_thread()
    for child in children:
        assert child.exitcode == 0
        child.close()
    return outcomes


@pytest.mark.process
def test_two_processes_loading_a_new_source_build_it_once(
    root: Path, source: Path, btc_2023: BarSeries
) -> None:
    outcomes = run_children(root, source, 2)

    expected = column_digests(btc_2023)
    for status, digests, _ in outcomes:
        assert status == "ok"
        assert digests == expected
    assert sum(stats["builds"] for _, _, stats in outcomes) == 1
    totals = BarCache(root).shared_stats()
    # The other one waited for the lock and mapped what the builder wrote.
    assert (totals.builds, totals.rebuilds, totals.disk_hits, totals.memory_hits) == (1, 0, 1, 0)
    assert len(entry_dirs(root)) == 1
    assert not any(p.name.startswith((".tmp-", ".old-")) for p in root.iterdir())


@pytest.mark.process
def test_two_processes_loading_a_changed_source_rebuild_it_once(
    root: Path, source: Path, btc_2025_path: Path, btc_2025: BarSeries
) -> None:
    # BUG: the module promises concurrent workers "never build the same entry twice". For a *new*
    # entry the builder re-checks under the lock; for a stale or corrupt one it does not, so
    # two workers that both saw the old entry may both rebuild it.
    BarCache(root).ingest(source)
    source.write_bytes(btc_2025_path.read_bytes())

    outcomes = run_children(root, source, 2)

    expected = column_digests(btc_2025)
    for status, digests, _ in outcomes:
        assert status == "ok"
        assert digests == expected
    totals = BarCache(root).shared_stats()
    assert totals.builds + totals.rebuilds == 1


# --------------------------------------------------------------------------------------------
# shared counters and clear()


def test_flush_stats_adds_the_counters_of_two_instances(
    root: Path, btc_2023_path: Path, btc_2025_path: Path
) -> None:
    first = BarCache(root)
    first.load(btc_2023_path)
    first.load(btc_2023_path)
    second = BarCache(root)
    second.load(btc_2023_path)
    second.load(btc_2025_path)

    first.flush_stats()
    totals = second.flush_stats()

    assert totals == BarCache(root).shared_stats()
    assert (totals.memory_hits, totals.disk_hits) == (1, 1)
    assert totals.misses == 2
    assert totals.builds == 2
    assert totals.rebuilds == 0
    assert totals.evictions == 0
    assert totals.bytes_mapped == 0
    assert totals.peak_bytes_mapped == second.stats.peak_bytes_mapped


def flush_many(root: str, times: int, barrier: Barrier) -> None:
    """A child: one memory hit and one disk hit per flush, ``times`` flushes, all at once."""
    cache = BarCache(Path(root))
    barrier.wait(timeout=60)
    for _ in range(times):
        cache.stats.memory_hits += 1
        cache.stats.disk_hits += 1
        cache.flush_stats()


@pytest.mark.process
def test_concurrent_flushes_from_many_processes_lose_no_count(root: Path) -> None:
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(4)
    children = [context.Process(target=flush_many, args=(str(root), 40, barrier)) for _ in range(4)]
    for child in children:
        child.start()
    for child in children:
        child.join(timeout=120)
        assert child.exitcode == 0

    totals = BarCache(root).shared_stats()

    assert (totals.memory_hits, totals.disk_hits) == (4 * 40, 4 * 40)


def test_flushing_twice_adds_only_what_is_new(root: Path, btc_2023_path: Path) -> None:
    cache = BarCache(root)
    cache.load(btc_2023_path)
    cache.flush_stats()
    cache.flush_stats()
    cache.load(btc_2023_path)

    totals = cache.flush_stats()

    assert (totals.hits, totals.misses, totals.builds) == (1, 1, 1)


def test_shared_stats_are_zero_before_any_flush(root: Path) -> None:
    assert BarCache(root).shared_stats() == CacheStats()


def test_clear_removes_entries_and_counters(
    root: Path, btc_2023_path: Path, btc_2025_path: Path
) -> None:
    cache = BarCache(root)
    cache.load(btc_2023_path)
    cache.load(btc_2025_path)
    cache.flush_stats()

    removed = cache.clear()

    assert removed == 2
    assert cache.entries() == []
    assert entry_dirs(root) == []
    assert not (root / "stats.sqlite").exists()
    assert BarCache(root).shared_stats() == CacheStats()
    assert cache.stats.bytes_mapped == 0
    # The next load parses the source again.
    after = BarCache(root)
    after.load(btc_2023_path)
    assert after.stats.builds == 1


def test_clear_of_a_missing_folder_removes_nothing(root: Path) -> None:
    assert BarCache(root).clear() == 0


# --------------------------------------------------------------------------------------------
# the `barbus cache` command line


def assert_ok(done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stdout + done.stderr


@pytest.mark.process
def test_cli_ingest_caches_the_file_and_prints_its_facts(root: Path, btc_2023_path: Path) -> None:
    done = barbus("cache", "ingest", btc_2023_path, "--cache-dir", root)

    assert_ok(done)
    (entry,) = BarCache(root).entries()
    assert entry.key in done.stdout
    assert "71,041 rows" in done.stdout
    assert "2023-03-16T22:15:00Z -> 2023-05-05T07:35:00Z" in done.stdout
    assert "gaps 1" in done.stdout
    assert str(btc_2023_path.resolve()) in done.stdout
    totals = BarCache(root).shared_stats()
    assert (totals.builds, totals.rebuilds) == (1, 0)


@pytest.mark.process
def test_cli_ls_lists_entries_and_says_empty_when_there_are_none(
    root: Path, btc_2023_path: Path
) -> None:
    empty = barbus("cache", "ls", "--cache-dir", root)
    BarCache(root).ingest(btc_2023_path)

    listed = barbus("cache", "ls", "--cache-dir", root)

    assert_ok(empty)
    assert "(empty)" in empty.stdout
    assert_ok(listed)
    (entry,) = BarCache(root).entries()
    assert f"cache {root}" in listed.stdout
    assert entry.key in listed.stdout
    assert "71,041 rows" in listed.stdout
    assert "(empty)" not in listed.stdout


@pytest.mark.process
def test_cli_stats_prints_the_counters_of_every_process(root: Path, btc_2023_path: Path) -> None:
    cache = BarCache(root)
    cache.load(btc_2023_path)
    cache.load(btc_2023_path)
    cache.flush_stats()

    done = barbus("cache", "stats", "--cache-dir", root)

    assert_ok(done)
    assert re.search(r"^entries\s+1 \(71,041 rows", done.stdout, re.M)
    assert re.search(r"^memory hits\s+1$", done.stdout, re.M)
    assert re.search(r"^disk hits\s+0$", done.stdout, re.M)
    assert re.search(r"^builds\s+1 \(\+ 0 rebuilds", done.stdout, re.M)


@pytest.mark.process
def test_cli_clear_removes_every_entry(root: Path, btc_2023_path: Path) -> None:
    cache = BarCache(root)
    cache.load(btc_2023_path)
    cache.flush_stats()

    done = barbus("cache", "clear", "--cache-dir", root)

    assert_ok(done)
    assert f"removed 1 entries from {root}" in done.stdout
    assert BarCache(root).entries() == []
    assert BarCache(root).shared_stats() == CacheStats()


@pytest.mark.process
@pytest.mark.parametrize("name", ["missing.csv", "BTCUSDT_1m_missing.csv"])
def test_cli_ingest_of_a_missing_file_exits_2_with_one_error_line(
    tmp_path: Path, root: Path, name: str
) -> None:
    missing = tmp_path / name

    done = barbus("cache", "ingest", missing, "--cache-dir", root)

    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("barbus: error: ")
    assert str(missing) in lines[0]
    assert done.stdout == ""
