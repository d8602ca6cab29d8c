from __future__ import annotations

import contextlib
import pickle
import sys
import unicodedata
from collections.abc import Callable, Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from identifiers import (
    BANK_NAMES,
    MAX_PART_DIGITS,
    InvalidIdentifier,
    RegistryPlate,
    RenewalCode,
    is_valid_national_code,
    make_legal_person_id,
    make_national_code,
    make_sheba,
    national_code_check_digit,
    normalize_digits,
    parse_bank_code,
    parse_bank_reference,
    parse_legal_person_id,
    parse_national_code,
    parse_postal_code,
    parse_registry_plate,
    parse_renewal_code,
    parse_sheba,
    reference_bank_code,
    sheba_bank_code,
)

PERSIAN = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")
ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


def reason_of(call: object, *args: str) -> str:
    assert callable(call)
    with pytest.raises(InvalidIdentifier) as info:
        call(*args)
    return info.value.reason


# --- normalize_digits ------------------------------------------------------------------


def test_normalize_folds_persian_and_arabic_indic_digits_to_ascii() -> None:
    assert normalize_digits("۰۱۲۳۴۵۶۷۸۹") == "0123456789"
    assert normalize_digits("٠١٢٣٤٥٦٧٨٩") == "0123456789"


def test_normalize_folds_arabic_yeh_and_kaf_to_persian() -> None:
    assert normalize_digits("علي") == "علی"
    assert normalize_digits("مصطفى") == "مصطفی"
    assert normalize_digits("كرج") == "کرج"


def test_normalize_keeps_zwnj_and_strips_outer_whitespace() -> None:
    assert normalize_digits("  می\u200cخواهم \n") == "می\u200cخواهم"


def test_normalize_leaves_other_text_alone() -> None:
    assert normalize_digits("Tehran 12") == "Tehran 12"


# --- InvalidIdentifier -----------------------------------------------------------------


def test_invalid_identifier_message_names_kind_and_reason_but_not_the_value() -> None:
    with pytest.raises(InvalidIdentifier) as info:
        parse_national_code("0084575949")
    error = info.value
    assert isinstance(error, ValueError)
    assert error.kind == "national_code"
    assert error.reason == "wrong check digit"
    assert str(error) == "invalid national code: wrong check digit"
    assert "0084575949" not in str(error)


def test_invalid_identifier_survives_pickling() -> None:
    error = pickle.loads(pickle.dumps(InvalidIdentifier("sheba", "wrong check digits")))
    assert (error.kind, error.reason) == ("sheba", "wrong check digits")
    assert str(error) == "invalid sheba: wrong check digits"


# --- National code ---------------------------------------------------------------------


@pytest.mark.parametrize("code", ["0084575948", "0076229645", "1583250689", "0959744487"])
def test_known_valid_national_codes_parse_to_themselves(code: str) -> None:
    assert parse_national_code(code) == code
    assert is_valid_national_code(code)


def test_national_code_accepts_persian_and_arabic_indic_digits() -> None:
    assert parse_national_code("۰۰۸۴۵۷۵۹۴۸") == "0084575948"
    assert parse_national_code("٠٠٨٤٥٧٥٩٤٨") == "0084575948"


def test_national_code_ignores_spaces_and_dashes() -> None:
    assert parse_national_code(" 008-457594-8 ") == "0084575948"
    assert parse_national_code("008 457 5948") == "0084575948"


def test_national_code_left_pads_eight_and_nine_digit_input() -> None:
    assert parse_national_code("84575948") == "0084575948"
    assert parse_national_code("084575948") == "0084575948"
    assert parse_national_code("11537027") == "0011537027"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("0084575949", "wrong check digit"),
        ("1234567890", "wrong check digit"),
        ("0000000000", "all digits are equal"),
        ("1111111111", "all digits are equal"),
        ("5555555555", "all digits are equal"),
        ("1230000003", "digits 4 to 9 are all zero"),  # passes the checksum
        ("4575948", "must be 10 digits"),
        ("00845759480", "must be 10 digits"),
        ("", "must contain only digits"),
        ("00845a5948", "must contain only digits"),
        ("٠٠٨٤٥٧٥٩٤٨x", "must contain only digits"),
        # A Devanagari digit: int() would take it.
        ("008457594\u0968", "digits must be 0-9, Persian or Arabic-Indic"),
    ],
)
def test_invalid_national_codes_are_rejected_with_a_reason(text: str, reason: str) -> None:
    assert reason_of(parse_national_code, text) == reason
    assert not is_valid_national_code(text)


