"""Imports point one way (STYLE.md rule 13): pipelines/ → assets/ → assets/stats/, never back.

Read from the source with ast, so an import inside a function counts as much as one at the top.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def imported_modules(path: Path, root: Path) -> set[str]:
    """Every module a file imports, absolute (relative imports resolved against its package)."""
    package = path.relative_to(root).with_suffix("").parts[:-1]
    modules = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else ()
            module = ".".join(part for part in (*base, node.module or "") if part)
            modules.add(module)
            # NOTE: `from assets import frames` imports the module assets.frames.
            modules.update(f"{module}.{alias.name}" for alias in node.names)
    return modules


def find_imports(root: Path, folder: str, forbidden: Callable[[list[str]], bool]) -> list[str]:
    """`<file> imports <module>` for every forbidden import of the .py files under root/folder."""
    return [
        f"{path.relative_to(root).as_posix()} imports {module}"
        for path in sorted((root / folder).rglob("*.py"))
        for module in sorted(imported_modules(path, root))
        if forbidden(module.split("."))
    ]


def into_pipelines(parts: list[str]) -> bool:
    return parts[0] == "pipelines"


def out_of_stats(parts: list[str]) -> bool:
    return parts[0] in ("assets", "pipelines") and parts[:2] != ["assets", "stats"]


def test_assets_never_import_pipelines():
    assert find_imports(REPO, "assets", into_pipelines) == []


def test_stats_import_nothing_from_the_rest_of_the_project():
    assert find_imports(REPO, "assets/stats", out_of_stats) == []


@pytest.mark.parametrize("source, module", [
    ("from pipelines.privacy import withhold_values", "pipelines.privacy"),
    ("import pipelines.resources", "pipelines.resources"),
    ("def f():\n    from pipelines import partitions", "pipelines.partitions"),
])
def test_a_backward_import_is_found(tmp_path, source, module):
    (tmp_path / "assets").mkdir()
    (tmp_path / "assets" / "bad.py").write_text(source + "\n")
    assert f"assets/bad.py imports {module}" in find_imports(tmp_path, "assets", into_pipelines)


def test_stats_importing_the_rest_of_assets_is_found(tmp_path):
    path = tmp_path / "assets" / "stats" / "x.py"
    path.parent.mkdir(parents=True)
    path.write_text("from .. import frames\nfrom ..schema import TIMEZONE\nfrom .rates import f\n")
    assert find_imports(tmp_path, "assets/stats", out_of_stats) == [
        "assets/stats/x.py imports assets", "assets/stats/x.py imports assets.frames",
        "assets/stats/x.py imports assets.schema", "assets/stats/x.py imports assets.schema.TIMEZONE",
    ]
