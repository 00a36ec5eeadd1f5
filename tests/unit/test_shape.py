"""The shape the code keeps: small modules, short functions (README, Layout)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.support.examples import PROJECT

PACKAGES = ("atlas", "reconciler", "seams")
MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 80


def sources() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (PROJECT / pkg).rglob("*.py"))


@pytest.mark.parametrize("path", sources(), ids=lambda p: str(p.relative_to(PROJECT)))
def test_modules_and_functions_stay_small(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    lines = len(text.splitlines())
    assert lines <= MAX_MODULE_LINES, f"{lines} lines: split it by what it holds"
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines, line {node.lineno})"
        for node in ast.walk(ast.parse(text))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: {', '.join(long)}"
