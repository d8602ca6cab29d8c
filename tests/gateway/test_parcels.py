"""The unified schema over HTTP: look-ups, the parcel connection, dues from another database."""

from __future__ import annotations

from typing import Any

from db.demo import KNOWN_NATIONAL_CODE

PARCEL_FIELDS = """
  id renewalCode registryPlate registrySection mainPlate subPlate postalCode address
  landUse densityPercent area
  region { number name } district { number name region { number } }
  owners { nationalCode fullName share acquiredOn { iso jalali } person { id firstName } }
  buildings { id floors units builtArea constructionYear }
  permits { id number kind issuedOn { iso jalali } expiresOn { iso } floors units }
  certificates { id kind number issuedOn { iso jalali } building { floors } }
  violations {
    id kind status detectedOn { iso } description ruling { outcome fine ruledOn { jalali } }
  }
  dues {
    total paid outstanding settled
    items { kind period amount paid outstanding dueDate { iso jalali } }
  }
"""


async def test_first_page_answers_with_renewal_codes_and_dues(gql: Any) -> None:
    body = await gql(
        "{ parcels(first: 5) { edges { node { renewalCode dues { outstanding } } } } }"
    )
    assert "errors" not in body
    edges = body["data"]["parcels"]["edges"]
    assert len(edges) == 5
    for edge in edges:
        assert edge["node"]["renewalCode"].count("-") == 3
        assert isinstance(edge["node"]["dues"]["outstanding"], int)


async def test_parcel_found_by_each_key_is_the_same(gql: Any) -> None:
    first = (
        await gql("{ parcels(first: 1) { edges { node { id renewalCode registryPlate } } } }")
    )["data"]["parcels"]["edges"][0]["node"]
    persian_digits = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")
    for argument, value in (
        ("id", first["id"]),
        ("renewalCode", first["renewalCode"]),
        ("renewalCode", first["renewalCode"].translate(persian_digits)),
        ("registryPlate", first["registryPlate"]),
        ("registryPlate", first["registryPlate"].translate(persian_digits)),
    ):
        body = await gql(
            f"query($v: {'ID' if argument == 'id' else argument[0].upper() + argument[1:]}!)"
            f" {{ parcel({argument}: $v) {{ id }} }}",
            {"v": value},
        )
        assert body["data"]["parcel"] == {"id": first["id"]}, (argument, value, body)


async def test_parcel_needs_exactly_one_key(gql: Any) -> None:
    body = await gql("{ parcel { id } }")
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    body = await gql('{ parcel(renewalCode: "1-1-1-1", registryPlate: "1-1/1") { id } }')
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_unknown_parcel_is_null_not_an_error(gql: Any) -> None:
    body = await gql('{ parcel(renewalCode: "99-99-999-999") { id } }')
    assert body == {"data": {"parcel": None}}


async def test_full_parcel_resolves_every_relation(gql: Any) -> None:
    body = await gql(
        f"{{ parcels(first: 100) {{ totalCount edges {{ node {{ {PARCEL_FIELDS} }} }} }} }}"
    )
    assert "errors" not in body, body.get("errors")
    nodes = [e["node"] for e in body["data"]["parcels"]["edges"]]
    assert len(nodes) == 100
    for node in nodes:
        shares = sum(float(o["share"]) for o in node["owners"])
        assert abs(shares - 6) < 1e-9
        dues = node["dues"]
        items = dues["items"]
        assert dues["total"] == sum(i["amount"] for i in items)
        assert dues["paid"] == sum(i["paid"] for i in items)
        # An overpaid charge owes nothing, and its surplus does not pay another charge.
        for item in items:
            assert item["outstanding"] == max(item["amount"] - item["paid"], 0), item
        assert dues["outstanding"] == sum(i["outstanding"] for i in items)
        assert dues["settled"] == (dues["outstanding"] == 0)
    assert any(n["dues"]["outstanding"] > 0 for n in nodes)
    assert any(n["violations"] for n in nodes)
    assert any(n["buildings"] and not n["certificates"] for n in nodes)
    some_date = nodes[0]["owners"][0]["acquiredOn"]
    assert some_date["jalali"][:2] in ("13", "14")


