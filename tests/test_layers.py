"""Areas depend one way, downwards: no area (nor core) imports the API or the console; only
the entry points (app.py, cli.py, __main__.py) and those two layers themselves do. The order
of the layers is import-linter's contract in pyproject.toml (ARCHITECTURE.md)."""

from __future__ import annotations

import ast
import enum
import importlib
import subprocess
import sys
from pathlib import Path

import divide_support

PACKAGE = Path(divide_support.__file__).parent
UPPER = ("divide_support.api", "divide_support.web")
ENTRY_POINTS = {"app.py", "cli.py", "__main__.py"}


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_no_area_imports_the_api_or_the_console():
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        if relative.parts[0] in ("api", "web") or str(relative) in ENTRY_POINTS:
            continue
        wrong += [f"{relative}: {name}" for name in sorted(_imports(path))
                  if name.startswith(UPPER)]
    assert wrong == []



def test_an_areas_modules_never_import_its_facade():
    """scheduling, messaging and reports keep service.py as a façade over the modules beside
    it (ARCHITECTURE.md): those modules import each other, never the façade, so the
    façade can import them all without a cycle."""
    wrong = []
    for area in ("scheduling", "messaging", "reports"):
        facade = f"divide_support.{area}.service"
        for path in sorted((PACKAGE / area).rglob("*.py")):
            if path == PACKAGE / area / "service.py":
                continue
            for node in ast.walk(ast.parse(path.read_text("utf-8"))):
                names = set()
                if isinstance(node, ast.Import):
                    names = {alias.name for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names = {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
                if facade in names:
                    wrong.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert wrong == []

def test_migrations_import_no_application_enum():
    """A migration keeps the values it was written with: a later rename or move of an enum
    in the code must never break an old migration."""
    import divide_support.migrations

    migrations = Path(divide_support.migrations.__path__[0])
    wrong = []
    for path in sorted(migrations.glob("0*.py")):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("divide_support"):
                module = importlib.import_module(node.module)
                wrong += [f"{path.name}: {node.module}.{alias.name}" for alias in node.names
                          if isinstance(getattr(module, alias.name, None), enum.EnumMeta)]
    assert wrong == []


def test_layers_depend_one_way_downwards():
    """import-linter's contracts in pyproject.toml: the console above the API above the areas,
    the areas in their order (privacy, reports, calendar, scheduling, followups, messaging,
    accounts, people, audit), core at the bottom."""
    config = Path(__file__).resolve().parents[1] / "pyproject.toml"
    # In a process of its own: import-linter's command configures logging (dictConfig), which
    # would silence the loggers other tests listen to (the statement counter's).
    result = subprocess.run(
        [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports; "
         "sys.exit(lint_imports(config_filename=sys.argv[1], no_cache=True, no_logo=True))",
         str(config)], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_package_is_installed():
    """pyproject lists the packages by hand: a new area left out installs without it (only
    an editable install would hide that), so CI's `pip install .` would fail at import."""
    import tomllib

    root = Path(__file__).resolve().parent.parent
    listed = set(tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]
                 ["packages"])
    found = {".".join(init.parent.relative_to(root).parts)
             for init in (root / "divide_support").rglob("__init__.py")}
    assert found - listed == set()
