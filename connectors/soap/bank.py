"""The bank: payment verification by bank reference, and who holds an account (by Sheba)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast
from zoneinfo import ZoneInfo

from connectors.answers import Malformed, field, optional, reading
from connectors.soap.client import SoapConnector

__all__ = ["AccountHolder", "Bank", "PaymentStatus", "PaymentVerification"]

AGENCY = "bank"
VERIFY_PAYMENT = "VerifyPayment"
CHECK_ACCOUNT_HOLDER = "CheckAccountHolder"
UNKNOWN_REFERENCE = "UNKNOWN_REFERENCE"
NOT_FOUND = "NOT_FOUND"
# The bank writes paidAt in Iran's local time, without an offset.
IRAN = ZoneInfo("Asia/Tehran")

PaymentStatus = Literal["SETTLED", "FAILED", "REVERSED"]


@dataclass(frozen=True, slots=True)
class PaymentVerification:
    reference: str
    amount: int  # rials
    paid_at: dt.datetime  # aware
    payer_national_code: str | None
    status: PaymentStatus


@dataclass(frozen=True, slots=True)
class AccountHolder:
    sheba: str
    bank_name: str
    holder_name: str
    holder_national_code: str
    active: bool
    matches: bool | None  # whether the national code asked about holds it; None if none asked


def _payment(data: Mapping[str, Any]) -> PaymentVerification:
    status = field(data, "status", str)
    if status not in ("SETTLED", "FAILED", "REVERSED"):
        raise Malformed("status")
    paid_at = field(data, "paidAt", dt.datetime)
    if paid_at.tzinfo is None:
        paid_at = paid_at.replace(tzinfo=IRAN)
    return PaymentVerification(
        reference=field(data, "reference", str),
        amount=field(data, "amount", int),
        paid_at=paid_at,
        payer_national_code=optional(data, "payerNationalCode", str),
        status=cast(PaymentStatus, status),
    )


def _account(data: Mapping[str, Any]) -> AccountHolder:
    return AccountHolder(
        sheba=field(data, "sheba", str),
        bank_name=field(data, "bankName", str),
        holder_name=field(data, "holderName", str),
        holder_national_code=field(data, "holderNationalCode", str),
        active=field(data, "active", bool),
        matches=optional(data, "matches", bool),
    )


class Bank(SoapConnector):
    """Payments are never cached, since a payment's status changes (a reversal); account
    holders are, per the bank's policy."""

    agency = AGENCY
    wsdl = "bank.wsdl"
    binding = "BankSoap11Binding"

    async def verify_payment(self, reference: str) -> PaymentVerification | None:
        """The payment with this bank reference, or None when the bank has no such payment."""

        async def fetch() -> PaymentVerification | None:
            answer = await self._service.call(
                VERIFY_PAYMENT, not_found={UNKNOWN_REFERENCE}, reference=reference
            )
            if answer is None:
                return None
            with reading(AGENCY, VERIFY_PAYMENT):
                return _payment(answer)

        # No key: neither cached nor shared, though still retried (reading it changes nothing).
        return await self.guard.call(VERIFY_PAYMENT, None, fetch)

    async def account_holder(
        self, sheba: str, national_code: str | None = None
    ) -> AccountHolder | None:
        """Who holds the account `sheba` (and whether it is `national_code`), or None when no
        account has this Sheba."""

        async def fetch() -> AccountHolder | None:
            answer = await self._service.call(
                CHECK_ACCOUNT_HOLDER,
                not_found={NOT_FOUND},
                sheba=sheba,
                nationalCode=national_code,
            )
            if answer is None:
                return None
            with reading(AGENCY, CHECK_ACCOUNT_HOLDER):
                return _account(answer)

        return await self.guard.call(CHECK_ACCOUNT_HOLDER, (sheba, national_code), fetch)
