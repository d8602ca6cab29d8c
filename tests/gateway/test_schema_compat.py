"""The schema-compatibility check (scripts/schema_compat.py): the checked-in schema keeps
every promise of the released one, and a breaking change fails unless marked intended."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "schema_compat.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("schema_compat", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


compat = _load()

RELEASED = """
type Query {
  parcel(renewalCode: String): Parcel
  parcels(first: Int! = 20): [Parcel!]!
}
type Parcel { renewalCode: String! area: Float density: Float landUse: LandUse }
enum LandUse { RESIDENTIAL COMMERCIAL }
"""


def test_the_checked_in_schema_is_compatible_with_the_release() -> None:
    """What CI runs: the command on the repository's own files."""
    done = subprocess.run(
        [sys.executable, str(SCRIPT)], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_additions_and_wider_arguments_are_not_breaking() -> None:
    current = RELEASED.replace("parcels(first: Int! = 20)", "parcels(first: Int, last: Int)")
    current = current.replace("COMMERCIAL }", "COMMERCIAL OFFICE }")
    report = compare(current, {})
    assert report.ok
    assert report.unintended == []
    assert any("OFFICE" in change for change in report.dangerous)


def compare(current: str, intended: dict[str, str]) -> Any:
    return compat.compare(RELEASED, current, intended)


def test_a_removed_field_fails_unless_marked_intended(tmp_path: Path) -> None:
    current = RELEASED.replace(" area: Float", "")
    report = compare(current, {})
    assert report.unintended == ["FIELD_REMOVED: Field Parcel.area was removed."]
    assert not report.ok
    marked = compare(current, {"FIELD_REMOVED: Field Parcel.area was removed.": "told partners"})
    assert marked.ok
    assert marked.intended == ["FIELD_REMOVED: Field Parcel.area was removed."]

    # The same through the command, with its files.
    released, changed, intended = (tmp_path / n for n in ("r.graphql", "c.graphql", "i.txt"))
    released.write_text(RELEASED)
    changed.write_text(current)
    arguments = ["--released", released, "--current", changed, "--intended", intended]
    intended.write_text("# nothing intended yet\n")
    assert compat.main([str(a) for a in arguments]) == 1
    intended.write_text(
        "FIELD_REMOVED: Field Parcel.area was removed. # area moved to deeds (1405-09)\n"
    )
    assert compat.main([str(a) for a in arguments]) == 0
    intended.write_text("FIELD_REMOVED: Field Parcel.area was removed.\n")
    assert compat.main([str(a) for a in arguments]) == 2  # no reason given


@pytest.mark.parametrize(
    ("change", "kind"),
    [
        (("parcel(renewalCode: String)", "parcel(renewalCode: String!)"), "ARG_CHANGED_KIND"),
        (("RESIDENTIAL COMMERCIAL", "RESIDENTIAL"), "VALUE_REMOVED_FROM_ENUM"),
        (("renewalCode: String!", "renewalCode: String"), "FIELD_CHANGED_KIND"),
        (
            ("parcel(renewalCode: String)", "parcel(renewalCode: String, plate: String!)"),
            "REQUIRED_ARG_ADDED",
        ),
    ],
)
def test_each_kind_of_breaking_change_is_caught(change: tuple[str, str], kind: str) -> None:
    report = compare(RELEASED.replace(*change), {})
    assert [c.split(":")[0] for c in report.unintended] == [kind]


def test_an_entry_that_no_longer_matches_is_reported_stale() -> None:
    report = compare(RELEASED, {"FIELD_REMOVED: Field Parcel.area was removed.": "long ago"})
    assert report.ok
    assert report.stale == ["FIELD_REMOVED: Field Parcel.area was removed."]