async def test_statements_do_not_grow_with_rows(gql: Any) -> None:
    query = f"query($n: Int!) {{ parcels(first: $n) {{ edges {{ node {{ {PARCEL_FIELDS} }} }} }} }}"
    one = await gql(query, {"n": 1}, cost=True)
    hundred = await gql(query, {"n": 100}, cost=True)
    assert len(hundred["data"]["parcels"]["edges"]) == 100
    ones, hundreds = one["extensions"]["cost"], hundred["extensions"]["cost"]
    assert ones["sqlStatements"] == hundreds["sqlStatements"]
    # page, region, district, owners, buildings, permits, certificates, certificate
    # buildings, violations, dues: one statement each.
    assert hundreds["sqlStatements"] <= 11
    assert hundreds["agencyCalls"] == 0
    assert hundreds["durationMs"] > 0


async def test_cost_is_reported_only_when_asked(gql: Any) -> None:
    body = await gql("{ parcels(first: 1) { edges { cursor } } }")
    assert "extensions" not in body


async def test_pagination_walks_every_parcel_once(gql: Any) -> None:
    seen: list[str] = []
    after = None
    total = None
    while True:
        body = await gql(
            "query($after: String) { parcels(first: 50, after: $after) { totalCount "
            "edges { cursor node { id } } pageInfo { hasNextPage endCursor } } }",
            {"after": after},
        )
        connection = body["data"]["parcels"]
        total = connection["totalCount"]
        seen.extend(e["node"]["id"] for e in connection["edges"])
        if not connection["pageInfo"]["hasNextPage"]:
            break
        after = connection["pageInfo"]["endCursor"]
    assert len(seen) == len(set(seen)) == total


async def test_filters_hold_for_every_returned_parcel(gql: Any) -> None:
    body = await gql(
        "{ dues: parcels(first: 100, filter: {hasOutstandingDues: true}) { totalCount "
        "  edges { node { dues { outstanding } } } }"
        "  clean: parcels(first: 100, filter: {hasOutstandingDues: false}) { totalCount "
        "  edges { node { dues { outstanding } } } }"
        "  open: parcels(first: 100, filter: {hasOpenViolations: true}) { totalCount "
        "  edges { node { violations(status: OPEN) { id } } } }"
        "  region: parcels(first: 100, filter: {region: 2, landUse: RESIDENTIAL}) { totalCount "
        "  edges { node { region { number } landUse } } }"
        "  all: parcels(first: 1) { totalCount } }"
    )
    data = body["data"]
    assert data["dues"]["totalCount"] > 0
    assert all(e["node"]["dues"]["outstanding"] > 0 for e in data["dues"]["edges"])
    assert all(e["node"]["dues"]["outstanding"] == 0 for e in data["clean"]["edges"])
    assert data["dues"]["totalCount"] + data["clean"]["totalCount"] == data["all"]["totalCount"]
    assert data["open"]["totalCount"] > 0
    assert all(e["node"]["violations"] for e in data["open"]["edges"])
    assert all(
        e["node"] == {"region": {"number": 2}, "landUse": "RESIDENTIAL"}
        for e in data["region"]["edges"]
    )


async def test_page_size_above_the_cap_is_refused(gql: Any) -> None:
    body = await gql("{ parcels(first: 101) { totalCount } }")
    error = body["errors"][0]
    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert error["extensions"]["field"] == "first"
    assert "100" in error["message"]


