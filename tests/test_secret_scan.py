"""The suite's secret scan (tests/conftest.py) knows every API key a test mints: keys are
minted only through conftest's helpers, which register them, and a registered key found in
a response or a log line is reported."""

from __future__ import annotations

import ast
import base64
import hashlib
import json
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.access import audit_key
from gateway.access import keys as access_keys
from gateway.inquiries import keys as signing_keys
from gateway.inquiries import webhooks
from tests.conftest import (
    LEAKS,
    MINTING_SOURCES,
    SECRETS,
    register_key,
    register_private_pem,
    scan_for_secrets,
)

TESTS = Path(__file__).resolve().parent
GATEWAY = TESTS.parent / "gateway"
# Random draws in gateway/ that are not secrets, and why: each other draw must be one of
# conftest's MINTING_SOURCES, registered where it is made.
NOT_SECRETS = {
    ("gateway/local_secrets.py", "secrets.token_hex"): "a temporary file's name",
    ("gateway/access/audit_checkpoints.py", "secrets.token_hex"): "a temporary file's name",
    ("gateway/jobs/config.py", "os.urandom"): "an executor id",
    ("gateway/access/keys.py", "secrets.token_hex"): "a key's prefix, shown to its holder",
    ("gateway/inquiries/answers.py", "secrets.choice"): "an answer's public id",
    ("gateway/inquiries/webhooks.py", "secrets.token_bytes"): "AES-GCM nonces, stored beside",
}
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


def _draws(path: Path) -> set[str]:
    """The random draws a module makes: secrets.*, os.urandom, a key class's generate()."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            if isinstance(owner, ast.Name):
                call = f"{owner.id}.{node.func.attr}"
                if (
                    owner.id in {"secrets", "os"}
                    and (owner.id == "secrets" or node.func.attr == "urandom")
                ) or node.func.attr in {"generate", "generate_private_key"}:
                    found.add(call)
    return found


def test_every_secret_the_gateway_draws_is_registered_where_it_is_made() -> None:
    drawn = {
        (str(path.relative_to(GATEWAY.parent)), call)
        for path in sorted(GATEWAY.rglob("*.py"))
        for call in _draws(path)
    }
    sources = set(MINTING_SOURCES.items())
    assert drawn - set(NOT_SECRETS) == sources, (
        "a new random draw in gateway/: a secret goes in conftest's MINTING_SOURCES "
        "(registered at its source), anything else in NOT_SECRETS with the reason"
    )


def test_what_the_gateway_mints_in_process_goes_on_the_list() -> None:
    api_secret = vars(access_keys)["secrets"].token_urlsafe(32)
    audit = vars(audit_key)["secrets"].token_hex(32)
    webhook_secret = webhooks.new_secret()
    pem = signing_keys.generate_private_pem()
    before = set(SECRETS)
    body = "".join(line for line in pem.splitlines() if not line.startswith("-----"))
    try:
        assert {api_secret, hashlib.sha256(api_secret.encode()).hexdigest()} <= SECRETS
        assert audit in SECRETS
        assert webhook_secret.removeprefix("whsec_") in SECRETS
        assert body in SECRETS
        # The private part as a JWK would carry it: a JWKS that published "d" is a leak.
        private = serialization.load_pem_private_key(pem.encode(), None)
        assert isinstance(private, Ed25519PrivateKey)
        raw = private.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        d = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
        seen = len(LEAKS)
        scan_for_secrets(json.dumps({"keys": [{"kty": "OKP", "d": d}]}), "a JWKS")
        assert len(LEAKS) > seen
        del LEAKS[seen:]
        # Minting registered it already: registering again adds nothing.
        register_private_pem(pem)
        assert set(SECRETS) == before
    finally:
        SECRETS.difference_update(
            {api_secret, audit, webhook_secret.removeprefix("whsec_"), body, d}
        )
