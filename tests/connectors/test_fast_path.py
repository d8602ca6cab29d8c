"""The fast SOAP path (connectors/soap/fast.py) against zeep's: the same envelopes out, the
same plain data or the same error back, for every operation of every SOAP agency; and it
refuses what zeep refused (DTDs, entities, answers that break the WSDL)."""

from __future__ import annotations

import base64
import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from connectors.correlation import Correlation, correlated
from connectors.errors import AgencyRejected, AgencyUnavailable
from connectors.soap.client import SoapService
from connectors.soap.fast import UsernameTokenText
from db.planning import Parcel, Person
from db.revenue import Payment
from identifiers import make_national_code
from sandbox import dataset
from sandbox.run import Agencies as SandboxAgencies
from sandbox.wsse import DEMO_PASSWORDS, DEMO_USERNAME, password_digest

SERVICES = {
    # name: (agency, wsdl, binding)
    "land 1.1": ("land_registry", "land_registry.wsdl", "LandRegistrySoap11Binding"),
    "land 1.2": ("land_registry", "land_registry.wsdl", "LandRegistrySoap12Binding"),
    "civil": ("civil_registry", "civil_registry.wsdl", "CivilRegistrySoap11Binding"),
    "bank": ("bank", "bank.wsdl", "BankSoap11Binding"),
}
OPERATIONS = {
    "land 1.1": {"GetDeed", "GetDeeds"},
    "land 1.2": {"GetDeed", "GetDeeds"},
    "civil": {"GetPerson"},
    "bank": {"VerifyPayment", "CheckAccountHolder"},
}


@dataclass(frozen=True)
class Pair:
    zeep: SoapService
    fast: SoapService


def make_pair(name: str, http: httpx.AsyncClient, address: str, **credentials: Any) -> Pair:
    agency, wsdl, binding = SERVICES[name]
    if not credentials:
        credentials = {"username": DEMO_USERNAME, "password": DEMO_PASSWORDS[agency]}

    def service(fast: bool) -> SoapService:
        return SoapService(
            agency, wsdl=wsdl, binding=binding, http=http, address=address, fast=fast, **credentials
        )

    return Pair(service(False), service(True))


