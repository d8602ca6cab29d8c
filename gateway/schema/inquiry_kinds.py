"""The kinds of inquiry as GraphQL names them (gateway/inquiries/kinds.py defines them)."""

from __future__ import annotations

from enum import Enum

import strawberry


@strawberry.enum(description="What an inquiry asks, and who may ask it.")
class InquiryKind(Enum):
    PROPERTY_TRANSFER = strawberry.enum_value(
        "PROPERTY_TRANSFER", description="A notary, before a sale (نقل و انتقال)."
    )
    MORTGAGE = strawberry.enum_value(
        "MORTGAGE", description="A bank, before taking the property as collateral (ترهین)."
    )
    PROPERTY_STATUS = strawberry.enum_value(
        "PROPERTY_STATUS",
        description="A government counter: the parcel's dues, certificates and violations, "
        "no personal data.",
    )
