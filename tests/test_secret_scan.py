"""The suite's secret scan (tests/conftest.py) knows every API key a test mints: keys are
minted only through conftest's helpers, which register them, and a registered key found in
a response or a log line is reported."""

from __future__ import annotations

import ast
import hashlib
from pathlib import Path

from tests.conftest import LEAKS, SECRETS, register_key, scan_for_secrets

TESTS = Path(__file__).resolve().parent
# The functions that mint keys, and the conftest helpers that register what they mint.
MINTING = {"create_key", "ensure_demo_principals"}


def _minting_calls(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Call):
            function = node.func
            name = function.attr if isinstance(function, ast.Attribute) else None
            if isinstance(function, ast.Name):
                name = function.id
            if name in MINTING:
                found.append(f"{path.relative_to(TESTS)}:{node.lineno} calls {name}")
    return found


def test_keys_are_minted_only_through_the_helpers_that_register_them() -> None:
    stray = [
        call
        for path in sorted(TESTS.rglob("*.py"))
        if path != TESTS / "conftest.py"
        for call in _minting_calls(path)
    ]
    assert stray == [], "mint keys with tests.conftest.mint_key / mint_demo_keys instead"


def test_the_helpers_are_the_only_minting_calls_in_conftest() -> None:
    calls = _minting_calls(TESTS / "conftest.py")
    assert [call.rsplit(" ", 1)[-1] for call in calls] == ["create_key", "ensure_demo_principals"]


def test_a_registered_key_found_in_a_response_is_reported() -> None:
    secret = "S" * 43
    key = f"gw_testscan_{secret}"
    hashed = hashlib.sha256(secret.encode()).hexdigest()
    leaks_before = len(LEAKS)
    try:
        register_key(key)
        assert {key, secret, hashed} <= SECRETS
        scan_for_secrets("nothing to see", "a clean response")
        assert len(LEAKS) == leaks_before
        for text in (f'{{"token": "{key}"}}', f"secret={secret}", f"hash {hashed}"):
            seen = len(LEAKS)
            scan_for_secrets(text, "a response")
            assert len(LEAKS) > seen, text
    finally:
        del LEAKS[leaks_before:]
        SECRETS.difference_update({key, secret, hashed})
