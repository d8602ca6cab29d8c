"""The bank connector against the sandbox bank: payment verification and account holders."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from connectors.errors import AgencyRejected
from connectors.soap.bank import IRAN, AccountHolder, PaymentVerification
from db.planning import Person
from db.revenue import Payment
from identifiers import make_sheba
from sandbox import dataset


async def payments(city: Any) -> list[tuple[int, str]]:
    async with city.databases.revenue.connect() as connection:
        rows = (
            await connection.execute(
                select(Payment.id, Payment.bank_reference).order_by(Payment.id)
            )
        ).all()
    return [(row.id, row.bank_reference) for row in rows]


async def people(city: Any) -> list[tuple[int, str]]:
    async with city.databases.planning.connect() as connection:
        rows = (
            await connection.execute(select(Person.id, Person.national_code).order_by(Person.id))
        ).all()
    return [(row.id, row.national_code) for row in rows]


async def test_a_payment_is_the_banks_record_of_it(city: Any, agencies: Any) -> None:
    everything = await payments(city)
    sample = [
        *[p for p in everything if dataset.NEVER_PAID.applies(p[0])][:2],
        *[p for p in everything if dataset.FAILED.applies(p[0])][:2],
        *[p for p in everything if dataset.REVERSED.applies(p[0])][:2],
        *everything[:10],
    ]
    statuses = set()
    for _, reference in sample:
        truth = await city.dataset.payment(reference)
        found = await agencies.bank.verify_payment(reference)
        if truth is None:
            assert found is None
            continue
        assert found == PaymentVerification(
            reference=truth.reference,
            amount=truth.amount,
            paid_at=truth.paid_at.replace(tzinfo=IRAN),
            payer_national_code=truth.payer_national_code,
            status=truth.status,
        )
        statuses.add(found.status)
    assert statuses == {"SETTLED", "FAILED", "REVERSED"}


async def test_payments_are_asked_every_time_since_their_status_changes(
    city: Any, agencies: Any, calls: Any
) -> None:
    _, reference = (await payments(city))[0]
    await agencies.bank.verify_payment(reference)
    await agencies.bank.verify_payment(reference)
    assert len(await calls("bank")) == 2


async def test_an_unknown_reference_is_none(agencies: Any) -> None:
    assert await agencies.bank.verify_payment("NO-SUCH-REFERENCE-1") is None


async def test_an_account_holder_is_the_banks_record_and_is_remembered(
    city: Any, agencies: Any, calls: Any
) -> None:
    for person_id, national_code in (await people(city))[:8]:
        sheba = dataset.sheba_for_person(person_id)
        truth = await city.dataset.account(sheba)
        assert truth is not None
        expected = AccountHolder(
            sheba=sheba,
            bank_name=truth.bank_name,
            holder_name=f"{truth.holder.first_name} {truth.holder.last_name}",
            holder_national_code=national_code,
            active=truth.active,
            matches=None,
        )
        assert await agencies.bank.account_holder(sheba) == expected
        assert await agencies.bank.account_holder(sheba) == expected
    assert len(await calls("bank")) == 8


async def test_an_account_holder_check_says_whether_the_national_code_holds_it(
    city: Any, agencies: Any
) -> None:
    (first_id, first_code), (_, second_code) = (await people(city))[:2]
    sheba = dataset.sheba_for_person(first_id)
    holder = await agencies.bank.account_holder(sheba, first_code)
    assert holder is not None
    assert holder.matches is True
    other = await agencies.bank.account_holder(sheba, second_code)
    assert other is not None
    assert other.matches is False


async def test_an_unknown_account_is_none_and_a_malformed_sheba_rejected(agencies: Any) -> None:
    assert await agencies.bank.account_holder(make_sheba("017", "9" * 19)) is None
    with pytest.raises(AgencyRejected) as caught:
        await agencies.bank.account_holder("IR" + "0" * 24)
    assert caught.value.fault_code == "INVALID_INPUT"


async def test_the_bank_takes_calls_without_a_token_but_not_with_a_wrong_one(
    city: Any, make_agencies: Any, calls: Any
) -> None:
    _, reference = (await payments(city))[0]
    anonymous = make_agencies(bank={"username": None, "password": None})
    assert await anonymous.bank.verify_payment(reference) is not None
    assert (await calls("bank"))[0]["username"] is None

    wrong = make_agencies(bank={"password": "not-the-bank-secret"})
    with pytest.raises(AgencyRejected) as caught:
        await wrong.bank.verify_payment(reference)
    assert caught.value.fault_code == "AUTHENTICATION_FAILED"
