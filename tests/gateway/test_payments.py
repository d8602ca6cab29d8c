"""Verifying payments over HTTP: a bank sees only payments made through it, the payer's
national ID needs personal:read (masked otherwise) and is audited, and a reference is an
identifier like any other (Persian digits folded, other scripts' digits refused)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from db.demo import PAYMENT_BANK_CODES
from db.engines import Databases
from db.revenue import Payment
from gateway.access.principals import Scope
from gateway.edge.app import create_app
from sandbox.run import Agencies as SandboxAgencies
from tests.conftest import BANK_CODES, Backend, GraphQLClient, settings_for
from tests.gateway.test_auth import AUDIENCE, ISSUER, Issuer, serve

OWN_BANK = BANK_CODES["bank"]
OTHER_BANK = next(code for code in PAYMENT_BANK_CODES if code != OWN_BANK)

VERIFY = (
    "query($r: String!) { verifyPayment(reference: $r) { reference"
    " recorded { amount } consistent bank { status amount payerNationalCode } } }"
)
PAYER = "query($r: String!) { verifyPayment(reference: $r) { bank { payerNationalCode } } }"
OWN_PERSON_RECORDS = (
    "query($c: String!) { viewer { auditTrail(first: 100,"
    ' filter: {subjectType: "Person", subjectId: $c}) { edges { node { subjectId } } } } }'
)


async def _settled_reference(backend: Backend, bank_code: str) -> str:
    """A payment through this bank that the bank settled (the sandbox's rules, by id)."""
    databases = Databases({"revenue": backend.urls["revenue"]})
    try:
        async with databases.revenue.connect() as connection:
            rows = (
                await connection.execute(
                    select(Payment.id, Payment.bank_reference)
                    .where(Payment.bank_reference.startswith(bank_code))
                    .order_by(Payment.id)
                    .limit(100)
                )
            ).all()
    finally:
        await databases.dispose()
    return next(
        r.bank_reference for r in rows if r.id % 19 != 7 and r.id % 17 != 5 and r.id % 41 != 13
    )


@pytest.fixture(scope="module")
async def own_reference(backend: Backend) -> str:
    return await _settled_reference(backend, OWN_BANK)


@pytest.fixture(scope="module")
async def other_reference(backend: Backend) -> str:
    return await _settled_reference(backend, OTHER_BANK)


@pytest.fixture(scope="module")
def callers(client: httpx.AsyncClient, keys: dict[str, str]) -> dict[str, GraphQLClient]:
    return {label: GraphQLClient(client, key) for label, key in keys.items()}


# --- Which payments a caller may verify -------------------------------------------------


async def test_a_bank_verifies_payments_made_through_it(
    callers: dict[str, GraphQLClient], own_reference: str
) -> None:
    body = await callers["bank"](VERIFY, {"r": own_reference}, cost=True)
    assert "errors" not in body, body["errors"]
    check = body["data"]["verifyPayment"]
    assert check["reference"] == own_reference
    assert check["consistent"] is True
    assert check["bank"]["amount"] == check["recorded"]["amount"]
    assert body["extensions"]["cost"]["agencyCalls"] == 1


async def test_another_banks_payment_reads_as_absent_without_asking_the_bank(
    callers: dict[str, GraphQLClient], other_reference: str
) -> None:
    body = await callers["bank"](VERIFY, {"r": other_reference}, cost=True)
    # Null, not FORBIDDEN: a refusal would tell the bank the reference exists.
    assert body["data"] == {"verifyPayment": None}
    assert "errors" not in body
    assert body["extensions"]["cost"]["agencyCalls"] == 0
    assert body["extensions"]["cost"]["sqlStatements"] == 0


@pytest.mark.parametrize("caller", ["revenue", "inspection", "operator"])
async def test_departments_and_operators_verify_any_banks_payment(
    callers: dict[str, GraphQLClient], other_reference: str, caller: str
) -> None:
    body = await callers[caller](VERIFY, {"r": other_reference})
    assert "errors" not in body, body["errors"]
    check = body["data"]["verifyPayment"]
    assert check["recorded"]["amount"] > 0
    assert check["consistent"] is True


# --- The payer's national ID: personal data ---------------------------------------------


async def _own_records_of(caller: GraphQLClient, national_code: str) -> int:
    body = await caller(OWN_PERSON_RECORDS, {"c": national_code})
    edges = body["data"]["viewer"]["auditTrail"]["edges"]
    assert all(edge["node"]["subjectId"] == national_code for edge in edges)
    return len(edges)


async def test_the_payer_is_served_with_personal_read_and_audited(
    callers: dict[str, GraphQLClient], own_reference: str
) -> None:
    bank = callers["bank"]
    payer = (await bank(PAYER, {"r": own_reference}))["data"]["verifyPayment"]["bank"]
    national_code = payer["payerNationalCode"]
    assert national_code.isdigit()
    assert len(national_code) == 10
    before = await _own_records_of(bank, national_code)
    assert before >= 1  # the read just made was written before the answer left
    await bank(PAYER, {"r": own_reference})
    assert await _own_records_of(bank, national_code) == before + 1


# --- A JWT principal: its organisation from a claim, its scopes narrowed ----------------


@pytest.fixture(scope="module")
async def issuer() -> AsyncIterator[Issuer]:
    made = Issuer()

    async def jwks(_request: Request) -> Response:
        return JSONResponse(made.jwks)

    async with serve(Starlette(routes=[Route("/jwks.json", jwks)])) as url:
        made.url = f"{url}/jwks.json"
        yield made


@pytest.fixture(scope="module")
async def jwt_http(
    backend: Backend, sandbox: SandboxAgencies, issuer: Issuer
) -> AsyncIterator[httpx.AsyncClient]:
    settings = settings_for(
        backend, sandbox, jwt_issuer=ISSUER, jwt_audience=AUDIENCE, jwt_jwks_url=issuer.url
    )
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http,
    ):
        yield http


