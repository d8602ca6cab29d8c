"""Parse, validate and canonicalize the Iranian identifiers every layer of the gateway handles."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

__all__ = [
    "BANK_NAMES",
    "MAX_PART_DIGITS",
    "InvalidIdentifier",
    "RegistryPlate",
    "RenewalCode",
    "is_valid_national_code",
    "make_legal_person_id",
    "make_national_code",
    "make_sheba",
    "national_code_check_digit",
    "normalize_digits",
    "parse_bank_code",
    "parse_bank_reference",
    "parse_legal_person_id",
    "parse_national_code",
    "parse_postal_code",
    "parse_registry_plate",
    "parse_renewal_code",
    "parse_sheba",
    "reference_bank_code",
    "sheba_bank_code",
]

# Users type Persian or Arabic-Indic digits and Arabic yeh/kaf from whatever keyboard they
# have; one prebuilt table lets str.translate fold them all in a single C-level pass.
_FOLD = str.maketrans(
    {
        **{chr(0x06F0 + i): str(i) for i in range(10)},  # Persian ۰–۹
        **{chr(0x0660 + i): str(i) for i in range(10)},  # Arabic-Indic ٠–٩
        "\u064a": "\u06cc",  # Arabic yeh ي → Persian ی
        "\u0649": "\u06cc",  # Arabic alef maksura ى → Persian ی
        "\u0643": "\u06a9",  # Arabic kaf ك → Persian ک
    }
)

# re.ASCII keeps \d from matching other scripts' digits, which int() would otherwise accept.
_DIGITS = re.compile(r"[0-9]+", re.ASCII)
_SPACES_AND_DASHES = re.compile(r"[\s\-]+")
_SPACES = re.compile(r"\s+")
_POSTAL = re.compile(r"([0-9]{5})[\- ]?([0-9]{5})", re.ASCII)
_RENEWAL_SEPARATOR = re.compile(r"\s*[\-/]\s*|\s+")
_PLATE = re.compile(r"([0-9]+)\s*-\s*([0-9]+)\s*/\s*([0-9]+)", re.ASCII)

_LEGAL_WEIGHTS = (29, 27, 23, 19, 17)

# Numbered parts (renewal code, registry plate) are stored in 32-bit INTEGER columns: nine
# digits always fit, and the length is checked before int() ever sees a huge string.
MAX_PART_DIGITS = 9

BANK_NAMES: dict[str, str] = {
    "012": "Mellat",
    "014": "Maskan",
    "015": "Sepah",
    "016": "Keshavarzi",
    "017": "Melli",
    "018": "Tejarat",
    "019": "Saderat",
    "054": "Parsian",
    "055": "Eghtesad Novin",
    "056": "Saman",
    "057": "Pasargad",
    "062": "Ayandeh",
}


class InvalidIdentifier(ValueError):
    """An identifier failed to parse; the message never repeats the value (it may be personal)."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(f"invalid {kind.replace('_', ' ')}: {reason}")
        self.kind = kind
        self.reason = reason

    def __reduce__(self) -> tuple[Any, ...]:
        # The default reduce would call __init__(message) and fail; keep exceptions picklable
        # so they survive process pools and logging queues.
        return (type(self), (self.kind, self.reason))


def normalize_digits(text: str) -> str:
    """Fold Persian/Arabic digits to ASCII and Arabic ي/ى/ك to Persian ی/ک; ZWNJ is kept."""
    return text.translate(_FOLD).strip()


def _is_digits(text: str) -> bool:
    return _DIGITS.fullmatch(text) is not None


def _folded(kind: str, text: str) -> str:
    """normalize_digits, refusing every other script's digits (fullwidth, superscript,
    mathematical, Devanagari…): str.isdigit() and int() accept them, no register holds them."""
    folded = normalize_digits(text)
    if not folded.isascii() and any(c.isnumeric() and not c.isascii() for c in folded):
        raise InvalidIdentifier(kind, "digits must be 0-9, Persian or Arabic-Indic")
    return folded


# --- National code (کد ملی) -----------------------------------------------------------------


def _national_checksum(first9: str) -> int:
    r = sum(int(d) * (10 - i) for i, d in enumerate(first9)) % 11
    return r if r < 2 else 11 - r


def national_code_check_digit(first9: str) -> int:
    """The check digit completing a 9-digit national-code prefix."""
    first9 = _folded("national_code", first9)
    if not _is_digits(first9) or len(first9) != 9:
        raise InvalidIdentifier("national_code", "prefix must be 9 digits")
    return _national_checksum(first9)


