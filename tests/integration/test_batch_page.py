"""The example sweep's terminal table and ``index.html``, as a person sees them.

The page is rendered by a real headless Chromium at 1400 x 900: a probe copy of the page writes
its layout (document width, each header's right edge) into the DOM, which ``--dump-dom`` prints;
a screenshot of the page itself is checked too. Without Chromium the browser tests skip, unless
``BARBUS_REQUIRE_BROWSER=1`` (CI) makes that a failure.
"""

from __future__ import annotations

import csv
import html
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest

from tests.kit.processes import REPO_ROOT, barbus

WIDTH, HEIGHT = 1400, 900
HEADLINE = ("total_return_pct", "sharpe", "max_drawdown_pct", "trades")
_PROBE = """<script>
const right = {};
for (const th of document.querySelectorAll("th")) {
  right[th.title] = Math.round(th.getBoundingClientRect().right);
}
document.body.setAttribute("data-layout", JSON.stringify({
  scrollWidth: document.documentElement.scrollWidth, right: right}));
</script></body>"""


@dataclass(frozen=True)
class Sweep:
    out: Path
    stdout: str


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Sweep:
    root = tmp_path_factory.mktemp("sweep")
    out = root / "out"
    run = barbus(
        "batch",
        REPO_ROOT / "examples" / "sma_sweep.toml",
        "--out",
        out,
        "--top",
        "20",
        "--plots",
        "1",
        "--cache-dir",
        root / "cache",
    )
    assert run.returncode == 0, run.stderr
    return Sweep(out, run.stdout)


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("BARBUS_REQUIRE_BROWSER") == "1":
            pytest.fail("BARBUS_REQUIRE_BROWSER=1 but no chromium on PATH")
        pytest.skip("no chromium on PATH")
    return found


def browse(page: Path, profile: Path, *mode: str) -> subprocess.CompletedProcess[str]:
    """Chromium headless on ``page`` at 1400 x 900, isolated from the network and the user."""
    return subprocess.run(
        [
            chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            f"--window-size={WIDTH},{HEIGHT}",
            *mode,
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def test_the_terminal_table_tells_periods_and_files_apart(sweep: Sweep) -> None:
    lines = sweep.stdout.splitlines()
    header, rows = lines[0], lines[1:17]

    assert header.split()[:5] == ["job", "symbol", "file", "period", "sharpe"]
    # The sweep runs every parameter pair on two periods: a row without its period would
    # print the same parameters twice; with it, no two rows read the same.
    assert all("BTCUSDT_1m_2025-05-20_2025-08-18.csv.gz" in row for row in rows)
    periods_and_params = [(row.split()[3], row.split("  ")[-1]) for row in rows]
    assert len({params for _, params in periods_and_params}) == 8  # each pair twice
    assert len(set(periods_and_params)) == 16
    assert {p for p, _ in periods_and_params} == {
        "2025-05-20..2025-06-20",
        "2025-06-20..2025-07-20",
    }
    with (sweep.out / "results.csv").open(newline="", encoding="utf-8") as handle:
        written = list(csv.DictReader(handle))
    assert {row["period"] for row in written} == {p for p, _ in periods_and_params}


def test_index_html_shows_every_column_within_1400_px(sweep: Sweep, tmp_path: Path) -> None:
    page = sweep.out / "index.html"
    probe = sweep.out / "probe.html"
    probe.write_text(page.read_text(encoding="utf-8").replace("</body>", _PROBE), "utf-8")

    dumped = browse(probe, tmp_path / "profile", "--dump-dom")

    assert dumped.returncode == 0, dumped.stderr
    found = re.search(r'data-layout="([^"]*)"', dumped.stdout)
    assert found is not None, dumped.stdout[-2000:]
    layout = json.loads(html.unescape(found.group(1)))
    right: dict[str, int] = layout["right"]
    assert layout["scrollWidth"] <= WIDTH, layout  # no horizontal scroll at all
    assert set(HEADLINE) <= set(right)
    # The headline figures come right after who the job is and its parameters.
    order = sorted(right, key=right.__getitem__)
    assert order[:8] == ["job_id", "period", "param_fast", "param_slow", *HEADLINE]
    assert max(right[name] for name in HEADLINE) < WIDTH // 2


def test_a_screenshot_of_index_html_is_a_drawn_1400_px_page(sweep: Sweep, tmp_path: Path) -> None:
    png = tmp_path / "index.png"

    shot = browse(sweep.out / "index.html", tmp_path / "profile", f"--screenshot={png}")

    assert shot.returncode == 0, shot.stderr
    pixels = mpimg.imread(png)
    assert pixels.shape[:2] == (HEIGHT, WIDTH)
    ink = pixels[..., :3].mean(axis=2) < 0.5  # text and digits
    columns_with_ink = np.flatnonzero(ink.any(axis=0))
    # Figures are drawn across the page (the last figure columns sit far right), and no
    # horizontal scrollbar is drawn: its thumb, a solid mid-grey bar, starts at the bottom left.
    assert columns_with_ink.max() > WIDTH * 0.8
    bottom = pixels[-14:, 25:60, :3].mean(axis=2)
    assert not ((bottom > 0.3) & (bottom < 0.85)).all(axis=1).any(), "horizontal scrollbar"
