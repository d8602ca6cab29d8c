"""Inquiries and their checks under their row-level rules (gateway/access/rows.py)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from db.gateway import InquiryCheckRecord, InquiryRecord
from gateway.access.principals import Principal
from gateway.access.rows import RULES
from gateway.inquiries.records import CHECKS, INQUIRIES, Inquiry, InquiryCheck
from gateway.loaders.batching import KeyedQuery, RecordByKey, RecordsByKey

INQUIRY_BY_ID = KeyedQuery(select(INQUIRIES), INQUIRIES.c.id, Inquiry.from_row)
INQUIRY_BY_TRACKING_CODE = KeyedQuery(
    select(INQUIRIES), INQUIRIES.c.tracking_code, Inquiry.from_row
)
# An inquiry's checks are seen with the inquiry: whoever sees it sees them (notes aside).
CHECKS_BY_INQUIRY = KeyedQuery(
    select(CHECKS).order_by(CHECKS.c.id), CHECKS.c.inquiry_id, InquiryCheck.from_row
)


def inquiry_by_id(engine: AsyncEngine, principal: Principal) -> RecordByKey[Inquiry]:
    return RecordByKey(engine, INQUIRY_BY_ID.where(RULES.condition(InquiryRecord, principal)))


def inquiry_by_tracking_code(engine: AsyncEngine, principal: Principal) -> RecordByKey[Inquiry]:
    query = INQUIRY_BY_TRACKING_CODE.where(RULES.condition(InquiryRecord, principal))
    return RecordByKey(engine, query)


def checks_by_inquiry(engine: AsyncEngine) -> RecordsByKey[InquiryCheck]:
    return RecordsByKey(engine, CHECKS_BY_INQUIRY)


CHECK_BY_ID = KeyedQuery(select(CHECKS), CHECKS.c.id, InquiryCheck.from_row)


def check_by_id(engine: AsyncEngine, principal: Principal) -> RecordByKey[InquiryCheck]:
    """A check by node(id): its own department's and operators' (partners read checks
    through their inquiry)."""
    query = CHECK_BY_ID.where(RULES.condition(InquiryCheckRecord, principal))
    return RecordByKey(engine, query)
