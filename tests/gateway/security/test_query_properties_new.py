"""Property (issue 7's "Must show", over the surface added since): documents drawn against
the real schema from the new roots (inquiries, department queues, citizen requests, the
catalogue, the figures and rankings, the municipality's federation root), with fragments
nested and spread twice, a fan-out of up to thirty levels under any object type, aliases,
@include and @skip, are each refused before they run or answered within the operation's
budget, in bounded memory. It reuses tests/gateway/test_query_properties.py's drawing, which
covers parcels, people and the viewer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from graphql import GraphQLObjectType, get_named_type, is_leaf_type, is_object_type
from graphql import is_required_argument as required
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.conftest import GraphQLClient
from tests.gateway.test_query_properties import (
    LEFT_OUT,
    PRE_EXECUTION,
    SCHEMA,
    SETTINGS,
    Document,
    post_within_memory,
)

NEW_ROOTS: dict[str, Callable[[int], str]] = {
    "inquiries": lambda n: f"inquiries(first: {n})",
    "departmentQueue": lambda n: f"departmentQueue(first: {n})",
    "searchCitizenRequests": lambda n: f"searchCitizenRequests(first: {n})",
    "departmentRequests": lambda n: f"departmentRequests(first: {n})",
    "webhookDeliveries": lambda n: f"webhookDeliveries(first: {n})",
    "services": lambda _n: "services",
    "serviceGroups": lambda _n: "serviceGroups",
    "departmentRanking": lambda _n: "departmentRanking",
    "regionRanking": lambda _n: "regionRanking",
    "serviceTransparency": lambda _n: "serviceTransparency",
    "requestCounts": lambda _n: "requestCounts(groupBy: [REGION, STATUS])",
    "inquiryStats": lambda _n: "inquiryStats(groupBy: [REGION, KIND])",
    "frequentProblems": lambda n: f"frequentProblems(perRegion: {n})",
    "engagedCitizens": lambda n: f"engagedCitizens(first: {n})",
    "municipality_urmia": lambda _n: "municipality_urmia",
}


# Fields whose arguments are all optional but that need exactly one of them (a document
# without one is answered with BAD_USER_INPUT while it runs, not refused for its shape);
# their types are reached from other roots.
ONE_KEY_FIELDS = {("Municipality", "parcel")}


class Everywhere(Document):
    """Issue 7's fan-out under any object type, not only Parcel."""

    def selection(self, parent: GraphQLObjectType, levels: int) -> tuple[str, int]:
        names = sorted(
            name
            for name, definition in parent.fields.items()
            if name not in LEFT_OUT
            and (parent.name, name) not in ONE_KEY_FIELDS
            and not any(required(a) for a in definition.args.values())
            and (levels > 0 or is_leaf_type(get_named_type(definition.type)))
        )
        if not names:
            return "__typename", 1
        chosen = self.draw(st.lists(st.sampled_from(names), min_size=1, max_size=4, unique=True))
        parts: list[str] = []
        size = 0
        for name in chosen:
            target = get_named_type(parent.fields[name].type)
            alias = f"a{next(self.names)}: " if self.draw(st.integers(0, 5)) == 0 else ""
            text = f"{alias}{name}{self.argument(parent, name)}{self.directive()}"
            size += 1
            if is_object_type(target):
                assert isinstance(target, GraphQLObjectType)
                inner, inner_size = self.selection(target, levels - 1)
                text += f" {{ {inner} }}"
                size += inner_size
            parts.append(text)
        if self.draw(st.integers(0, 3)) == 0:
            spread, chain_size = self.fan_out_on(parent.name, self.draw(st.integers(1, 30)))
            parts.append(spread)
            size += chain_size
        return self.package(parent, parts, size)

    def fan_out_on(self, type_name: str, levels: int) -> tuple[str, int]:
        prefix = f"X{next(self.names)}_"
        for i in range(levels):
            self.fragments.append(
                f"fragment {prefix}{i} on {type_name} "
                f"{{ __typename ...{prefix}{i + 1} ...{prefix}{i + 1} }}"
            )
        self.fragments.append(f"fragment {prefix}{levels} on {type_name} {{ __typename }}")
        return f"...{prefix}0", 2 ** (levels + 1) - 1


@st.composite
def operations(draw: Callable[[st.SearchStrategy[Any]], Any]) -> tuple[str, dict[str, Any], int]:
    document = Everywhere(draw)
    roots = draw(st.lists(st.sampled_from(sorted(NEW_ROOTS)), min_size=1, max_size=3, unique=True))
    parts: list[str] = []
    size = 0
    query = SCHEMA.query_type
    assert query is not None
    for root in roots:
        parent = get_named_type(query.fields[root].type)
        assert isinstance(parent, GraphQLObjectType)
        inner, inner_size = document.selection(parent, draw(st.integers(0, 5)))
        parts.append(
            f"{NEW_ROOTS[root](draw(st.integers(1, 5)))}{document.directive()} {{ {inner} }}"
        )
        size += 1 + inner_size
    header = "query Drawn($flag: Boolean!)" if document.uses_flag else "query Drawn"
    text = f"{header} {{ {' '.join(parts)} }} {' '.join(document.fragments)}"
    variables = {"flag": draw(st.booleans())} if document.uses_flag else {}
    return text, variables, size


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(operation=operations())
async def test_every_document_over_the_new_roots_is_refused_or_answered_within_its_budget(
    gql: GraphQLClient, operation: tuple[str, dict[str, Any], int]
) -> None:
    query, variables, size = operation
    body = await post_within_memory(gql, query, variables)
    errors = body.get("errors", [])
    codes = [error["extensions"]["code"] for error in errors]
    event("ran" if body.get("data") is not None else f"refused: {codes[:1]}")
    if body.get("data") is None:
        assert errors, body
        assert all("path" not in error for error in errors), (errors, query)
        assert set(codes) <= PRE_EXECUTION, (errors, query)
    else:
        assert errors == [], (errors, query)
    if size > SETTINGS.max_fields:
        assert body.get("data") is None, (size, query)
        assert "QUERY_TOO_COMPLEX" in codes, (size, errors, query)