async def test_bad_cursor_is_bad_user_input(gql: Any) -> None:
    body = await gql('{ parcels(first: 1, after: "nonsense") { totalCount } }')
    assert body["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "after"}


async def test_person_by_national_code_with_any_digits(gql: Any) -> None:
    query = (
        "query($c: NationalCode!) { person(nationalCode: $c) {"
        " id nationalCode fullName parcels { renewalCode owners { nationalCode } } } }"
    )
    latin = await gql(query, {"c": KNOWN_NATIONAL_CODE})
    persian = await gql(query, {"c": "۰۰۸۴۵۷۵۹۴۸"})
    arabic = await gql(query, {"c": "٠٠٨٤٥٧٥٩٤٨"})
    literal = await gql('{ person(nationalCode: "۰۰۸۴۵۷۵۹۴۸") { id } }')
    person = latin["data"]["person"]
    assert person is not None
    assert person["nationalCode"] == KNOWN_NATIONAL_CODE
    assert persian["data"]["person"] == arabic["data"]["person"] == person
    assert literal["data"]["person"]["id"] == person["id"]
    assert len(person["parcels"]) >= 2
    for parcel in person["parcels"]:
        assert KNOWN_NATIONAL_CODE in [o["nationalCode"] for o in parcel["owners"]]


async def test_wrong_check_digit_is_bad_user_input_as_literal_and_variable(gql: Any) -> None:
    literal = await gql('{ person(nationalCode: "0084575949") { id } }')
    variable = await gql(
        "query($code: NationalCode!) { person(nationalCode: $code) { id } }", {"code": "0084575949"}
    )
    for body, field in ((literal, "nationalCode"), (variable, "code")):
        assert body.get("data") is None
        (error,) = body["errors"]
        assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": field}
        assert "check digit" in error["message"]
        assert "0084575949" not in error["message"]


# The schema as the walk below needs it: every type's fields, their arguments and types.
SCHEMA_TYPES = """{ __schema { queryType { name } types { name
  possibleTypes { name }
  fields { name args { defaultValue type { kind } } type { ...Named } } } } }
fragment Named on __Type { kind name ofType { kind name ofType { kind name ofType {
  kind name ofType { kind name } } } } }"""


def _named(type_ref: dict[str, Any]) -> str:
    while type_ref["name"] is None:
        type_ref = type_ref["ofType"]
    name: str = type_ref["name"]
    return name


def _walk_to_every_node(schema: dict[str, Any]) -> str:
    """A document that selects `__typename id` of every Node type the schema can reach from
    Query through fields that need no argument: each such field once on every path, no type
    twice on one path."""
    types = {t["name"]: t for t in schema["types"]}
    node_types = {t["name"] for t in types["Node"]["possibleTypes"]}

    def fields(name: str) -> list[tuple[str, str]]:
        return [
            (f["name"], _named(f["type"]))
            for f in types[name]["fields"] or []
            if not any(
                a["type"]["kind"] == "NON_NULL" and a["defaultValue"] is None for a in f["args"]
            )
        ]

    # The types some path from which ends at a Node type.
    leading = set(node_types)
    grown = True
    while grown:
        grown = False
        for name, described in types.items():
            if (
                name not in leading
                and described["fields"]
                and any(target in leading for _, target in fields(name))
            ):
                leading.add(name)
                grown = True

    def select(name: str, path: frozenset[str]) -> str:
        parts = ["__typename id"] if name in node_types else []
        for field, target in fields(name):
            if target in leading and target not in path:
                parts.append(f"{field} {{ {select(target, path | {target})} }}")
        return " ".join(parts)

    query = schema["queryType"]["name"]
    return "{ " + select(query, frozenset({query})) + " }"


def _ids_by_type(value: Any, found: dict[str, set[str]]) -> dict[str, set[str]]:
    if isinstance(value, dict):
        if "__typename" in value and "id" in value:
            found.setdefault(value["__typename"], set()).add(value["id"])
        for child in value.values():
            _ids_by_type(child, found)
    elif isinstance(value, list):
        for child in value:
            _ids_by_type(child, found)
    return found


async def test_node_reaches_one_of_every_node_type_in_the_schema(
    gql: Any, keys: dict[str, str]
) -> None:
    """The Node types are read from the schema itself: a new one that no path without
    arguments reaches, or that node(id) cannot read back, fails here."""
    # A personal read first, so that the operator's audit trail holds a record to reach;
    # and a notary's inquiry (idempotent: the same one on every run), so that its checks are.
    assert (await gql(f'{{ person(nationalCode: "{KNOWN_NATIONAL_CODE}") {{ id }} }}'))["data"]
    submitted = await gql.as_key(keys["notary_a"])(
        "mutation($i: SubmitInquiryInput!) { submitInquiry(input: $i) { id } }",
        {
            "i": {
                "kind": "PROPERTY_TRANSFER",
                "renewalCode": "3-3-1-1",
                "applicantNationalCode": KNOWN_NATIONAL_CODE,
                "idempotencyKey": "every-node-type",
            }
        },
    )
    assert "errors" not in submitted, submitted
    schema = (await gql(SCHEMA_TYPES))["data"]["__schema"]
    node_types = {
        t["name"] for t in next(t for t in schema["types"] if t["name"] == "Node")["possibleTypes"]
    }
    assert {"Parcel", "Region", "District", "ApiKey", "AuditRecord"} <= node_types

    walked = await gql(_walk_to_every_node(schema))
    found = _ids_by_type(walked["data"], {})
    assert set(found) == node_types, f"unreached Node types: {sorted(node_types - set(found))}"
    for type_name, ids in sorted(found.items()):
        global_id = min(ids)
        body = await gql("query($id: ID!) { node(id: $id) { __typename id } }", {"id": global_id})
        assert body == {"data": {"node": {"__typename": type_name, "id": global_id}}}, type_name


async def test_node_with_unknown_or_malformed_id(gql: Any) -> None:
    missing = await gql('{ node(id: "UGFyY2VsOjk5OTk5OTk=") { id } }')  # Parcel:9999999
    assert missing == {"data": {"node": None}}
    bad = await gql('{ node(id: "!!") { id } }')
    assert bad["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "id"}


async def test_fragments_and_aliases_give_the_same_data_as_plain_fields(gql: Any) -> None:
    plain = await gql(
        "{ parcels(first: 40) { edges { node { owners { nationalCode } dues { outstanding }"
        " violations(status: OPEN) { kind } certificates(kind: COMPLETION) { number } } } } }"
    )
    fragmented = await gql(
        "fragment Money on Parcel { dues { outstanding } }"
        "fragment Rest on Parcel { ... on Parcel { certificates(kind: COMPLETION) { number } } }"
        "{ parcels(first: 40) { edges { node { ...Money ...Rest"
        " people: owners { nationalCode } violations(status: OPEN) { kind } } } } }"
    )
    assert "errors" not in plain
    assert "errors" not in fragmented
    for a, b in zip(
        plain["data"]["parcels"]["edges"], fragmented["data"]["parcels"]["edges"], strict=True
    ):
        a, b = a["node"], b["node"]
        assert a["owners"] == b["people"]
        assert a["dues"] == b["dues"]
        assert a["violations"] == b["violations"]
        assert a["certificates"] == b["certificates"]
        assert all(c["number"] for c in a["certificates"])


async def test_person_parcels_carry_their_relations(gql: Any) -> None:
    body = await gql(
        '{ person(nationalCode: "0084575948") { parcels { renewalCode owners { share }'
        " dues { total } region { number } } } }",
        cost=True,
    )
    parcels = body["data"]["person"]["parcels"]
    assert len(parcels) >= 2
    assert all(p["owners"] and p["region"]["number"] >= 1 for p in parcels)
    # person, parcels, then owners, dues and region each once
    assert body["extensions"]["cost"]["sqlStatements"] == 5
