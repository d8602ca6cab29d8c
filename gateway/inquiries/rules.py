"""The automatic checks' rules: pure functions from the facts read for an inquiry to a finding,
with every reason in Persian and English and the same as data. A new automatic check is one
function here and one definition in checks.py.

National IDs never appear in clear, in the reasons or in the details: `masked` masks them as
the schema does (gateway/access/permissions.py), in this one place.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from connectors.soap.land_registry import Deed
from gateway.access.permissions import mask_national_code as masked
from gateway.dues import DueItem
from gateway.inquiries.facts import Fact, Facts, Finding, Json, Outcome, json_list
from gateway.inquiries.wording import (
    Text,
    dang,
    dang_fa,
    date_en,
    date_fa,
    rials_en,
    rials_fa,
)
from gateway.inquiries.workdays import TEHRAN
from gateway.parcels import Certificate, Violation

# --- Policy ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CollateralPolicy:
    """What a bank may take as collateral for a mortgage (ترهین).

    | land use     | accepted | why                                                        |
    |--------------|----------|------------------------------------------------------------|
    | residential  | yes      | the common case                                            |
    | commercial   | yes      | shops and offices are sold and pledged like homes          |
    | office       | yes      |                                                            |
    | industrial   | no       | pledged under industrial lending, not a municipal inquiry  |
    | green_space  | no       | public use: the parcel cannot be built on or sold freely   |
    | educational  | no       | public use                                                 |

    Density (تراکم, built area as a percentage of the parcel's) above `max_density_percent`
    is refused: such a building is likely beyond what its zone permits, and a bank does not
    lend against floors an Article 100 ruling might order demolished.
    """

    land_uses: frozenset[str] = frozenset({"residential", "commercial", "office"})
    max_density_percent: int = 200


@dataclass(frozen=True, slots=True)
class ChecksConfig:
    """The checks' configurable thresholds (the coordinator maps settings onto it)."""

    # Planning reviews whether a building still matches its permit when its newest
    # certificate is older than this.
    certificate_max_age_years: int = 10
    collateral: CollateralPolicy = field(default_factory=CollateralPolicy)


Rule = Callable[[Facts, ChecksConfig], Finding]
# A manual check's screen: a finding settles it without a person; None sends it to one.
Screen = Callable[[Facts, ChecksConfig], Finding | None]

# --- Vocabularies (the planning and revenue models' values), in both languages ---------------

DUE_KINDS = {
    "renewal_duty": Text("عوارض نوسازی", "Renewal duty"),
    "waste_fee": Text("عوارض پسماند", "Waste fee"),
    "other": Text("سایر عوارض", "Other charges"),
}
CERTIFICATE_KINDS = {
    "completion": Text("گواهی پایان کار", "Completion certificate"),
    "no_violation": Text("گواهی عدم خلاف", "No-violation certificate"),
}
VIOLATION_KINDS = {
    "excess_density": Text("بنای مازاد بر تراکم", "building beyond the permitted density"),
    "no_permit": Text("بنای بدون پروانه", "building without a permit"),
    "parking_removed": Text("حذف پارکینگ", "parking removed"),
    "use_change": Text("تغییر کاربری", "change of use"),
    "setback": Text("عدم رعایت عقب‌نشینی", "setback not observed"),
}
RULINGS = {
    "fine": Text("جریمه", "fine"),
    "demolition": Text("قلع بنا", "demolition"),
    "settled": Text("ابقای بنا", "retention of the building"),
}
LAND_USES = {
    "residential": Text("مسکونی", "residential"),
    "commercial": Text("تجاری", "commercial"),
    "office": Text("اداری", "office"),
    "industrial": Text("صنعتی", "industrial"),
    "green_space": Text("فضای سبز", "green space"),
    "educational": Text("آموزشی", "educational"),
}
_DUE_ORDER = {kind: index for index, kind in enumerate(DUE_KINDS)}


def _named(vocabulary: dict[str, Text], value: str) -> Text:
    """A value's name; one the vocabulary does not know yet is shown as stored."""
    return vocabulary.get(value) or Text(value, value)


# --- Dues ------------------------------------------------------------------------------------


def _unpaid(item: DueItem) -> Text:
    kind = _named(DUE_KINDS, item.kind)
    return Text(
        f"{kind.fa} سال {item.period} به مبلغ {rials_fa(item.outstanding)} ریال پرداخت نشده است",
        f"{kind.en} for {item.period} unpaid: {rials_en(item.outstanding)} rials",
    )


def dues_settled(facts: Facts, config: ChecksConfig) -> Finding:
    """Every due of the parcel (renewal duty, waste fee, other charges, every period) paid."""
    assert facts.dues is not None  # Facts refuses DUES read without them
    items = facts.dues.items
    unpaid = sorted(
        (item for item in items if item.outstanding > 0),
        key=lambda item: (item.period, _DUE_ORDER.get(item.kind, len(_DUE_ORDER)), item.id),
    )
    details: dict[str, Json] = {
        "renewal_code": facts.dues.renewal_code,
        "outstanding": facts.dues.outstanding,
        "periods": json_list(sorted({item.period for item in items})),
        "unpaid": [
            {
                "kind": item.kind,
                "period": item.period,
                "amount": item.amount,
                "paid": item.paid,
                "outstanding": item.outstanding,
            }
            for item in unpaid
        ],
    }
    if unpaid:
        return Finding(Outcome.FAIL, tuple(_unpaid(item) for item in unpaid), details)
    if not items:
        reason = Text(
            "واحد درآمد عوارضی برای این ملک ثبت نکرده است", "Revenue holds no dues for the parcel"
        )
    else:
        reason = Text(
            "همه عوارض شهرداری ملک پرداخت شده است", "Every municipal due of the parcel is paid"
        )
    return Finding(Outcome.PASS, (reason,), details)


# --- Certificates ----------------------------------------------------------------------------


def _newest(certificates: tuple[Certificate, ...]) -> Certificate | None:
    return max(certificates, key=lambda c: (c.issued_on, c.id), default=None)


def _issued(certificate: Certificate) -> Text:
    kind = _named(CERTIFICATE_KINDS, certificate.kind)
    return Text(
        f"{kind.fa} شماره {certificate.number} مورخ {date_fa(certificate.issued_on)} صادر شده است",
        f"{kind.en} {certificate.number} issued on {date_en(certificate.issued_on)}",
    )


def _certificate_json(certificate: Certificate) -> dict[str, Json]:
    return {
        "kind": certificate.kind,
        "number": certificate.number,
        "issued_on": certificate.issued_on.isoformat(),
    }


def certificate_rule(*kinds: str) -> Rule:
    """A rule that passes when the parcel holds a certificate of one of `kinds`."""
    if not kinds:
        raise ValueError("name at least one kind of certificate")
    names = [_named(CERTIFICATE_KINDS, kind) for kind in kinds]
    missing = Text(
        f"برای ملک {' یا '.join(name.fa for name in names)} صادر نشده است",
        f"No {' or '.join(name.en.lower() for name in names)} has been issued for the parcel",
    )

    def rule(facts: Facts, config: ChecksConfig) -> Finding:
        found = _newest(tuple(c for c in facts.certificates if c.kind in kinds))
        if found is None:
            return Finding(Outcome.FAIL, (missing,), {"missing": list(kinds)})
        return Finding(Outcome.PASS, (_issued(found),), {"certificate": _certificate_json(found)})

    return rule


def certificates_statement(facts: Facts, config: ChecksConfig) -> Finding:
    """Every certificate of the parcel, newest first; nothing judged."""
    certificates = sorted(facts.certificates, key=lambda c: (c.issued_on, c.id), reverse=True)
    details: dict[str, Json] = {"certificates": [_certificate_json(c) for c in certificates]}
    if not certificates:
        none = Text(
            "برای ملک گواهی‌ای صادر نشده است", "No certificate has been issued for the parcel"
        )
        return Finding(Outcome.INFO, (none,), details)
    return Finding(Outcome.INFO, tuple(_issued(c) for c in certificates), details)


# --- Violations ------------------------------------------------------------------------------


def _ruling(violation: Violation) -> Text:
    name = _named(RULINGS, violation.ruling or "")
    if violation.fine is not None:
        name = Text(
            f"{name.fa} به مبلغ {rials_fa(violation.fine)} ریال",
            f"{name.en} of {rials_en(violation.fine)} rials",
        )
    if violation.ruled_on is not None:
        name = Text(
            f"{name.fa} مورخ {date_fa(violation.ruled_on)}",
            f"{name.en} of {date_en(violation.ruled_on)}",
        )
    return name


def _unsettled(violation: Violation) -> Text:
    kind = _named(VIOLATION_KINDS, violation.kind)
    if violation.ruling is None:
        return Text(
            f"تخلف «{kind.fa}» که در {date_fa(violation.detected_on)} کشف شده، هنوز در "
            "کمیسیون ماده ۱۰۰ رسیدگی نشده است",
            f"Open violation ({kind.en}), detected on {date_en(violation.detected_on)}, not yet "
            "ruled on by the Article 100 commission",
        )
    ruling = _ruling(violation)
    return Text(
        f"رأی کمیسیون ماده ۱۰۰ ({ruling.fa}) درباره تخلف «{kind.fa}» اجرا نشده است",
        f"Article 100 commission ruling ({ruling.en}) on the violation ({kind.en}) not executed",
    )


def no_open_violation(facts: Facts, config: ChecksConfig) -> Finding:
    """No violation still open: neither one awaiting the Article 100 commission nor one whose
    ruling is not yet executed. Planning marks a violation resolved once its ruling is carried
    out (the fine paid, the demolition done), so an open violation with a ruling is exactly
    an unexecuted ruling."""
    unsettled = [v for v in facts.violations if v.status != "resolved"]
    details: dict[str, Json] = {
        "violations": [
            {
                "kind": v.kind,
                "status": v.status,
                "detected_on": v.detected_on.isoformat(),
                "ruling": v.ruling,
                "ruled_on": None if v.ruled_on is None else v.ruled_on.isoformat(),
                "fine": v.fine,
            }
            for v in unsettled
        ]
    }
    if unsettled:
        return Finding(Outcome.FAIL, tuple(_unsettled(v) for v in unsettled), details)
    clear = Text(
        "ملک تخلف باز یا رأی اجرانشده کمیسیون ماده ۱۰۰ ندارد",
        "No open violation and no unexecuted Article 100 ruling",
    )
    return Finding(Outcome.PASS, (clear,), details)


# --- The deed (land registry) ----------------------------------------------------------------


def _no_deed(facts: Facts) -> Finding:
    plate = facts.parcel.registry_plate
    return Finding(
        Outcome.FAIL,
        (
            Text(
                f"سازمان ثبت برای پلاک ثبتی {plate} سندی اعلام نکرد",
                f"The land registry has no deed for registry plate {plate}",
            ),
        ),
        {"registry_plate": plate, "deed": None},
    )


def _share_disagreement(code: str, on_deed: Decimal | None, municipal: Decimal | None) -> Text:
    owner = masked(code)
    if municipal is None:
        assert on_deed is not None
        return Text(
            f"مالک {owner} با {dang_fa(on_deed)} دانگ در سند ثبتی آمده اما در پرونده شهرداری نیست",
            f"Owner {owner} holds {dang(on_deed)} dang on the deed but is not in the "
            "municipality's record",
        )
    if on_deed is None:
        return Text(
            f"مالک {owner} با {dang_fa(municipal)} دانگ در پرونده شهرداری آمده اما در سند "
            "ثبتی نیست",
            f"Owner {owner} holds {dang(municipal)} dang in the municipality's record but is "
            "not on the deed",
        )
    return Text(
        f"سهم مالک {owner} در سند ثبتی {dang_fa(on_deed)} دانگ و در پرونده شهرداری "
        f"{dang_fa(municipal)} دانگ است",
        f"Owner {owner} holds {dang(on_deed)} dang on the deed but {dang(municipal)} dang "
        "in the municipality's record",
    )


def deed_matches_owners(facts: Facts, config: ChecksConfig) -> Finding:
    """The deed names the municipality's owners with the same shares, and the applicant
    among them."""
    deed = facts.deed
    if deed is None:
        return _no_deed(facts)
    on_deed: dict[str, Decimal] = {}
    for deed_owner in deed.owners:
        on_deed[deed_owner.national_code] = on_deed.get(deed_owner.national_code, Decimal(0)) + (
            deed_owner.share
        )
    municipal: dict[str, Decimal] = {}
    for ownership in facts.ownerships:
        code = ownership.owner.national_code
        municipal[code] = municipal.get(code, Decimal(0)) + ownership.share
    # The deed's order first, then owners only the municipality knows, in its order.
    codes = list(dict.fromkeys([*on_deed, *municipal]))
    disagreeing = [code for code in codes if on_deed.get(code) != municipal.get(code)]
    reasons = [_share_disagreement(c, on_deed.get(c), municipal.get(c)) for c in disagreeing]
    applicant = facts.applicant_national_code
    applicant_is_owner = applicant in on_deed
    if not applicant_is_owner:
        who = masked(applicant)
        reasons.append(
            Text(
                f"متقاضی ({who}) در سند ثبتی مالک نیست",
                f"The applicant ({who}) is not an owner on the deed",
            )
        )
    details: dict[str, Json] = {
        "deed_serial": deed.serial,
        "applicant_is_owner": applicant_is_owner,
        "disagreements": [
            {
                "owner": masked(code),
                "deed_share": _share_json(on_deed.get(code)),
                "municipal_share": _share_json(municipal.get(code)),
            }
            for code in disagreeing
        ],
    }
    if reasons:
        return Finding(Outcome.FAIL, tuple(reasons), details)
    agree = Text(
        f"مالکان و سهام سند ثبتی شماره {deed.serial} با پرونده شهرداری یکی است و متقاضی از "
        "مالکان است",
        f"The owners and shares on deed {deed.serial} agree with the municipality's record, "
        "and the applicant is an owner",
    )
    return Finding(Outcome.PASS, (agree,), details)


def _share_json(share: Decimal | None) -> Json:
    return None if share is None else dang(share)


def _seized(deed: Deed) -> tuple[Text, ...]:
    return tuple(
        Text(
            f"ملک به دستور {s.issuer} با شماره {s.reference} مورخ {date_fa(s.registered_on)} "
            "بازداشت است",
            f"The property is under seizure by {s.issuer}, reference {s.reference}, registered "
            f"on {date_en(s.registered_on)}",
        )
        for s in deed.seizures
    )


def no_seizure(facts: Facts, config: ChecksConfig) -> Finding:
    """The deed carries no seizure (بازداشت)."""
    deed = facts.deed
    if deed is None:
        return _no_deed(facts)
    details: dict[str, Json] = {
        "deed_serial": deed.serial,
        "seizures": [
            {
                "issuer": s.issuer,
                "reference": s.reference,
                "registered_on": s.registered_on.isoformat(),
            }
            for s in deed.seizures
        ],
    }
    if deed.seizures:
        return Finding(Outcome.FAIL, _seized(deed), details)
    free = Text(
        f"سند ثبتی شماره {deed.serial} بازداشتی ندارد", f"Deed {deed.serial} carries no seizure"
    )
    return Finding(Outcome.PASS, (free,), details)


# --- The applicant (civil registry) ----------------------------------------------------------


def applicant_alive(facts: Facts, config: ChecksConfig) -> Finding:
    """The civil registry knows the applicant, alive."""
    who = masked(facts.applicant_national_code)
    record = facts.applicant_record
    if record is None:
        unknown = Text(
            f"ثبت احوال شخصی با کد ملی {who} را نمی‌شناسد",
            f"The civil registry has no record of national ID {who}",
        )
        return Finding(Outcome.FAIL, (unknown,), {"applicant": who, "known": False})
    details: dict[str, Json] = {
        "applicant": who,
        "known": True,
        "alive": record.alive,
        "death_date": None if record.death_date is None else record.death_date.isoformat(),
    }
    if record.alive:
        alive = Text(
            f"طبق اعلام ثبت احوال، متقاضی ({who}) در قید حیات است",
            f"According to the civil registry the applicant ({who}) is alive",
        )
        return Finding(Outcome.PASS, (alive,), details)
    if record.death_date is None:
        died = Text(
            f"طبق اعلام ثبت احوال، متقاضی ({who}) فوت کرده است",
            f"According to the civil registry the applicant ({who}) has died",
        )
    else:
        died = Text(
            f"طبق اعلام ثبت احوال، متقاضی ({who}) در تاریخ {date_fa(record.death_date)} "
            "فوت کرده است",
            f"According to the civil registry the applicant ({who}) died on "
            f"{date_en(record.death_date)}",
        )
    return Finding(Outcome.FAIL, (died,), details)


# --- Collateral (MORTGAGE) -------------------------------------------------------------------


def collateral_allowed(facts: Facts, config: ChecksConfig) -> Finding:
    """The parcel's land use and density allow a bank to take it as collateral."""
    policy = config.collateral
    parcel = facts.parcel
    use = _named(LAND_USES, parcel.land_use)
    density = parcel.density_percent
    reasons = []
    if parcel.land_use not in policy.land_uses:
        reasons.append(
            Text(
                f"کاربری ملک ({use.fa}) برای وثیقه بانکی پذیرفته نیست",
                f"The parcel's land use ({use.en}) is not accepted as bank collateral",
            )
        )
    if density > policy.max_density_percent:
        ceiling = policy.max_density_percent
        reasons.append(
            Text(
                f"تراکم ملک ({density} درصد) از سقف تراکم پذیرفتنی برای وثیقه ({ceiling} درصد) "
                "بیشتر است",
                f"The parcel's density ({density}%) exceeds the ceiling for collateral "
                f"({ceiling}%)",
            )
        )
    details: dict[str, Json] = {
        "land_use": parcel.land_use,
        "density_percent": density,
        "accepted_land_uses": json_list(sorted(policy.land_uses)),
        "max_density_percent": policy.max_density_percent,
    }
    if reasons:
        return Finding(Outcome.FAIL, tuple(reasons), details)
    allowed = Text(
        f"کاربری ملک ({use.fa}) و تراکم آن ({density} درصد) برای وثیقه بانکی پذیرفتنی است",
        f"The parcel's land use ({use.en}) and density ({density}%) are acceptable as bank "
        "collateral",
    )
    return Finding(Outcome.PASS, (allowed,), details)


# --- Statements (PROPERTY_STATUS): a judging rule's findings, reported without judging ---------


def statement(rule: Rule) -> Rule:
    """The same reasons and details as `rule`, as a statement (INFO)."""

    def stated(facts: Facts, config: ChecksConfig) -> Finding:
        found = rule(facts, config)
        return Finding(Outcome.INFO, found.reasons, found.details)

    return stated


# --- Screening a manual check ----------------------------------------------------------------


def _years_before(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


def permit_review_needed(facts: Facts, config: ChecksConfig) -> Finding | None:
    """Whether planning must confirm that the building still matches its permit: only when
    the newest certificate is older than the configured age. None sends the check to
    planning; a finding settles it without a person.

    A building with no certificate at all is not sent: the certificate check already fails
    the inquiry for it, and a site visit would only delay that answer.
    """
    if not facts.buildings:
        return Finding(
            Outcome.PASS,
            (
                Text(
                    "ملک ساختمانی ندارد و بازبینی لازم نیست",
                    "There is no building on the parcel; no review is needed",
                ),
            ),
            {"review_needed": False, "buildings": 0},
        )
    newest = _newest(facts.certificates)
    if newest is None:
        return Finding(
            Outcome.PASS,
            (
                Text(
                    "ساختمان گواهی‌ای ندارد که با پروانه سنجیده شود؛ نبود گواهی در بررسی "
                    "گواهی‌ها آمده است",
                    "The building has no certificate to compare with its permit; the "
                    "certificate check reports its absence",
                ),
            ),
            {"review_needed": False, "certificate": None},
        )
    years = config.certificate_max_age_years
    today = facts.today(Fact.CERTIFICATES, TEHRAN)
    if newest.issued_on > _years_before(today, years):
        kind = _named(CERTIFICATE_KINDS, newest.kind)
        recent = Text(
            f"آخرین گواهی ملک ({kind.fa} مورخ {date_fa(newest.issued_on)}) کمتر از {years} "
            "سال پیش صادر شده و بازبینی لازم نیست",
            f"The newest certificate ({kind.en}, {date_en(newest.issued_on)}) is less than "
            f"{years} years old; no review is needed",
        )
        return Finding(
            Outcome.PASS,
            (recent,),
            {"review_needed": False, "certificate": _certificate_json(newest)},
        )
    return None


def permit_review_or_complaint(facts: Facts, config: ChecksConfig) -> Finding | None:
    """Planning's review of the building, taking the neighbours into account: an open
    complaint about the parcel at the 137 centre (a building going up without a permit, an
    extra floor, a blocked passage…) sends the check to planning whatever the certificates
    say; otherwise `permit_review_needed` decides."""
    if facts.open_complaints:
        return None
    return permit_review_needed(facts, config)
