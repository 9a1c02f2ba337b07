"""The batch progress on the terminal: a tqdm bar on a terminal, throttled log lines elsewhere."""

from __future__ import annotations

import logging

import pytest

from barbus.replay.progress import BatchProgress


def test_without_a_terminal_progress_is_a_log_line_every_5_s_and_at_the_end(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = iter([100.0, 101.0, 106.0, 107.0])
    monkeypatch.setattr("barbus.replay.progress.time.monotonic", lambda: next(clock))
    progress = BatchProgress(4, interactive=False)
    with caplog.at_level(logging.INFO, logger="barbus.batch"):
        progress(1, 4, 20_000, 2.0)  # 100 s: the first line
        progress(2, 4, 40_000, 4.0)  # 101 s: 1 s later, quiet
        progress(3, 4, 60_000, 6.0)  # 106 s: 6 s later, a line
        progress(4, 4, 80_000, 8.0)  # 107 s: the last job, always a line
    progress.close()
    # 20,000 bars in 2 s = 10,000 bars/s; ETA = jobs left * seconds per job done.
    assert [r.getMessage() for r in caplog.records] == [
        "batch: 1/4 jobs, 10,000 bars/s, ETA 6 s",
        "batch: 3/4 jobs, 10,000 bars/s, ETA 2 s",
        "batch: 4/4 jobs, 10,000 bars/s, ETA 0 s",
    ]


def test_on_a_terminal_progress_is_a_bar_on_stderr_and_no_log_line(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    progress = BatchProgress(2, interactive=True)
    with caplog.at_level(logging.INFO, logger="barbus.batch"):
        progress(1, 2, 5_000, 1.0)
        progress(2, 2, 10_000, 2.0)
    progress.close()
    err = capsys.readouterr().err
    assert "2/2" in err
    assert "5,000 bars/s" in err
    assert caplog.records == []