def test_national_code_check_digit_and_make() -> None:
    assert national_code_check_digit("008457594") == 8
    assert make_national_code("008457594") == "0084575948"
    assert make_national_code("۰۰۸۴۵۷۵۹۴") == "0084575948"


def test_make_national_code_rejects_bad_prefixes() -> None:
    assert reason_of(make_national_code, "12345678") == "prefix must be 9 digits"
    assert reason_of(national_code_check_digit, "12345678x") == "prefix must be 9 digits"
    # The checksum completes this prefix into ten ones, which is never issued.
    assert reason_of(make_national_code, "111111111") == "all digits are equal"
    assert reason_of(make_national_code, "123000000") == "digits 4 to 9 are all zero"


def _issuable_prefix(prefix: str) -> bool:
    return prefix[3:9] != "000000" and prefix + str(national_code_check_digit(prefix)) != (
        prefix[0] * 10
    )


national_prefixes = st.text(alphabet="0123456789", min_size=9, max_size=9).filter(_issuable_prefix)


@given(national_prefixes)
def test_made_national_codes_always_parse(prefix: str) -> None:
    code = make_national_code(prefix)
    assert code.startswith(prefix)
    assert parse_national_code(code) == code
    assert parse_national_code(code.translate(PERSIAN)) == code


@given(national_prefixes, st.integers(min_value=1, max_value=9))
def test_changing_the_check_digit_of_a_valid_national_code_always_fails(
    prefix: str, shift: int
) -> None:
    code = make_national_code(prefix)
    wrong = code[:9] + str((int(code[9]) + shift) % 10)
    assert not is_valid_national_code(wrong)


# --- Legal person ID -------------------------------------------------------------------


def test_known_valid_legal_person_id_parses() -> None:
    assert parse_legal_person_id("10380284790") == "10380284790"
    assert parse_legal_person_id("۱۰۳۸۰۲۸۴۷۹۰") == "10380284790"
    assert parse_legal_person_id(" 1038-0284-790 ") == "10380284790"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("10380284791", "wrong check digit"),
        ("11111111111", "wrong check digit"),
        ("1038028479", "must be 11 digits"),
        ("103802847900", "must be 11 digits"),
        ("1038028479x", "must contain only digits"),
    ],
)
def test_invalid_legal_person_ids_are_rejected(text: str, reason: str) -> None:
    with pytest.raises(InvalidIdentifier) as info:
        parse_legal_person_id(text)
    assert info.value.kind == "legal_person_id"
    assert info.value.reason == reason


def test_make_legal_person_id() -> None:
    assert make_legal_person_id("1038028479") == "10380284790"
    assert reason_of(make_legal_person_id, "103802847") == "prefix must be 10 digits"


@given(st.text(alphabet="0123456789", min_size=10, max_size=10), st.integers(1, 9))
def test_made_legal_person_ids_parse_and_a_changed_check_digit_fails(
    prefix: str, shift: int
) -> None:
    legal_id = make_legal_person_id(prefix)
    assert parse_legal_person_id(legal_id) == legal_id
    wrong = legal_id[:10] + str((int(legal_id[10]) + shift) % 10)
    assert reason_of(parse_legal_person_id, wrong) == "wrong check digit"


# --- Sheba -----------------------------------------------------------------------------


KNOWN_SHEBA = "IR820540102680020817909002"


def test_known_sheba_parses_in_any_spelling() -> None:
    assert parse_sheba(KNOWN_SHEBA) == KNOWN_SHEBA
    assert parse_sheba("ir82 0540 1026 8002 0817 9090 02") == KNOWN_SHEBA
    assert parse_sheba("IR" + KNOWN_SHEBA[2:].translate(PERSIAN)) == KNOWN_SHEBA
    assert parse_sheba("IR" + KNOWN_SHEBA[2:].translate(ARABIC_INDIC)) == KNOWN_SHEBA


def test_sheba_bank_code_and_name() -> None:
    assert sheba_bank_code(KNOWN_SHEBA) == "054"
    assert BANK_NAMES[sheba_bank_code(KNOWN_SHEBA)] == "Parsian"
    assert BANK_NAMES["017"] == "Melli"


