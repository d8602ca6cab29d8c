"""The inquiries' addresses over HTTP, against the real app: the public keys and the status
list for anyone to cache, the letter for the partner who asked and nobody else, the public
verification page by tracking code or by the answer a letter's QR code holds, and rate limits
on every address a tracking code can be tried at."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import zxingcpp

from db.engines import Databases
from gateway.access.principals import PrincipalKind
from gateway.clock import naive_utc
from gateway.edge.app import create_app
from gateway.edge.inquiries import FORM_CSP, PAGE_CSP
from gateway.edge.middleware import ChargedPath
from gateway.inquiries import answers
from gateway.inquiries.config import InquirySettings, inquiry_settings
from gateway.inquiries.keys import VerificationKeys, generate_private_pem
from gateway.inquiries.status import TokenStatus, read_status_list_token
from gateway.inquiries.tracking import format_tracking_code, new_tracking_code
from gateway.jobs import JobKinds
from tests.conftest import Backend, make_backend, mint_key, settings_for
from tests.gateway.inquiries.factories import APPLICANT, COUNTERPARTY, ISSUED
from tests.gateway.inquiries.test_letter import _rasterize
from tests.gateway.inquiries.test_publication import (
    LATER,
    UNPAID,
    Stored,
    change_inquiry,
    store_inquiry,
)
from tests.gateway.test_edge import assert_edge_headers, documented_error

PUBLIC_URL = "https://gw.urmia.example"
PERSIAN = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")
ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


class Clock:
    """The app's wall clock, moved by the tests."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


@dataclass
class Site:
    http: httpx.AsyncClient
    config: InquirySettings
    databases: Databases
    clock: Clock
    keys: dict[str, str]  # label → API key
    partners: dict[str, str]  # label → the organisation its inquiries name

    def as_(self, label: str | None) -> dict[str, str]:
        return {} if label is None else {"Authorization": f"Bearer {self.keys[label]}"}

    async def store(self, owner: str = "notary_a", **options: Any) -> Stored:
        return await store_inquiry(
            self.databases, self.config, organisation=self.partners[owner], **options
        )


@pytest.fixture(scope="module")
async def backend(tmp_path_factory: pytest.TempPathFactory) -> Backend:
    made, _ = await make_backend("sqlite", tmp_path_factory.mktemp("inquiry-pages"), parcels=0)
    return made


@contextlib.asynccontextmanager
async def serving(backend: Backend, clock: Clock, **overrides: Any) -> AsyncIterator[Site]:
    settings = settings_for(
        backend,
        inquiry_signing_keys=[generate_private_pem()],
        public_url=PUBLIC_URL,
        **overrides,
    )
    app = create_app(settings, kinds=JobKinds(), wall_clock=clock)
    databases = Databases({"gateway": backend.urls["gateway"]})
    keys: dict[str, str] = {}
    partners: dict[str, str] = {}
    made = {
        "notary_a": (PrincipalKind.NOTARY, None, None),
        "notary_b": (PrincipalKind.NOTARY, None, None),
        "bank": (PrincipalKind.BANK, None, "017"),
        "inspection": (PrincipalKind.DEPARTMENT, "inspection", None),
        "operator": (PrincipalKind.OPERATOR, None, None),
    }
    for label, (kind, department, organisation) in made.items():
        info, keys[label] = await mint_key(
            databases, kind, label, department, organisation=organisation, now=clock.now
        )
        partners[label] = organisation or f"{kind.value}:{info.principal_id}"
    transport = httpx.ASGITransport(app=app, client=("192.0.2.10", 40000))
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://t") as http,
        ):
            yield Site(http, inquiry_settings(settings), databases, clock, keys, partners)
    finally:
        await databases.dispose()


@pytest.fixture(scope="module")
async def site(backend: Backend) -> AsyncIterator[Site]:
    async with serving(backend, Clock(LATER), rate_limit_public="10000/minute") as made:
        yield made


def assert_no_national_id(text: str) -> None:
    for national_id in (APPLICANT, COUNTERPARTY):
        for digits in (national_id, national_id.translate(PERSIAN)):
            assert digits not in text


