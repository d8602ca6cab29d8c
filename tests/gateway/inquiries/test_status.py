from __future__ import annotations

import base64
import datetime as dt
import json
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.inquiries import answers
from gateway.inquiries.keys import VerificationKeys
from gateway.inquiries.status import (
    MIN_ENTRIES,
    STATUS_LIST_TYP,
    AnswerStatus,
    StatusList,
    StatusUnavailable,
    TokenStatus,
    check,
    read_status_list_token,
    sign_status_list,
)
from tests.gateway.inquiries.factories import ISSUED, STATUS_URI, key_set, transfer_answer

KEYS = key_set()
ANSWER = transfer_answer(status_index=5)
TOKEN = answers.sign(ANSWER, KEYS)
LATER = ISSUED + dt.timedelta(days=2)
# What a verifier holds offline: the JWKS it fetched once.
CACHED = VerificationKeys.from_jwks(json.loads(json.dumps(KEYS.jwks())))


def _list_token(statuses: dict[int, TokenStatus], **changes: object) -> str:
    arguments: dict[str, object] = {
        "uri": STATUS_URI,
        "issuer": "shiraz.ir",
        "keys": KEYS,
        "now": LATER - dt.timedelta(hours=1),
    }
    arguments.update(changes)
    return sign_status_list(statuses, **arguments)  # type: ignore[arg-type]


def test_two_bit_layout_matches_the_drafts_example() -> None:
    example = [1, 2, 0, 3, 0, 1, 0, 1, 1, 2, 3, 3]
    status_list = StatusList(2, bytes([0xC9, 0x44, 0xF9]))
    assert [status_list.status(i) for i in range(12)] == example
    built = StatusList.build({0: TokenStatus.REVOKED, 3: TokenStatus.SUPERSEDED, 5: 1, 7: 1})
    assert built.data[:2] == bytes([0xC1, 0x44])


@settings(deadline=None)  # timing on a loaded machine is no failure
@given(st.dictionaries(st.integers(0, 40_000), st.sampled_from(list(TokenStatus))))
def test_a_list_round_trips_through_its_compressed_claim(
    statuses: dict[int, TokenStatus],
) -> None:
    built = StatusList.build(statuses)
    assert len(built) % MIN_ENTRIES == 0
    claim = built.claim()
    assert claim["bits"] == 2
    assert "=" not in claim["lst"]
    decoded = StatusList.from_claim(claim)
    assert decoded == built
    for index in {*statuses, 0, len(built) - 1}:
        assert decoded.status(index) == statuses.get(index, TokenStatus.VALID)


def test_the_token_is_a_status_list_jwt_with_the_drafts_claims() -> None:
    token = _list_token({5: TokenStatus.SUPERSEDED})
    header, payload, _ = (
        base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)) for s in token.split(".")
    )
    assert json.loads(header) == {"alg": "Ed25519", "kid": KEYS.current.kid, "typ": STATUS_LIST_TYP}
    claims = json.loads(payload)
    assert claims["sub"] == STATUS_URI
    assert claims["exp"] - claims["iat"] == 86_400
    assert claims["ttl"] == 3_600
    compressed = base64.urlsafe_b64decode(claims["status_list"]["lst"] + "==")
    assert zlib.decompress(compressed)[1] == 0x03 << 2  # index 5: byte 1, bits 2-3


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (TokenStatus.VALID, AnswerStatus.VALID),
        (TokenStatus.SUPERSEDED, AnswerStatus.SUPERSEDED),
        (TokenStatus.REVOKED, AnswerStatus.REVOKED),
    ],
)
def test_check_reads_each_status_offline(status: TokenStatus, expected: AnswerStatus) -> None:
    others = {4: TokenStatus.REVOKED, 6: TokenStatus.SUPERSEDED}
    result = check(TOKEN, CACHED, _list_token({**others, 5: status}), LATER)
    assert result.authentic
    assert result.status is expected
    assert result.answer == ANSWER
    assert result.kid == KEYS.current.kid


def test_an_expired_answer_is_expired_unless_it_was_withdrawn() -> None:
    after = ANSWER.expires_at + dt.timedelta(seconds=1)
    fresh = {"now": after - dt.timedelta(hours=1)}
    assert check(TOKEN, CACHED, _list_token({}, **fresh), after).status is AnswerStatus.EXPIRED
    assert check(TOKEN, CACHED, _list_token({}, **fresh), ANSWER.expires_at).status is (
        AnswerStatus.EXPIRED
    )
    revoked = _list_token({5: TokenStatus.REVOKED}, **fresh)
    assert check(TOKEN, CACHED, revoked, after).status is AnswerStatus.REVOKED


def test_an_altered_answer_is_not_authentic_and_has_no_status() -> None:
    altered = TOKEN[:40] + ("A" if TOKEN[40] != "A" else "B") + TOKEN[41:]
    result = check(altered, CACHED, _list_token({}), LATER)
    assert not result.authentic
    assert result.status is None
    assert result.answer is None


def test_a_status_list_that_cannot_settle_it_is_refused() -> None:
    cases = [
        _list_token({}, uri="https://e.shiraz.ir/s/2"),  # another list
        _list_token({}, now=LATER - dt.timedelta(days=3)),  # expired
        _list_token({}, keys=key_set()),  # signed by a stranger
        TOKEN,  # an answer is not a status list (typ)
        _list_token({}, now=LATER + dt.timedelta(hours=1)),  # issued in the future
    ]
    for status_token in cases:
        with pytest.raises(StatusUnavailable):
            check(TOKEN, CACHED, status_token, LATER)
    far = answers.sign(transfer_answer(status_index=MIN_ENTRIES), KEYS)
    with pytest.raises(StatusUnavailable, match="index"):
        check(far, CACHED, _list_token({}), LATER)


def test_a_list_that_inflates_beyond_its_bound_is_refused() -> None:
    bomb = base64.urlsafe_b64encode(zlib.compress(bytes(65 << 20), 9)).decode().rstrip("=")
    with pytest.raises(ValueError, match="too large"):
        StatusList.from_claim({"bits": 2, "lst": bomb})


def test_reading_the_token_alone_gives_the_list() -> None:
    token = _list_token({9: TokenStatus.REVOKED})
    status_list = read_status_list_token(token, CACHED, uri=STATUS_URI, now=LATER)
    assert status_list.status(9) == TokenStatus.REVOKED
    assert status_list.status(8) == TokenStatus.VALID
