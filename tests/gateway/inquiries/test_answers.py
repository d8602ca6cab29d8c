from __future__ import annotations

import base64
import datetime as dt
import json
from dataclasses import replace

import jwt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.inquiries import answers
from gateway.inquiries.answers import NotAuthentic, Outcome, Verdict
from gateway.inquiries.letter import qr_code
from tests.gateway.inquiries.factories import (
    APPLICANT,
    COUNTERPARTY,
    ISSUED,
    key_set,
    transfer_answer,
    with_manual_check,
)

KEYS = key_set()
TOKEN = answers.sign(transfer_answer(), KEYS)
# Realistic bounds, measured: a clear seven-check transfer is 658 characters (QR version 18 at
# level L, 89 modules: 0.45 mm each at 4 cm); a failed one with outstanding dues, a manual
# check and a superseded answer is 754 (version 19, 93 modules: 0.43 mm).
CLEAR_BOUND, WORST_BOUND = 670, 770


def _segments(token: str) -> list[bytes]:
    return [base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)) for s in token.split(".")]


def test_an_answer_signs_and_verifies_to_itself() -> None:
    verified = answers.verify(TOKEN, KEYS.verification_keys)
    assert verified.answer == transfer_answer()
    assert verified.kid == KEYS.current.kid
    assert verified.algorithm == "Ed25519"
    assert not verified.retired_key


def test_header_and_payload_are_canonical_json() -> None:
    header, payload, signature = _segments(TOKEN)
    assert header == b'{"alg":"Ed25519","kid":"' + KEYS.current.kid.encode() + b'"}'
    claims = json.loads(payload)
    assert payload == json.dumps(claims, sort_keys=True, separators=(",", ":")).encode()
    assert len(signature) == 64
    assert claims["k"] == "PT"
    assert claims["status"] == {"status_list": {"idx": 123_456, "uri": "https://e.shiraz.ir/s/1"}}
    assert claims["ck"][0] == "dues:rev:P:2"
    assert claims["iat"] == claims["nbf"] == int(ISSUED.timestamp())


def test_every_listed_fact_survives_the_round_trip() -> None:
    answer = with_manual_check(
        transfer_answer(failed=("dues",), supersedes="3CTEMHQFEZ", counterparty=None)
    )
    verified = answers.verify(answers.sign(answer, KEYS), KEYS.verification_keys).answer
    assert verified == answer
    assert verified.verdict is Verdict.NOT_CLEAR
    assert [d.amount for d in verified.outstanding] == [12_500_000, 850_000]
    manual = next(c for c in verified.checks if c.name == "bldg")
    assert manual.officer_role == "eng"
    assert manual.read_at == ISSUED - dt.timedelta(days=3)
    assert verified.supersedes == "3CTEMHQFEZ"
    assert verified.counterparty is None


def test_the_legacy_eddsa_name_is_accepted_too() -> None:
    legacy = jwt.PyJWS(algorithms=["EdDSA"]).encode(
        answers.canonical_json(transfer_answer().claims()),
        KEYS.current.private_key,
        algorithm="EdDSA",
        headers={"kid": KEYS.current.kid, "typ": None},
    )
    verified = answers.verify(legacy, KEYS.verification_keys)
    assert verified.algorithm == "EdDSA"
    assert verified.answer == transfer_answer()


def test_other_algorithms_keys_and_shapes_are_not_authentic() -> None:
    header, payload, _signature = TOKEN.split(".")
    none = base64.urlsafe_b64encode(b'{"alg":"none","kid":"x"}').rstrip(b"=").decode()
    hs256 = jwt.encode({"a": 1}, "k" * 32, algorithm="HS256", headers={"kid": KEYS.current.kid})
    other = answers.sign(transfer_answer(), key_set())
    for token in (f"{none}.{payload}.", hs256, other, TOKEN + ".", header, "", "a.b.c"):
        with pytest.raises(NotAuthentic):
            answers.verify(token, KEYS.verification_keys)


