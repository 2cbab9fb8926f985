"""Code follows the data: a package imports only packages of its own or a lower layer.

The layers are those of docs/architecture.md ("Layers"); an import inside a function counts
like one at the top of a module.
"""

from __future__ import annotations

import ast
from pathlib import Path

from promoflow.settings import PROJECT_ROOT

#: Lowest first. A package may import packages of its own layer or of lower ones.
LAYERS: list[tuple[str, ...]] = [
    ("promoflow",),
    ("ingest",),
    ("sources",),
    ("quality",),
    ("spark_jobs",),
    ("feature_repo",),
    ("training",),
    ("planning",),
    ("publish",),
    ("scoring",),
    ("measurement",),
    ("report",),
    ("dags", "local"),
]
LAYER = {package: rank for rank, packages in enumerate(LAYERS) for package in packages}


def imported_packages(path: Path) -> set[tuple[str, int]]:
    """(top-level project package, line) of every import in the file."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found |= {(name.split(".")[0], node.lineno) for name in names
                  if name.split(".")[0] in LAYER}
    return found


def violations() -> list[str]:
    wrong = []
    for package, rank in LAYER.items():
        for path in sorted((PROJECT_ROOT / package).rglob("*.py")):
            for imported, line in sorted(imported_packages(path)):
                where = f"{path.relative_to(PROJECT_ROOT)}:{line}"
                if imported == "dags":
                    wrong.append(f"{where} imports the DAG folder")
                elif LAYER[imported] > rank:
                    wrong.append(f"{where} ({package}) imports {imported}, a higher layer")
    return wrong


def test_every_project_package_has_a_layer() -> None:
    packages = {p.parent.name for p in PROJECT_ROOT.glob("*/__init__.py")} - {"tests"}
    assert packages - set(LAYER) == set(), "add the new package to LAYERS and the docs"


def test_no_package_imports_a_higher_layer() -> None:
    assert violations() == []


def test_the_check_catches_an_upward_import(tmp_path: Path) -> None:
    module = tmp_path / "upward.py"
    module.write_text("def f():\n    from planning.optimize import solve\n")
    assert imported_packages(module) == {("planning", 2)}
    assert LAYER["planning"] > LAYER["promoflow"]


def test_the_layers_are_those_of_the_docs() -> None:
    text = (PROJECT_ROOT / "docs" / "architecture.md").read_text()
    listed = [tuple(name.strip(" `/") for name in line.split("|")[2].split(","))
              for line in text.splitlines()
              if line.startswith("| ") and line.split("|")[1].strip().isdigit()]
    assert listed == LAYERS
