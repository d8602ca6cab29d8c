"""The kinds of inquiry, as data: each lists its checks, the kinds of caller who may ask it,
how long its answer stays valid and how long a department has for its manual checks.

Who may ask is the access layer's own PrincipalKind: the import contract puts `access` below
the domain, so the domain names callers as the rest of the gateway does.

A new kind is one entry in `_KINDS` (and its name in the schema's InquiryKind enum); timing is
configuration (`InquiriesConfig`), which the coordinator maps from settings.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from gateway.access.principals import PrincipalKind
from gateway.inquiries import checks
from gateway.inquiries.checks import (
    AutomaticCheck,
    Check,
    ChecksConfig,
    ManualCheck,
    needs_personal_data,
)
from gateway.inquiries.wording import Text
from gateway.inquiries.workdays import Deadline, Workweek

__all__ = [
    "KINDS",
    "MORTGAGE",
    "PROPERTY_STATUS",
    "PROPERTY_TRANSFER",
    "InquiriesConfig",
    "InquiryKind",
    "KindTiming",
    "inquiry_kinds",
    "kind_named",
]

PROPERTY_TRANSFER = "PROPERTY_TRANSFER"
MORTGAGE = "MORTGAGE"
PROPERTY_STATUS = "PROPERTY_STATUS"


@dataclass(frozen=True, slots=True)
class KindTiming:
    validity: dt.timedelta  # how long a decided answer stays valid
    manual_deadline: Deadline  # how long a department has for each manual check


# About a month, as answers are in practice; a week of working days for a department.
DEFAULT_TIMING = KindTiming(
    validity=dt.timedelta(days=30), manual_deadline=Deadline.working_days(5)
)


@dataclass(frozen=True, slots=True)
class InquiriesConfig:
    """Everything about inquiries an operator may set: per-kind timing (a kind not named
    takes `default_timing`), the working week deadlines count in, and the checks' thresholds."""

    default_timing: KindTiming = DEFAULT_TIMING
    timing: Mapping[str, KindTiming] = field(default_factory=lambda: MappingProxyType({}))
    workweek: Workweek = field(default_factory=Workweek)
    checks: ChecksConfig = field(default_factory=ChecksConfig)

    def timing_of(self, kind: str) -> KindTiming:
        return self.timing.get(kind, self.default_timing)


@dataclass(frozen=True, slots=True)
class InquiryKind:
    name: str  # as the schema's InquiryKind enum and the signed answer name it
    title: Text
    checks: tuple[Check, ...]
    askers: frozenset[PrincipalKind]
    # Whether the inquiry concerns people (the applicant, the owners): a kind that does not
    # (a counter's statement) may not have a check that reads personal data.
    personal_data: bool
    validity: dt.timedelta
    manual_deadline: Deadline
    workweek: Workweek

    def __post_init__(self) -> None:
        if not self.checks:
            raise ValueError(f"{self.name}: a kind has at least one check")
        names = [check.name for check in self.checks]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.name}: a check is listed twice")
        if not self.personal_data and any(needs_personal_data(c) for c in self.checks):
            raise ValueError(f"{self.name}: a check reads personal data the kind promises not to")
        if self.validity <= dt.timedelta(0):
            raise ValueError(f"{self.name}: validity must be positive")

    def may_ask(self, kind: PrincipalKind) -> bool:
        return kind in self.askers

    @property
    def statement_only(self) -> bool:
        """Every check reports without judging (see verdict.py for how such a kind ends)."""
        return all(isinstance(c, AutomaticCheck) and c.statement for c in self.checks)

    @property
    def manual_checks(self) -> tuple[ManualCheck, ...]:
        return tuple(check for check in self.checks if isinstance(check, ManualCheck))

    def check(self, name: str) -> Check:
        for check in self.checks:
            if check.name == name:
                return check
        raise ValueError(f"{self.name} has no check named {name!r}")

    def valid_until(self, decided_at: dt.datetime) -> dt.datetime:
        return decided_at + self.validity

    def manual_due_at(self, assigned_at: dt.datetime) -> dt.datetime:
        """When a manual check that reached its department at `assigned_at` is due."""
        return self.manual_deadline.due_at(assigned_at, self.workweek)


@dataclass(frozen=True, slots=True)
class _Definition:
    title: Text
    checks: tuple[Check, ...]
    askers: frozenset[PrincipalKind]
    personal_data: bool


_KINDS: Mapping[str, _Definition] = {
    # نقل و انتقال: a notary, before a sale; the applicant is the seller.
    PROPERTY_TRANSFER: _Definition(
        Text("استعلام نقل و انتقال ملک", "Property transfer inquiry"),
        (
            checks.DUES_SETTLED,
            checks.CERTIFICATE_ISSUED,
            checks.NO_OPEN_VIOLATION,
            checks.DEED_MATCHES_OWNERS,
            checks.NO_SEIZURE,
            checks.APPLICANT_ALIVE,
            checks.BUILDING_MATCHES_PERMIT,
        ),
        frozenset({PrincipalKind.NOTARY}),
        personal_data=True,
    ),
    # ترهین: a bank, before taking the property as collateral; not valid for a transfer.
    MORTGAGE: _Definition(
        Text("استعلام ترهین ملک", "Mortgage inquiry"),
        (checks.COLLATERAL_ALLOWED, checks.COMPLETION_CERTIFICATE, checks.NO_SEIZURE),
        frozenset({PrincipalKind.BANK}),
        # The deed is read for its seizures; the answer names no person.
        personal_data=True,
    ),
    # A government counter's statement of the parcel for a citizen: no personal data.
    PROPERTY_STATUS: _Definition(
        Text("گزارش وضعیت ملک", "Property status statement"),
        (checks.DUES_STATEMENT, checks.CERTIFICATES_STATEMENT, checks.VIOLATIONS_STATEMENT),
        frozenset({PrincipalKind.COUNTER}),
        personal_data=False,
    ),
}


def inquiry_kinds(config: InquiriesConfig | None = None) -> Mapping[str, InquiryKind]:
    """Every kind, with the timing `config` gives it, by name."""
    config = config or InquiriesConfig()
    unknown = set(config.timing) - set(_KINDS)
    if unknown:
        raise ValueError(f"timing configured for unknown kinds: {', '.join(sorted(unknown))}")
    return MappingProxyType(
        {
            name: InquiryKind(
                name=name,
                title=definition.title,
                checks=definition.checks,
                askers=definition.askers,
                personal_data=definition.personal_data,
                validity=config.timing_of(name).validity,
                manual_deadline=config.timing_of(name).manual_deadline,
                workweek=config.workweek,
            )
            for name, definition in _KINDS.items()
        }
    )


# The kinds with the default configuration.
KINDS = inquiry_kinds()


def kind_named(name: str, kinds: Mapping[str, InquiryKind] = KINDS) -> InquiryKind:
    try:
        return kinds[name]
    except KeyError:
        raise ValueError(f"no inquiry kind is named {name!r}") from None