def typed(value: Any) -> Any:
    """The value with every leaf's type beside it: 1 and Decimal(1) and True differ."""
    if isinstance(value, dict):
        return {key: typed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [typed(item) for item in value]
    return (type(value).__name__, value)


async def outcome(service: SoapService, operation: str, arguments: dict[str, Any]) -> Any:
    not_found = {"NOT_FOUND", "UNKNOWN_REFERENCE"}
    try:
        answer = await service.call(operation, not_found=not_found, **arguments)
    except (AgencyRejected, AgencyUnavailable) as exc:
        return ("error", type(exc).__name__, getattr(exc, "fault_code", None))
    return ("answer", typed(answer))


async def same(pair: Pair, operation: str, arguments: dict[str, Any]) -> Any:
    expected = await outcome(pair.zeep, operation, arguments)
    found = await outcome(pair.fast, operation, arguments)
    assert found == expected, (operation, arguments)
    return found


# ---------------------------------------------------------------------------------------------
# Against the sandbox: every operation, found, not found, refused


@pytest.fixture(scope="module")
async def keys(city: Any) -> dict[str, list[Any]]:
    async with city.databases.planning.connect() as connection:
        plates = (
            await connection.execute(
                select(Parcel.registry_section, Parcel.main_plate, Parcel.sub_plate)
                .order_by(Parcel.id)
                .limit(40)
            )
        ).all()
        people = (
            await connection.execute(
                select(Person.id, Person.national_code, Person.birth_date)
                .order_by(Person.id)
                .limit(25)
            )
        ).all()
    async with city.databases.revenue.connect() as connection:
        references = (
            await connection.execute(select(Payment.bank_reference).order_by(Payment.id).limit(15))
        ).all()
    return {
        "plates": [tuple(row) for row in plates],
        "people": [tuple(row) for row in people],
        "references": [row[0] for row in references],
    }


def test_every_operation_of_every_agency_is_compiled(
    sandbox: SandboxAgencies, agency_http: httpx.AsyncClient
) -> None:
    for name, operations in OPERATIONS.items():
        pair = make_pair(name, agency_http, sandbox.url(SERVICES[name][0]))
        assert pair.fast.fast_operations == operations
        assert pair.zeep.fast_operations == frozenset()


@pytest.mark.parametrize("name", ["land 1.1", "land 1.2"])
async def test_deeds_read_the_same(
    name: str,
    sandbox: SandboxAgencies,
    agency_http: httpx.AsyncClient,
    calm_sandbox: None,
    keys: dict[str, list[Any]],
) -> None:
    pair = make_pair(name, agency_http, sandbox.url("land_registry"))
    plates = [{"section": s, "mainPlate": m, "subPlate": p} for s, m, p in keys["plates"]]
    answers = [await same(pair, "GetDeed", plate) for plate in plates]
    kinds = {answer[0] for answer in answers}
    assert kinds == {"answer"}
    # Deeds with mortgages and seizures, and a plate without a deed: the sample covers every
    # element of the answer.
    deeds = [answer[1] for answer in answers]
    assert any(d.get("mortgage") for d in deeds)
    assert any(d.get("seizure") for d in deeds)
    missing = await same(pair, "GetDeed", {"section": 999, "mainPlate": 999, "subPlate": 999})
    assert missing[1]["found"] == ("bool", False)
    # A page, with an unknown plate among them.
    page = await same(
        pair, "GetDeeds", {"plate": [*plates, {"section": 999, "mainPlate": 9, "subPlate": 9}]}
    )
    assert page[0] == "answer"
    # Refused by the agency (a plate number out of range): the same AgencyRejected code.
    refused = await same(pair, "GetDeed", {"section": 0, "mainPlate": 1, "subPlate": 1})
    assert refused[0] == "error"


async def test_people_read_the_same(
    sandbox: SandboxAgencies,
    agency_http: httpx.AsyncClient,
    calm_sandbox: None,
    keys: dict[str, list[Any]],
) -> None:
    pair = make_pair("civil", agency_http, sandbox.url("civil_registry"))
    answers = []
    for _, code, birth_date in keys["people"]:
        answers.append(await same(pair, "GetPerson", {"nationalCode": code, "birthDate": None}))
        await same(pair, "GetPerson", {"nationalCode": code, "birthDate": birth_date})
    assert any(a[1]["deathDate"] != ("NoneType", None) for a in answers)
    _, code, birth_date = keys["people"][0]
    mismatch = await same(
        pair,
        "GetPerson",
        {"nationalCode": code, "birthDate": birth_date + dt.timedelta(days=1)},
    )
    assert mismatch == ("error", "AgencyRejected", "BIRTH_DATE_MISMATCH")
    unknown = make_national_code("987654321")
    assert await same(pair, "GetPerson", {"nationalCode": unknown}) == (
        "answer",
        ("NoneType", None),
    )
    bad = await same(pair, "GetPerson", {"nationalCode": "1234567890"})
    assert bad[0] == "error"


async def test_payments_and_accounts_read_the_same(
    sandbox: SandboxAgencies,
    agency_http: httpx.AsyncClient,
    calm_sandbox: None,
    keys: dict[str, list[Any]],
) -> None:
    pair = make_pair("bank", agency_http, sandbox.url("bank"))
    answers = [
        await same(pair, "VerifyPayment", {"reference": reference})
        for reference in keys["references"]
    ]
    assert {a[0] for a in answers} == {"answer"}
    assert await same(pair, "VerifyPayment", {"reference": "9990000001"}) == (
        "answer",
        ("NoneType", None),
    )
    for person_id, code, _ in keys["people"][:8]:
        sheba = dataset.sheba_for_person(person_id)
        found = await same(pair, "CheckAccountHolder", {"sheba": sheba, "nationalCode": code})
        assert found[0] == "answer"
        await same(pair, "CheckAccountHolder", {"sheba": sheba, "nationalCode": None})
        await same(pair, "CheckAccountHolder", {"sheba": sheba, "nationalCode": "0000000000"})


async def test_a_request_that_does_not_fit_the_wsdl_is_our_bug_on_both_paths(
    sandbox: SandboxAgencies, agency_http: httpx.AsyncClient
) -> None:
    pair = make_pair("land 1.1", agency_http, sandbox.url("land_registry"))
    for service in (pair.zeep, pair.fast):
        with pytest.raises(ValueError, match="does not fit the WSDL"):
            await service.call("GetDeed", section=1, mainPlate=2)  # subPlate missing
        with pytest.raises(ValueError, match="does not fit the WSDL"):
            await service.call("GetDeed", section=1, mainPlate=2, subPlate=3, colour="red")


# ---------------------------------------------------------------------------------------------
# What goes out: envelopes, HTTP headers, WS-Security, correlation


Handler = Callable[[httpx.Request], httpx.Response]


def recording(
    answer: bytes, status: int = 200, media: str = "text/xml"
) -> tuple[list[httpx.Request], httpx.AsyncClient]:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(status, content=answer, headers={"Content-Type": media})

    return sent, httpx.AsyncClient(transport=httpx.MockTransport(handler))


_TOKEN = re.compile(
    rb'(<wsse:Password Type="[^"]+">)([^<]+)(</wsse:Password><wsse:Nonce [^>]+>)([^<]+)'
    rb"(</wsse:Nonce><wsu:Created [^>]+>)([^<]+)(<)"
)


def without_token(body: bytes) -> bytes:
    return _TOKEN.sub(rb"\1DIGEST\3NONCE\5CREATED\7", body)


def check_digest(body: bytes, password: str) -> None:
    match = _TOKEN.search(body)
    assert match is not None
    digest, nonce, created = match.group(2), match.group(4), match.group(6)
    created_at = dt.datetime.fromisoformat(created.decode())
    assert created_at.tzinfo is not None
    assert created_at.utcoffset() == dt.timedelta(0)
    assert password_digest(base64.b64decode(nonce), created.decode(), password) == digest.decode()


ARGUMENTS: dict[str, dict[str, Any]] = {
    "GetDeed": {"section": 11, "mainPlate": 125, "subPlate": 7},
    "GetDeeds": {"plate": [{"section": 11, "mainPlate": 125, "subPlate": n} for n in (1, 2, 3)]},
    "GetPerson": {"nationalCode": "0012345678", "birthDate": dt.date(1986, 7, 3)},
    "VerifyPayment": {"reference": "1230000001"},
    "CheckAccountHolder": {"sheba": "IR062960000000100324200001", "nationalCode": None},
}


@pytest.mark.parametrize("name", list(SERVICES))
async def test_the_same_envelopes_and_headers_go_out(name: str) -> None:
    agency = SERVICES[name][0]
    sent, http = recording(b"<not-soap/>", status=500, media="text/html")
    pair = make_pair(name, http, "http://agency.invalid/soap")
    correlation = Correlation(
        request_id="req-1", client="notary:17 <&>", user_id="u\x01ser", issue="case \u0645 1"
    )
    for operation in OPERATIONS[name]:
        for service in (pair.zeep, pair.fast):
            with correlated(correlation), pytest.raises(AgencyUnavailable):
                await service.call(operation, **ARGUMENTS[operation])
        zeep_request, fast_request = sent[-2], sent[-1]
        assert without_token(fast_request.content) == without_token(zeep_request.content)
        for request in (zeep_request, fast_request):
            check_digest(request.content, DEMO_PASSWORDS[agency])
        for header in ("SOAPAction", "Content-Type", "X-Road-Client", "X-Request-Id"):
            assert fast_request.headers.get(header) == zeep_request.headers.get(header)
    assert b"notary:17 &lt;&amp;&gt;" in sent[-1].content
    assert b"<xrd:userId" in sent[-1].content
    assert b"\x01" not in sent[-1].content
    await http.aclose()


async def test_without_credentials_no_token_goes_out() -> None:
    sent, http = recording(b"<not-soap/>", status=500, media="text/html")
    pair = make_pair("land 1.2", http, "http://agency.invalid/soap", username=None, password=None)
    for service in (pair.zeep, pair.fast):
        with pytest.raises(AgencyUnavailable):
            await service.call("GetDeed", **ARGUMENTS["GetDeed"])
    assert sent[-1].content == sent[-2].content
    assert b"wsse:" not in sent[-1].content
    await http.aclose()


# ---------------------------------------------------------------------------------------------
# What comes back: hostile or broken answers are refused alike

SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
LAND = "urn:ir:ssaa:land-registry:v1"


def envelope(body: str, prolog: str = "") -> bytes:
    return (
        f'<?xml version="1.0"?>{prolog}<e:Envelope xmlns:e="{SOAP11}"><e:Body>{body}</e:Body>'
        "</e:Envelope>"
    ).encode()


DEED = (
    f'<l:GetDeedResponse xmlns:l="{LAND}"><l:deed><l:found>true</l:found><l:plate>'
    "<l:section>11</l:section><l:mainPlate>125</l:mainPlate><l:subPlate>7</l:subPlate>"
    "</l:plate><l:serial>{serial}</l:serial><l:issueDate>2001-02-03</l:issueDate>"
    "<l:area>120.50</l:area>{extra}</l:deed></l:GetDeedResponse>"
)
LAUGHS = (
    '<!DOCTYPE e:Envelope [<!ENTITY a "ha"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
    '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>'
)
EXTERNAL = '<!DOCTYPE e:Envelope [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
HOSTILE = {
    "billion laughs": envelope(DEED.format(serial="&c;", extra=""), LAUGHS),
    "external entity": envelope(DEED.format(serial="&x;", extra=""), EXTERNAL),
    "a DTD": envelope(DEED.format(serial="S", extra=""), "<!DOCTYPE e:Envelope>"),
    "an element the WSDL does not have": envelope(
        DEED.format(serial="S", extra=f'<l:colour xmlns:l="{LAND}">red</l:colour>')
    ),
    "a value of the wrong type": envelope(
        DEED.format(serial="S", extra="").replace("120.50", "lots")
    ),
    "another operation's answer": envelope(f'<l:GetDeedsResponse xmlns:l="{LAND}"/>'),
    "a processing instruction": envelope(DEED.format(serial="S", extra="<?pi no?>")),
    "not XML": b"<e:Envelope",
    "an empty body": envelope(""),
}


@pytest.mark.parametrize("case", list(HOSTILE))
async def test_hostile_and_broken_answers_are_refused_alike(case: str) -> None:
    _, http = recording(HOSTILE[case])
    pair = make_pair("land 1.1", http, "http://agency.invalid/soap")
    for service in (pair.zeep, pair.fast):
        with pytest.raises(AgencyUnavailable):
            await service.call("GetDeed", **ARGUMENTS["GetDeed"])
    await http.aclose()


async def test_a_well_formed_answer_with_comments_reads_the_same() -> None:
    answer = envelope(DEED.format(serial="S<!-- a comment -->-1 &amp; 2", extra="<!-- another -->"))
    _, http = recording(answer)
    pair = make_pair("land 1.1", http, "http://agency.invalid/soap")
    expected = await pair.zeep.call("GetDeed", **ARGUMENTS["GetDeed"])
    found = await pair.fast.call("GetDeed", **ARGUMENTS["GetDeed"])
    assert typed(found) == typed(expected)
    assert found["serial"] == "S-1 & 2"
    assert found["area"] == Decimal("120.50")
    await http.aclose()


@pytest.mark.parametrize(
    ("code", "agency_code", "error"),
    [
        ("e:Client", "INVALID_INPUT", "AgencyRejected"),
        ("e:Server", "SERVICE_UNAVAILABLE", "AgencyUnavailable"),
        ("e:Client", "NOT_FOUND", "answer"),
    ],
)
async def test_faults_map_to_the_same_outcome(code: str, agency_code: str, error: str) -> None:
    fault = (
        f"<e:Fault><faultcode>{code}</faultcode><faultstring>no</faultstring><detail>"
        f'<l:ServiceFault xmlns:l="{LAND}"><l:code>{agency_code}</l:code></l:ServiceFault>'
        "</detail></e:Fault>"
    )
    for status in (500, 200):
        _, http = recording(envelope(fault), status=status)
        pair = make_pair("land 1.1", http, "http://agency.invalid/soap")
        found = await same(pair, "GetDeed", ARGUMENTS["GetDeed"])
        assert found[0 if error == "answer" else 1] == error
        await http.aclose()


# ---------------------------------------------------------------------------------------------
# The token's parts, and values read again


def test_each_token_has_a_fresh_nonce_and_its_second_of_creation() -> None:
    seconds = iter([1_700_000_000.2, 1_700_000_000.9, 1_700_000_001.0])
    token = UsernameTokenText("municipality & co", "secret", clock=lambda: next(seconds))
    headers = [token.header().encode() for _ in range(3)]
    created = [_TOKEN.search(header).group(6) for header in headers]  # type: ignore[union-attr]
    nonces = {_TOKEN.search(header).group(4) for header in headers}  # type: ignore[union-attr]
    assert created == [b"2023-11-14T22:13:20+00:00"] * 2 + [b"2023-11-14T22:13:21+00:00"]
    assert len(nonces) == 3
    for header in headers:
        check_digest(header, "secret")
        assert b"<wsse:Username>municipality &amp; co</wsse:Username>" in header


async def test_values_read_again_are_the_same_and_bad_ones_are_refused_every_time() -> None:
    good = envelope(DEED.format(serial="S", extra=""))
    bad = envelope(DEED.format(serial="S", extra="").replace("2001-02-03", "2001-02-30"))
    answers = [good, good, bad, good, bad]

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=answers.pop(0), headers={"Content-Type": "text/xml"})

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    pair = make_pair("land 1.1", http, "http://agency.invalid/soap")
    expected = await outcome(pair.zeep, "GetDeed", ARGUMENTS["GetDeed"])
    assert expected[0] == "answer"
    # The same service reads each answer in turn: a value read before gives the same, a bad
    # one is refused each time (zeep's path reads it as None; this one never did).
    refused = ("error", "AgencyUnavailable", None)
    for wanted in (expected, refused, expected, refused):
        assert await outcome(pair.fast, "GetDeed", ARGUMENTS["GetDeed"]) == wanted
    await http.aclose()
