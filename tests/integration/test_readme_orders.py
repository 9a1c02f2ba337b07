"""The README's "Orders and accounts" section, executed: its Python blocks run in order as one
script outside the project and print what its ```text block shows; its TOML is the example
config's."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

from tests.conftest import REPO_ROOT


def section_blocks() -> list[tuple[str, str]]:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index("\n## Orders and accounts\n")
    end = readme.find("\n## ", start + 1)
    section = readme[start : end if end != -1 else None]
    return [(m[1], m[2]) for m in re.finditer(r"^```(\w+)\n(.*?)^```$", section, re.M | re.S)]


def test_the_python_blocks_run_and_print_the_text_block(tmp_path: Path) -> None:
    blocks = section_blocks()
    script = "\n\n".join(text for language, text in blocks if language == "python")
    [shown] = [text for language, text in blocks if language == "text"]
    (tmp_path / "orders_guide.py").write_text(script, encoding="utf-8")

    done = subprocess.run(
        [sys.executable, "orders_guide.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout == shown


def test_the_toml_block_is_the_example_configs_account_and_first_strategy() -> None:
    [fragment] = [tomllib.loads(text) for language, text in section_blocks() if language == "toml"]
    example = tomllib.loads((REPO_ROOT / "examples" / "shared_account.toml").read_text())

    assert fragment["account"] == example["account"]
    [strategy] = fragment["strategy"]
    assert strategy == {k: v for k, v in example["strategy"][0].items() if k in strategy}
