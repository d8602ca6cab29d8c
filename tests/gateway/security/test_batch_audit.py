"""A batch mixing mutations and queries (issue 7, item 5, with the mutations added since):
each operation records its own subjects once, the batch's others never; the rate limit
counts each operation."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.conftest import GraphQLClient

SUBMIT = "mutation($i: SubmitInquiryInput!) { submitInquiry(input: $i) { id trackingCode } }"
PERSON = "query($c: NationalCode!) { person(nationalCode: $c) { nationalCode } }"
# The newest records: a test's batch is among them (tests run one at a time).
TRAIL = """
{ auditTrail(last: 100) { edges { node { requestId action operation subjectType subjectId } } } }
"""
APPLICANTS = ("0084575948", "0590734733")
READ_ALONE = "0920785050"


def _inquiry(applicant: str) -> dict[str, Any]:
    return {
        "query": SUBMIT,
        "variables": {
            "i": {
                "kind": "PROPERTY_TRANSFER",
                "renewalCode": "3-3-1-1",
                "applicantNationalCode": applicant,
                "idempotencyKey": f"batch-{uuid.uuid4().hex}",
            }
        },
    }


async def _records(operator: GraphQLClient, request_id: str) -> list[tuple[str, ...]]:
    edges = (await operator(TRAIL))["data"]["auditTrail"]["edges"]
    return [
        (node["action"], node["operation"], node["subjectType"], node["subjectId"])
        for node in (edge["node"] for edge in edges)
        if node["requestId"] == request_id
    ]


async def test_each_operation_of_a_mixed_batch_records_its_own_subjects_once(
    attacked: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    batch = [
        _inquiry(APPLICANTS[0]),
        {"query": PERSON, "variables": {"c": READ_ALONE}},
        _inquiry(APPLICANTS[1]),
    ]
    response = await attacked.post(
        "/graphql", json=batch, headers={"Authorization": f"Bearer {keys['notary_a']}"}
    )
    answers = response.json()
    assert all("errors" not in answer for answer in answers), answers
    inquiry_ids = [answers[i]["data"]["submitInquiry"]["id"] for i in (0, 2)]
    assert len(set(inquiry_ids)) == 2
    records = await _records(
        GraphQLClient(attacked, keys["operator"]), response.headers["x-request-id"]
    )
    changes = [r for r in records if r[0] == "change"]
    reads = sorted(r for r in records if r[0] == "read")
    assert len(changes) == 2, records
    assert {r[1:3] for r in changes} == {("Mutation.submitInquiry", "Inquiry")}
    assert reads == sorted(
        [
            ("read", "Mutation.submitInquiry", "Person", APPLICANTS[0]),
            ("read", "Mutation.submitInquiry", "Person", APPLICANTS[1]),
            ("read", "Query.person", "Person", READ_ALONE),
        ]
    ), records
