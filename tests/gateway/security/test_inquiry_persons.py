"""An inquiry about a person is in the audit trail under that person (issue 7, item 12, on
the inquiries added since): `submitInquiry` has the gateway read the applicant's and the
counterparty's records for the partner (the civil registry, the deed) and its verdict says
what it found about them, so "who asked about this person"
(`auditTrail(filter: {subjectType: "Person", subjectId: …})`) must find the inquiry even
when the answer selects neither national ID; and one operation still records each person
once, naming the first field that served them."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.conftest import GraphQLClient

APPLICANT = "0084575948"
COUNTERPARTY = "0590734733"
SUBMIT = """
mutation($i: SubmitInquiryInput!) { submitInquiry(input: $i) { trackingCode %s } }
"""
TRAIL = """
query($id: String!) {
  auditTrail(last: 100, filter: {subjectType: "Person", subjectId: $id}) {
    edges { node { action operation subjectId requestId principalKind } }
  }
}
"""


def _inquiry(key: str) -> dict[str, Any]:
    return {
        "i": {
            "kind": "PROPERTY_TRANSFER",
            "renewalCode": "3-3-1-1",
            "applicantNationalCode": APPLICANT,
            "counterpartyNationalCode": COUNTERPARTY,
            "idempotencyKey": key,
        }
    }


async def _records(operator: GraphQLClient, national_code: str, request_id: str) -> list[Any]:
    body = await operator(TRAIL, {"id": national_code})
    edges = body["data"]["auditTrail"]["edges"]
    return [e["node"] for e in edges if e["node"]["requestId"] == request_id]


async def test_the_persons_an_inquiry_names_are_recorded_under_their_ids(
    attacked: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    notary = GraphQLClient(attacked, keys["notary_a"])
    operator = GraphQLClient(attacked, keys["operator"])
    # The answer selects no national ID.
    response = await notary.post(SUBMIT % "", _inquiry(f"persons-{uuid.uuid4().hex}"))
    assert "errors" not in response.json(), response.json()
    request_id = response.headers["x-request-id"]
    for national_code in (APPLICANT, COUNTERPARTY):
        (record,) = await _records(operator, national_code, request_id)
        assert record["action"] == "read"
        assert record["operation"] == "Mutation.submitInquiry"
        assert record["principalKind"] == "notary"


async def test_one_operation_records_each_person_once(
    attacked: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    notary = GraphQLClient(attacked, keys["notary_a"])
    operator = GraphQLClient(attacked, keys["operator"])
    selected = "applicantNationalCode counterpartyNationalCode"
    response = await notary.post(SUBMIT % selected, _inquiry(f"once-{uuid.uuid4().hex}"))
    body = response.json()
    assert body["data"]["submitInquiry"]["applicantNationalCode"] == APPLICANT, body
    request_id = response.headers["x-request-id"]
    for national_code in (APPLICANT, COUNTERPARTY):
        (record,) = await _records(operator, national_code, request_id)
        assert record["operation"] == "Mutation.submitInquiry"
