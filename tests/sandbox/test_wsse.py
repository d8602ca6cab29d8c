"""WS-Security UsernameToken: required at the registries, optional at the bank, never replayable."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import zeep.exceptions
from lxml import etree
from zeep.wsse.username import UsernameToken

from db.demo import KNOWN_NATIONAL_CODE
from sandbox.dataset import sheba_for_person
from sandbox.soap import AUTHENTICATION_FAILED, NONCE_REPLAYED, SoapFault, read_fault
from sandbox.wsse import (
    DEMO_PASSWORDS,
    DEMO_USERNAME,
    MAX_AGE,
    Credentials,
    NonceCache,
    UsernameTokenGuard,
    security_header,
)

CIVIL = "urn:ir:sabteahval:civil-registry:v1"
LAND = "urn:ir:ssaa:land-registry:v1"
BANK = "urn:ir:bank:inquiry:v1"
GET_PERSON = (
    f'<GetPerson xmlns="{CIVIL}"><nationalCode>{KNOWN_NATIONAL_CODE}</nationalCode></GetPerson>'
)
GET_DEED = (
    f'<GetDeed xmlns="{LAND}"><section>11</section><mainPlate>1</mainPlate>'
    "<subPlate>1</subPlate></GetDeed>"
)


def detail_code(error: zeep.exceptions.Fault) -> str | None:
    assert error.detail is not None
    return error.detail.findtext("{*}ServiceFault/{*}code")


async def test_zeep_digest_token_is_accepted_by_every_soap_agency(soap_service: Any) -> None:
    person = await soap_service("civil_registry").GetPerson(nationalCode=KNOWN_NATIONAL_CODE)
    deed = await soap_service("land_registry").GetDeed(section=11, mainPlate=1, subPlate=1)
    account = await soap_service("bank").CheckAccountHolder(sheba=sheba_for_person(1))

    assert person.nationalCode == KNOWN_NATIONAL_CODE
    assert deed.found is False
    assert account.holderNationalCode == KNOWN_NATIONAL_CODE


@pytest.mark.parametrize(
    ("agency", "payload"), [("civil_registry", GET_PERSON), ("land_registry", GET_DEED)]
)
async def test_registries_refuse_a_request_without_a_token(
    post_soap: Any, agency: str, payload: str
) -> None:
    response = await post_soap(agency, payload, token=False)

    fault = read_fault(response.content)
    assert response.status_code == 500
    assert fault is not None
    assert (fault.soap_code, fault.code) == ("soap:Client", AUTHENTICATION_FAILED)


@pytest.mark.parametrize("agency", ["civil_registry", "land_registry", "bank"])
async def test_wrong_password_is_refused(soap_service: Any, agency: str) -> None:
    service = soap_service(agency, wsse=UsernameToken(DEMO_USERNAME, "guess", use_digest=True))
    calls = {
        "civil_registry": lambda: service.GetPerson(nationalCode=KNOWN_NATIONAL_CODE),
        "land_registry": lambda: service.GetDeed(section=11, mainPlate=1, subPlate=1),
        "bank": lambda: service.CheckAccountHolder(sheba=sheba_for_person(1)),
    }

    with pytest.raises(zeep.exceptions.Fault) as raised:
        await calls[agency]()

    assert detail_code(raised.value) == AUTHENTICATION_FAILED
    assert "guess" not in raised.value.message


async def test_wrong_username_is_refused(soap_service: Any) -> None:
    token = UsernameToken("someone", DEMO_PASSWORDS["civil_registry"], use_digest=True)

    with pytest.raises(zeep.exceptions.Fault) as raised:
        await soap_service("civil_registry", wsse=token).GetPerson(nationalCode=KNOWN_NATIONAL_CODE)

    assert detail_code(raised.value) == AUTHENTICATION_FAILED


async def test_password_in_the_clear_is_refused(soap_service: Any) -> None:
    token = UsernameToken(DEMO_USERNAME, DEMO_PASSWORDS["civil_registry"])

    with pytest.raises(zeep.exceptions.Fault) as raised:
        await soap_service("civil_registry", wsse=token).GetPerson(nationalCode=KNOWN_NATIONAL_CODE)

    assert detail_code(raised.value) == AUTHENTICATION_FAILED


async def test_replayed_nonce_is_refused(soap_service: Any) -> None:
    # zeep reuses a nonce it is given: the second call replays the first one's token.
    token = UsernameToken(
        DEMO_USERNAME, DEMO_PASSWORDS["civil_registry"], use_digest=True, nonce="replay-me-once"
    )
    service = soap_service("civil_registry", wsse=token)
    await service.GetPerson(nationalCode=KNOWN_NATIONAL_CODE)

    with pytest.raises(zeep.exceptions.Fault) as raised:
        await service.GetPerson(nationalCode=KNOWN_NATIONAL_CODE)

    assert detail_code(raised.value) == NONCE_REPLAYED


@pytest.mark.parametrize(
    "offset",
    [-MAX_AGE - dt.timedelta(seconds=5), dt.timedelta(minutes=10)],
    ids=["stale", "future"],
)
async def test_token_outside_the_freshness_window_is_refused(
    soap_service: Any, offset: dt.timedelta
) -> None:
    # Created relative to now, when the test runs: a moment fixed when the suite was collected
    # is no longer in the future ten minutes later.
    created = dt.datetime.now(dt.UTC) + offset
    token = UsernameToken(
        DEMO_USERNAME, DEMO_PASSWORDS["land_registry"], use_digest=True, created=created
    )

    with pytest.raises(zeep.exceptions.Fault) as raised:
        await soap_service("land_registry", wsse=token).GetDeed(section=1, mainPlate=1, subPlate=1)

    assert detail_code(raised.value) == "MESSAGE_EXPIRED"


async def test_bank_checks_a_token_when_one_is_sent(post_soap: Any) -> None:
    payload = f'<VerifyPayment xmlns="{BANK}"><reference>000</reference></VerifyPayment>'
    bad = security_header(DEMO_USERNAME, "wrong")

    response = await post_soap("bank", payload, token=bad)

    fault = read_fault(response.content)
    assert fault is not None
    assert fault.code == AUTHENTICATION_FAILED


def guard(now: dt.datetime) -> UsernameTokenGuard:
    return UsernameTokenGuard(Credentials("u", "p"), required=True, clock=lambda: now)


def header(block: etree._Element) -> etree._Element:
    element = etree.Element("Header")
    element.append(block)
    return element


def test_guard_accepts_a_digest_token_once() -> None:
    now = dt.datetime(2025, 1, 1, 12, 0, tzinfo=dt.UTC)
    checker = guard(now)
    token = security_header("u", "p", nonce=b"n" * 16, created=now - dt.timedelta(minutes=1))

    assert checker.authenticate(header(token)) == "u"
    with pytest.raises(SoapFault) as raised:
        checker.authenticate(header(token))
    assert raised.value.code == NONCE_REPLAYED


def test_guard_without_requirement_lets_a_tokenless_call_through() -> None:
    checker = UsernameTokenGuard(Credentials("u", "p"), required=False)

    assert checker.authenticate(None) is None


def test_nonce_cache_forgets_old_nonces_and_stays_bounded() -> None:
    start = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    cache = NonceCache(window=dt.timedelta(minutes=5), capacity=3)

    assert cache.first_use("u", b"a", start)
    assert not cache.first_use("u", b"a", start + dt.timedelta(minutes=1))
    for nonce in (b"b", b"c", b"d"):
        assert cache.first_use("u", nonce, start + dt.timedelta(minutes=2))
    assert len(cache) == 3
    assert cache.first_use("u", b"e", start + dt.timedelta(minutes=20))
    assert len(cache) == 1


def test_credentials_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SANDBOX_BANK_USERNAME", "shahr")
    monkeypatch.setenv("SANDBOX_BANK_PASSWORD", "s3cret")

    assert Credentials.from_env("bank") == Credentials("shahr", "s3cret")
    assert Credentials.from_env("land_registry") == Credentials(
        DEMO_USERNAME, DEMO_PASSWORDS["land_registry"]
    )
    assert "s3cret" not in repr(Credentials.from_env("bank"))