def make_national_code(first9: str) -> str:
    """Complete a 9-digit prefix into a valid national code (for generated demo data)."""
    first9 = _folded("national_code", first9)
    # Parsing the result applies the non-checksum rules too (all-equal, zero middle digits).
    return parse_national_code(first9 + str(national_code_check_digit(first9)))


def parse_national_code(text: str) -> str:
    """Validate a national code and return it as 10 ASCII digits."""
    code = _SPACES_AND_DASHES.sub("", _folded("national_code", text))
    if not _is_digits(code):
        raise InvalidIdentifier("national_code", "must contain only digits")
    # Leading zeros get lost when codes pass through spreadsheets or integer columns.
    if len(code) in (8, 9):
        code = code.zfill(10)
    if len(code) != 10:
        raise InvalidIdentifier("national_code", "must be 10 digits")
    # Ten equal digits pass the checksum but are placeholders, never issued.
    if len(set(code)) == 1:
        raise InvalidIdentifier("national_code", "all digits are equal")
    if code[3:9] == "000000":
        raise InvalidIdentifier("national_code", "digits 4 to 9 are all zero")
    if int(code[9]) != _national_checksum(code[:9]):
        raise InvalidIdentifier("national_code", "wrong check digit")
    return code


def is_valid_national_code(text: str) -> bool:
    try:
        parse_national_code(text)
    except InvalidIdentifier:
        return False
    return True


# --- Legal person ID (شناسه ملی اشخاص حقوقی) -----------------------------------------------


def _legal_checksum(first10: str) -> int:
    # The second-to-last digit of the full ID (the last of the first ten) shifts every term.
    c = int(first10[9]) + 2
    s = sum((int(d) + c) * _LEGAL_WEIGHTS[i % 5] for i, d in enumerate(first10)) % 11
    return 0 if s == 10 else s


def make_legal_person_id(first10: str) -> str:
    """Complete a 10-digit prefix into a valid legal person ID (for generated demo data)."""
    first10 = _folded("legal_person_id", first10)
    if not _is_digits(first10) or len(first10) != 10:
        raise InvalidIdentifier("legal_person_id", "prefix must be 10 digits")
    return first10 + str(_legal_checksum(first10))


def parse_legal_person_id(text: str) -> str:
    """Validate a legal person ID and return it as 11 ASCII digits."""
    code = _SPACES_AND_DASHES.sub("", _folded("legal_person_id", text))
    if not _is_digits(code):
        raise InvalidIdentifier("legal_person_id", "must contain only digits")
    if len(code) != 11:
        raise InvalidIdentifier("legal_person_id", "must be 11 digits")
    if int(code[10]) != _legal_checksum(code[:10]):
        raise InvalidIdentifier("legal_person_id", "wrong check digit")
    return code


# --- Sheba (IBAN) -------------------------------------------------------------------------


# "IR" rearranged to the end and spelled as numbers: I = 18, R = 27 (ISO 13616).
_IR_NUMERIC = "1827"


def _sheba_check_digits(bban: str) -> str:
    return f"{98 - int(bban + _IR_NUMERIC + '00') % 97:02d}"


def parse_sheba(text: str) -> str:
    """Validate a Sheba number and return it as "IR" followed by 24 ASCII digits."""
    sheba = _SPACES.sub("", _folded("sheba", text)).upper()
    if not sheba.startswith("IR"):
        raise InvalidIdentifier("sheba", "must start with IR")
    digits = sheba[2:]
    if not _is_digits(digits):
        raise InvalidIdentifier("sheba", "must contain only digits after IR")
    if len(digits) != 24:
        raise InvalidIdentifier("sheba", "must be 24 digits after IR")
    if int(digits[2:] + _IR_NUMERIC + digits[:2]) % 97 != 1:
        raise InvalidIdentifier("sheba", "wrong check digits")
    return sheba


def sheba_bank_code(sheba: str) -> str:
    """The 3-digit bank code of a Sheba number (look it up in BANK_NAMES)."""
    return parse_sheba(sheba)[4:7]


def make_sheba(bank_code: str, account: str) -> str:
    """Build a valid Sheba from a bank code and an account number (for generated demo data)."""
    bank_code = _folded("sheba", bank_code)
    account = _folded("sheba", account)
    if not _is_digits(bank_code) or len(bank_code) != 3:
        raise InvalidIdentifier("sheba", "bank code must be 3 digits")
    if not _is_digits(account) or len(account) > 19:
        raise InvalidIdentifier("sheba", "account must be at most 19 digits")
    # The 22-digit BBAN is the bank code followed by the zero-padded account.
    bban = bank_code + account.zfill(19)
    return "IR" + _sheba_check_digits(bban) + bban