def test_made_sheba_validates_and_one_changed_digit_fails() -> None:
    sheba = make_sheba("017", "123456")
    assert sheba == "IR020170000000000000123456"
    assert parse_sheba(sheba) == sheba
    assert sheba_bank_code(sheba) == "017"
    assert reason_of(parse_sheba, sheba[:-1] + "7") == "wrong check digits"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("820540102680020817909002", "must start with IR"),
        ("DE820540102680020817909002", "must start with IR"),
        ("IR82054010268002081790900", "must be 24 digits after IR"),
        ("IR8205401026800208179090021", "must be 24 digits after IR"),
        ("IR82054010268002081790900X", "must contain only digits after IR"),
        ("IR", "must contain only digits after IR"),
        ("IR830540102680020817909002", "wrong check digits"),
    ],
)
def test_invalid_shebas_are_rejected(text: str, reason: str) -> None:
    with pytest.raises(InvalidIdentifier) as info:
        parse_sheba(text)
    assert info.value.kind == "sheba"
    assert info.value.reason == reason


def test_make_sheba_rejects_bad_parts() -> None:
    assert reason_of(make_sheba, "17", "1") == "bank code must be 3 digits"
    assert reason_of(make_sheba, "017", "1" * 20) == "account must be at most 19 digits"
    assert reason_of(make_sheba, "017", "") == "account must be at most 19 digits"


@given(
    st.text(alphabet="0123456789", min_size=3, max_size=3),
    st.text(alphabet="0123456789", min_size=1, max_size=19),
)
def test_make_sheba_round_trips(bank_code: str, account: str) -> None:
    sheba = make_sheba(bank_code, account)
    assert parse_sheba(sheba) == sheba
    assert parse_sheba(sheba.lower()) == sheba
    assert sheba_bank_code(sheba) == bank_code
    assert int(sheba[7:]) == int(account)


@given(st.integers(0, 10**19 - 1), st.integers(2, 25), st.integers(1, 9))
def test_any_single_digit_change_of_a_sheba_fails(account: int, position: int, shift: int) -> None:
    sheba = make_sheba("012", str(account))
    changed = str((int(sheba[position]) + shift) % 10)
    wrong = sheba[:position] + changed + sheba[position + 1 :]
    assert reason_of(parse_sheba, wrong) == "wrong check digits"


# --- Postal code -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["1346813771", "13468-13771", "13468 13771", "۱۳۴۶۸-۱۳۷۷۱", " ١٣٤٦٨١٣٧٧١ "]
)
def test_postal_code_accepts_a_separator_after_the_fifth_digit(text: str) -> None:
    assert parse_postal_code(text) == "1346813771"


@pytest.mark.parametrize(
    "text", ["134681377", "13468137711", "1346-813771", "13468--13771", "13468x3771", ""]
)
def test_invalid_postal_codes_are_rejected(text: str) -> None:
    with pytest.raises(InvalidIdentifier) as info:
        parse_postal_code(text)
    assert (info.value.kind, info.value.reason) == ("postal_code", "must be 10 digits")


# --- Renewal code ----------------------------------------------------------------------


def test_renewal_code_with_four_parts() -> None:
    code = parse_renewal_code("3-12-45-7")
    assert code == RenewalCode(region=3, district=12, block=45, parcel=7)
    assert code.building is None
    assert code.unit is None
    assert str(code) == "3-12-45-7"


def test_renewal_code_with_building_and_unit() -> None:
    code = parse_renewal_code("3-12-45-7-1-14")
    assert code == RenewalCode(3, 12, 45, 7, building=1, unit=14)
    assert str(code) == "3-12-45-7-1-14"


@pytest.mark.parametrize(
    "text",
    ["3/12/45/7", "3 12 45 7", "۳-۱۲-۴۵-۷", "٣/١٢/٤٥/٧", " 3 - 12 / 45  7 ", "03-012-045-07"],
)
def test_renewal_code_accepts_any_separator_and_digit_script(text: str) -> None:
    assert str(parse_renewal_code(text)) == "3-12-45-7"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "is empty"),
        ("3-12-45", "must have 4 or 6 parts"),
        ("3-12-45-7-1", "must have 4 or 6 parts"),
        ("3-12-45-7-1-14-2", "must have 4 or 6 parts"),
        ("3-12-45-0", "parts must be positive"),
        ("3-12-45-x", "parts must be numbers"),
        ("3-12-45-", "parts must be numbers"),
    ],
)
def test_invalid_renewal_codes_are_rejected(text: str, reason: str) -> None:
    with pytest.raises(InvalidIdentifier) as info:
        parse_renewal_code(text)
    assert (info.value.kind, info.value.reason) == ("renewal_code", reason)


