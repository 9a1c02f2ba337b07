"""``--strategy`` through the real CLI: user files, modules and installed plugins, and errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.unit.strategies.test_loader import STRATEGY_FILE

PLUGIN_MODULE = STRATEGY_FILE.replace(
    'name: ClassVar[str] = "hold"', 'name: ClassVar[str] = "plug"'
)


def barbus(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "barbus.daemon.cli", "--log-level", "WARNING", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def install_plugin(site: Path, dist: str, entry_points: dict[str, str]) -> None:
    """What pip leaves for a distribution that registers strategies: a package and its
    ``.dist-info`` with an ``entry_points.txt`` (found by importlib.metadata on sys.path)."""
    package = site / "plugpkg"
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text("", encoding="utf-8")
    (package / "strategy.py").write_text(PLUGIN_MODULE, encoding="utf-8")
    (package / "broken.py").write_text("raise ImportError('plugin bug')\n", encoding="utf-8")
    info = site / f"{dist}-1.2.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2\n", encoding="utf-8"
    )
    lines = "".join(f"{name} = {target}\n" for name, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[barbus.strategies]\n{lines}", encoding="utf-8")


def test_installed_plugins_are_listed_with_their_origin_and_run_by_name(tmp_path: Path) -> None:
    site = tmp_path / "site"
    install_plugin(
        site,
        "barbus_plugdemo",
        {"plug": "plugpkg.strategy:Hold", "my-hold": "plugpkg.strategy:Hold"},
    )
    env = {"PYTHONPATH": str(site)}

    listing = barbus("strategies", cwd=tmp_path, env=env)
    assert listing.returncode == 0, listing.stderr
    block = listing.stdout.split("plug: ", 1)[1].split("\n\n")[0]
    assert "from: plugin barbus_plugdemo 1.2: plugpkg.strategy:Hold" in block
    assert "    size = 3" in block
    assert listing.stdout.startswith("sma_cross: ")  # built-ins first

    out = tmp_path / "out"
    run = barbus(
        "replay",
        "--strategy",
        "plug",
        "--no-plot",
        "--end",
        "2025-05-21",
        "--out",
        str(out),
        cwd=tmp_path,
        env=env,
    )
    assert run.returncode == 0, run.stderr
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert (summary["strategy"], summary["strategy_spec"]) == ("plug", "plug")
    dashed = barbus(
        "replay", "--strategy", "my-hold", "--no-plot", "--end", "2025-05-21", cwd=tmp_path, env=env
    )  # an entry-point name need not be an identifier
    assert dashed.returncode == 0, dashed.stderr


def test_a_broken_plugin_is_one_warning_and_the_others_still_list(tmp_path: Path) -> None:
    site = tmp_path / "site"
    install_plugin(
        site, "barbus_plugdemo", {"plug": "plugpkg.strategy:Hold", "bad": "plugpkg.broken:Nope"}
    )
    listing = barbus("strategies", cwd=tmp_path, env={"PYTHONPATH": str(site)})
    assert listing.returncode == 0
    assert "plug: " in listing.stdout
    warnings = [line for line in listing.stderr.splitlines() if line.strip()]
    assert len(warnings) == 1, listing.stderr
    assert "cannot load plugin 'bad'" in warnings[0]
    assert "ImportError: plugin bug" in warnings[0]

    run = barbus(
        "replay", "--strategy", "bad", "--no-plot", cwd=tmp_path, env={"PYTHONPATH": str(site)}
    )
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1
    assert "cannot load plugin 'bad'" in run.stderr


def test_a_strategy_file_outside_the_project_replays_from_another_folder(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "hold.py").write_text(STRATEGY_FILE, encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = tmp_path / "out"
    run = barbus(
        "replay",
        "--strategy",
        "../mine/hold.py:Hold",
        "--param",
        "size=4",
        "--end",
        "2025-05-21",
        "--no-plot",
        "--out",
        str(out),
        cwd=elsewhere,
    )
    assert run.returncode == 0, run.stderr
    assert f"hold from {mine / 'hold.py'}:Hold" in run.stdout
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["params"]["size"] == 4
    assert summary["trades"] == 1  # bought on the first bar, closed at the end


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("import math\ndef f(:\n    pass\n", ["syntax error in", "mine.py line 2", "def f(:"]),
        (
            "import math\nimport not_a_module_anywhere\n",
            ["mine.py line 2", "No module named 'not_a_module_anywhere'"],
        ),
        ("class Mine:\n    pass\n", ["not a barbus strategy"]),
    ],
)
def test_a_bad_strategy_file_is_one_line_and_exit_2(
    tmp_path: Path, text: str, fragments: list[str]
) -> None:
    (tmp_path / "mine.py").write_text(textwrap.dedent(text), encoding="utf-8")
    run = barbus("replay", "--strategy", "mine.py:Mine", "--no-plot", cwd=tmp_path)
    assert run.returncode == 2
    assert "Traceback" not in run.stderr
    lines = run.stderr.splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("barbus: error: ")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
