"""The README's "Write a strategy" guide, executed block by block, so it cannot rot.

The guide's fenced blocks run in order in a fresh folder outside the project, as a user would run
them: ```` ```python NAME ```` and ```` ```toml NAME ```` blocks are files written there (the
strategy file must be ``examples/strategies/ema_cross.py`` verbatim), ```` ```python ```` blocks
without a name run as scripts, ```` ```sh ```` blocks run in bash with the venv's ``barbus`` first
on ``PATH``; ```` ```text ```` blocks are sample output and are not run. The guide's ports are
swapped for free ones. Every block must succeed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.net import free_ports

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = REPO_ROOT / "examples" / "strategies" / "ema_cross.py"
GUIDE_PORTS = ("8765", "8080")


@dataclass(frozen=True)
class Block:
    language: str
    name: str | None
    text: str
    line: int


def guide_blocks() -> list[Block]:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index("\n## Write a strategy\n")
    end = readme.find("\n## ", start + 1)
    section = readme[start : end if end != -1 else None]
    first_line = readme[:start].count("\n") + 2
    blocks = []
    for match in re.finditer(r"^```(\w+)(?: +(\S+))?\n(.*?)^```$", section, re.M | re.S):
        line = first_line + section[: match.start()].count("\n")
        blocks.append(Block(match[1], match[2], match[3], line))
    return blocks


def test_the_guide_has_every_step() -> None:
    blocks = guide_blocks()
    kinds = {(b.language, b.name) for b in blocks}
    assert ("python", "ema_cross.py") in kinds
    assert ("toml", "paper.toml") in kinds
    shell = "\n".join(b.text for b in blocks if b.language == "sh")
    for step in (
        "barbus new-strategy",
        "pytest",
        "barbus replay",
        "barbus batch",
        "barbus sim-exchange",
        "barbus run",
        "barbus parity",
    ):
        assert step in shell, f"the guide never runs {step}"


def test_the_guide_shows_the_example_file_verbatim() -> None:
    [shown] = [b for b in guide_blocks() if b.name == "ema_cross.py"]
    assert shown.text == EXAMPLE.read_text(encoding="utf-8")


def test_every_block_of_the_guide_runs(tmp_path: Path) -> None:
    ports = dict(zip(GUIDE_PORTS, map(str, free_ports(len(GUIDE_PORTS))), strict=True))
    bin_dir = Path(sys.executable).parent
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "BARBUS_CACHE_DIR": str(tmp_path / "cache"),
    }
    env.pop("PYTHONPATH", None)
    work = tmp_path / "my-research"
    work.mkdir()
    for block in guide_blocks():
        text = re.sub(r"\b(8765|8080)\b", lambda m: ports[m[1]], block.text)
        where = f"README.md line {block.line} ({block.language} {block.name or ''})"
        if block.name is not None:
            (work / block.name).write_text(text, encoding="utf-8")
            continue
        if block.language == "python":
            args = [sys.executable, "-c", text]
        elif block.language == "sh":
            args = ["bash", "-euo", "pipefail", "-c", text]
        else:
            continue
        done = subprocess.run(
            args, cwd=work, env=env, capture_output=True, text=True, timeout=600, check=False
        )
        output = f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        assert done.returncode == 0, f"{where} failed:\n{output}"
        assert "Traceback" not in done.stderr, f"{where}:\n{done.stderr[-3000:]}"
        if "barbus parity" in text:
            verdict = re.search(
                r"ema-btc: (\d+) daemon trades, (\d+) replay trades.*: identical", done.stdout
            )
            assert verdict is not None, f"{where}: parity said\n{done.stdout}"
            assert int(verdict[1]) >= 1, f"{where}: the daemon never traded:\n{done.stdout}"
