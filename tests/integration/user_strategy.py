"""A user's strategy file, in two versions, for the batch tests of user strategies.

``turns`` is long for ``hold`` bars, then flat for ``hold`` bars: it trades often on two days of
data, so two versions of it (version 2 waits twice as long) give clearly different figures. The
tests write it to a folder outside the project, as a user would.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from barbus.replay.batch import METRICS

__all__ = [
    "TURNS_V1",
    "TURNS_V2",
    "assert_row_is_the_replay",
    "fingerprint",
    "replay_summary",
    "write_turns",
]

TURNS_V1 = '''
"""A user's strategy: long for `hold` bars, then flat for `hold` bars."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from barbus.daemon.core.events import Bar, Signal
from barbus.strategies.base import BaseParams, Strategy


@dataclasses.dataclass(frozen=True)
class TurnsParams(BaseParams):
    hold: int = 30


class Turns(Strategy[TurnsParams]):
    name: ClassVar[str] = "turns"
    params_type: ClassVar[type[BaseParams]] = TurnsParams

    def __init__(self, params: TurnsParams) -> None:
        super().__init__(params)
        self._bars = 0

    def on_bar(self, bar: Bar, position: float) -> Signal | None:
        self._bars += 1
        if self._bars % self.params.hold:
            return None
        return Signal.SELL if position > 0.0 else Signal.BUY

    def snapshot(self) -> dict[str, Any]:
        return {"bars": self._bars}

    def restore(self, state: dict[str, Any]) -> None:
        self._bars = int(state["bars"])
'''
TURNS_V2 = TURNS_V1.replace("self._bars % self.params.hold", "self._bars % (2 * self.params.hold)")
assert TURNS_V2 != TURNS_V1


def write_turns(folder: Path, text: str = TURNS_V1) -> Path:
    """``folder/turns.py`` holding ``text``; returns its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "turns.py"
    path.write_text(text, encoding="utf-8")
    return path


def fingerprint(text: str) -> str:
    """The fingerprint barbus must record: 16 hex digits of the file's SHA-256 (by hand)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def replay_summary(
    spec: str, hold: int, data: Path, start: str, end: str, out: Path, cwd: Path
) -> dict[str, Any]:
    """``summary.json`` of a real ``barbus replay`` of ``spec`` with ``hold``."""
    run = subprocess.run(
        [
            *(sys.executable, "-m", "barbus.daemon.cli", "--log-level", "WARNING", "replay"),
            *("--strategy", spec, "--param", f"hold={hold}", "--data", str(data)),
            *("--start", start, "--end", end, "--no-plot", "--out", str(out)),
        ],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    summary: dict[str, Any] = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    return summary


def assert_row_is_the_replay(row: Mapping[str, Any], summary: Mapping[str, Any]) -> None:
    """Every figure of a batch row (a results.csv row of strings, or a row dict) equals the
    replay's ``summary.json`` figure exactly (the CSV writes floats as their repr)."""
    assert row["status"] == "ok", row.get("error")
    for metric in METRICS:
        expected, value = summary[metric], row[metric]
        if expected is None:
            assert value in ("", None), (metric, value)
        else:
            assert float(value) == float(expected), (metric, value, expected)
    assert int(summary["trades"]) > 2  # the run traded: the figures say something
