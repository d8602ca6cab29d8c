#!/usr/bin/env python3
"""Fetches GraphiQL's files from npm into gateway/edge/static/graphiql/vendor/, at the versions
pinned below, and writes their checksums into manifest.json beside them.

The gateway serves these files itself (gateway/edge/graphiql.py), so that the IDE works on a
network that cannot reach a CDN. Run it (Node's npm on PATH; tooling only, never at run time)
after changing a version here, then run tests/gateway/test_graphiql.py:

    python scripts/refresh-graphiql.py          # fetch and write
    python scripts/refresh-graphiql.py --check  # fetch and compare with what is vendored

`npm pack` checks each tarball against the registry's integrity hash before it is unpacked.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

# GraphiQL 3 is the last release shipping browser (UMD) bundles; React 18 the last with UMD.
# The explorer plugin's 3.2.5 is the release built against graphiql 3.8's @graphiql/react 0.28.
# Each is MIT-licensed; the explorer's tarball ships no LICENSE file (its package.json says MIT).
PACKAGES: dict[str, dict[str, str]] = {
    "react@18.3.1": {
        "package/umd/react.production.min.js": "react.production.min.js",
        "package/LICENSE": "LICENSE.react",
    },
    "react-dom@18.3.1": {
        "package/umd/react-dom.production.min.js": "react-dom.production.min.js",
        "package/LICENSE": "LICENSE.react-dom",
    },
    "graphiql@3.8.3": {
        "package/graphiql.min.js": "graphiql.min.js",
        "package/graphiql.min.css": "graphiql.min.css",
        "package/LICENSE": "LICENSE.graphiql",
    },
    "@graphiql/plugin-explorer@3.2.5": {
        "package/dist/index.umd.js": "plugin-explorer.umd.js",
        "package/dist/style.css": "plugin-explorer.css",
    },
}

STATIC = Path(__file__).resolve().parent.parent / "gateway" / "edge" / "static" / "graphiql"
VENDOR = STATIC / "vendor"
MANIFEST = STATIC / "manifest.json"


def fetch(workdir: Path) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for spec, members in PACKAGES.items():
        packed = subprocess.run(
            ["npm", "pack", spec, "--json", "--pack-destination", str(workdir)],
            check=True,
            capture_output=True,
            text=True,
        )
        tarball = workdir / json.loads(packed.stdout)[0]["filename"]
        with tarfile.open(tarball) as archive:
            for member, name in members.items():
                extracted = archive.extractfile(member)
                if extracted is None:
                    raise SystemExit(f"{spec} has no file {member}")
                files[name] = extracted.read()
    return files


def manifest(files: dict[str, bytes]) -> dict[str, object]:
    owner = {name: spec for spec, members in PACKAGES.items() for name in members.values()}
    return {
        "comment": "Written by scripts/refresh-graphiql.py; tests check every file against it.",
        "packages": sorted(PACKAGES),
        "files": {
            name: {
                "package": owner[name],
                "sha256": hashlib.sha256(data).hexdigest(),
                "bytes": len(data),
            }
            for name, data in sorted(files.items())
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare, write nothing")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        files = fetch(Path(workdir))
    wanted = manifest(files)
    if args.check:
        current = json.loads(MANIFEST.read_text()) if MANIFEST.exists() else None
        if current != wanted:
            print("The vendored GraphiQL files differ from npm's at the pinned versions.")
            return 1
        print("The vendored GraphiQL files match npm's.")
        return 0
    VENDOR.mkdir(parents=True, exist_ok=True)
    for old in VENDOR.iterdir():
        if old.name not in files:
            old.unlink()
    for name, data in files.items():
        (VENDOR / name).write_bytes(data)
    MANIFEST.write_text(json.dumps(wanted, indent=2) + "\n")
    for name, entry in wanted["files"].items():  # type: ignore[attr-defined]
        print(f"{entry['sha256']}  {name}  ({entry['package']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
