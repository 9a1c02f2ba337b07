"""The README documents what a replay writes: its ``summary.json`` keys and its report lines.

The keys are the backticked names of the README's "`summary.json` keys:" paragraph; the report
is the ``make demo`` example at its top. Both are compared with what a real ``barbus replay``
(the demo's command) writes, so a key added, renamed or dropped on either side fails here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.kit.processes import REPO_ROOT, barbus

README = REPO_ROOT / "README.md"
NUMBER = re.compile(r"[-+]?\d[\d,]*(?:\.\d+)?")


def readme_summary_keys() -> set[str]:
    """The ``summary.json`` keys the README lists."""
    text = README.read_text(encoding="utf-8")
    start = text.index("`summary.json` keys:")
    paragraph = text[start : text.index("\n\n", start)]
    return set(re.findall(r"`([a-z_]+)`", paragraph))


def readme_report() -> list[str]:
    """The report lines of the README's ``make demo`` example."""
    text = README.read_text(encoding="utf-8")
    start = text.index("```\n", text.index("`make demo` prints a report like this")) + 4
    return text[start : text.index("```", start)].splitlines()


def test_readme_summary_keys_and_report_lines_are_what_a_replay_writes(tmp_path: Path) -> None:
    documented_keys, documented_report = readme_summary_keys(), readme_report()
    assert len(documented_keys) > 30, documented_keys
    assert len(documented_report) > 5, documented_report

    done = barbus("replay", "--strategy", "metatrend", "--out", tmp_path, "--no-plot")

    assert done.returncode == 0, done.stderr
    written = set(json.loads((tmp_path / "summary.json").read_text(encoding="utf-8")))
    assert written - documented_keys == set(), "written but not in the README"
    assert documented_keys - written == set(), "in the README but not written"
    lines = done.stdout.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("strategy "))
    report = lines[first : first + len(documented_report)]
    # The same run as the demo: every line as documented, but for the speed it ran at.
    assert [NUMBER.sub("#", line) for line in report] == [
        NUMBER.sub("#", line) for line in documented_report
    ]
    assert report[:-1] == documented_report[:-1]