def test_renewal_code_building_and_unit_come_together() -> None:
    with pytest.raises(InvalidIdentifier, match="building and unit go together"):
        RenewalCode(3, 12, 45, 7, building=1)


# --- Registry plate --------------------------------------------------------------------


@pytest.mark.parametrize("text", ["11-45/123", " 11 - 45 / 123 ", "۱۱-۴۵/۱۲۳", "١١ - ٤٥/١٢٣"])
def test_registry_plate_parses_section_main_and_sub(text: str) -> None:
    plate = parse_registry_plate(text)
    assert plate == RegistryPlate(section=11, main=45, sub=123)
    assert str(plate) == "11-45/123"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("45/123", "must look like section-main/sub"),
        ("11-45-123", "must look like section-main/sub"),
        ("11/45/123", "must look like section-main/sub"),
        ("11-45/", "must look like section-main/sub"),
        ("", "must look like section-main/sub"),
        ("0-45/123", "parts must be positive"),
        ("11-45/0", "parts must be positive"),
    ],
)
def test_invalid_registry_plates_are_rejected(text: str, reason: str) -> None:
    with pytest.raises(InvalidIdentifier) as info:
        parse_registry_plate(text)
    assert (info.value.kind, info.value.reason) == ("registry_plate", reason)


# --- Bank code and bank reference ------------------------------------------------------


def test_bank_code_is_three_digits_in_any_script() -> None:
    assert parse_bank_code("017") == "017"
    assert parse_bank_code(" ۰۱۲ ") == "012"
    for bad in ("17", "0170", "000", "01x", "", "IR017"):
        assert reason_of(parse_bank_code, bad) == "must be 3 digits"


def test_bank_reference_starts_with_the_bank_code() -> None:
    assert parse_bank_reference("017123400000001") == "017123400000001"
    assert parse_bank_reference("۰۱۷۱۲۳۴۰۰۰۰۰۰۰۱") == "017123400000001"
    assert parse_bank_reference(" 0171-2340-0000001 ") == "017123400000001"
    assert reference_bank_code("٠١٨٩٩٠٠٠٠٠٠٠٢") == "018"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "must contain only digits"),
        ("12ab", "must contain only digits"),
        ("017", "must be 4 to 40 digits"),
        ("1" * 41, "must be 4 to 40 digits"),
        ("0171２3456789", "digits must be 0-9, Persian or Arabic-Indic"),  # fullwidth 2
        ("0171²3456789", "digits must be 0-9, Persian or Arabic-Indic"),  # superscript 2
        ("017𝟙23456789", "digits must be 0-9, Persian or Arabic-Indic"),  # mathematical 1
        ("017१23456789", "digits must be 0-9, Persian or Arabic-Indic"),  # Devanagari 1
    ],
)
def test_invalid_bank_references_are_rejected(text: str, reason: str) -> None:
    with pytest.raises(InvalidIdentifier) as info:
        parse_bank_reference(text)
    assert (info.value.kind, info.value.reason) == ("bank_reference", reason)


# --- Every parser: other scripts' digits and huge numbers -------------------------------


# One valid spelling of each identifier; the properties below change it.
PARSERS: dict[str, tuple[Callable[[str], object], str]] = {
    "national_code": (parse_national_code, "0084575948"),
    "legal_person_id": (parse_legal_person_id, "10380284790"),
    "sheba": (parse_sheba, KNOWN_SHEBA),
    "postal_code": (parse_postal_code, "1346813771"),
    "renewal_code": (parse_renewal_code, "3-12-45-7-1-14"),
    "registry_plate": (parse_registry_plate, "11-45/123"),
    "bank_code": (parse_bank_code, "017"),
    "bank_reference": (parse_bank_reference, "017123400000001"),
}
FOLDED_SCRIPTS = range(0x0660, 0x066A), range(0x06F0, 0x06FA)  # Arabic-Indic, Persian


def _other_script(char: str) -> bool:
    return not char.isascii() and not any(ord(char) in block for block in FOLDED_SCRIPTS)


# Every character Unicode gives a digit value (fullwidth, mathematical, Devanagari…,
# superscripts, circled digits…) outside ASCII, Persian and Arabic-Indic: some 700 of them.
OTHER_DIGITS = [c for c in map(chr, range(sys.maxunicode + 1)) if c.isdigit() and _other_script(c)]
OTHER_DIGITS_BY_VALUE = {
    value: [c for c in OTHER_DIGITS if unicodedata.digit(c) == value] for value in range(10)
}
other_digits = st.sampled_from(OTHER_DIGITS)


