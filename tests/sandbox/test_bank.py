"""The bank verifies revenue's payments and account holders, with failures by rule."""

from __future__ import annotations

from typing import Any

import pytest
import zeep.exceptions
from sqlalchemy import select

from db.demo import KNOWN_NATIONAL_CODE
from db.planning import Ownership, Parcel, Person
from db.revenue import Assessment, Payment
from identifiers import BANK_NAMES, make_sheba, parse_sheba
from sandbox.dataset import (
    DECEASED,
    FAILED,
    INACTIVE_ACCOUNT,
    NEVER_PAID,
    REVERSED,
    person_of_sheba,
    sheba_for_person,
)

NS = "urn:ir:bank:inquiry:v1"


def fault_code(error: zeep.exceptions.Fault) -> str | None:
    assert error.detail is not None
    return error.detail.findtext(f"{{{NS}}}ServiceFault/{{{NS}}}code")


async def payments(city: Any) -> list[Any]:
    async with city.revenue.connect() as connection:
        return list(
            (
                await connection.execute(
                    select(
                        Payment.id,
                        Payment.amount,
                        Payment.paid_at,
                        Payment.bank_reference,
                        Assessment.renewal_code,
                    )
                    .join(Assessment, Assessment.id == Payment.assessment_id)
                    .order_by(Payment.id)
                )
            ).all()
        )


async def main_owner(city: Any, renewal_code: str) -> str:
    async with city.planning.connect() as connection:
        code = await connection.scalar(
            select(Person.national_code)
            .join(Ownership, Ownership.person_id == Person.id)
            .join(Parcel, Parcel.id == Ownership.parcel_id)
            .where(Parcel.renewal_code == renewal_code)
            .order_by(Ownership.share.desc(), Ownership.id)
            .limit(1)
        )
    assert code is not None
    return str(code)


async def test_payments_agree_with_revenue_except_by_rule(city: Any, soap_service: Any) -> None:
    service = soap_service("bank")
    seen = set()
    for row in (await payments(city))[:90]:
        if NEVER_PAID.applies(row.id):
            with pytest.raises(zeep.exceptions.Fault) as raised:
                await service.VerifyPayment(reference=row.bank_reference)
            assert fault_code(raised.value) == "UNKNOWN_REFERENCE"
            seen.add("UNKNOWN")
            continue
        payment = await service.VerifyPayment(reference=row.bank_reference)
        assert payment.reference == row.bank_reference
        assert payment.amount == row.amount
        assert payment.paidAt == row.paid_at
        assert payment.payerNationalCode == await main_owner(city, row.renewal_code)
        expected = "SETTLED"
        if FAILED.applies(row.id):
            expected = "FAILED"
        elif REVERSED.applies(row.id):
            expected = "REVERSED"
        assert payment.status == expected
        seen.add(expected)
    assert seen == {"SETTLED", "FAILED", "REVERSED", "UNKNOWN"}


async def test_unknown_reference_is_a_fault(soap_service: Any) -> None:
    with pytest.raises(zeep.exceptions.Fault) as raised:
        await soap_service("bank").VerifyPayment(reference="000")

    assert fault_code(raised.value) == "UNKNOWN_REFERENCE"


async def test_account_holder_of_the_known_person_matches(soap_service: Any) -> None:
    sheba = sheba_for_person(1)

    account = await soap_service("bank").CheckAccountHolder(
        sheba=sheba, nationalCode=KNOWN_NATIONAL_CODE
    )

    assert account.sheba == sheba
    assert account.bankName == BANK_NAMES[sheba[4:7]]
    assert account.holderName == "علی رضایی"
    assert account.holderNationalCode == KNOWN_NATIONAL_CODE
    assert account.matches is True
    assert account.active is True


async def test_another_persons_code_does_not_match_and_no_code_gives_no_verdict(
    soap_service: Any,
) -> None:
    service = soap_service("bank")
    other = await service.CheckAccountHolder(sheba=sheba_for_person(2))
    mismatch = await service.CheckAccountHolder(
        sheba=sheba_for_person(2), nationalCode=KNOWN_NATIONAL_CODE
    )

    assert other.matches is None
    assert other.holderNationalCode != KNOWN_NATIONAL_CODE
    assert mismatch.matches is False


async def test_inactive_accounts_follow_the_rule(soap_service: Any) -> None:
    service = soap_service("bank")
    inactive = next(i for i in range(1, 200) if INACTIVE_ACCOUNT.applies(i))
    dead = next(i for i in range(1, 200) if DECEASED.applies(i))

    assert (await service.CheckAccountHolder(sheba=sheba_for_person(inactive))).active is False
    assert (await service.CheckAccountHolder(sheba=sheba_for_person(dead))).active is False
    assert (await service.CheckAccountHolder(sheba=sheba_for_person(3))).active is True


async def test_sheba_with_wrong_check_digits_is_invalid_input(soap_service: Any) -> None:
    sheba = sheba_for_person(1)
    broken = sheba[:2] + f"{(int(sheba[2:4]) + 1) % 100:02d}" + sheba[4:]

    with pytest.raises(zeep.exceptions.Fault) as raised:
        await soap_service("bank").CheckAccountHolder(sheba=broken)

    assert fault_code(raised.value) == "INVALID_INPUT"


async def test_sheba_of_no_account_is_not_found(soap_service: Any) -> None:
    with pytest.raises(zeep.exceptions.Fault) as raised:
        await soap_service("bank").CheckAccountHolder(sheba=make_sheba("017", "123456"))

    assert fault_code(raised.value) == "NOT_FOUND"


async def test_token_is_optional_at_the_bank(soap_service: Any) -> None:
    account = await soap_service("bank", wsse=None).CheckAccountHolder(sheba=sheba_for_person(1))

    assert account.holderNationalCode == KNOWN_NATIONAL_CODE


def test_sheba_for_person_is_valid_and_invertible() -> None:
    for person_id in (1, 2, 37, 999_999, 123_456_789_012):
        sheba = sheba_for_person(person_id)
        assert parse_sheba(sheba) == sheba
        assert sheba[4:7] in BANK_NAMES
        assert person_of_sheba(sheba) == person_id
    assert person_of_sheba(make_sheba("017", "123456")) is None
    assert person_of_sheba("IR00") is None
