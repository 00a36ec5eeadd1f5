"""The shape of the code, as figures: the largest modules, the longest functions, and
how many ``Any`` annotations the command modules still carry. (The limits themselves
are a test: tests/unit/test_shape.py.) Prints JSON."""

from __future__ import annotations

import ast
import json
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
PACKAGES = ("atlas", "reconciler", "seams")


def main() -> None:
    modules: list[tuple[int, str]] = []
    functions: list[tuple[int, str]] = []
    for pkg in PACKAGES:
        for path in sorted((PROJECT / pkg).rglob("*.py")):
            text = path.read_text(encoding="utf-8")
            rel = str(path.relative_to(PROJECT))
            modules.append((len(text.splitlines()), rel))
            for node in ast.walk(ast.parse(text)):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno:
                    functions.append((node.end_lineno - node.lineno + 1, f"{rel}:{node.name}"))
    anys = sum(
        1
        for path in (PROJECT / "atlas" / "commands").rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Name) and node.id == "Any"
    )
    modules.sort(reverse=True)
    functions.sort(reverse=True)
    print(
        json.dumps(
            {
                "modules": len(modules),
                "lines": sum(n for n, _ in modules),
                "largest_modules": [{"lines": n, "module": m} for n, m in modules[:5]],
                "longest_functions": [{"lines": n, "function": f} for n, f in functions[:5]],
                "any_in_atlas_commands": anys,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