# --- Bank code and bank reference (کد بانک، شماره پیگیری) --------------------------------


_BANK_CODE = re.compile(r"[0-9]{3}", re.ASCII)
_BANK_REFERENCE = re.compile(r"[0-9]{4,40}", re.ASCII)


def parse_bank_code(text: str) -> str:
    """Validate a bank's three-digit code, as in a Sheba number (BANK_NAMES names the big ones)."""
    code = _folded("bank_code", text)
    if _BANK_CODE.fullmatch(code) is None or code == "000":
        raise InvalidIdentifier("bank_code", "must be 3 digits")
    return code


def parse_bank_reference(text: str) -> str:
    """Validate a payment's bank reference: 4 to 40 digits, the first three being the code of
    the bank the payment was made through (as in its Sheba), the rest the bank's own number."""
    reference = _SPACES_AND_DASHES.sub("", _folded("bank_reference", text))
    if not _is_digits(reference):
        raise InvalidIdentifier("bank_reference", "must contain only digits")
    if _BANK_REFERENCE.fullmatch(reference) is None:
        raise InvalidIdentifier("bank_reference", "must be 4 to 40 digits")
    return reference


def reference_bank_code(reference: str) -> str:
    """The code of the bank a payment with this reference was made through."""
    return parse_bank_reference(reference)[:3]


# --- Postal code (کد پستی) ----------------------------------------------------------------


def parse_postal_code(text: str) -> str:
    """Validate a postal code and return it as 10 ASCII digits."""
    match = _POSTAL.fullmatch(_folded("postal_code", text))
    if match is None:
        raise InvalidIdentifier("postal_code", "must be 10 digits")
    return match[1] + match[2]


# --- Renewal code (کد نوسازی) -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RenewalCode:
    """The municipality's own parcel key: region-district-block-parcel(-building-unit)."""

    region: int
    district: int
    block: int
    parcel: int
    building: int | None = None
    unit: int | None = None

    def __post_init__(self) -> None:
        # A unit is always inside a building, so the two come together or not at all.
        if (self.building is None) != (self.unit is None):
            raise InvalidIdentifier("renewal_code", "building and unit go together")

    def __str__(self) -> str:
        parts = [self.region, self.district, self.block, self.parcel]
        if self.building is not None and self.unit is not None:
            parts += [self.building, self.unit]
        return "-".join(str(p) for p in parts)


def _positive_parts(kind: str, parts: list[str]) -> list[int]:
    if not all(_is_digits(p) for p in parts):
        raise InvalidIdentifier(kind, "parts must be numbers")
    if max(len(p) for p in parts) > MAX_PART_DIGITS:
        raise InvalidIdentifier(kind, f"parts must be at most {MAX_PART_DIGITS} digits")
    numbers = [int(p) for p in parts]
    if min(numbers) < 1:
        raise InvalidIdentifier(kind, "parts must be positive")
    return numbers


def parse_renewal_code(text: str) -> RenewalCode:
    """Parse a renewal code written with '-', '/' or spaces between its 4 or 6 parts."""
    normalized = _folded("renewal_code", text)
    if not normalized:
        raise InvalidIdentifier("renewal_code", "is empty")
    parts = _RENEWAL_SEPARATOR.split(normalized)
    if len(parts) not in (4, 6):
        raise InvalidIdentifier("renewal_code", "must have 4 or 6 parts")
    numbers = _positive_parts("renewal_code", parts)
    region, district, block, parcel = numbers[:4]
    building, unit = numbers[4:] if len(numbers) == 6 else (None, None)
    return RenewalCode(region, district, block, parcel, building, unit)


# --- Registry plate (پلاک ثبتی) -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RegistryPlate:
    """A land-registry plate: sub plate of a main plate, within a registry section."""

    section: int
    main: int
    sub: int

    def __str__(self) -> str:
        return f"{self.section}-{self.main}/{self.sub}"


def parse_registry_plate(text: str) -> RegistryPlate:
    """Parse a plate written as "section-main/sub", e.g. "11-45/123"."""
    match = _PLATE.fullmatch(_folded("registry_plate", text))
    if match is None:
        raise InvalidIdentifier("registry_plate", "must look like section-main/sub")
    section, main, sub = _positive_parts("registry_plate", [match[1], match[2], match[3]])
    return RegistryPlate(section=section, main=main, sub=sub)