def assert_page(response: httpx.Response, status: int, csp: str) -> str:
    """A self-contained Persian page: its own policy, no script, nothing fetched."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["content-security-policy"] == csp
    assert response.headers["cache-control"].endswith("no-store")
    assert_edge_headers(response)
    page = response.text
    assert '<html lang="fa" dir="rtl">' in page
    for forbidden in ("<script", "src=", "href=", "url(", "@import", "<link"):
        assert forbidden not in page.lower()
    return page


def qr_text(page: str) -> str:
    image, width = _rasterize(page)
    (found,) = zxingcpp.read_barcodes(memoryview(image).cast("B", (width, width)))
    assert found.format == zxingcpp.BarcodeFormat.QRCode
    return str(found.text)


# --- Keys and the status list ---------------------------------------------------------------


async def test_the_public_keys_are_published_for_anyone_to_cache(site: Site) -> None:
    for headers in ({}, {"Authorization": "Bearer not-a-key"}):
        response = await site.http.get("/.well-known/jwks.json", headers=headers)
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/jwk-set+json"
        assert response.headers["cache-control"] == "public, max-age=300"
        assert response.headers["access-control-allow-origin"] == "*"
        assert_edge_headers(response)
        assert response.json() == site.config.keys.jwks()
        (key,) = response.json()["keys"]
        assert key["kid"] == site.config.keys.current.kid
        assert (key["alg"], key["use"]) == ("Ed25519", "sig")
        assert "d" not in key


async def test_the_status_list_is_signed_briefly_cacheable_and_shows_a_revocation(
    site: Site,
) -> None:
    kept = await site.store()
    revoked = await site.store()
    await change_inquiry(site.databases, revoked.id, revoked_at=naive_utc(site.clock.now))
    site.clock.now += dt.timedelta(seconds=31)  # past whatever list an earlier test cached
    keys = VerificationKeys.from_jwks((await site.http.get("/.well-known/jwks.json")).json())
    response = await site.http.get("/inquiries/status-list")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/statuslist+jwt"
    assert response.headers["cache-control"] == "public, max-age=30"
    assert_edge_headers(response)
    assert site.config.status_uri == f"{PUBLIC_URL}/inquiries/status-list"
    listed = read_status_list_token(
        response.text, keys, uri=site.config.status_uri, now=site.clock.now
    )
    assert listed.status(kept.id) == TokenStatus.VALID
    assert listed.status(revoked.id) == TokenStatus.REVOKED


# --- The letter -----------------------------------------------------------------------------


async def test_the_letter_is_printable_and_its_qr_is_the_answer_that_verifies(site: Site) -> None:
    stored = await site.store(failing=("dues_settled",))
    response = await site.http.get(
        f"/inquiries/{stored.tracking_code}/letter", headers=site.as_("notary_a")
    )
    page = assert_page(response, 200, PAGE_CSP)
    assert response.headers["cache-control"] == "private, no-store"
    scanned = qr_text(page)
    assert scanned == stored.token
    verified = answers.verify(scanned, site.config.keys.verification_keys)
    assert verified.answer.tracking_code == stored.tracking_code
    assert verified.answer.verdict is answers.Verdict.NOT_CLEAR
    assert UNPAID["fa"] in page
    assert site.config.municipality in page
    assert f"{PUBLIC_URL}/v/{stored.tracking_code}" in page
    assert format_tracking_code(stored.tracking_code) in page
    assert_no_national_id(page)
    assert_no_national_id(scanned)


async def test_the_code_may_be_written_in_persian_digits_and_grouped(site: Site) -> None:
    stored = await site.store()
    plain = await site.http.get(
        f"/inquiries/{stored.tracking_code}/letter", headers=site.as_("notary_a")
    )
    assert plain.status_code == 200
    grouped = format_tracking_code(stored.tracking_code)
    for written in (
        stored.tracking_code.translate(PERSIAN),
        stored.tracking_code.translate(ARABIC_INDIC),
        grouped.translate(PERSIAN),
        grouped.replace(" ", "-"),
    ):
        response = await site.http.get(
            f"/inquiries/{quote(written)}/letter", headers=site.as_("notary_a")
        )
        assert response.status_code == 200, written
        assert response.text == plain.text


async def test_everyone_but_the_asking_partner_gets_the_404_of_a_code_that_does_not_exist(
    site: Site,
) -> None:
    stored = await site.store()
    absent = await site.http.get(
        f"/inquiries/{new_tracking_code()}/letter", headers=site.as_("notary_a")
    )
    documented_error(absent, 404, "NOT_FOUND")
    for label in ("notary_b", "bank", "inspection", None):
        response = await site.http.get(
            f"/inquiries/{stored.tracking_code}/letter", headers=site.as_(label)
        )
        documented_error(response, 404, "NOT_FOUND")
        assert response.content == absent.content, label
        assert response.headers.keys() == absent.headers.keys()
    # Operators see every inquiry (inquiries:all).
    operator = await site.http.get(
        f"/inquiries/{stored.tracking_code}/letter", headers=site.as_("operator")
    )
    assert operator.status_code == 200


async def test_a_malformed_code_is_a_bad_request_and_an_undecided_inquiry_a_conflict(
    site: Site,
) -> None:
    stored = await site.store(decided=False)
    mistyped = stored.tracking_code[:-1] + str((int(stored.tracking_code[-1]) + 1) % 10)
    for code in ("12345", "abcdefghijklmnop", mistyped):
        response = await site.http.get(f"/inquiries/{code}/letter", headers=site.as_("notary_a"))
        documented_error(response, 400, "BAD_REQUEST")
        assert code not in response.text
    waiting = f"/inquiries/{stored.tracking_code}/letter"
    documented_error(await site.http.get(waiting, headers=site.as_("notary_a")), 409, "CONFLICT")
    # Whoever may not see it learns nothing, decided or not.
    documented_error(await site.http.get(waiting, headers=site.as_("notary_b")), 404, "NOT_FOUND")
    documented_error(await site.http.get(waiting), 404, "NOT_FOUND")


# --- The verification page ------------------------------------------------------------------


async def test_the_verification_page_needs_no_key_and_masks_identities(site: Site) -> None:
    stored = await site.store(failing=("dues_settled",))
    response = await site.http.get(f"/v/{stored.tracking_code}")
    page = assert_page(response, 200, PAGE_CSP)
    assert "AUTHENTIC" in page
    assert "NOT AUTHENTIC" not in page
    assert "(VALID)" in page
    assert "NOT CLEAR" in page
    assert format_tracking_code(stored.tracking_code) in page
    assert "******" + APPLICANT[-4:] in page
    assert "******" + COUNTERPARTY[-4:] in page
    assert_no_national_id(page)
    persian = await site.http.get(f"/v/{quote(stored.tracking_code.translate(PERSIAN))}")
    assert persian.text == page


async def test_the_verification_page_shows_a_withdrawal_at_once(site: Site) -> None:
    stored = await site.store()
    newer = await site.store()
    await change_inquiry(site.databases, stored.id, superseded_by=newer.id)
    assert "(SUPERSEDED)" in (await site.http.get(f"/v/{stored.tracking_code}")).text
    await change_inquiry(site.databases, stored.id, revoked_at=naive_utc(site.clock.now))
    assert "(REVOKED)" in (await site.http.get(f"/v/{stored.tracking_code}")).text
    site.clock.now = ISSUED + site.config.kinds["PROPERTY_TRANSFER"].validity
    try:
        assert "(EXPIRED)" in (await site.http.get(f"/v/{newer.tracking_code}")).text
    finally:
        site.clock.now = LATER + dt.timedelta(minutes=1)


async def test_unknown_and_undecided_codes_get_one_persian_404_page_with_the_form(
    site: Site,
) -> None:
    waiting = await site.store(decided=False)
    unknown = await site.http.get(f"/v/{new_tracking_code()}")
    page = assert_page(unknown, 404, FORM_CSP)
    assert "یافت نشد" in page
    assert '<form method="post" action="/v">' in page
    assert '<textarea id="answer" name="answer"' in page
    undecided = await site.http.get(f"/v/{waiting.tracking_code}")
    assert (undecided.status_code, undecided.text) == (404, page)
    malformed = assert_page(await site.http.get("/v/12345"), 400, FORM_CSP)
    assert "کد پیگیری نادرست است" in malformed
    assert '<form method="post" action="/v">' in malformed


async def test_posting_the_scanned_answer_shows_the_same_page(site: Site) -> None:
    stored = await site.store()
    assert stored.token is not None
    form = assert_page(await site.http.get("/v"), 200, FORM_CSP)
    assert '<form method="post" action="/v">' in form
    by_code = await site.http.get(f"/v/{stored.tracking_code}")
    # As a browser posts the form, with the line end a scanner may add.
    posted = await site.http.post("/v", data={"answer": stored.token + "\r\n"})
    assert assert_page(posted, 200, PAGE_CSP) == by_code.text
    # With a key, too (the form's path needs none, and refuses none).
    with_key = await site.http.post(
        "/v", data={"answer": stored.token}, headers=site.as_("notary_b")
    )
    assert with_key.text == by_code.text
    altered = stored.token[:-5] + ("A" if stored.token[-5] != "A" else "B") + stored.token[-4:]
    forged = assert_page(await site.http.post("/v", data={"answer": altered}), 200, PAGE_CSP)
    assert "NOT AUTHENTIC" in forged
    assert stored.tracking_code not in forged
    for body in ({}, {"answer": ""}, {"other": stored.token}):
        empty = assert_page(await site.http.post("/v", data=body), 400, FORM_CSP)
        assert '<form method="post" action="/v">' in empty


# --- Rate limits ----------------------------------------------------------------------------


async def test_letters_and_verification_pages_count_against_the_callers_rate_limit(
    backend: Backend,
) -> None:
    limits = {"rate_limit_public": "3/minute", "rate_limit_partner": "3/minute"}
    async with serving(backend, Clock(LATER), **limits) as limited:
        stored = await limited.store()
        assert stored.token is not None
        assert (await limited.http.get(f"/v/{new_tracking_code()}")).status_code == 404
        assert (await limited.http.get(f"/v/{stored.tracking_code}")).status_code == 200
        assert (await limited.http.post("/v", data={"answer": stored.token})).status_code == 200
        for refused in (
            await limited.http.get(f"/v/{new_tracking_code()}"),
            await limited.http.post("/v", data={"answer": stored.token}),
        ):
            extensions = documented_error(refused, 429, "RATE_LIMITED")
            assert int(refused.headers["retry-after"]) == extensions["retryAfter"] > 0
        letter = f"/inquiries/{stored.tracking_code}/letter"
        statuses = [
            (await limited.http.get(letter, headers=limited.as_("notary_a"))).status_code
            for _ in range(4)
        ]
        assert statuses == [200, 200, 200, 429]
        # What verifiers fetch and cache is not charged: it says nothing about any code.
        for _ in range(5):
            assert (await limited.http.get("/.well-known/jwks.json")).status_code == 200
            assert (await limited.http.get("/inquiries/status-list")).status_code == 200
            assert (await limited.http.get("/v")).status_code == 200  # the empty form
        # A malformed code is charged as well: the middleware charges before the handler.
        malformed = await limited.http.get("/inquiries/12/letter", headers=limited.as_("notary_a"))
        documented_error(malformed, 429, "RATE_LIMITED")


def test_the_rate_limit_middleware_charges_path_templates_by_method() -> None:
    letter = ChargedPath("GET /inquiries/{tracking_code}/letter")
    assert letter.matches("GET", "/inquiries/1234567890123452/letter")
    assert letter.matches("HEAD", "/inquiries/anything/letter")  # refused later, still charged
    assert not letter.matches("POST", "/inquiries/1234567890123452/letter")
    assert not letter.matches("GET", "/inquiries//letter")
    assert not letter.matches("GET", "/inquiries/1/2/letter")
    assert not letter.matches("GET", "/inquiries/1234567890123452/letter/x")
    assert not letter.matches("GET", "/inquiries/status-list")
    posted = ChargedPath("POST /v")
    assert posted.matches("POST", "/v")
    assert not posted.matches("GET", "/v")
    assert not posted.matches("POST", "/v/1234")
    anything = ChargedPath("/graphql")
    assert anything.matches("GET", "/graphql")
    assert anything.matches("POST", "/graphql")
    assert not anything.matches("POST", "/graphql/")
    literal = ChargedPath("GET /a.b")
    assert not literal.matches("GET", "/axb")  # a dot is a dot, not any character
