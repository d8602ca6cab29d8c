"""Fails on a breaking change to the schema since the last release, unless it is marked intended.

    .venv/bin/python scripts/schema_compat.py [--released schema/released.graphql]
        [--current schema.graphql] [--intended schema/intended-changes.txt]

The released schema is `schema/released.graphql`, the SDL as the last release served it.
graphql-core's `find_breaking_changes` compares it with the checked-in `schema.graphql`
(which a test keeps equal to `gateway export-schema`). A breaking change - a field, type,
argument or enum value removed, a type changed, a new required argument or input field -
fails the check unless `schema/intended-changes.txt` holds a line with the change's exact
text, `#`, and why it is intended (who was told, what replaces it). Dangerous changes (a
default changed, an enum value or optional argument added) are printed, never fatal.

At a release: copy `schema.graphql` over `schema/released.graphql` and empty the list.
Exit status: 0 compatible, 1 breaking changes not marked intended, 2 a malformed list.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from graphql import build_schema, find_breaking_changes, find_dangerous_changes

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Report:
    """What changed since the release, sorted into what fails the check and what does not."""

    unintended: list[str]  # breaking, and not on the list: these fail the check
    intended: list[str]  # breaking, and on the list with a reason
    dangerous: list[str]  # not breaking, but a client may notice
    stale: list[str]  # on the list, but no longer a change: remove them

    @property
    def ok(self) -> bool:
        return not self.unintended


class MalformedList(ValueError):
    """A line of the intended-changes list without its reason."""


def read_intended(text: str) -> dict[str, str]:
    """The list's entries: each change's exact text → why it is intended. Blank lines and
    lines starting with `#` are comments."""
    entries: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        change, _, why = line.partition("#")
        if not why.strip():
            raise MalformedList(f"line {number}: say why after '#': {line.strip()}")
        entries[change.strip()] = why.strip()
    return entries


def compare(released_sdl: str, current_sdl: str, intended: dict[str, str]) -> Report:
    # A federation subgraph's SDL uses @link and @key without defining them: read as given.
    released = build_schema(released_sdl, assume_valid_sdl=True)
    current = build_schema(current_sdl, assume_valid_sdl=True)
    breaking = [f"{c.type.name}: {c.description}" for c in find_breaking_changes(released, current)]
    return Report(
        unintended=[change for change in breaking if change not in intended],
        intended=[change for change in breaking if change in intended],
        dangerous=[
            f"{c.type.name}: {c.description}" for c in find_dangerous_changes(released, current)
        ],
        stale=[change for change in intended if change not in breaking],
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--released", type=Path, default=ROOT / "schema" / "released.graphql")
    parser.add_argument("--current", type=Path, default=ROOT / "schema.graphql")
    parser.add_argument("--intended", type=Path, default=ROOT / "schema" / "intended-changes.txt")
    args = parser.parse_args(argv)
    try:
        intended = read_intended(
            args.intended.read_text(encoding="utf-8") if args.intended.exists() else ""
        )
    except MalformedList as exc:
        print(f"{args.intended}: {exc}", file=sys.stderr)
        return 2
    report = compare(
        args.released.read_text(encoding="utf-8"),
        args.current.read_text(encoding="utf-8"),
        intended,
    )
    for change in report.dangerous:
        print(f"dangerous (allowed): {change}")
    for change in report.intended:
        print(f"breaking, intended ({intended[change]}): {change}")
    for change in report.stale:
        print(f"{args.intended.name}: no longer a change, remove it: {change}")
    if report.ok:
        print(f"schema compatible with {args.released.name}")
        return 0
    print(
        f"Breaking changes against {args.released.name}; if one is intended, add its line to "
        f"{args.intended.name} followed by '# why':",
        file=sys.stderr,
    )
    for change in report.unintended:
        print(f"  {change}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
