from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.inquiries import answers
from gateway.inquiries.keys import (
    DEVELOPMENT_KEY_FILE,
    SigningConfig,
    SigningKeyError,
    VerificationKeys,
    b64url,
    generate_private_pem,
    key_id,
    load_key_set,
)
from tests.gateway.inquiries.factories import transfer_answer


def test_development_key_is_generated_once_privately_and_reused(tmp_path: Path) -> None:
    config = SigningConfig(development=True, data_dir=tmp_path / "data")
    first = load_key_set(config)
    path = tmp_path / "data" / DEVELOPMENT_KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_key_set(config).current.kid == first.current.kid
    assert [p.name for p in path.parent.iterdir()] == [DEVELOPMENT_KEY_FILE]


def test_production_without_a_key_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(SigningKeyError, match="production"):
        load_key_set(SigningConfig(development=False, data_dir=tmp_path))
    assert not (tmp_path / DEVELOPMENT_KEY_FILE).exists()


def test_a_jwk_and_a_pem_of_one_key_are_the_same_key(tmp_path: Path) -> None:
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    raw = private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    public = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    jwk = json.dumps({"kty": "OKP", "crv": "Ed25519", "d": b64url(raw), "x": b64url(public)})
    file = tmp_path / "key.pem"
    file.write_text(pem)
    from_pem = load_key_set(SigningConfig(signing_keys=(pem,)))
    from_jwk = load_key_set(SigningConfig(signing_keys=(jwk,)))
    from_file = load_key_set(SigningConfig(signing_key_files=(file,)))
    assert from_pem.current.kid == from_jwk.current.kid == from_file.current.kid
    assert from_pem.current.kid == key_id(private.public_key())
    wrong_x = json.dumps({**json.loads(jwk), "x": b64url(bytes(32))})
    with pytest.raises(SigningKeyError, match="does not match"):
        load_key_set(SigningConfig(signing_keys=(wrong_x,)))


def test_unusable_keys_are_refused_without_echoing_them() -> None:
    ec_pem = (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    for bad in (ec_pem, "not a key", '{"kty": "OKP", "crv": "Ed448", "x": "AA"}'):
        with pytest.raises(SigningKeyError) as refused:
            load_key_set(SigningConfig(signing_keys=(bad,)))
        assert bad not in str(refused.value)
    pem = generate_private_pem()
    with pytest.raises(SigningKeyError, match="twice"):
        load_key_set(SigningConfig(signing_keys=(pem, pem)))


def test_jwks_publishes_every_key_public_half_only() -> None:
    current, standby, retired = (generate_private_pem() for _ in range(3))
    keys = load_key_set(SigningConfig(signing_keys=(current, standby), retired_keys=(retired,)))
    document = keys.jwks()
    kids = [jwk["kid"] for jwk in document["keys"]]
    assert kids[0] == keys.current.kid
    assert len(set(kids)) == 3
    for jwk in document["keys"]:
        assert set(jwk) == {"kty", "crv", "x", "kid", "use", "alg"}
        assert (jwk["kty"], jwk["crv"], jwk["use"], jwk["alg"]) == (
            "OKP",
            "Ed25519",
            "sig",
            "Ed25519",
        )
    cached = VerificationKeys.from_jwks(json.loads(json.dumps(document)))
    assert set(cached.by_kid) == set(kids)
    tampered = {"keys": [{**document["keys"][0], "kid": "AAAAAAAA"}]}
    with pytest.raises(SigningKeyError):
        VerificationKeys.from_jwks(tampered)


def test_after_rotation_old_answers_still_verify_and_new_ones_use_the_new_key() -> None:
    old, new = generate_private_pem(), generate_private_pem()
    before = load_key_set(SigningConfig(signing_keys=(old,)))
    old_letter = answers.sign(transfer_answer(), before)
    # Step 1: the new key is published ahead of its turn; verifiers cache this JWKS.
    published = load_key_set(SigningConfig(signing_keys=(old, new)))
    cached = VerificationKeys.from_jwks(published.jwks())
    # Step 2: it signs; step 3: the old one is retired, its public half still published.
    rotated = load_key_set(SigningConfig(signing_keys=(new,), retired_keys=(old,)))
    new_letter = answers.sign(transfer_answer(), rotated)
    assert rotated.current.kid != before.current.kid
    verified_old = answers.verify(old_letter, rotated.verification_keys)
    assert verified_old.kid == before.current.kid
    assert verified_old.retired_key
    verified_new = answers.verify(new_letter, rotated.verification_keys)
    assert verified_new.kid == rotated.current.kid
    assert not verified_new.retired_key
    # A verifier that fetched the JWKS in step 1 verifies both, offline.
    assert answers.verify(new_letter, cached).answer == transfer_answer()
    assert answers.verify(old_letter, VerificationKeys.from_jwks(rotated.jwks())).kid == (
        before.current.kid
    )
    # Dropping the old key altogether would strand its letters: that is why it stays.
    with pytest.raises(answers.NotAuthentic, match="unknown key"):
        answers.verify(
            old_letter, load_key_set(SigningConfig(signing_keys=(new,))).verification_keys
        )
