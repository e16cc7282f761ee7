"""The README's Python code blocks run as written; its shell commands match .ci/run."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


@pytest.mark.parametrize("index", range(len(_blocks("python"))))
def test_python_blocks_run(index: int, tmp_path: Path) -> None:
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        exec(compile(_blocks("python")[index], f"README.md[python {index}]", "exec"), {"__name__": "__readme__"})
    finally:
        os.chdir(cwd)


def test_ci_runs_the_readme_commands() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    install = re.search(r"^pip install .*$", README, flags=re.M)
    test = re.search(r"^python -m pytest -q$", README, flags=re.M)
    assert install and install.group(0) in ci
    lines = ci.splitlines()
    assert test and test.group(0) in lines  # exactly the README's command, on a line of its own ...
    assert lines.index(test.group(0)) > lines.index(install.group(0))  # ... after the install (then a no-shared rerun)
