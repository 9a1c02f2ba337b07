"""``barbus new-strategy``: the skeleton and its test pass as written, in a folder of their own,
are ruff-clean, and nothing is ever overwritten."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.kit.processes import barbus

RUFF_RULES = "E,F,W,I,B,UP,SIM,RUF,N,PL,PT"  # the project's own selection (pyproject.toml)


def user_env() -> dict[str, str]:
    """The environment of a user with barbus installed: no PYTHONPATH into this checkout."""
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    return env


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=cwd, env=user_env(), capture_output=True, text=True, timeout=300, check=False
    )


def test_the_skeleton_and_its_test_pass_as_written_and_are_ruff_clean(tmp_path: Path) -> None:
    folder = tmp_path / "work" / "mine"
    made = barbus("new-strategy", "my_breakout", "--dir", folder)
    assert made.returncode == 0, made.stderr
    strategy, test = folder / "my_breakout.py", folder / "test_my_breakout.py"
    assert sorted(folder.iterdir()) == [strategy, test]
    assert f"wrote {strategy} and {test}" in made.stdout
    assert "class MyBreakout(Strategy[MyBreakoutParams]):" in strategy.read_text(encoding="utf-8")

    tests = run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test.name], folder)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "2 passed" in tests.stdout

    ruff = str(Path(sys.executable).with_name("ruff"))
    lint = run(
        [ruff, "check", "--isolated", "--select", RUFF_RULES, "--line-length", "100", "."], folder
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
    fmt = run([ruff, "format", "--isolated", "--line-length", "100", "--check", "."], folder)
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr

    # the file runs as a strategy spec: barbus strategies describes it, with its parameter
    listed = barbus("strategies", f"{strategy}:MyBreakout")
    assert listed.returncode == 0, listed.stderr
    assert "my_breakout:" in listed.stdout
    assert "window = 20" in listed.stdout


def test_the_default_folder_is_the_current_one(tmp_path: Path) -> None:
    made = run([sys.executable, "-m", "barbus.daemon.cli", "new-strategy", "trend_rider"], tmp_path)
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "trend_rider.py").is_file()
    assert "class TrendRider(" in (tmp_path / "trend_rider.py").read_text(encoding="utf-8")
    assert "from trend_rider import TrendRider" in (tmp_path / "test_trend_rider.py").read_text(
        encoding="utf-8"
    )


@pytest.mark.parametrize("existing", ["keep.py", "test_keep.py"])
def test_existing_files_are_never_overwritten(tmp_path: Path, existing: str) -> None:
    (tmp_path / existing).write_text("# mine\n", encoding="utf-8")
    refused = barbus("new-strategy", "keep", "--dir", tmp_path)
    assert refused.returncode == 2
    assert refused.stderr == f"barbus: error: {tmp_path / existing} exists: not overwriting it\n"
    assert [p.name for p in tmp_path.iterdir()] == [existing]  # neither file written
    assert (tmp_path / existing).read_text(encoding="utf-8") == "# mine\n"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("2fast", "strategy name '2fast' is not a Python identifier (e.g. my_breakout)"),
        ("my-strategy", "strategy name 'my-strategy' is not a Python identifier"),
        ("class", "strategy name 'class' is not a Python identifier"),
        ("json", "strategy name 'json' would shadow the module json: pick another"),
        ("numpy", "strategy name 'numpy' would shadow the module numpy: pick another"),
        ("bbrs", "strategy name 'bbrs' is a built-in strategy's name: pick another"),
        ("testing_idea", "strategy name 'testing_idea' makes a class pytest collects"),
    ],
)
def test_a_name_that_is_no_importable_identifier_is_refused(
    tmp_path: Path, name: str, message: str
) -> None:
    refused = barbus("new-strategy", name, "--dir", tmp_path)
    assert refused.returncode == 2
    assert refused.stderr.startswith(f"barbus: error: {message}")
    assert refused.stderr.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_help_names_the_command() -> None:
    top = barbus("--help")
    assert "new-strategy" in top.stdout
    own = barbus("new-strategy", "--help")
    assert "--dir" in own.stdout
    assert "never overwritten" in own.stdout
