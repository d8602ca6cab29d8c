"""The checks an inquiry is made of, as data: each names who answers it (a department over its
own database, an outside agency, or a department's officer), the facts it needs and, when a
machine answers it, its rule (gateway/inquiries/rules.py).

A check's outcome carries PASS, FAIL or INFO, its reasons in Persian and English, the same as
data, and the time the data it judged was read. Adding an automatic check is a rule and a
definition here; the workflow reads the facts a kind's checks need and runs their rules.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from gateway.access.principals import DEPARTMENTS
from gateway.inquiries import rules
from gateway.inquiries.facts import PERSONAL_FACTS, Fact, Facts, Finding, Json, Outcome
from gateway.inquiries.rules import ChecksConfig, Rule
from gateway.inquiries.wording import Text

__all__ = [
    "CHECKS",
    "Authority",
    "AutomaticCheck",
    "Check",
    "CheckOutcome",
    "ChecksConfig",
    "ManualCheck",
    "check_named",
    "facts_needed",
]


@dataclass(frozen=True, slots=True)
class Authority:
    """Who answers a check: a department of the municipality (by the name its principals carry,
    gateway/access/principals.py DEPARTMENTS) or an outside agency (by its connector's name)."""

    name: str
    agency: bool
    title: Text

    def __post_init__(self) -> None:
        if not self.agency and self.name not in DEPARTMENTS:
            raise ValueError(f"{self.name!r} is not a department")


REVENUE = Authority("revenue", False, Text("واحد درآمد شهرداری", "Revenue department"))
PLANNING = Authority("planning", False, Text("معاونت شهرسازی", "Urban planning department"))
LAND_REGISTRY = Authority(
    "land_registry", True, Text("سازمان ثبت اسناد و املاک کشور", "Land registry")
)
CIVIL_REGISTRY = Authority("civil_registry", True, Text("سازمان ثبت احوال کشور", "Civil registry"))


@dataclass(frozen=True, slots=True)
class CheckOutcome:
    """One check's answer, as the inquiry records and the signed answer carries it.

    `read_at` is when the data judged was read (the oldest fact the check needed), or, for a
    check an officer answered, when they answered. An officer's `note` stays out of the
    reasons: the partner reads the reasons; who reads notes is the schema's policy.
    """

    check: str
    authority: str
    outcome: Outcome
    reasons: tuple[Text, ...]
    details: dict[str, Json]
    read_at: dt.datetime
    officer_role: str | None = None
    note: str | None = None

    @classmethod
    def of(cls, check: Check, finding: Finding, read_at: dt.datetime) -> CheckOutcome:
        return cls(
            check.name, check.authority.name, finding.outcome, finding.reasons, finding.details,
            read_at,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class AutomaticCheck:
    """Answered by a rule over facts from a department's database or an agency."""

    name: str
    title: Text
    authority: Authority
    needs: frozenset[Fact]
    rule: Rule = field(compare=False)
    # A statement reports facts without judging them: its outcome is INFO, never PASS or FAIL.
    statement: bool = False

    def evaluate(self, facts: Facts, config: ChecksConfig) -> CheckOutcome:
        read_at = facts.read_time(self.needs)  # raises MissingFacts before the rule runs
        finding = self.rule(facts, config)
        if (finding.outcome is Outcome.INFO) != self.statement:
            raise ValueError(f"{self.name}: its rule answered {finding.outcome.value}")
        return CheckOutcome.of(self, finding, read_at)


@dataclass(frozen=True, slots=True)
class ManualCheck:
    """Answered by an officer of `authority` (a department), unless `screen` settles it from
    the facts it needs (a finding), in which case no person is asked."""

    name: str
    title: Text
    authority: Authority
    needs: frozenset[Fact]
    screen: rules.Screen = field(compare=False)
    passed: Text
    failed: Text

    def __post_init__(self) -> None:
        if self.authority.agency:
            raise ValueError("a manual check is answered by a department")

    def screened(self, facts: Facts, config: ChecksConfig) -> CheckOutcome | None:
        """The outcome when no officer is needed; None when the check goes to the
        department's queue."""
        read_at = facts.read_time(self.needs)
        finding = self.screen(facts, config)
        return None if finding is None else CheckOutcome.of(self, finding, read_at)

    def answer(
        self, outcome: Outcome, *, note: str, officer_role: str, answered_at: dt.datetime
    ) -> CheckOutcome:
        """An officer's answer: PASS or FAIL, with a note (required: it is the record of why)."""
        if outcome is Outcome.INFO:
            raise ValueError("an officer answers PASS or FAIL")
        if not note.strip():
            raise ValueError("an officer's answer needs a note")
        if answered_at.tzinfo is None:
            raise ValueError("answered_at must be aware")
        reason = self.passed if outcome is Outcome.PASS else self.failed
        return CheckOutcome(
            check=self.name,
            authority=self.authority.name,
            outcome=outcome,
            reasons=(reason,),
            details={"officer_role": officer_role},
            read_at=answered_at,
            officer_role=officer_role,
            note=note.strip(),
        )


Check = AutomaticCheck | ManualCheck


def facts_needed(checks: Iterable[Check]) -> frozenset[Fact]:
    """What the workflow reads for these checks (the parcel always)."""
    return frozenset({Fact.PARCEL}).union(*(check.needs for check in checks))


def needs_personal_data(check: Check) -> bool:
    return bool(check.needs & PERSONAL_FACTS)


# --- The checks ------------------------------------------------------------------------------

DUES_SETTLED = AutomaticCheck(
    "dues_settled",
    Text("تسویه عوارض شهرداری", "Municipal dues settled"),
    REVENUE,
    frozenset({Fact.DUES}),
    rules.dues_settled,
)
CERTIFICATE_ISSUED = AutomaticCheck(
    "certificate_issued",
    Text("گواهی پایان کار یا عدم خلاف", "Completion or no-violation certificate"),
    PLANNING,
    frozenset({Fact.CERTIFICATES}),
    rules.certificate_rule("completion", "no_violation"),
)
COMPLETION_CERTIFICATE = AutomaticCheck(
    "completion_certificate",
    Text("گواهی پایان کار", "Completion certificate"),
    PLANNING,
    frozenset({Fact.CERTIFICATES}),
    rules.certificate_rule("completion"),
)
NO_OPEN_VIOLATION = AutomaticCheck(
    "no_open_violation",
    Text(
        "نبود تخلف باز یا رأی اجرانشده ماده ۱۰۰",
        "No open violation or unexecuted Article 100 ruling",
    ),
    PLANNING,
    frozenset({Fact.VIOLATIONS}),
    rules.no_open_violation,
)
DEED_MATCHES_OWNERS = AutomaticCheck(
    "deed_matches_owners",
    Text("تطابق سند ثبتی با مالکان", "Deed agrees with the owners"),
    LAND_REGISTRY,
    frozenset({Fact.DEED, Fact.OWNERSHIPS}),
    rules.deed_matches_owners,
)
NO_SEIZURE = AutomaticCheck(
    "no_seizure",
    Text("نبود بازداشت بر سند", "No seizure on the deed"),
    LAND_REGISTRY,
    frozenset({Fact.DEED}),
    rules.no_seizure,
)
APPLICANT_ALIVE = AutomaticCheck(
    "applicant_alive",
    Text("در قید حیات بودن متقاضی", "Applicant alive"),
    CIVIL_REGISTRY,
    frozenset({Fact.APPLICANT_RECORD}),
    rules.applicant_alive,
)
COLLATERAL_ALLOWED = AutomaticCheck(
    "collateral_allowed",
    Text("کاربری و تراکم مجاز برای ترهین", "Land use and density allow a mortgage"),
    PLANNING,
    frozenset({Fact.PARCEL}),
    rules.collateral_allowed,
)
BUILDING_MATCHES_PERMIT = ManualCheck(
    "building_matches_permit",
    Text("تطابق ساختمان با پروانه", "Building matches its permit"),
    PLANNING,
    frozenset({Fact.BUILDINGS, Fact.CERTIFICATES, Fact.OPEN_COMPLAINTS}),
    rules.permit_review_or_complaint,
    passed=Text(
        "به تأیید شهرسازی، ساختمان با پروانه ساختمانی آن مطابقت دارد",
        "Urban planning confirms the building matches its building permit",
    ),
    failed=Text(
        "به گزارش شهرسازی، ساختمان با پروانه ساختمانی آن مطابقت ندارد",
        "Urban planning reports the building does not match its building permit",
    ),
)
DUES_STATEMENT = AutomaticCheck(
    "dues_statement",
    Text("وضعیت عوارض", "Dues"),
    REVENUE,
    frozenset({Fact.DUES}),
    rules.statement(rules.dues_settled),
    statement=True,
)
CERTIFICATES_STATEMENT = AutomaticCheck(
    "certificates_statement",
    Text("گواهی‌های ملک", "Certificates"),
    PLANNING,
    frozenset({Fact.CERTIFICATES}),
    rules.certificates_statement,
    statement=True,
)
VIOLATIONS_STATEMENT = AutomaticCheck(
    "violations_statement",
    Text("تخلفات ملک", "Violations"),
    PLANNING,
    frozenset({Fact.VIOLATIONS}),
    rules.statement(rules.no_open_violation),
    statement=True,
)


def _by_name(*checks: Check) -> Mapping[str, Check]:
    named: dict[str, Check] = {}
    for check in checks:
        if check.name in named:
            raise ValueError(f"two checks are named {check.name!r}")
        named[check.name] = check
    return named


# Every check by the name an inquiry's rows store.
CHECKS: Mapping[str, Check] = _by_name(
    DUES_SETTLED,
    CERTIFICATE_ISSUED,
    COMPLETION_CERTIFICATE,
    NO_OPEN_VIOLATION,
    DEED_MATCHES_OWNERS,
    NO_SEIZURE,
    APPLICANT_ALIVE,
    COLLATERAL_ALLOWED,
    BUILDING_MATCHES_PERMIT,
    DUES_STATEMENT,
    CERTIFICATES_STATEMENT,
    VIOLATIONS_STATEMENT,
)


def check_named(name: str) -> Check:
    try:
        return CHECKS[name]
    except KeyError:
        raise ValueError(f"no check is named {name!r}") from None
