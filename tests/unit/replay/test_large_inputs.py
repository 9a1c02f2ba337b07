"""Issue 10, item 14: data files that are not regular files, and files too big for memory.

A FIFO given as a data file used to hang (the read never ends), a device was read until memory
ran out, and every file was read whole before parsing (a 2 GB file took 2.2 GB). Now anything
but a regular file is refused with one line before it is opened, and a file bigger than the
cache's chunk size is parsed chunk by chunk straight into the cache columns: the same bytes as a
one-shot parse, with memory bounded by the chunk, not the file.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from barbus.daemon.core.errors import DataError
from barbus.daemon.core.series import BarSeries
from barbus.replay import cache as cache_module
from barbus.replay.cache import BarCache
from barbus.replay.cache_entry import COLUMNS
from barbus.replay.loader import load_bars
from tests.kit.processes import barbus

REPO_ROOT = Path(__file__).resolve().parents[3]
SMALL_CHUNK = 64 * 1024  # the 4 MB test file is parsed in ~70 chunks


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


# -- not a regular file ----------------------------------------------------------------------


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "BTCUSDT_1m_fifo.csv"
    os.mkfifo(path)
    return path


COMMANDS = {
    "cache-ingest": ["cache", "ingest", "{data}"],
    "replay": ["replay", "--strategy", "sma_cross", "--data", "{data}"],
    "batch": ["batch", "--strategy", "sma_cross", "--data", "{data}", "--out", "{out}"],
    "sim-exchange": ["sim-exchange", "--data", "{data}", "--port", "0"],
}


@pytest.mark.process
@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_fifo_is_refused_by_every_command_without_hanging(
    fifo: Path, tmp_path: Path, command: str
) -> None:
    # Nobody writes to the FIFO: opening it for reading would block for ever.
    args = [a.format(data=fifo, out=tmp_path / "out") for a in COMMANDS[command]]
    done = barbus(*args, "--cache-dir", tmp_path / "cache", timeout=30)

    line = one_error_line(done)
    assert str(fifo) in line
    assert "FIFO" in line
    assert "not a regular file" in line


@pytest.mark.process
def test_a_fifo_and_an_endless_device_are_refused_in_process(fifo: Path, tmp_path: Path) -> None:
    # In a child with a deadline and a 1 GB data limit: before the fix the FIFO blocked in
    # open() for ever and /dev/zero was read until memory ran out.
    zero = tmp_path / "BTCUSDT_1m_zero.csv"
    zero.symlink_to("/dev/zero")
    script = textwrap.dedent(
        f"""
        import resource
        from pathlib import Path
        hard = resource.getrlimit(resource.RLIMIT_DATA)[1]
        soft = 1 << 30 if hard == resource.RLIM_INFINITY else min(1 << 30, hard)
        resource.setrlimit(resource.RLIMIT_DATA, (soft, hard))
        from barbus.daemon.core.errors import DataError
        from barbus.replay.cache import BarCache
        from barbus.replay.loader import load_bars
        for path in (Path({str(fifo)!r}), Path({str(zero)!r})):
            for load in (load_bars, BarCache(Path({str(tmp_path / "cache")!r})).load):
                try:
                    load(path)
                except (DataError, MemoryError) as exc:
                    print(type(exc).__name__, exc)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines() == [
        f"DataError {fifo}: is a FIFO (named pipe), not a regular file",
        f"DataError {fifo}: is a FIFO (named pipe), not a regular file",
        f"DataError {zero}: is a character device, not a regular file",
        f"DataError {zero}: is a character device, not a regular file",
    ], done.stdout + done.stderr


def test_a_device_is_refused_before_it_is_read(tmp_path: Path) -> None:
    link = tmp_path / "BTCUSDT_1m_device.csv"
    link.symlink_to("/dev/null")

    with pytest.raises(DataError, match=re.escape(f"{link}: is a character device")):
        load_bars(link)
    with pytest.raises(DataError, match="not a regular file"):
        BarCache(tmp_path / "cache").load(link)


