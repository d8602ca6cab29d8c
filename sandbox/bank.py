"""The simulated bank: payment verification by reference and account-holder checks by Sheba."""

from __future__ import annotations

from lxml import etree

from identifiers import InvalidIdentifier, parse_national_code, parse_sheba
from sandbox import wsdl
from sandbox.agency import Payload, SoapAgency, child_text, required_text, xs_boolean
from sandbox.calls import CallLog
from sandbox.chaos import Chaos
from sandbox.dataset import Dataset
from sandbox.soap import INVALID_INPUT, NOT_FOUND, SoapFault
from sandbox.wsse import Credentials, UsernameTokenGuard

NAME = "bank"
NAMESPACE = "urn:ir:bank:inquiry:v1"
UNKNOWN_REFERENCE = "UNKNOWN_REFERENCE"


class Bank:
    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset
        self.payload = Payload(NAMESPACE)

    async def verify_payment(self, request: etree._Element) -> etree._Element:
        payment = await self.dataset.payment(required_text(request, "reference"))
        if payment is None:
            raise SoapFault(UNKNOWN_REFERENCE, "the bank has no payment with this reference")
        add = self.payload.add
        response = self.payload.root("VerifyPaymentResponse")
        element = add(response, "payment")
        add(element, "reference", payment.reference)
        add(element, "amount", str(payment.amount))
        add(element, "paidAt", payment.paid_at.isoformat())
        if payment.payer_national_code is not None:
            add(element, "payerNationalCode", payment.payer_national_code)
        add(element, "status", payment.status)
        return response

    async def check_account_holder(self, request: etree._Element) -> etree._Element:
        try:
            sheba = parse_sheba(required_text(request, "sheba"))
            national_code_text = child_text(request, "nationalCode")
            national_code = parse_national_code(national_code_text) if national_code_text else None
        except InvalidIdentifier as exc:
            raise SoapFault(INVALID_INPUT, str(exc)) from exc
        account = await self.dataset.account(sheba)
        if account is None:
            raise SoapFault(NOT_FOUND, "no account has this Sheba")
        holder = account.holder
        add = self.payload.add
        response = self.payload.root("CheckAccountHolderResponse")
        element = add(response, "account")
        add(element, "sheba", account.sheba)
        add(element, "bankName", account.bank_name)
        add(element, "holderName", f"{holder.first_name} {holder.last_name}")
        add(element, "holderNationalCode", holder.national_code)
        if national_code is not None:
            add(element, "matches", xs_boolean(national_code == holder.national_code))
        add(element, "active", xs_boolean(account.active))
        return response


def build(
    dataset: Dataset,
    *,
    credentials: Credentials | None = None,
    chaos: Chaos | None = None,
    calls: CallLog | None = None,
) -> SoapAgency:
    bank = Bank(dataset)
    return SoapAgency(
        NAME,
        wsdl.load(NAME),
        {"VerifyPayment": bank.verify_payment, "CheckAccountHolder": bank.check_account_holder},
        # Banks take the token when sent but do not insist on it.
        UsernameTokenGuard(credentials or Credentials.from_env(NAME), required=False),
        chaos=chaos,
        calls=calls,
    )
