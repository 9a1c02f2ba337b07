"""Cheap checks on the shape of the code base: import boundaries, no cycles, docs in step."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import barbus

REPO_ROOT = Path(__file__).resolve().parent.parent
MODULES = sorted(
    "barbus."
    + ".".join(path.relative_to(REPO_ROOT).with_suffix("").parts).removesuffix(".__init__")
    for package in ("daemon", "strategies", "replay")
    for path in (REPO_ROOT / package).rglob("*.py")
)


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )


def test_barbus_package_is_this_checkouts() -> None:
    assert Path(barbus.__file__).resolve().parent == REPO_ROOT / "barbus"


@pytest.mark.process
def test_strategies_import_no_event_loop_network_or_storage() -> None:
    forbidden = ("asyncio", "aiohttp", "sqlite3", "uvloop")
    forbidden_barbus = ("barbus.daemon.feeds", "barbus.daemon.core.bus", "barbus.replay")
    result = run_python(
        "import sys, barbus.strategies, barbus.strategies.indicators\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {forbidden!r} "
        f"or m.startswith({forbidden_barbus!r})))"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.process
@pytest.mark.parametrize("module", MODULES)
def test_each_module_imports_alone_in_a_fresh_interpreter(module: str) -> None:
    result = run_python(f"import {module}")
    assert result.returncode == 0, result.stderr


@pytest.mark.process
def test_readme_top_commands_are_make_targets_and_cli_options_exist() -> None:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    makefile = (REPO_ROOT / "Makefile").read_text(encoding="utf-8")
    first_block = readme.split("```")[1]
    targets = re.findall(r"^make (\w+)", first_block, flags=re.MULTILINE)
    assert targets == ["demo", "test"]
    for target in targets:
        assert re.search(rf"^{target}:", makefile, flags=re.MULTILINE)
    ci = (REPO_ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "make test" in ci

    replay_help = run_python("from daemon.cli import main; main(['replay', '--help'])").stdout
    for option in set(re.findall(r"barbus replay [^\n]*", readme)):
        for flag in re.findall(r"--[a-z-]+", option):
            assert flag in replay_help, f"README uses {flag}, which barbus replay does not have"


def test_first_party_imports_go_through_the_barbus_namespace() -> None:
    """`import daemon` would find python-daemon (or a user's folder) once installed."""
    import ast

    bare = ("daemon", "strategies", "replay")
    offenders: list[str] = []
    for folder in (*bare, "tests", "benchmarks", "examples", "ops"):
        for path in (REPO_ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                offenders += [
                    f"{path.relative_to(REPO_ROOT)}:{node.lineno} {name}"
                    for name in names
                    if name.split(".")[0] in bare
                ]
    assert offenders == []
