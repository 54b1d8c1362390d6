"""Imports point one way: server -> signaling -> rooms (DESIGN.md, "The house")."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

FORBIDDEN = {
    # rooms/ is pure: no other Hearth package, no network, media or database library.
    "rooms": {"server", "signaling", "aiohttp", "aiortc", "aioice", "av", "sqlalchemy", "alembic"},
    # signaling/ sees storage only through signaling.store.CircleStore.
    "signaling": {"server", "sqlalchemy", "alembic"},
}


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_point_one_way(package: str) -> None:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"no modules found in {package}/"
    wrong = {
        str(path.relative_to(ROOT)): sorted(imported_packages(path) & FORBIDDEN[package])
        for path in files
    }
    assert {k: v for k, v in wrong.items() if v} == {}


def test_the_checker_sees_a_forbidden_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import aiohttp.web\nfrom server.app import create_app\nfrom . import x\n")
    assert imported_packages(sample) == {"aiohttp", "server"}