def test_a_directory_is_refused_by_the_cache(tmp_path: Path) -> None:
    folder = tmp_path / "BTCUSDT_1m_folder.csv"
    folder.mkdir()

    with pytest.raises(DataError, match=re.escape(f"{folder}: is a directory")):
        BarCache(tmp_path / "cache").load(folder)


# -- chunked ingest --------------------------------------------------------------------------


def barbus_csv(series: BarSeries) -> str:
    rows = zip(
        series.open_time_ms.tolist(),
        *(getattr(series, name).tolist() for name in COLUMNS[1:]),
        strict=True,
    )
    body = "\n".join(",".join(repr(v) for v in row) for row in rows)
    return "open_time_ms,open,high,low,close,volume\n" + body + "\n"


def binance_csv(series: BarSeries) -> str:
    """Headerless 12-column Binance klines with open times in microseconds."""
    lines = []
    for t, o, h, lo, c, v in zip(
        series.open_time_ms.tolist(),
        *(getattr(series, name).tolist() for name in COLUMNS[1:]),
        strict=True,
    ):
        fields = [t * 1000, o, h, lo, c, v, t * 1000 + 59_999_999, 0, 10, 0, 0, 0]
        lines.append(",".join(repr(f) for f in fields))
    return "\n".join(lines) + "\n"


