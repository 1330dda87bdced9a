"""House rules that keep the core headless."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "jobwatch"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_nothing_outside_tui_imports_textual() -> None:
    offenders = []
    files = [p for p in PACKAGE.rglob("*.py") if "tui" not in p.relative_to(PACKAGE).parts]
    assert len(files) > 5  # the scan really looked at the package
    for path in files:
        if any(n == "textual" or n.startswith("textual.") for n in _imports(path)):
            offenders.append(str(path.relative_to(PACKAGE)))
    assert offenders == []


def test_core_does_not_import_the_tui() -> None:
    core = [PACKAGE / "models", PACKAGE / "store"]
    for folder in core:
        for path in folder.rglob("*.py"):
            assert not any(n.startswith("jobwatch.tui") for n in _imports(path)), path
