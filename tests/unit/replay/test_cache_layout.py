"""The cache's on-disk layout, pinned from the outside: an existing cache keeps being used.

The key, the source fingerprint, the ``.npy`` bytes, the checksums and the ``meta.json`` fields
are computed here by hand (hashlib, xxhash, ``numpy.save``, pandas), never by the cache's own
code, so moving that code around cannot silently orphan (rebuild) every cache users hold.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xxhash

from barbus.replay.cache import BarCache

NAMES = ("open_time_ms", "open", "high", "low", "close", "volume")
META_FIELDS = {
    "checksums",
    "column_bytes",
    "created_unix",
    "first_open_time_ms",
    "format_version",
    "gaps",
    "interval",
    "key",
    "last_open_time_ms",
    "rows",
    "source",
    "symbol",
    "zero_volume_bars",
}
START_MS = 1_700_000_040_000  # 2023-11-14T22:14:00Z, on a whole minute


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """60 one-minute bars with one 3-minute hole after the 20th and two zero-volume bars."""
    times = START_MS + 60_000 * np.concatenate((np.arange(20), np.arange(23, 63)))
    close = 100.0 + np.arange(60) * 0.25
    frame = pd.DataFrame(
        {
            "open_time_ms": times,
            "open": close - 0.125,
            "high": close + 1.0,
            "low": close - 1.0,
            "close": close,
            "volume": np.where(np.arange(60) % 30 == 0, 0.0, 1.5),
        }
    )
    path = tmp_path / "data" / "ABCUSDT_1m.csv"
    path.parent.mkdir()
    frame.to_csv(path, index=False)
    return path


def hand_key(source: Path, symbol: str) -> str:
    digest = hashlib.sha256(f"{source.resolve()}\0{symbol}".encode()).hexdigest()
    return f"{symbol}-{digest[:16]}"


def reference_columns(source: Path) -> dict[str, np.ndarray]:
    frame = pd.read_csv(source)
    return {
        name: frame[name].to_numpy(dtype="<i8" if name == "open_time_ms" else "<f8")
        for name in NAMES
    }


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def test_a_built_entry_has_the_documented_folder_files_and_metadata(
    source: Path, tmp_path: Path
) -> None:
    root = tmp_path / "cache"
    BarCache(root).ingest(source)
    key = hand_key(source, "ABCUSDT")
    folder = root / key
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [*(f"{name}.npy" for name in NAMES), "meta.json"]
    )
    columns = reference_columns(source)
    for name in NAMES:
        assert (folder / f"{name}.npy").read_bytes() == npy_bytes(columns[name]), name
    meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    assert set(meta) == META_FIELDS
    stat = source.stat()
    assert meta["source"] == {
        "path": str(source.resolve()),
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "sha256": hashlib.sha256(source.read_bytes()).hexdigest(),
    }
    assert meta["checksums"] == {
        name: xxhash.xxh3_64_hexdigest(columns[name].tobytes()) for name in NAMES
    }
    assert meta["column_bytes"] == {name: len(npy_bytes(columns[name])) for name in NAMES}
    assert meta["key"] == key
    assert meta["format_version"] == 1
    assert (meta["rows"], meta["interval"], meta["symbol"]) == (60, "1m", "ABCUSDT")
    assert meta["first_open_time_ms"] == START_MS
    assert meta["last_open_time_ms"] == START_MS + 62 * 60_000
    # one hole of 3 minutes after the 20th bar (open time START + 19 min)
    assert meta["gaps"] == {
        "count": 1,
        "largest_minutes": 3,
        "missing_minutes": 3,
        "largest_after_ms": START_MS + 19 * 60_000,
    }
    assert meta["zero_volume_bars"] == 2


def test_an_entry_written_by_hand_in_the_documented_layout_is_mapped_not_rebuilt(
    source: Path, tmp_path: Path
) -> None:
    """What a cache built by an earlier barbus holds is served from disk as it is."""
    root = tmp_path / "cache"
    key = hand_key(source, "ABCUSDT")
    folder = root / key
    folder.mkdir(parents=True)
    columns = reference_columns(source)
    for name in NAMES:
        (folder / f"{name}.npy").write_bytes(npy_bytes(columns[name]))
    stat = source.stat()
    meta = {
        "key": key,
        "symbol": "ABCUSDT",
        "interval": "1m",
        "rows": 60,
        "first_open_time_ms": START_MS,
        "last_open_time_ms": START_MS + 62 * 60_000,
        "source": {
            "path": str(source.resolve()),
            "size": stat.st_size,
            "mtime_ns": stat.st_mtime_ns,
            "sha256": hashlib.sha256(source.read_bytes()).hexdigest(),
        },
        "checksums": {n: xxhash.xxh3_64_hexdigest(columns[n].tobytes()) for n in NAMES},
        "column_bytes": {n: len(npy_bytes(columns[n])) for n in NAMES},
        "gaps": {"count": 0, "largest_minutes": 0, "missing_minutes": 0, "largest_after_ms": None},
        "zero_volume_bars": 2,
        "created_unix": 1.0,
        "format_version": 1,
    }
    (folder / "meta.json").write_text(json.dumps(meta), encoding="utf-8")

    cache = BarCache(root)
    series = cache.load(source)
    assert (cache.stats.disk_hits, cache.stats.builds, cache.stats.rebuilds) == (1, 0, 0)
    for name in NAMES:
        assert np.array_equal(getattr(series, name), columns[name]), name
    # the hand-written metadata was used as is (a rebuild would have rewritten it)
    assert json.loads((folder / "meta.json").read_text(encoding="utf-8")) == meta
