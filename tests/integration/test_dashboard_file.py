"""The Grafana dashboard file: generated from its script, and well-formed for Grafana."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
DASHBOARD = REPO_ROOT / "ops" / "grafana" / "barbus.json"


def test_committed_dashboard_is_what_the_generator_writes(tmp_path: Path) -> None:
    script = REPO_ROOT / "ops" / "grafana" / "make_dashboard.py"
    copy = tmp_path / "make_dashboard.py"
    copy.write_text(script.read_text(encoding="utf-8"), encoding="utf-8")
    subprocess.run([sys.executable, str(copy)], check=True, capture_output=True)
    assert (tmp_path / "barbus.json").read_text(encoding="utf-8") == DASHBOARD.read_text(
        encoding="utf-8"
    )


def test_dashboard_panels_are_well_formed() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert dashboard["uid"] == "barbus-overview"
    assert dashboard["title"]
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    for panel in panels:
        grid = panel["gridPos"]
        assert 0 < grid["w"] <= 24
        assert grid["x"] + grid["w"] <= 24
        assert panel["targets"]
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert len(set(ref_ids)) == len(ref_ids)
        assert all(t["expr"].count("(") == t["expr"].count(")") for t in panel["targets"])
        assert all("barbus_" in t["expr"] for t in panel["targets"])