def _bank_token(issuer: Issuer, sub: str, **claims: Any) -> str:
    return issuer.token("bank", sub=sub, client_id=sub, **claims)


async def test_without_personal_read_the_payer_is_masked_and_not_audited(
    jwt_http: httpx.AsyncClient, issuer: Issuer, own_reference: str
) -> None:
    token = _bank_token(
        issuer, "bank-verify-only", scope=Scope.PAYMENTS_VERIFY, gateway_organisation=OWN_BANK
    )
    narrowed = GraphQLClient(jwt_http, token)
    body = await narrowed(PAYER, {"r": own_reference})
    assert "errors" not in body, body["errors"]
    masked = body["data"]["verifyPayment"]["bank"]["payerNationalCode"]
    assert masked[3:7] == "****"
    assert len(masked) == 10
    # The same payer, in full, for a bank that holds personal:read: the mask hid real digits.
    full = GraphQLClient(jwt_http, _bank_token(issuer, "bank-full", gateway_organisation=OWN_BANK))
    national_code = (await full(PAYER, {"r": own_reference}))["data"]["verifyPayment"]["bank"][
        "payerNationalCode"
    ]
    assert masked == f"{national_code[:3]}****{national_code[-3:]}"
    assert await _own_records_of(narrowed, national_code) == 0
    assert await _own_records_of(full, national_code) == 1


async def test_a_jwt_banks_code_comes_from_its_claim(
    jwt_http: httpx.AsyncClient, issuer: Issuer, own_reference: str, other_reference: str
) -> None:
    own = GraphQLClient(jwt_http, _bank_token(issuer, "bank-own", gateway_organisation=OWN_BANK))
    assert (await own(VERIFY, {"r": own_reference}))["data"]["verifyPayment"] is not None
    assert (await own(VERIFY, {"r": other_reference}))["data"]["verifyPayment"] is None
    # A bank that names no bank code verifies no payment at all.
    nameless = GraphQLClient(jwt_http, _bank_token(issuer, "bank-nameless"))
    assert (await nameless(VERIFY, {"r": own_reference}))["data"]["verifyPayment"] is None


@pytest.mark.parametrize(
    ("kind", "organisation"),
    [("bank", "17"), ("bank", "IR017"), ("bank", 17), ("notary", OWN_BANK)],
)
async def test_a_token_with_a_bad_organisation_is_refused(
    jwt_http: httpx.AsyncClient, issuer: Issuer, kind: str, organisation: object
) -> None:
    token = issuer.token(kind, sub="odd", gateway_organisation=organisation)
    response = await GraphQLClient(jwt_http, token).post("{ viewer { kind } }")
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"] == {"code": "UNAUTHENTICATED"}


# --- A reference is an identifier -------------------------------------------------------


PERSIAN = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")
ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


@pytest.mark.parametrize("digits", [PERSIAN, ARABIC_INDIC])
async def test_persian_and_arabic_indic_references_are_folded_to_ascii(
    callers: dict[str, GraphQLClient], own_reference: str, digits: dict[int, str]
) -> None:
    body = await callers["bank"](VERIFY, {"r": own_reference.translate(digits)})
    assert "errors" not in body, body["errors"]
    check = body["data"]["verifyPayment"]
    assert check["reference"] == own_reference
    assert check["recorded"] is not None


# The same reference with one digit from another script: str.isdigit() and int() take them.
OTHER_SCRIPTS = {
    "fullwidth": str.maketrans("0123456789", "０１２３４５６７８９"),
    "superscript": str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹"),
    "mathematical": str.maketrans("0123456789", "𝟎𝟏𝟐𝟑𝟒𝟓𝟔𝟕𝟖𝟗"),
    "devanagari": str.maketrans("0123456789", "०१२३४५६७८९"),
}


@pytest.mark.parametrize("script", sorted(OTHER_SCRIPTS))
async def test_other_scripts_digits_in_a_reference_are_refused(
    callers: dict[str, GraphQLClient], own_reference: str, script: str
) -> None:
    spoofed = own_reference[:5] + own_reference[5:].translate(OTHER_SCRIPTS[script])
    literal = f'{{ verifyPayment(reference: "{spoofed}") {{ reference }} }}'
    for body in (
        await callers["operator"](VERIFY, {"r": spoofed}),
        await callers["operator"](literal),
    ):
        assert body["data"] == {"verifyPayment": None}
        [error] = body["errors"]
        assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "reference"}
        assert spoofed not in error["message"]  # never echoed back
