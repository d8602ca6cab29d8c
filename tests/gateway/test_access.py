"""Who may see what, over HTTP with real API keys: the scope matrix and the row-level rules."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import DeclarativeBase

from db.contact import CitizenRequestRecord
from db.demo import KNOWN_NATIONAL_CODE
from db.engines import Databases
from db.gateway import ApiKey, AuditRecord, InquiryCheckRecord, InquiryRecord, WebhookDelivery
from db.revenue import Payment
from gateway.access.rows import RULES
from tests.conftest import BANK_CODES, Backend, GraphQLClient

CALLERS = ("public", "notary_a", "bank", "counter", "revenue", "inspection", "operator")
OWN_RECORD_HOLDERS = ("notary_a", "notary_b", "bank", "counter", "revenue", "operator")


def _forbidden(body: dict[str, Any]) -> bool:
    return any(e["extensions"]["code"] == "FORBIDDEN" for e in body.get("errors", []))


def _first_node(body: dict[str, Any]) -> dict[str, Any]:
    node: dict[str, Any] = body["data"]["parcels"]["edges"][0]["node"]
    return node


# operation → (query, variables, "was it allowed?" from the answer, who is allowed)
MATRIX: dict[str, tuple[str, dict[str, Any], Callable[[dict[str, Any]], bool], set[str]]] = {
    "read parcel facts": (
        "{ parcels(first: 1) { edges { node { renewalCode landUse } } } }",
        {},
        lambda b: not _forbidden(b) and bool(_first_node(b)["renewalCode"]),
        set(CALLERS),
    ),
    "read a parcel's dues": (
        "{ parcels(first: 1) { edges { node { dues { outstanding } } } } }",
        {},
        lambda b: not _forbidden(b) and _first_node(b)["dues"] is not None,
        set(CALLERS),
    ),
    "read owners' national IDs unmasked": (
        "{ parcels(first: 1) { edges { node { owners { nationalCode } } } } }",
        {},
        lambda b: "*" not in _first_node(b)["owners"][0]["nationalCode"],
        {"notary_a", "bank", "revenue", "inspection", "operator"},
    ),
    "read owners' names and shares": (
        "{ parcels(first: 1) { edges { node { owners { fullName share } } } } }",
        {},
        lambda b: not _forbidden(b) and _first_node(b)["owners"][0]["share"] is not None,
        {"notary_a", "bank", "revenue", "inspection", "operator"},
    ),
    "look up a person": (
        "query($c: NationalCode!) { person(nationalCode: $c) { fullName } }",
        {"c": KNOWN_NATIONAL_CODE},
        lambda b: not _forbidden(b) and b["data"]["person"] is not None,
        {"notary_a", "bank", "revenue", "inspection", "operator"},
    ),
    "read a deed": (
        "{ parcels(first: 1) { edges { node { deed { serial owners { nationalCode } } } } } }",
        {},
        lambda b: not _forbidden(b) and _first_node(b)["deed"] is not None,
        {"notary_a", "bank", "revenue", "inspection", "operator"},
    ),
    "verify a payment": (
        "query($r: String!) { verifyPayment(reference: $r) { recorded { amount } } }",
        {"r": "PAYMENT"},
        lambda b: not _forbidden(b) and b["data"]["verifyPayment"] is not None,
        {"bank", "revenue", "inspection", "operator"},
    ),
    "see agency health": (
        "{ agencies { name state } }",
        {},
        lambda b: not _forbidden(b) and b["data"]["agencies"] is not None,
        {"operator"},
    ),
    "read another's audit records": (
        "query($p: String!) { auditTrail(filter: {principalId: $p}, first: 5) {"
        " edges { node { principalId } } } }",
        {"p": "NOTARY_B"},
        lambda b: bool(b["data"]["auditTrail"]["edges"]),
        {"inspection", "operator"},
    ),
}


@pytest.fixture(scope="session")
async def callers(gql: GraphQLClient, keys: dict[str, str]) -> dict[str, GraphQLClient]:
    made = {label: gql.as_key(key) for label, key in keys.items()}
    made["public"] = gql.as_key(None)
    # Every holder reads some personal data or at least asks who it is, so that each owns
    # audit records (only personal reads are audited) to be hidden from the others.
    for label in OWN_RECORD_HOLDERS:
        await made[label]("{ viewer { kind } }")
        if label != "counter":
            await made[label](
                "query($c: NationalCode!) { person(nationalCode: $c) { fullName } }",
                {"c": KNOWN_NATIONAL_CODE},
            )
    # Each notary submits an inquiry, to be hidden from the other.
    for label in ("notary_a", "notary_b"):
        body = await made[label](
            "mutation($i: SubmitInquiryInput!) { submitInquiry(input: $i) { id } }",
            {
                "i": {
                    "kind": "PROPERTY_TRANSFER",
                    "renewalCode": "3-3-1-1",
                    "applicantNationalCode": KNOWN_NATIONAL_CODE,
                    "idempotencyKey": f"access-{label}",
                }
            },
        )
        assert "errors" not in body, body
    return made


async def _payment_reference(backend: Backend) -> str:
    databases = Databases({"revenue": backend.urls["revenue"]})
    try:
        async with databases.revenue.connect() as connection:
            # One made through the test bank, which verifies only its own payments.
            reference = await connection.scalar(
                select(Payment.bank_reference)
                .where(Payment.bank_reference.startswith(BANK_CODES["bank"]))
                .order_by(Payment.id)
                .limit(1)
            )
    finally:
        await databases.dispose()
    return str(reference)


async def _principal_id(caller: GraphQLClient) -> str:
    body = await caller("{ viewer { auditTrail(first: 1) { edges { node { principalId } } } } }")
    edges = body["data"]["viewer"]["auditTrail"]["edges"]
    assert edges, "the caller has no audit record to identify it by"
    principal_id: str = edges[0]["node"]["principalId"]
    return principal_id


@pytest.mark.parametrize("operation", sorted(MATRIX))
@pytest.mark.parametrize("caller", CALLERS)
async def test_scope_matrix(
    callers: dict[str, GraphQLClient], backend: Backend, caller: str, operation: str
) -> None:
    query, variables, allowed, expected = MATRIX[operation]
    variables = dict(variables)
    if variables.get("r") == "PAYMENT":
        variables["r"] = await _payment_reference(backend)
    if variables.get("p") == "NOTARY_B":
        variables["p"] = await _principal_id(callers["notary_b"])
    body = await callers[caller](query, variables)
    assert allowed(body) == (caller in expected), (caller, operation, body)
    if caller not in expected and _forbidden(body):
        error = next(e for e in body["errors"] if e["extensions"]["code"] == "FORBIDDEN")
        assert error["extensions"]["scope"]


@dataclass(frozen=True)
class OwnedRecords:
    """A record type under a row-level rule: how a holder lists its own."""

    record: type[DeclarativeBase]  # the record class its rule is keyed by
    type_name: str  # its GraphQL type
    own: str  # a query listing the caller's own records through a nested field
    root: str  # the same through a root field
    ids: Callable[[dict[str, Any]], list[str]]


# Later record types (inquiries, citizen requests) join with one line each.
OWNED: list[OwnedRecords] = [
    OwnedRecords(
        ApiKey,
        "ApiKey",
        "{ viewer { apiKeys { id } } }",
        "{ apiKeys { id } }",
        lambda b: [k["id"] for k in (b["data"].get("viewer") or b["data"])["apiKeys"]],
    ),
    OwnedRecords(
        AuditRecord,
        "AuditRecord",
        "{ viewer { auditTrail(first: 100) { edges { node { id } } } } }",
        "{ auditTrail(first: 100) { edges { node { id } } } }",
        lambda b: [
            e["node"]["id"] for e in (b["data"].get("viewer") or b["data"])["auditTrail"]["edges"]
        ],
    ),
    OwnedRecords(
        InquiryRecord,
        "Inquiry",
        "{ inquiries(first: 100) { edges { node { id } } } }",
        "{ inquiries(first: 100) { edges { node { id } } } }",
        lambda b: [e["node"]["id"] for e in b["data"]["inquiries"]["edges"]],
    ),
]
# Record types no partner owns, whose rules other tests prove: a department answers and
# reads only its own checks (tests/gateway/inquiries/test_end_to_end.py), a partner lists
# only its own webhook deliveries (tests/gateway/inquiries/test_webhooks.py); who sees a
# citizen request, partners' own registrations among them, by every path
# (tests/gateway/requests/test_visibility.py).
NOT_PARTNERS_OWN = {InquiryCheckRecord, WebhookDelivery, CitizenRequestRecord}


def test_every_record_type_under_a_rule_has_its_line() -> None:
    assert {records.record for records in OWNED} | NOT_PARTNERS_OWN == set(RULES)


@pytest.mark.parametrize("records", OWNED, ids=lambda r: r.type_name)
async def test_a_partner_never_reads_another_partners_records(
    callers: dict[str, GraphQLClient], records: OwnedRecords
) -> None:
    mine = records.ids(await callers["notary_a"](records.own))
    theirs = records.ids(await callers["notary_b"](records.own))
    assert mine
    assert theirs
    assert not set(mine) & set(theirs)
    # Through the root list, the nested list and node(id): never another's record.
    assert set(records.ids(await callers["notary_a"](records.root))) == set(mine)
    for record_id in theirs:
        body = await callers["notary_a"](
            "query($id: ID!) { node(id: $id) { id } }", {"id": record_id}
        )
        assert body["data"]["node"] is None, (records.type_name, body)
    for record_id in mine:
        body = await callers["notary_a"](
            "query($id: ID!) { node(id: $id) { id } }", {"id": record_id}
        )
        assert body["data"]["node"] == {"id": record_id}


async def test_the_public_owns_nothing(callers: dict[str, GraphQLClient]) -> None:
    body = await callers["public"]("{ viewer { kind scopes auditTrail { edges { cursor } } } }")
    assert body["data"]["viewer"]["kind"] == "public"
    assert body["data"]["viewer"]["auditTrail"]["edges"] == []
    keys = await callers["public"]("{ apiKeys { id } }")
    assert keys["data"]["apiKeys"] is None
    assert _forbidden(keys)


async def test_personal_reads_are_audited_with_their_purpose(
    callers: dict[str, GraphQLClient],
) -> None:
    notary = callers["notary_a"]
    await notary(
        "query($c: NationalCode!) { person(nationalCode: $c) { fullName } }",
        {"c": KNOWN_NATIONAL_CODE},
        headers={"X-Road-Issue": "inquiry-1403-000123"},
    )
    body = await notary(
        '{ viewer { auditTrail(first: 100, filter: {subjectType: "Person"}) {'
        " edges { node { action operation subjectType subjectId purpose principalKind } } } } }"
    )
    records = [e["node"] for e in body["data"]["viewer"]["auditTrail"]["edges"]]
    assert any(
        r["purpose"] == "inquiry-1403-000123"
        and r["action"] == "read"
        and r["operation"] == "Query.person"
        and r["principalKind"] == "notary"
        for r in records
    ), records


async def test_masked_reads_are_not_audited(callers: dict[str, GraphQLClient]) -> None:
    body = await callers["counter"](
        "{ parcels(first: 3) { edges { node { owners { nationalCode } } } } }", cost=True
    )
    assert body["extensions"]["cost"]["auditRecords"] == 0
    edges = body["data"]["parcels"]["edges"]
    codes = [owner["nationalCode"] for e in edges for owner in e["node"]["owners"]]
    assert all(len(c) == 10 and c[3:7] == "****" for c in codes)


async def test_personal_data_is_not_served_when_the_audit_trail_cannot_be_written(
    callers: dict[str, GraphQLClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    from gateway.access.audit import AuditTrail

    async def broken(self: AuditTrail, entries: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(AuditTrail, "append", broken)
    response = await callers["notary_a"].post(
        "query($c: NationalCode!) { person(nationalCode: $c) { fullName nationalCode } }",
        {"c": KNOWN_NATIONAL_CODE},
    )
    body = response.json()
    assert body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["INTERNAL"]
    assert KNOWN_NATIONAL_CODE not in response.text
    # Reads of no personal data need no audit record and still work.
    facts = await callers["notary_a"]("{ parcels(first: 1) { totalCount } }")
    assert facts["data"]["parcels"]["totalCount"] > 0


async def test_cost_is_reported_in_production_to_internal_callers_only(
    backend: Backend, sandbox: Any, keys: dict[str, str]
) -> None:
    import httpx

    from gateway.edge.app import create_app
    from tests.conftest import settings_for

    app = create_app(settings_for(backend, sandbox, env="production"))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http,
    ):
        query = {"query": "{ parcels(first: 1) { totalCount } }"}
        for label, reported in (("operator", True), ("revenue", True), (None, False)):
            headers = {"X-Gateway-Debug": "cost"}
            if label is not None:
                headers["Authorization"] = f"Bearer {keys[label]}"
            body = (await http.post("/graphql", json=query, headers=headers)).json()
            assert body["data"]["parcels"]["totalCount"] > 0
            assert ("cost" in body.get("extensions", {})) == reported, (label, body)


async def test_an_inquiry_retried_after_a_failed_audit_write_is_audited_once(
    callers: dict[str, GraphQLClient], backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gateway.access.audit import AuditTrail

    real_append = AuditTrail.append

    async def broken(self: AuditTrail, entries: Any) -> None:
        raise OSError("disk full")

    submit = "mutation($i: SubmitInquiryInput!) { submitInquiry(input: $i) { id trackingCode } }"
    variables = {
        "i": {
            "kind": "PROPERTY_TRANSFER",
            "renewalCode": "3-3-1-1",
            "applicantNationalCode": KNOWN_NATIONAL_CODE,
            "idempotencyKey": "access-audit-replay",
        }
    }
    monkeypatch.setattr(AuditTrail, "append", broken)
    failed = await callers["notary_a"](submit, variables)
    assert [e["extensions"]["code"] for e in failed["errors"]] == ["INTERNAL"]
    monkeypatch.setattr(AuditTrail, "append", real_append)
    first = await callers["notary_a"](submit, variables)
    again = await callers["notary_a"](submit, variables)
    assert "errors" not in first, first
    assert again == first
    code = first["data"]["submitInquiry"]["trackingCode"]
    databases = Databases(backend.urls)
    try:
        async with databases.gateway.connect() as connection:
            inquiry_id = await connection.scalar(
                select(InquiryRecord.id).where(InquiryRecord.tracking_code == code)
            )
            operations = (
                await connection.scalars(
                    select(AuditRecord.operation).where(
                        AuditRecord.subject_type == "Inquiry",
                        AuditRecord.subject_id == str(inquiry_id),
                        AuditRecord.action == "change",
                    )
                )
            ).all()
    finally:
        await databases.dispose()
    # The first replay wrote the missing record; the second found it and wrote none.
    assert operations == ["Mutation.submitInquiry"]