def test_the_valid_spellings_parse() -> None:
    for parse, valid in PARSERS.values():
        parse(valid)


@pytest.mark.parametrize("kind", sorted(PARSERS))
@given(digits=st.text(other_digits, min_size=1, max_size=40))
def test_other_scripts_digits_are_refused_by_every_parser(kind: str, digits: str) -> None:
    parse, _ = PARSERS[kind]
    with pytest.raises(InvalidIdentifier) as info:
        parse(digits)
    assert info.value.kind == kind


@pytest.mark.parametrize("kind", sorted(PARSERS))
@given(data=st.data())
def test_one_digit_from_another_script_spoils_a_valid_identifier(
    kind: str, data: st.DataObject
) -> None:
    """The same digit value in another script: what int() and str.isdigit() would let by."""
    parse, valid = PARSERS[kind]
    position = data.draw(st.sampled_from([i for i, c in enumerate(valid) if c.isdigit()]))
    value = int(valid[position])
    twin = data.draw(st.sampled_from(OTHER_DIGITS_BY_VALUE[value]))
    with pytest.raises(InvalidIdentifier) as info:
        parse(valid[:position] + twin + valid[position + 1 :])
    assert info.value.reason == "digits must be 0-9, Persian or Arabic-Indic"


@contextlib.contextmanager
def unlimited_int_digits() -> Iterator[None]:
    """Lets the test spell numbers past Python's 4,300-digit guard; parsers run with it on."""
    previous = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)
    try:
        yield
    finally:
        sys.set_int_max_str_digits(previous)


def _refused_quietly(parse: Callable[[str], object], text: str, digits: str) -> str:
    with pytest.raises(InvalidIdentifier) as info:
        parse(text)
    # Not int()'s own complaint (sys.set_int_max_str_digits), and never the number itself.
    assert "int" not in str(info.value)
    assert digits not in str(info.value)
    return info.value.reason


@pytest.mark.parametrize("kind", sorted(PARSERS))
@given(number=st.integers(min_value=10**40, max_value=10**5000))
def test_huge_numbers_are_refused_by_every_parser_never_overflowing(kind: str, number: int) -> None:
    parse, _ = PARSERS[kind]
    with unlimited_int_digits():
        digits = str(number)
    for text in (digits, f"{digits}-1-1-1", f"1-1-1-{digits}", f"{digits}-1/1", f"1-1/{digits}"):
        _refused_quietly(parse, text, digits)


@pytest.mark.parametrize(
    ("parse", "templates"),
    [
        (parse_renewal_code, ("{}-1-1-1", "1-1-1-{}", "1-1-1-1-{}-1")),
        (parse_registry_plate, ("{}-1/1", "1-{}/1", "1-1/{}")),
    ],
)
@given(number=st.integers(min_value=10**MAX_PART_DIGITS, max_value=10**5000))
def test_a_numbered_part_too_large_for_its_column_is_refused(
    parse: Callable[[str], object], templates: tuple[str, ...], number: int
) -> None:
    with unlimited_int_digits():
        digits = str(number)
    for template in templates:
        reason = _refused_quietly(parse, template.format(digits), digits)
        assert reason == f"parts must be at most {MAX_PART_DIGITS} digits"


def test_a_4400_digit_renewal_code_part_is_refused_by_its_length() -> None:
    assert reason_of(parse_renewal_code, "1-1-1-" + "9" * 4400) == (
        f"parts must be at most {MAX_PART_DIGITS} digits"
    )


@pytest.mark.parametrize("parse", [parse_renewal_code, parse_registry_plate])
def test_numbered_parts_fit_a_32_bit_integer_column(parse: Callable[[str], object]) -> None:
    largest = "9" * MAX_PART_DIGITS
    text = f"{largest}-1-1-{largest}" if parse is parse_renewal_code else f"{largest}-1/{largest}"
    parse(text)
    assert int(largest) < 2**31
    assert reason_of(parse, text.replace(largest, "1" + "0" * MAX_PART_DIGITS, 1)) == (
        f"parts must be at most {MAX_PART_DIGITS} digits"
    )
    assert reason_of(parse, text.replace(largest, "99999999999999999999", 1)) == (
        f"parts must be at most {MAX_PART_DIGITS} digits"
    )
