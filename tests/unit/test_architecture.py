"""Imports point one way: server -> signaling -> rooms; rooms/ is pure.

See docs/architecture.md ("The parts" and "Import direction"). Pure means more than "imports
no framework": no clock read, no I/O, no asyncio, no threads, no randomness drawn in rooms/:
every instant comes in as an argument, so a decision can be tested with a number.
"""

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


# Modules whose import alone means I/O, concurrency or a hidden clock.
IMPURE_MODULES = {
    "asyncio",
    "threading",
    "multiprocessing",
    "concurrent",
    "socket",
    "ssl",
    "select",
    "selectors",
    "subprocess",
    "os",
    "io",
    "pathlib",
    "shutil",
    "tempfile",
    "time",
    "random",
    "secrets",
    "logging",
    "urllib",
    "http",
    "json",
    "sqlite3",
}
# Calls that read a clock or touch the outside world, however they were imported.
IMPURE_CALLS = {
    ("datetime", "now"),
    ("datetime", "utcnow"),
    ("datetime", "today"),
    ("date", "today"),
    ("time", "time"),
    ("time", "monotonic"),
    ("time", "perf_counter"),
}
IMPURE_NAMES = {"open", "input", "print", "exec", "eval", "__import__"}


def impurities(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = sorted(imported_packages(path) & IMPURE_MODULES)
    for node in ast.walk(tree):
        if isinstance(node, ast.AsyncFunctionDef | ast.Await | ast.AsyncFor | ast.AsyncWith):
            found.append(f"async code at line {node.lineno}")
        if not isinstance(node, ast.Call):
            continue
        function = node.func
        if isinstance(function, ast.Name) and function.id in IMPURE_NAMES:
            found.append(f"{function.id}() at line {node.lineno}")
        if isinstance(function, ast.Attribute):
            owner = function.value
            name = owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", "")
            if (name, function.attr) in IMPURE_CALLS:
                found.append(f"{name}.{function.attr}() at line {node.lineno}")
    return found


def test_rooms_reads_no_clock_and_does_no_io_or_asyncio() -> None:
    found = {
        str(path.relative_to(ROOT)): impurities(path)
        for path in sorted((ROOT / "rooms").rglob("*.py"))
    }
    assert {k: v for k, v in found.items() if v} == {}


def test_the_purity_checker_sees_clock_reads_io_and_asyncio(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import asyncio\n"
        "from datetime import datetime\n"
        "import time as clock\n"
        "def decide(now):\n"
        "    started = datetime.now()\n"
        "    with open('x') as f:\n"
        "        return f.read(), clock.time()\n"
        "async def later():\n"
        "    await asyncio.sleep(1)\n"
    )
    found = impurities(sample)
    assert "asyncio" in found and "time" in found
    assert any(item.startswith("datetime.now()") for item in found)
    assert any(item.startswith("open()") for item in found)
    assert any(item.startswith("async code") for item in found)
