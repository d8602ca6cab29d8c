"""The validation cache (gateway/guards/limits.py, CachedValidation): a document is validated
once while it is cached, known by its identity (strawberry's parse cache gives one document
per query text), and an evicted document is validated again."""

from __future__ import annotations

from typing import Any

import pytest
from graphql import build_schema, parse
from graphql.validation import specified_rules

from gateway.guards import limits
from gateway.guards.limits import CachedValidation

SCHEMA = build_schema("type Query { a: Int  b: Int }")
RULES = tuple(specified_rules)


@pytest.fixture
def validations(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    seen: list[Any] = []
    validate = limits.validate_document

    def counting(schema: Any, document: Any, rules: Any) -> Any:
        seen.append(document)
        return validate(schema, document, rules)

    monkeypatch.setattr(limits, "validate_document", counting)
    return seen


def test_a_document_is_validated_once_while_it_is_cached(validations: list[Any]) -> None:
    cache = CachedValidation(RULES[0], maxsize=2)
    good, bad = parse("{ a }"), parse("{ c }")
    assert cache.errors(SCHEMA, good, RULES) == []
    assert cache.errors(SCHEMA, good, RULES) == []
    assert len(validations) == 2  # the limits pass, then the rest, once
    first = cache.errors(SCHEMA, bad, RULES)
    assert first[0].message.startswith("Cannot query field 'c' on type 'Query'.")
    assert cache.errors(SCHEMA, bad, RULES) is first
    # Another parse of the same text is another document: validated on its own.
    before = len(validations)
    assert cache.errors(SCHEMA, parse("{ c }"), RULES)
    assert len(validations) > before


def test_an_evicted_document_is_validated_again(validations: list[Any]) -> None:
    cache = CachedValidation(RULES[0], maxsize=2)
    one, two, three = parse("{ a }"), parse("{ b }"), parse("{ a b }")
    for document in (one, two, one, three):  # `one` used again: `two` is the oldest
        cache.errors(SCHEMA, document, RULES)
    counted = len(validations)
    cache.errors(SCHEMA, one, RULES)
    assert len(validations) == counted  # still cached
    cache.errors(SCHEMA, two, RULES)
    assert len(validations) > counted  # evicted, validated again
