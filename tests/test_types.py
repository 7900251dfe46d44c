"""Static types: ``mypy --strict`` over every package passes, so ``scripts/test.sh`` (and CI) checks types.

mypy reads its settings from ``pyproject.toml`` (``[tool.mypy]``) and keeps its cache in the
repository's git-ignored ``.mypy_cache``, so runs after the first take well under a second.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from typing import Any

from tests.paths import REPO_ROOT

PYPROJECT = REPO_ROOT / "pyproject.toml"


def get_tool_config() -> dict[str, Any]:
    with PYPROJECT.open("rb") as handle:
        tool: dict[str, Any] = tomllib.load(handle)["tool"]
    return tool


def get_packages() -> list[str]:
    """The top-level packages setuptools installs (``packages.find`` include patterns ``name*``)."""
    return [pattern.rstrip("*") for pattern in get_tool_config()["setuptools"]["packages"]["find"]["include"]]


def test_mypy_config_is_strict_over_every_package() -> None:
    tool = get_tool_config()
    assert tool["mypy"]["strict"] is True
    assert sorted(tool["mypy"]["files"]) == sorted(get_packages())


def test_mypy_strict_passes_on_every_source_file() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(PYPROJECT),
         "--cache-dir", str(REPO_ROOT / ".mypy_cache")],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"mypy found problems (exit {result.returncode}):\n{output}"
    checked = re.search(r"no issues found in (\d+) source files", output)
    assert checked is not None, f"unexpected mypy output:\n{output}"
    packages = get_packages()
    sources = sum(1 for package in packages for _ in (REPO_ROOT / package).rglob("*.py"))
    assert int(checked.group(1)) == sources, f"mypy checked {checked.group(1)} of {sources} files:\n{output}"
