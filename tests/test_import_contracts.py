"""The import contracts in pyproject.toml (run by `make test` as lint-imports) hold for the
code, and fail on a violating import: each case copies the packages into a temporary folder,
adds one module with a forbidden import, and runs lint-imports over the copy."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("gateway", "db", "connectors", "identifiers", "sandbox")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_copy(folder: Path, module: str | None = None, source: str = "") -> str:
    """lint-imports' report over a copy of the packages, with `source` added to `module` (a
    path such as "db/violation.py", new or existing) when given; fails the test if
    lint-imports does not answer as expected (0 for the clean copy, 1 otherwise)."""
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package, folder / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(ROOT / "pyproject.toml", folder / "pyproject.toml")
    if module is not None:
        with (folder / module).open("a") as file:
            file.write(source)
    # The copy comes first on the path, before the editable install of the real packages.
    env = {**os.environ, "PYTHONPATH": str(folder)}
    result = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    expected = 0 if module is None else 1
    assert result.returncode == expected, result.stdout + result.stderr
    return result.stdout


def test_the_code_keeps_every_contract(tmp_path: Path) -> None:
    report = lint_copy(tmp_path)
    assert "0 broken" in report


@pytest.mark.parametrize(
    ("module", "source", "broken"),
    [
        ("db/violation.py", "import gateway.settings\n", "db, connectors and identifiers never"),
        ("connectors/violation.py", "from gateway import errors\n", "never import gateway"),
        ("gateway/violation.py", "import sandbox.agency\n", "Nothing imports sandbox"),
        ("gateway/access/violation.py", "import gateway.edge.app\n", "gateway's areas are layers"),
        ("gateway/schema/violation.py", "import gateway.cli\n", "gateway's areas are layers"),
        ("gateway/loaders/violation.py", "import gateway.guards.cost\n", "areas are layers"),
        ("gateway/schema/violation.py", "from sqlalchemy import select\n", "runs no SQL"),
        (
            "gateway/schema/violation.py",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import sqlalchemy.orm\n",
            "runs no SQL",
        ),
    ],
)
def test_a_violating_import_is_reported(
    tmp_path: Path, module: str, source: str, broken: str
) -> None:
    report = lint_copy(tmp_path, module, source)
    # The contract it breaks is named BROKEN; the importing module is named in the detail.
    assert any(broken in line and line.endswith("BROKEN") for line in report.splitlines()), report
    assert module.removesuffix(".py").replace("/", ".") in report


def test_a_cycle_within_an_area_is_reported(tmp_path: Path) -> None:
    # Within schema/ the layers say nothing; planning imports scalars, so scalars importing
    # planning makes a cycle between siblings.
    report = lint_copy(tmp_path, "gateway/schema/scalars.py", "import gateway.schema.planning\n")
    lines = report.splitlines()
    assert any(line.startswith("No import cycles") and line.endswith("BROKEN") for line in lines)
    assert any(line.startswith("gateway's areas") and line.endswith("KEPT") for line in lines)