def iso_csv(series: BarSeries) -> str:
    lines = ["timestamp,open,high,low,close,volume"]
    for t, o, h, lo, c, v in zip(
        series.open_time_ms.tolist(),
        *(getattr(series, name).tolist() for name in COLUMNS[1:]),
        strict=True,
    ):
        stamp = datetime.fromtimestamp(t / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        lines.append(f"{stamp},{o!r},{h!r},{lo!r},{c!r},{v!r}")
    return "\n".join(lines) + "\n"


LAYOUTS = {"barbus": barbus_csv, "binance-us": binance_csv, "iso-timestamp": iso_csv}


@pytest.fixture(scope="module")
def gap_series(btc_2023_path: Path) -> BarSeries:
    """71,041 real bars with one gap (a multi-MB CSV once written out)."""
    return load_bars(btc_2023_path)


def entry_files(root: Path) -> dict[str, bytes]:
    (folder,) = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return {name: (folder / f"{name}.npy").read_bytes() for name in COLUMNS}


def comparable_meta(root: Path) -> dict[str, object]:
    (folder,) = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    meta.pop("created_unix")
    meta.pop("source")
    meta.pop("key")
    return dict(meta)


@pytest.mark.parametrize("compressed", [False, True], ids=["csv", "gzip"])
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_chunked_ingest_writes_exactly_the_columns_of_a_one_shot_parse(
    gap_series: BarSeries, tmp_path: Path, layout: str, compressed: bool
) -> None:
    text = LAYOUTS[layout](gap_series).encode()
    path = tmp_path / ("BTCUSDT_1m_big.csv" + (".gz" if compressed else ""))
    path.write_bytes(gzip.compress(text, compresslevel=1) if compressed else text)
    assert path.stat().st_size > 8 * SMALL_CHUNK

    chunked = BarCache(tmp_path / "chunked", chunk_bytes=SMALL_CHUNK)
    streamed = chunked.load(path)
    one_shot = BarCache(tmp_path / "one-shot", chunk_bytes=1 << 40)
    whole = one_shot.load(path)

    assert chunked.chunked_ingests == 1
    assert one_shot.chunked_ingests == 0
    assert entry_files(tmp_path / "chunked") == entry_files(tmp_path / "one-shot")
    assert comparable_meta(tmp_path / "chunked") == comparable_meta(tmp_path / "one-shot")
    for name in COLUMNS:
        assert np.array_equal(getattr(streamed, name), getattr(gap_series, name)), name
        assert np.array_equal(getattr(whole, name), getattr(gap_series, name)), name
    assert comparable_meta(tmp_path / "chunked")["gaps"]["count"] == 1  # type: ignore[index]
    # A second instance maps the chunk-built entry like any other.
    again = BarCache(tmp_path / "chunked", chunk_bytes=SMALL_CHUNK)
    assert np.array_equal(again.load(path).close, gap_series.close)
    assert again.chunked_ingests == 0


def duplicate_previous_time(lines: list[str], number: int) -> None:
    """Give file line ``number`` the open time of the line before it."""
    before = lines[number - 2].split(",", 1)[0]
    lines[number - 1] = before + "," + lines[number - 1].split(",", 1)[1]


def swap_high_and_low(lines: list[str], number: int) -> None:
    t, o, h, lo, c, v = lines[number - 1].split(",")
    lines[number - 1] = ",".join([t, o, lo, h, c, v])


def garble_open(lines: list[str], number: int) -> None:
    t, _, *rest = lines[number - 1].split(",")
    lines[number - 1] = ",".join([t, "oops", *rest])


def empty_volume(lines: list[str], number: int) -> None:
    lines[number - 1] = lines[number - 1].rsplit(",", 1)[0] + ","


DAMAGES = {
    "not-a-number": (garble_open, 60_000),
    "duplicate-time": (duplicate_previous_time, 50_001),
    "high-below-low": (swap_high_and_low, 40_000),
    "empty-field": (empty_volume, 65_000),
    "first-data-line": (garble_open, 2),
}


def damaged_file(series: BarSeries, tmp_path: Path, kind: str) -> Path:
    damage, number = DAMAGES[kind]
    lines = barbus_csv(series).split("\n")
    damage(lines, number)
    path = tmp_path / "BTCUSDT_1m_damaged.csv"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


@pytest.mark.parametrize("kind", list(DAMAGES))
def test_a_problem_in_a_chunked_file_is_reported_by_its_line_like_a_one_shot_parse(
    gap_series: BarSeries, tmp_path: Path, kind: str
) -> None:
    path = damaged_file(gap_series, tmp_path, kind)
    with pytest.raises(DataError) as one_shot:
        load_bars(path)

    with pytest.raises(DataError) as chunked:
        BarCache(tmp_path / "cache", chunk_bytes=SMALL_CHUNK).load(path)

    assert str(chunked.value) == str(one_shot.value)
    assert f"line {DAMAGES[kind][1]}" in str(chunked.value)
    assert not [p for p in (tmp_path / "cache").iterdir() if p.is_dir()]  # no half entry


def test_a_problem_in_a_file_too_big_to_reparse_names_its_data_row(
    gap_series: BarSeries, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Above this size the exact line is not looked up by a whole-file text parse.
    monkeypatch.setattr(cache_module, "EXACT_ERRORS_MAX_BYTES", 1024)
    path = damaged_file(gap_series, tmp_path, "high-below-low")

    with pytest.raises(DataError) as caught:
        BarCache(tmp_path / "cache", chunk_bytes=SMALL_CHUNK).load(path)

    assert str(caught.value) == f"{path}: data row 39999: high is below low"


MEMORY_CHILD = """
import json, re, sys
from pathlib import Path
from barbus.replay.cache import BarCache
from barbus.replay.loader import load_bars

def kib(field):
    text = Path("/proc/self/status").read_text()
    return int(re.search(field + r":\\s+(\\d+)", text).group(1))

source, root, chunk = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
load_bars(Path(sys.argv[4]))  # warm every import and allocator on a small file
Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current RSS
before = kib("VmRSS")
BarCache(root, verify_checksums=False, chunk_bytes=chunk).ingest(source)
print(json.dumps({"peak_growth_kib": kib("VmHWM") - before}))
"""


def peak_growth_mib(source: Path, root: Path, chunk: int, warm: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", MEMORY_CHILD, str(source), str(root), str(chunk), str(warm)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    growth: int = json.loads(done.stdout.strip().splitlines()[-1])["peak_growth_kib"]
    return growth / 1024


@pytest.mark.process
def test_chunked_ingest_memory_is_bounded_by_the_chunk_not_the_file(
    gap_series: BarSeries, tmp_path: Path, btc_2023_path: Path
) -> None:
    text = barbus_csv(gap_series)
    path = tmp_path / "BTCUSDT_1m_big.csv"
    path.write_text(text, encoding="utf-8")
    # Six copies one after the other would not be sorted: shift each copy by its span.
    span = int(gap_series.open_time_ms[-1] - gap_series.open_time_ms[0]) + 60_000
    with path.open("a", encoding="utf-8") as handle:
        for copy in range(1, 6):
            shifted = BarSeries(
                "BTCUSDT",
                "1m",
                str(path),
                gap_series.open_time_ms + copy * span,
                gap_series.open,
                gap_series.high,
                gap_series.low,
                gap_series.close,
                gap_series.volume,
            )
            handle.write(barbus_csv(shifted).split("\n", 1)[1])
    size_mib = path.stat().st_size / 2**20
    assert size_mib > 20

    streamed = peak_growth_mib(path, tmp_path / "a", 256 * 1024, btc_2023_path)
    whole = peak_growth_mib(path, tmp_path / "b", 1 << 40, btc_2023_path)

    assert whole > size_mib  # the one-shot parse holds the whole file: the test can fail
    assert streamed < 24, (streamed, whole, size_mib)
    assert streamed < whole / 3, (streamed, whole, size_mib)
    assert len(BarCache(tmp_path / "a").load(path)) == 6 * len(gap_series)


def parquet_table(series: BarSeries, times: str) -> pa.Table:
    stamps: object = series.open_time_ms
    if times == "datetime":
        stamps = pa.array(series.open_time_ms.astype("datetime64[ms]"), pa.timestamp("ms", "UTC"))
    return pa.table(
        {
            "Open_Time_ms" if times == "ms" else "timestamp": stamps,
            **{name: getattr(series, name) for name in COLUMNS[1:]},
        }
    )


@pytest.mark.parametrize("times", ["ms", "datetime"])
def test_chunked_parquet_ingest_writes_exactly_the_columns_of_a_one_shot_read(
    gap_series: BarSeries, tmp_path: Path, times: str
) -> None:
    path = tmp_path / "BTCUSDT_1m_big.parquet"
    pq.write_table(parquet_table(gap_series, times), path, row_group_size=10_000)

    chunked = BarCache(tmp_path / "chunked", chunk_bytes=SMALL_CHUNK)
    streamed = chunked.load(path)
    BarCache(tmp_path / "one-shot", chunk_bytes=1 << 40).load(path)

    assert chunked.chunked_ingests == 1
    assert entry_files(tmp_path / "chunked") == entry_files(tmp_path / "one-shot")
    assert comparable_meta(tmp_path / "chunked") == comparable_meta(tmp_path / "one-shot")
    assert np.array_equal(streamed.open_time_ms, gap_series.open_time_ms)


def test_a_problem_in_a_chunked_parquet_file_is_reported_like_a_one_shot_read(
    gap_series: BarSeries, tmp_path: Path
) -> None:
    low = gap_series.low.copy()
    low[30_000] = -1.0
    damaged = BarSeries(
        "BTCUSDT",
        "1m",
        "x",
        gap_series.open_time_ms,
        gap_series.open,
        gap_series.high,
        low,
        gap_series.close,
        gap_series.volume,
    )
    path = tmp_path / "BTCUSDT_1m_damaged.parquet"
    pq.write_table(parquet_table(damaged, "ms"), path, row_group_size=10_000)
    with pytest.raises(DataError) as one_shot:
        load_bars(path)

    with pytest.raises(DataError) as chunked:
        BarCache(tmp_path / "cache", chunk_bytes=SMALL_CHUNK).load(path)

    assert str(chunked.value) == str(one_shot.value)
    assert "row 30001" in str(chunked.value)