def test_a_signed_payload_that_is_not_canonical_is_refused() -> None:
    claims = transfer_answer().claims()
    spaced = json.dumps(claims, sort_keys=True).encode()
    token = jwt.PyJWS(algorithms=["EdDSA"]).encode(
        spaced,
        KEYS.current.private_key,
        algorithm="EdDSA",
        headers={"kid": KEYS.current.kid, "typ": None},
    )
    with pytest.raises(NotAuthentic, match="not an inquiry answer"):
        answers.verify(token, KEYS.verification_keys)


_CHARS = st.sampled_from(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ !\u06f1"
)


@settings(max_examples=400, deadline=None)
@given(st.integers(0, len(TOKEN) - 1), _CHARS)
def test_changing_any_one_character_breaks_verification(position: int, char: str) -> None:
    if TOKEN[position] == char:
        return
    altered = TOKEN[:position] + char + TOKEN[position + 1 :]
    with pytest.raises(NotAuthentic):
        answers.verify(altered, KEYS.verification_keys)


def test_the_last_signature_character_cannot_be_swapped_for_an_equivalent() -> None:
    # 64 bytes leave 4 unused bits in the last of 86 characters: a lenient decoder reads
    # 'A' and 'B' there as the same signature.
    last = TOKEN[-1]
    index = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".index(last)
    sibling = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[index ^ 1]
    assert _segments(TOKEN[:-1] + sibling)[2] == _segments(TOKEN)[2]
    with pytest.raises(NotAuthentic):
        answers.verify(TOKEN[:-1] + sibling, KEYS.verification_keys)


def _qr_modules(token: str) -> int:
    code = qr_code(token)
    assert code.error == "L"
    return int(code.symbol_size(border=0)[0])


def test_a_realistic_transfer_answer_fits_a_4_cm_qr_code() -> None:
    assert len(transfer_answer().checks) == 7
    assert len(TOKEN) <= CLEAR_BOUND
    assert _qr_modules(TOKEN) <= 89
    assert 40 / _qr_modules(TOKEN) >= 0.44  # mm per module at 4 cm
    worst = with_manual_check(transfer_answer(failed=("dues",), supersedes="3CTEMHQFEZ"))
    worst_token = answers.sign(worst, KEYS)
    assert len(worst_token) <= WORST_BOUND
    assert 40 / _qr_modules(worst_token) >= 0.43


def test_no_national_id_is_in_the_answer() -> None:
    payload = _segments(TOKEN)[1].decode()
    for national_id in (APPLICANT, COUNTERPARTY):
        assert national_id not in TOKEN
        assert national_id not in payload
        assert national_id[:6] not in payload  # not even the part the mask hides
    assert answers.national_code_matches(APPLICANT, transfer_answer().applicant)
    assert answers.national_code_matches("۰۰۷۱۲۳۴۵۶۱", transfer_answer().applicant)
    assert not answers.national_code_matches(COUNTERPARTY, transfer_answer().applicant)
    assert not answers.national_code_matches("123", transfer_answer().applicant)


def test_an_answer_refuses_what_it_must_not_state() -> None:
    with pytest.raises(ValueError, match="last four"):
        transfer_answer(applicant=APPLICANT)
    with pytest.raises(ValueError, match="CLEAR exactly"):
        transfer_answer(failed=("seiz",), verdict=Verdict.CLEAR)
    with pytest.raises(ValueError, match="aware"):
        transfer_answer(issued_at=ISSUED.replace(tzinfo=None))
    with pytest.raises(ValueError, match="renewal code or registry plate"):
        transfer_answer(renewal_code=None, registry_plate=None)
    with pytest.raises(ValueError, match="unknown inquiry kind"):
        transfer_answer(kind="CITIZENSHIP")
    late = replace(transfer_answer().checks[0], read_at=ISSUED + dt.timedelta(seconds=1))
    with pytest.raises(ValueError, match="read before"):
        transfer_answer(checks=(late, *transfer_answer().checks[1:]))
    with pytest.raises(ValueError, match="check name"):
        replace(transfer_answer().checks[0], name="du:es")
    assert transfer_answer().checks[0].outcome is Outcome.PASS


def test_answer_ids_are_ten_unambiguous_characters() -> None:
    ids = {answers.new_answer_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(len(i) == 10 and not set(i) & set("ILOU") for i in ids)
