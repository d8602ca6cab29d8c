from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.inquiries.tracking import (
    _DAMM,
    TRACKING_CODE_DIGITS,
    damm_check_digit,
    format_tracking_code,
    is_damm_valid,
    new_tracking_code,
    parse_tracking_code,
)
from identifiers import InvalidIdentifier

CODE = "9848759027760368"
bodies = st.text("0123456789", min_size=TRACKING_CODE_DIGITS - 1, max_size=15).filter(
    lambda s: s[0] != "0"
)


def test_damm_check_digit_matches_the_published_example() -> None:
    assert damm_check_digit("572") == "4"
    assert is_damm_valid("5724")
    assert not is_damm_valid("5723")


def test_damm_table_is_a_weakly_totally_antisymmetric_quasigroup() -> None:
    digits = range(10)
    for row in _DAMM:
        assert sorted(row) == list(digits)
    for column in digits:
        assert sorted(row[column] for row in _DAMM) == list(digits)
    assert all(_DAMM[x][x] == 0 for x in digits)
    for c in digits:
        for x in digits:
            for y in digits:
                if x != y:
                    assert _DAMM[_DAMM[c][x]][y] != _DAMM[_DAMM[c][y]][x]


def test_new_tracking_codes_are_sixteen_digits_valid_and_never_start_with_zero() -> None:
    assert new_tracking_code(lambda bound: 0) == "100000000000000" + damm_check_digit(
        "100000000000000"
    )
    highest = new_tracking_code(lambda bound: bound - 1)
    assert highest[:15] == "9" * 15
    for _ in range(200):
        code = new_tracking_code()
        assert len(code) == TRACKING_CODE_DIGITS
        assert code[0] != "0"
        assert parse_tracking_code(code) == code
    assert len({new_tracking_code() for _ in range(200)}) == 200


@settings(deadline=None)  # timing on a loaded machine is no failure
@given(bodies)
def test_every_single_mistyped_digit_is_caught(body: str) -> None:
    code = body + damm_check_digit(body)
    assert parse_tracking_code(code) == code
    for position in range(len(code)):
        for digit in "0123456789":
            if digit == code[position]:
                continue
            typo = code[:position] + digit + code[position + 1 :]
            with pytest.raises(InvalidIdentifier):
                parse_tracking_code(typo)


@settings(deadline=None)  # timing on a loaded machine is no failure
@given(bodies)
def test_every_swap_of_two_neighbouring_digits_is_caught(body: str) -> None:
    code = body + damm_check_digit(body)
    for position in range(len(code) - 1):
        a, b = code[position], code[position + 1]
        if a == b:
            continue
        swapped = code[:position] + b + a + code[position + 2 :]
        with pytest.raises(InvalidIdentifier):
            parse_tracking_code(swapped)


def test_persian_and_arabic_indic_digits_and_the_printed_grouping_are_accepted() -> None:
    persian = CODE.translate(str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹"))
    arabic = CODE.translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))
    assert parse_tracking_code(persian) == CODE
    assert parse_tracking_code(arabic) == CODE
    assert parse_tracking_code(format_tracking_code(CODE)) == CODE
    assert parse_tracking_code(" 9848-7590-2776-0368 ") == CODE
    assert format_tracking_code(CODE) == "9848 7590 2776 0368"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "98487590277603",  # too short
        "98487590277603681",  # too long
        "０９８４８７５９０２７７６０３６８"[1:],  # fullwidth digits
        "९८४८७५९०२७७६०३६८",  # Devanagari digits
        "9848759027760368a",
        "9848.7590.2776.0368",
        "0848759027760368",
        "98487590277603６8",
    ],
)
def test_anything_else_is_refused_without_repeating_the_value(text: str) -> None:
    with pytest.raises(InvalidIdentifier) as refused:
        parse_tracking_code(text)
    assert refused.value.kind == "tracking_code"
    if text:
        assert text not in str(refused.value)
