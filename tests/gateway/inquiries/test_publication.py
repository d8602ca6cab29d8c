"""Publishing and verifying answers over the gateway's database (every backend the fixtures
give): the status list says VALID, SUPERSEDED or REVOKED by index, also to a verifier with
nothing but the list and the keys; an answer is verified against what the database holds; old
answers still verify after the key is rotated; the list is built once per interval."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import pytest
from sqlalchemy import true, update

from db.engines import Databases
from db.gateway import InquiryCheckRecord, InquiryRecord
from gateway.access.principals import Principal, PrincipalKind, scopes_for
from gateway.access.rows import RULES
from gateway.clock import naive_utc
from gateway.errors import Conflict
from gateway.inquiries import answers, jws, publication, status
from gateway.inquiries.answering import build_answer, sign_answer
from gateway.inquiries.checks import ChecksConfig, ManualCheck
from gateway.inquiries.config import InquirySettings
from gateway.inquiries.keys import (
    KeySet,
    SigningConfig,
    VerificationKeys,
    generate_private_pem,
    load_key_set,
)
from gateway.inquiries.kinds import PROPERTY_TRANSFER, inquiry_kinds
from gateway.inquiries.publication import (
    StatusListCache,
    letter_reasons,
    published_answer,
    status_list_token,
    verify_answer,
)
from gateway.inquiries.status import AnswerStatus, TokenStatus
from gateway.inquiries.tracking import new_tracking_code
from tests.conftest import make_backend
from tests.gateway.inquiries.factories import APPLICANT, COUNTERPARTY, ISSUED, transfer_answer

LATER = ISSUED + dt.timedelta(hours=1)  # when the tests' verifiers ask
UNPAID = {
    "fa": "عوارض نوسازی سال ۱۴۰۴ به مبلغ ۱۲٬۵۰۰٬۰۰۰ ریال پرداخت نشده است",
    "en": "Unpaid renewal duty for 1404: 12,500,000 rials",
}


def keys_of(*signing: str, retired: Sequence[str] = ()) -> KeySet:
    return load_key_set(SigningConfig(signing_keys=signing, retired_keys=tuple(retired)))


def make_config(keys: KeySet) -> InquirySettings:
    return InquirySettings(
        kinds=inquiry_kinds(),
        checks=ChecksConfig(),
        keys=keys,
        issuer="urmia",
        municipality="شهرداری ارومیه",
        public_url="https://gw.urmia.example",
    )


@dataclass(frozen=True)
class Stored:
    """An inquiry as a test put it in the database (answer_id and token once decided)."""

    id: int
    tracking_code: str
    answer_id: str | None
    token: str | None


async def store_inquiry(
    databases: Databases,
    config: InquirySettings,
    *,
    organisation: str = "notary:1",
    failing: Sequence[str] = (),
    decided: bool = True,
    decided_at: dt.datetime = ISSUED,
) -> Stored:
    """A property-transfer inquiry with its seven checks done (`failing` names those that
    failed, the dues with their amount), decided and signed as the workflow does it
    (gateway/inquiries/answering.py) unless `decided` is False."""
    kind = config.kinds[PROPERTY_TRANSFER]
    async with databases.session("gateway") as session, session.begin():
        inquiry = InquiryRecord(
            tracking_code=new_tracking_code(),
            kind=kind.name,
            partner_kind=organisation.split(":")[0],
            partner_id=organisation.split(":")[-1],
            organisation=organisation,
            idempotency_key=uuid.uuid4().hex,
            input_digest="0" * 64,
            parcel_id=7,
            region=1,
            renewal_code="3-12-456-78",
            registry_plate="11-4512/1234",
            applicant_national_code=APPLICANT,
            counterparty_national_code=COUNTERPARTY,
            status="WAITING_FOR_DEPARTMENT",
            submitted_at=naive_utc(decided_at - dt.timedelta(minutes=5)),
        )
        session.add(inquiry)
        await session.flush()
        checks = []
        for definition in kind.checks:
            failed = definition.name in failing
            manual = isinstance(definition, ManualCheck)
            unpaid = failed and definition.name == "dues_settled"
            checks.append(
                InquiryCheckRecord(
                    inquiry_id=inquiry.id,
                    name=definition.name,
                    authority=definition.authority.name,
                    manual=manual,
                    state="done",
                    outcome="FAIL" if failed else "PASS",
                    reasons=[UNPAID] if unpaid else [],
                    details=(
                        {
                            "unpaid": [
                                {"kind": "renewal_duty", "period": 1404, "outstanding": 12_500_000}
                            ]
                        }
                        if unpaid
                        else {}
                    ),
                    read_at=naive_utc(decided_at - dt.timedelta(seconds=30)),
                    officer_role="engineer" if manual else None,
                    attempts=1,
                )
            )
        session.add_all(checks)
        await session.flush()
        answer_id = token = None
        if decided:
            answer = build_answer(
                inquiry,
                checks,
                config,
                issued_at=decided_at,
                answer_id=answers.new_answer_id(),
                supersedes=None,
            )
            answer_id, token = answer.answer_id, sign_answer(answer, config)
            inquiry.status = "DECIDED"
            inquiry.verdict = "NOT_CLEAR" if failing else "CLEAR"
            inquiry.reasons = [UNPAID] if "dues_settled" in failing else []
            inquiry.decided_at = naive_utc(decided_at)
            inquiry.valid_until = naive_utc(answer.expires_at)
            inquiry.answer_id = answer_id
            inquiry.answer = token
        return Stored(inquiry.id, inquiry.tracking_code, answer_id, token)


async def change_inquiry(databases: Databases, inquiry_id: int, **values: Any) -> None:
    async with databases.session("gateway") as session, session.begin():
        await session.execute(
            update(InquiryRecord).where(InquiryRecord.id == inquiry_id).values(**values)
        )


def partner(organisation_id: str) -> Principal:
    kind = PrincipalKind.NOTARY
    return Principal(kind, organisation_id, "Notary office", scopes=scopes_for(kind))


@pytest.fixture(scope="module", params=["sqlite", "postgres", "mariadb"])
async def databases(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Databases]:
    backend, server = await make_backend(
        request.param, tmp_path_factory.mktemp(f"publication-{request.param}"), parcels=0
    )
    made = Databases({"gateway": backend.urls["gateway"]})
    try:
        yield made
    finally:
        await made.dispose()
        if server is not None:
            await server.drop_all()


@pytest.fixture(scope="module")
def config() -> InquirySettings:
    return make_config(keys_of(generate_private_pem()))


async def verify(
    databases: Databases, config: InquirySettings, token: str, now: dt.datetime = LATER
) -> status.Verification:
    async with databases.session("gateway") as session:
        return await verify_answer(token, session, config, now)


async def status_token(
    databases: Databases, config: InquirySettings, now: dt.datetime = LATER
) -> str:
    async with databases.session("gateway") as session:
        return await status_list_token(session, config, now)


# --- The status list ------------------------------------------------------------------------


async def test_the_status_list_marks_each_answer_by_its_inquiry_id(
    databases: Databases, config: InquirySettings
) -> None:
    valid = await store_inquiry(databases, config)
    superseded = await store_inquiry(databases, config)
    revoked = await store_inquiry(databases, config)
    both = await store_inquiry(databases, config)
    newer = await store_inquiry(databases, config)
    undecided = await store_inquiry(databases, config, decided=False)
    await change_inquiry(databases, superseded.id, superseded_by=newer.id)
    await change_inquiry(databases, revoked.id, revoked_at=naive_utc(LATER))
    await change_inquiry(databases, both.id, revoked_at=naive_utc(LATER), superseded_by=newer.id)

    token = await status_token(databases, config)
    listed = status.read_status_list_token(
        token, config.keys.verification_keys, uri=config.status_uri, now=LATER
    )
    assert listed.status(valid.id) == TokenStatus.VALID
    assert listed.status(superseded.id) == TokenStatus.SUPERSEDED
    assert listed.status(revoked.id) == TokenStatus.REVOKED
    assert listed.status(both.id) == TokenStatus.REVOKED  # withdrawn outright says the most
    assert listed.status(newer.id) == TokenStatus.VALID
    assert listed.status(undecided.id) == TokenStatus.VALID  # no answer points at it
    assert len(listed) > newer.id


async def test_the_status_list_is_a_short_lived_signed_token_at_the_answers_uri(
    databases: Databases, config: InquirySettings
) -> None:
    stored = await store_inquiry(databases, config)
    token = await status_token(databases, config)
    verified = jws.verify(token, config.keys.verification_keys, typ=status.STATUS_LIST_TYP)
    claims = json.loads(verified.payload)
    assert claims["sub"] == config.status_uri
    assert claims["iss"] == config.issuer
    assert claims["iat"] == int(LATER.timestamp())
    assert claims["exp"] - claims["iat"] == 600  # a revocation is seen within ten minutes
    assert claims["ttl"] == 300
    assert claims["status_list"]["bits"] == 2
    # Every answer names this list and its place in it.
    assert stored.token is not None
    answer = answers.verify(stored.token, config.keys.verification_keys).answer
    assert (answer.status_uri, answer.status_index) == (config.status_uri, stored.id)


async def test_a_verifier_with_the_list_and_the_keys_alone_reads_each_status(
    databases: Databases, config: InquirySettings
) -> None:
    valid = await store_inquiry(databases, config)
    superseded = await store_inquiry(databases, config)
    revoked = await store_inquiry(databases, config)
    await change_inquiry(databases, superseded.id, superseded_by=valid.id)
    await change_inquiry(databases, revoked.id, revoked_at=naive_utc(LATER))
    # What a verifier fetched once: the JWKS document and the list. No database from here.
    keys = VerificationKeys.from_jwks(json.loads(json.dumps(config.keys.jwks())))
    listed = await status_token(databases, config)
    expires = ISSUED + config.kinds[PROPERTY_TRANSFER].validity
    late_list = await status_token(databases, config, now=expires)
    expected = [
        (valid, listed, LATER, AnswerStatus.VALID),
        (superseded, listed, LATER, AnswerStatus.SUPERSEDED),
        (revoked, listed, LATER, AnswerStatus.REVOKED),
        (valid, late_list, expires, AnswerStatus.EXPIRED),
        (revoked, late_list, expires, AnswerStatus.REVOKED),
    ]
    for stored, list_token, now, answer_status in expected:
        assert stored.token is not None
        offline = status.check(stored.token, keys, list_token, now)
        assert (offline.authentic, offline.status) == (True, answer_status)


async def test_a_million_answers_make_a_list_of_kilobytes() -> None:
    """What makes the list cheap to build and fetch at scale: only withdrawn answers are
    marked, the rest compress to nearly nothing (the build itself is measured in the module
    docstring of gateway/inquiries/publication.py)."""
    keys = keys_of(generate_private_pem())
    statuses = dict.fromkeys(range(7, 1_000_000, 997), TokenStatus.SUPERSEDED)
    token = status.sign_status_list(statuses, uri="u", issuer="i", keys=keys, now=LATER)
    assert len(token) < 20_000


# --- Verifying an answer --------------------------------------------------------------------


async def test_a_stored_answer_verifies_as_valid_with_what_it_states(
    databases: Databases, config: InquirySettings
) -> None:
    stored = await store_inquiry(databases, config, failing=("dues_settled",))
    assert stored.token is not None
    result = await verify(databases, config, stored.token)
    assert result.authentic
    assert result.status is AnswerStatus.VALID
    assert result.kid == config.keys.current.kid
    assert result.answer is not None
    assert result.answer.tracking_code == stored.tracking_code
    assert result.answer.verdict is answers.Verdict.NOT_CLEAR
    assert [(d.kind, d.period, d.amount) for d in result.answer.outstanding] == [
        ("ren", 1404, 12_500_000)
    ]


async def test_one_changed_character_anywhere_is_not_authentic(
    databases: Databases, config: InquirySettings
) -> None:
    stored = await store_inquiry(databases, config)
    token = stored.token
    assert token is not None
    header, payload, _signature = token.split(".")
    for position in (len(header) // 2, len(header) + 1 + len(payload) // 2, len(token) - 10):
        changed = (
            token[:position] + ("B" if token[position] == "A" else "A") + token[position + 1 :]
        )
        result = await verify(databases, config, changed)
        assert not result.authentic, position
        assert result.status is None
        assert result.answer is None
        assert result.reason


async def test_oversized_or_non_ascii_tokens_are_simply_not_authentic(
    databases: Databases, config: InquirySettings
) -> None:
    stored = await store_inquiry(databases, config)
    assert stored.token is not None
    for token in (
        "x" * (jws.MAX_TOKEN_CHARS + 1),
        stored.token[:20] + "е" + stored.token[21:],  # a Cyrillic е
        stored.token + "۰",
        "",
        "not a token",
    ):
        result = await verify(databases, config, token)
        assert not result.authentic
        assert result.reason


async def test_expired_superseded_and_revoked_answers_say_so_in_that_order(
    databases: Databases, config: InquirySettings
) -> None:
    stored = await store_inquiry(databases, config)
    newer = await store_inquiry(databases, config)
    assert stored.token is not None
    expires = ISSUED + config.kinds[PROPERTY_TRANSFER].validity
    just_before = expires - dt.timedelta(seconds=1)

    assert (await verify(databases, config, stored.token, just_before)).status is AnswerStatus.VALID
    assert (await verify(databases, config, stored.token, expires)).status is AnswerStatus.EXPIRED
    await change_inquiry(databases, stored.id, superseded_by=newer.id)
    for now in (LATER, expires):
        result = await verify(databases, config, stored.token, now)
        assert result.status is AnswerStatus.SUPERSEDED
    await change_inquiry(databases, stored.id, revoked_at=naive_utc(LATER))
    for now in (LATER, expires):
        result = await verify(databases, config, stored.token, now)
        assert (result.authentic, result.status) == (True, AnswerStatus.REVOKED)


async def test_an_authentic_answer_this_gateway_does_not_hold_is_not_authentic(
    databases: Databases, config: InquirySettings
) -> None:
    """Signed with a key the gateway publishes, but issued elsewhere (a deployment sharing
    the key) or since forgotten: nothing here vouches for its status."""
    foreign = answers.sign(
        transfer_answer(answer_id=answers.new_answer_id(), status_uri=config.status_uri),
        config.keys,
    )
    result = await verify(databases, config, foreign)
    assert not result.authentic
    assert result.reason == "not an answer issued by this gateway"
    # Its id, with another tracking code than the one stored, is not it either.
    stored = await store_inquiry(databases, config)
    assert stored.answer_id is not None
    borrowed = answers.sign(
        transfer_answer(answer_id=stored.answer_id, status_uri=config.status_uri), config.keys
    )
    assert not (await verify(databases, config, borrowed)).authentic


async def test_after_rotation_old_answers_still_verify_and_the_jwks_lists_the_old_key(
    databases: Databases,
) -> None:
    old_pem, new_pem = generate_private_pem(), generate_private_pem()
    before = make_config(keys_of(old_pem))
    stored = await store_inquiry(databases, before)
    assert stored.token is not None
    # The new key published beside the old one, then signing, the old one retired.
    published = replace(before, keys=keys_of(old_pem, new_pem))
    after = replace(before, keys=keys_of(new_pem, retired=[old_pem]))
    old_kid, new_kid = before.keys.current.kid, after.keys.current.kid

    assert [key["kid"] for key in published.keys.jwks()["keys"]] == [old_kid, new_kid]
    assert [key["kid"] for key in after.keys.jwks()["keys"]] == [new_kid, old_kid]
    assert all("d" not in key for key in after.keys.jwks()["keys"])
    for config in (published, after):
        result = await verify(databases, config, stored.token)
        assert (result.authentic, result.status, result.kid) == (True, AnswerStatus.VALID, old_kid)
    # Offline too: the list the new key signs, and the keys from the JWKS document.
    jwks_keys = VerificationKeys.from_jwks(after.keys.jwks())
    offline = status.check(stored.token, jwks_keys, await status_token(databases, after), LATER)
    assert (offline.authentic, offline.status) == (True, AnswerStatus.VALID)
    # A key dropped from the configuration altogether no longer vouches for anything.
    forgotten = replace(before, keys=keys_of(new_pem))
    result = await verify(databases, forgotten, stored.token)
    assert (result.authentic, result.reason) == (False, "signed by an unknown key")


# --- A decided inquiry for its partner --------------------------------------------------------


async def test_the_published_answer_is_the_partners_alone_and_only_once_decided(
    databases: Databases, config: InquirySettings
) -> None:
    stored = await store_inquiry(databases, config, organisation="notary:41")
    waiting = await store_inquiry(databases, config, organisation="notary:41", decided=False)
    owner = RULES.condition(InquiryRecord, partner("41"))
    stranger = RULES.condition(InquiryRecord, partner("42"))
    async with databases.session("gateway") as session:
        found = await published_answer(session, stored.tracking_code, owner)
        assert found is not None
        assert (found[0].id, found[1]) == (stored.id, stored.token)
        assert await published_answer(session, stored.tracking_code, stranger) is None
        assert await published_answer(session, new_tracking_code(), true()) is None
        assert await published_answer(session, waiting.tracking_code, stranger) is None
        with pytest.raises(Conflict):
            await published_answer(session, waiting.tracking_code, owner)


async def test_the_letter_reasons_are_the_checks_by_the_answers_codes(
    databases: Databases, config: InquirySettings
) -> None:
    stored = await store_inquiry(databases, config, failing=("dues_settled",))
    async with databases.session("gateway") as session:
        found = await published_answer(session, stored.tracking_code, true())
        assert found is not None
        reasons = await letter_reasons(session, found[0])
    assert reasons == {"dues": f"{UNPAID['fa']} ({UNPAID['en']})"}
    assert stored.token is not None
    answer = answers.verify(stored.token, config.keys.verification_keys).answer
    assert set(reasons) <= {check.name for check in answer.checks}


# --- The cache ------------------------------------------------------------------------------


async def test_the_cached_list_is_rebuilt_only_after_its_interval(
    databases: Databases, config: InquirySettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    builds = 0
    build = publication.status_list_token

    async def counting(*args: Any) -> str:
        nonlocal builds
        builds += 1
        return await build(*args)

    monkeypatch.setattr(publication, "status_list_token", counting)
    cache = StatusListCache()
    stored = await store_inquiry(databases, config)

    async def fetch(now: dt.datetime, for_config: InquirySettings = config) -> int:
        async with databases.session("gateway") as session:
            token = await cache.token(session, for_config, now)
        listed = status.read_status_list_token(
            token, for_config.keys.verification_keys, uri=for_config.status_uri, now=now
        )
        return listed.status(stored.id)

    # A crowd at once: one build.
    assert await asyncio.gather(*(fetch(LATER) for _ in range(20))) == [TokenStatus.VALID] * 20
    assert builds == 1
    await change_inquiry(databases, stored.id, revoked_at=naive_utc(LATER))
    assert await fetch(LATER + dt.timedelta(seconds=29)) == TokenStatus.VALID
    assert builds == 1
    assert await fetch(LATER + dt.timedelta(seconds=30)) == TokenStatus.REVOKED
    assert builds == 2
    # A clock set back rebuilds; so does another configuration (another key set).
    assert await fetch(LATER + dt.timedelta(seconds=10)) == TokenStatus.REVOKED
    assert builds == 3
    other = make_config(keys_of(generate_private_pem()))
    assert await fetch(LATER + dt.timedelta(seconds=11), other) == TokenStatus.REVOKED
    assert builds == 4
