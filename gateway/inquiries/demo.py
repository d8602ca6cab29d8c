"""Demo inquiries: a year of past inquiries from a handful of demo partners over the demo
city's parcels, so that inquiryStats, planning's queue and the letters mean something on the
first `make run`.

Each check's outcome is what its rule (gateway/inquiries/rules.py) finds in facts built from
the city itself: the dues, certificates, violations and buildings planning and revenue hold;
the deed and the civil record as the agencies would give them, made from the municipality's
owners, with now and then a seizure, an owner the registry disagrees on or an applicant who
has died. Decided inquiries carry a real answer signed with the gateway's key, and a newer
answer for the same parcel and kind supersedes the older one, as the workflow does.

Deterministic: everything is drawn from one generator seeded with `seed` (tracking codes
from a second one), so the same seed, city and `now` give the same rows; tracking codes
depend on the seed alone.
"""

from __future__ import annotations

import bisect
import datetime as dt
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import jdatetime
from sqlalchemy import Select, Table, bindparam, delete, exists, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import BindParameter

from connectors.soap.civil_registry import CivilRecord
from connectors.soap.land_registry import Deed, DeedOwner, Plate, Seizure
from db import planning as tables
from db.demo import DEFAULT_SEED
from db.engines import Databases
from db.gateway import InquiryCheckRecord, InquiryRecord, WebhookAttempt, WebhookDelivery
from gateway import dues
from gateway.access.principals import PrincipalKind
from gateway.inquiries.checks import AutomaticCheck, CheckOutcome, ManualCheck, facts_needed
from gateway.inquiries.config import InquirySettings, inquiry_settings
from gateway.inquiries.facts import Fact, Facts, Outcome
from gateway.inquiries.kinds import MORTGAGE, PROPERTY_STATUS, PROPERTY_TRANSFER, InquiryKind
from gateway.inquiries.records import (
    CHECK_DONE,
    CHECK_PENDING,
    CHECK_QUEUED,
    DECIDED,
    PENDING,
    WAITING_FOR_DEPARTMENT,
    naive,
    stored,
)
from gateway.inquiries.tracking import new_tracking_code
from gateway.inquiries.workdays import FRIDAY, TEHRAN
from gateway.inquiries.workflow import Submission, decide
from gateway.parcels import Building, Certificate, Ownership, Parcel, Person, Violation
from gateway.settings import Settings
from identifiers import make_national_code, parse_registry_plate

__all__ = ["DEFAULT_COUNT", "DemoInquiries", "clear", "count_for", "seed_demo_inquiries"]

DEFAULT_COUNT = 3000
# About how many inquiries a demo city's parcel gets in a year: 3,000 for the default 2,000.
_PER_PARCEL = 1.5
_ROWS_PER_EXECUTE = 1000
_MAX_KEYS = 1000

T = TypeVar("T")

# --- The demo's partners and their habits ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Partner:
    kind: PrincipalKind
    principal_id: str  # the principal that submits (its idempotency keys are its own)
    organisation: str  # as Principal.partner_code names it
    weight: int  # how busy it is
    hours: tuple[float, float]  # when it works, local hours


def _notary(n: int, weight: int) -> _Partner:
    return _Partner(PrincipalKind.NOTARY, f"demo-{n}", f"notary:demo-{n}", weight, (8.0, 18.0))


def _bank(code: str, weight: int) -> _Partner:
    return _Partner(PrincipalKind.BANK, f"demo-bank-{code}", code, weight, (7.5, 14.0))


def _counter(n: int, weight: int) -> _Partner:
    return _Partner(PrincipalKind.COUNTER, f"demo-{n}", f"counter:demo-{n}", weight, (8.0, 17.0))


_PARTNERS: tuple[_Partner, ...] = (
    _notary(1, 9), _notary(2, 7), _notary(3, 5), _notary(4, 4), _notary(5, 3), _notary(6, 2),
    # Melli, Mellat, Tejarat, Saderat (bank codes, as in a Sheba number).
    _bank("017", 6), _bank("012", 4), _bank("018", 3), _bank("019", 2),
    _counter(1, 4), _counter(2, 3), _counter(3, 2), _counter(4, 1),
)  # fmt: skip

# What is asked, by weight: transfers most, a counter's statement least.
_KIND_MIX = ((PROPERTY_TRANSFER, 55), (MORTGAGE, 25), (PROPERTY_STATUS, 20))
_NEW_KIND = 10  # a kind added since is asked too
# Where a decided, waiting and pending inquiry falls, by weight (about 85 % decided).
_DECIDED, _WAITING, _PENDING = "decided", "waiting", "pending"
_STANDING_MIX = ((_DECIDED, 850), (_WAITING, 125), (_PENDING, 25))

# How long an authority takes to answer, in seconds (departments' databases are near).
_LATENCY = {
    "revenue": (0.05, 0.6),
    "planning": (0.05, 0.6),
    "land_registry": (0.4, 3.5),
    "civil_registry": (0.3, 2.5),
}
_AGENCY_OUTAGE = 0.04  # an agency down when asked: answered minutes to hours later
_AGENCY_ERRORS = {
    agency: (f"AGENCY_UNAVAILABLE: {agency}.{operation}", f"AGENCY_TIMEOUT: {agency}.{operation}")
    for agency, operation in (("land_registry", "GetDeed"), ("civil_registry", "GetPerson"))
}

# What the agencies say, now and then (per parcel, so two inquiries about it agree).
_SEIZED = 0.035
_OTHER_OWNER = 0.03
_DECEASED = 0.012
_NOT_THE_OWNER = 0.03  # a transfer asked for someone the deed does not name
_SEIZURE_ISSUERS = (
    "دادگاه عمومی حقوقی ارومیه، شعبه {n}",
    "اجرای احکام مدنی دادگستری ارومیه، شعبه {n}",
    "اداره اجرای اسناد رسمی ارومیه",
    "دادگاه انقلاب اسلامی ارومیه، شعبه {n}",
)
# Planning's officers, and what they write when they answer the permit review.
_OFFICERS = ("demo-planning-1", "demo-planning-2", "demo-planning-3")
_OFFICER_FAILS = 0.12
_OFFICER_FAILS_WITH_VIOLATION = 0.6
_PASS_NOTES = (
    "بازدید محلی انجام شد؛ ساختمان با نقشه‌های پروانه مطابقت دارد.",
    "طبق بازدید و گزارش مهندس ناظر، تغییری نسبت به پروانه دیده نشد.",
    "ساختمان با پروانه و گواهی پایان کار مطابقت دارد.",
)
_FAIL_NOTES = (
    "در بازدید محلی یک طبقه مازاد بر پروانه دیده شد.",
    "پارکینگ مصوب به انباری و واحد تجاری تبدیل شده است.",
    "عقب‌نشینی مصوب رعایت نشده و بنای مازاد در حیاط احداث شده است.",
)
# Working days planning takes to answer a review: most within the five allowed, some late.
_REVIEW_DAYS = ((0, 30), (1, 20), (2, 15), (3, 12), (4, 8), (5, 5), (7, 5), (10, 3), (15, 2))
_OFFICE_HOURS = (7.5, 14.0)
# The first digits of a national ID name the office that issued it.
_NATIONAL_CODE_OFFICES = ("001", "002", "003", "004", "005", "006", "007", "008", "276", "277")
_ID_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # answer ids: Crockford's base32, as answers'


class _Dice:
    """Draws on random() alone: Python keeps that sequence across versions (db/demo.py)."""

    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed).random

    def between(self, low: int, high: int) -> int:
        return low + int(self.random() * (high - low + 1))

    def uniform(self, low: float, high: float) -> float:
        return low + (high - low) * self.random()

    def chance(self, probability: float) -> bool:
        return self.random() < probability

    def pick(self, items: Sequence[T]) -> T:
        return items[int(self.random() * len(items))]

    def weighted(self, pairs: Sequence[tuple[T, int]]) -> T:
        cumulative = []
        total = 0
        for _, weight in pairs:
            total += weight
            cumulative.append(total)
        return pairs[bisect.bisect_right(cumulative, self.random() * total)][0]


# --- The city, as the checks read it --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Agencies:
    """What the agencies hold about a parcel, drawn once per parcel."""

    seizure: Seizure | None
    other_owner: str | None  # a national ID the registry names instead of the first owner
    deceased: frozenset[str]  # owners the civil registry records as dead
    serial: str


@dataclass(frozen=True, slots=True)
class _Records:
    parcel: Parcel
    dues: dues.Dues
    certificates: tuple[Certificate, ...]
    violations: tuple[Violation, ...]
    buildings: tuple[Building, ...]
    ownerships: tuple[Ownership, ...]
    agencies: _Agencies


_inquiries = InquiryRecord.metadata.tables[InquiryRecord.__tablename__]
_checks = InquiryCheckRecord.metadata.tables[InquiryCheckRecord.__tablename__]
_parcels = tables.Parcel.__table__
_owners = tables.Ownership.__table__
_persons = tables.Person.__table__

_OWNERS = (
    select(
        _owners.c.parcel_id,
        _owners.c.share,
        _owners.c.acquired_on,
        _persons.c.id.label("person_id"),
        _persons.c.national_code,
        _persons.c.first_name,
        _persons.c.last_name,
        _persons.c.father_name,
        _persons.c.birth_date,
    )
    .join(_persons, _persons.c.id == _owners.c.person_id)
    .order_by(_owners.c.parcel_id, _owners.c.id)
)


def _national_code(dice: _Dice) -> str:
    return make_national_code(f"{dice.pick(_NATIONAL_CODE_OFFICES)}{dice.between(1, 999_999):06d}")


def _agencies(dice: _Dice, parcel: Parcel, ownerships: Sequence[Ownership]) -> _Agencies:
    seizure = None
    if dice.chance(_SEIZED):
        issuer = dice.pick(_SEIZURE_ISSUERS).format(n=dice.between(1, 14))
        registered = dt.date(2021, 3, 21) + dt.timedelta(days=dice.between(0, 1500))
        seizure = Seizure(issuer, f"{registered.year}-{parcel.id:07d}", registered)
    other = _national_code(dice) if dice.chance(_OTHER_OWNER) else None
    deceased = frozenset(o.owner.national_code for o in ownerships if dice.chance(_DECEASED))
    serial = f"{parcel.registry_section}/{100_000 + parcel.id * 7919 % 900_000}"
    return _Agencies(seizure, other, deceased, serial)


_KEYS: BindParameter[Any] = bindparam("keys", expanding=True)
_PARCELS = select(_parcels).where(_parcels.c.id.in_(_KEYS)).order_by(_parcels.c.id)
_OWNERS_OF = _OWNERS.where(_owners.c.parcel_id.in_(_KEYS))


def _of_parcels(model: Any) -> Select[Any]:
    table = model.__table__
    return select(table).where(table.c.parcel_id.in_(_KEYS)).order_by(table.c.id)


_CERTIFICATES = _of_parcels(tables.Certificate)
_VIOLATIONS = _of_parcels(tables.Violation)
_BUILDINGS = _of_parcels(tables.Building)


async def _keyed(connection: AsyncConnection, statement: Any, keys: Sequence[Any]) -> list[Any]:
    """The rows of a statement over `keys` (bound as "keys"), a chunk of keys at a time."""
    rows: list[Any] = []
    for start in range(0, len(keys), _MAX_KEYS):
        chunk = list(keys[start : start + _MAX_KEYS])
        rows.extend((await connection.execute(statement, {"keys": chunk})).all())
    return rows


def _grouped(records: Sequence[T], parcel_of: Any) -> dict[int, tuple[T, ...]]:
    grouped: dict[int, list[T]] = defaultdict(list)
    for record in records:
        grouped[parcel_of(record)].append(record)
    return {parcel_id: tuple(items) for parcel_id, items in grouped.items()}


async def _city(databases: Databases, dice: _Dice, size: int) -> list[_Records]:
    """Up to `size` parcels of the city (all of a small one) with everything the checks
    read about them, in id order."""
    async with databases.planning.connect() as connection:
        highest = await connection.scalar(select(func.max(_parcels.c.id)))
        if highest is None:
            return []
        if highest <= size:
            wanted: list[int] = list(range(1, highest + 1))
        else:
            wanted = sorted({dice.between(1, highest) for _ in range(size)})
        parcels = [Parcel.from_row(row) for row in await _keyed(connection, _PARCELS, wanted)]
        ids = [parcel.id for parcel in parcels]
        ownerships = _grouped(
            [Ownership.from_row(row) for row in await _keyed(connection, _OWNERS_OF, ids)],
            lambda o: o.parcel_id,
        )
        certificates = _grouped(
            [Certificate.from_row(row) for row in await _keyed(connection, _CERTIFICATES, ids)],
            lambda c: c.parcel_id,
        )
        violations = _grouped(
            [Violation.from_row(row) for row in await _keyed(connection, _VIOLATIONS, ids)],
            lambda v: v.parcel_id,
        )
        buildings = _grouped(
            [Building.from_row(row) for row in await _keyed(connection, _BUILDINGS, ids)],
            lambda b: b.parcel_id,
        )
    codes = [parcel.renewal_code for parcel in parcels]
    async with databases.revenue.connect() as connection:
        items = await _keyed(connection, dues.ITEMS_BY_RENEWAL_CODE, codes)
    dues_of = {found.renewal_code: found for found in dues.group_by_renewal_code(items, codes)}
    return [
        _Records(
            parcel=parcel,
            dues=dues_of[parcel.renewal_code],
            certificates=certificates.get(parcel.id, ()),
            violations=violations.get(parcel.id, ()),
            buildings=buildings.get(parcel.id, ()),
            ownerships=ownerships.get(parcel.id, ()),
            agencies=_agencies(dice, parcel, ownerships.get(parcel.id, ())),
        )
        for parcel in parcels
    ]


# --- Making inquiries -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Applicant:
    national_code: str
    person: Person | None  # as the civil registry knows them, when a check asks
    deceased: bool


@dataclass
class _Made:
    inquiry: InquiryRecord
    checks: list[InquiryCheckRecord]
    finished: dt.datetime  # when its last check was answered (or last touched, if open)


def _record(check: InquiryCheckRecord, outcome: CheckOutcome) -> None:
    """A check's outcome as the workflow records it."""
    check.state = CHECK_DONE
    check.outcome = outcome.outcome.value
    check.reasons = stored(outcome.reasons)
    check.details = outcome.details
    check.read_at = naive(outcome.read_at)
    check.officer_role = outcome.officer_role
    check.note = outcome.note
    check.last_error = None


def _manual(kind: InquiryKind) -> bool:
    return bool(kind.manual_checks)


def _asks_agency(kind: InquiryKind) -> bool:
    return any(check.authority.agency for check in kind.checks)


class _Demo:
    """Draws the inquiries one by one, then decides and signs the decided ones in the order
    they were decided (so that supersession follows time, as in the workflow)."""

    def __init__(
        self,
        config: InquirySettings,
        city: Sequence[_Records],
        dice: _Dice,
        seed: int,
        now: dt.datetime,
    ) -> None:
        self.config = config
        self.kinds = config.kinds
        self.city = city
        self.dice = dice
        self.codes = random.Random(f"{seed}:tracking")
        self.now = now
        self.tracking_codes: set[str] = set()
        self.answer_ids: set[str] = set()
        # Parcels an inquiry of a kind with a manual check would send to a department now.
        self.reviewable = {
            name: [records for records in city if self._needs_review(kind, records)]
            for name, kind in self.kinds.items()
            if _manual(kind)
        }

    # What is asked, by whom, about which parcel.

    def _needs_review(self, kind: InquiryKind, records: _Records) -> bool:
        facts = Facts(
            parcel=records.parcel,
            applicant_national_code="",
            # The demo's past inquiries met no open complaint about their parcels.
            read_at=dict.fromkeys(
                (Fact.PARCEL, Fact.BUILDINGS, Fact.CERTIFICATES, Fact.OPEN_COMPLAINTS),
                self.now - dt.timedelta(days=30),
            ),
            certificates=records.certificates,
            buildings=records.buildings,
        )
        return any(
            check.screened(facts, self.config.checks) is None for check in kind.manual_checks
        )

    def _kind(self, among: Sequence[str]) -> InquiryKind:
        """One of the kinds named that a demo partner may ask, by the mix's weights."""
        weights = dict(_KIND_MIX)
        askable = [k for k in among if any(self.kinds[k].may_ask(p.kind) for p in _PARTNERS)]
        return self.kinds[self.dice.weighted([(k, weights.get(k, _NEW_KIND)) for k in askable])]

    def _subject(self) -> tuple[str, InquiryKind, _Records]:
        standing = self.dice.weighted(_STANDING_MIX)
        if standing == _WAITING:
            waiting = [name for name, parcels in self.reviewable.items() if parcels]
            if waiting:
                kind = self._kind(waiting)
                return standing, kind, self.dice.pick(self.reviewable[kind.name])
            standing = _DECIDED
        if standing == _PENDING:
            kind = self._kind([name for name, k in self.kinds.items() if _asks_agency(k)])
        else:
            kind = self._kind(list(self.kinds))
        return standing, kind, self.dice.pick(self.city)

    def _partner(self, kind: InquiryKind) -> _Partner:
        return self.dice.weighted([(p, p.weight) for p in _PARTNERS if kind.may_ask(p.kind)])

    def _owner(self, records: _Records) -> _Applicant | None:
        if not records.ownerships:
            return None
        person = self.dice.pick(records.ownerships).owner
        deceased = person.national_code in records.agencies.deceased
        return _Applicant(person.national_code, person, deceased)

    def _applicant(self, kind: InquiryKind, records: _Records) -> _Applicant:
        """Who asks: the seller in a transfer (now and then someone the deed does not name),
        the owner pledging the property in a mortgage, any citizen at a counter."""
        if kind.name in (PROPERTY_TRANSFER, MORTGAGE):
            stranger = kind.name == PROPERTY_TRANSFER and self.dice.chance(_NOT_THE_OWNER)
            found = self._owner(self.dice.pick(self.city) if stranger else records)
            if found is not None:
                return found
        return _Applicant(_national_code(self.dice), None, deceased=False)

    def _counterparty(self, kind: InquiryKind, applicant: _Applicant) -> str | None:
        if kind.name != PROPERTY_TRANSFER:
            return None
        while True:  # the buyer
            code = _national_code(self.dice)
            if code != applicant.national_code:
                return code

    # When.

    def _during(self, day: dt.date, hours: tuple[float, float]) -> dt.datetime:
        start = dt.datetime.combine(day, dt.time(), TEHRAN)
        return (start + dt.timedelta(hours=self.dice.uniform(*hours))).astimezone(dt.UTC)

    def _submitted(self, partner: _Partner, standing: str) -> dt.datetime:
        """Working hours, rarely on a Friday; more lately than a year ago (partners joined
        over the year); what still waits was asked in the last days."""
        dice = self.dice
        if standing == _PENDING:
            return self.now - dt.timedelta(minutes=dice.uniform(10, 36 * 60))
        today = self.now.astimezone(TEHRAN).date()
        while True:
            if standing == _WAITING:
                days = int(12 * dice.random() ** 1.5)
            else:
                days = dice.between(0, 364)
                if not dice.chance(1 - 0.5 * days / 365):
                    continue
            day = today - dt.timedelta(days=days)
            if day.weekday() == FRIDAY and not dice.chance(0.1):
                continue
            moment = self._during(day, partner.hours)
            if moment < self.now - dt.timedelta(minutes=10):
                return moment

    def _reviewed_at(self, kind: InquiryKind, queued: dt.datetime) -> dt.datetime:
        """When planning's officer answers a review queued at `queued`: mostly within the
        deadline, some late."""
        week = kind.workweek
        days = self.dice.weighted(_REVIEW_DAYS)
        local = queued.astimezone(week.zone)
        if days == 0 and local.hour < 12 and week.is_working_day(local.date()):
            return queued + dt.timedelta(minutes=self.dice.between(20, 150))
        day = local.date()
        for _ in range(max(days, 1)):
            day = week.next_working_day(day)
        return self._during(day, _OFFICE_HOURS)

    # What the checks find.

    def _deed(self, records: _Records) -> Deed:
        parcel, agencies = records.parcel, records.agencies
        owners = [
            DeedOwner(o.owner.national_code, o.owner.first_name, o.owner.last_name, o.share)
            for o in records.ownerships
        ]
        if agencies.other_owner is not None and owners:
            owners[0] = replace(owners[0], national_code=agencies.other_owner)
        return Deed(
            plate=Plate(parcel.registry_section, parcel.main_plate, parcel.sub_plate),
            serial=agencies.serial,
            issued_on=max((o.acquired_on for o in records.ownerships), default=dt.date(2001, 1, 1)),
            area=parcel.area,
            owners=tuple(owners),
            mortgages=(),
            seizures=() if agencies.seizure is None else (agencies.seizure,),
        )

    def _civil_record(self, applicant: _Applicant, read_at: dt.datetime) -> CivilRecord | None:
        person = applicant.person
        if person is None:
            return None
        died = None
        if applicant.deceased:
            died = read_at.date() - dt.timedelta(days=self.dice.between(30, 600))
        return CivilRecord(
            national_code=person.national_code,
            first_name=person.first_name,
            last_name=person.last_name,
            father_name=person.father_name,
            birth_date=person.birth_date,
            birth_date_jalali=str(
                jdatetime.date.fromgregorian(date=person.birth_date).strftime("%Y/%m/%d")
            ),
            gender="FEMALE" if person.id % 2 else "MALE",
            alive=died is None,
            death_date=died,
        )

    def _facts(
        self, kind: InquiryKind, records: _Records, applicant: _Applicant, read_at: dt.datetime
    ) -> Facts:
        needs = facts_needed(kind.checks)
        given: dict[str, Any] = {}
        if Fact.DUES in needs:
            given["dues"] = records.dues
        if Fact.CERTIFICATES in needs:
            given["certificates"] = records.certificates
        if Fact.VIOLATIONS in needs:
            given["violations"] = records.violations
        if Fact.BUILDINGS in needs:
            given["buildings"] = records.buildings
        if Fact.OWNERSHIPS in needs:
            given["ownerships"] = records.ownerships
        if Fact.DEED in needs:
            given["deed"] = self._deed(records)
        if Fact.APPLICANT_RECORD in needs:
            given["applicant_record"] = self._civil_record(applicant, read_at)
        return Facts(
            parcel=records.parcel,
            applicant_national_code=applicant.national_code,
            read_at=dict.fromkeys(needs, read_at),
            **given,
        )

    def _officer(self, records: _Records) -> tuple[Outcome, str]:
        """A review's outcome: a building with an open violation fails more often."""
        open_violation = any(v.status != "resolved" for v in records.violations)
        fails = _OFFICER_FAILS_WITH_VIOLATION if open_violation else _OFFICER_FAILS
        if self.dice.chance(fails):
            return Outcome.FAIL, self.dice.pick(_FAIL_NOTES)
        return Outcome.PASS, self.dice.pick(_PASS_NOTES)

    def _checks(
        self,
        kind: InquiryKind,
        records: _Records,
        facts: Facts,
        submitted: dt.datetime,
        standing: str,
    ) -> tuple[list[InquiryCheckRecord], dt.datetime]:
        """Every check of the inquiry as the workflow would have left it, and when its last
        one was answered."""
        dice = self.dice
        agencies = sorted({c.authority.name for c in kind.checks if c.authority.agency})
        # The agency still down (pending), or those that were down for a while when asked.
        down = agencies[0] if standing == _PENDING and agencies else None
        outages = {
            agency: (dt.timedelta(minutes=dice.uniform(5, 9 * 60)), dice.between(2, 14))
            for agency in agencies
            if standing == _DECIDED and dice.chance(_AGENCY_OUTAGE)
        }
        made = []
        finished = submitted
        for definition in kind.checks:
            authority = definition.authority.name
            check = InquiryCheckRecord(
                name=definition.name,
                authority=authority,
                manual=isinstance(definition, ManualCheck),
                state=CHECK_PENDING,
                attempts=0,
            )
            made.append(check)
            answered = submitted + dt.timedelta(seconds=dice.uniform(*_LATENCY[authority]))
            if authority == down:
                check.attempts = dice.between(3, 40)
                check.last_error = dice.pick(_AGENCY_ERRORS[authority])
                continue
            if authority in outages:
                delay, failures = outages[authority]
                answered += delay
                check.attempts = failures
            if isinstance(definition, AutomaticCheck):
                _record(
                    check, replace(definition.evaluate(facts, self.config.checks), read_at=answered)
                )
            else:
                screened = definition.screened(facts, self.config.checks)
                if screened is not None:
                    _record(check, replace(screened, read_at=answered))
                else:
                    check.state = CHECK_QUEUED
                    check.queued_at = naive(answered)
                    check.due_at = naive(kind.manual_due_at(answered))
                    if standing != _DECIDED:
                        continue
                    answered = self._reviewed_at(kind, answered)
                    outcome, note = self._officer(records)
                    _record(
                        check,
                        definition.answer(
                            outcome, note=note, officer_role="officer", answered_at=answered
                        ),
                    )
                    check.answered_by = dice.pick(_OFFICERS)
                    check.answered_at = naive(answered)
            finished = max(finished, answered)
        return made, finished

    # The inquiry.

    def _tracking_code(self) -> str:
        while True:
            code = new_tracking_code(self.codes.randrange)
            if code not in self.tracking_codes:
                self.tracking_codes.add(code)
                return code

    def _answer_id(self) -> str:
        while True:
            answer_id = "".join(self.dice.pick(_ID_ALPHABET) for _ in range(10))
            if answer_id not in self.answer_ids:
                self.answer_ids.add(answer_id)
                return answer_id

    def make(self, inquiry_id: int) -> _Made:
        standing, kind, records = self._subject()
        partner = self._partner(kind)
        applicant = self._applicant(kind, records)
        counterparty = self._counterparty(kind, applicant)
        parcel = records.parcel
        while True:  # a decided one was decided before now
            submitted = self._submitted(partner, standing)
            facts = self._facts(kind, records, applicant, submitted + dt.timedelta(seconds=0.2))
            checks, finished = self._checks(kind, records, facts, submitted, standing)
            if standing != _DECIDED or finished < self.now - dt.timedelta(minutes=1):
                break
        # Partners name the property either way; notaries and banks mostly by the deed's plate.
        by_plate = partner.kind is not PrincipalKind.COUNTER and self.dice.chance(0.6)
        submission = Submission(
            kind=kind.name,
            renewal_code=None if by_plate else parcel.renewal_code,
            registry_plate=parse_registry_plate(parcel.registry_plate) if by_plate else None,
            applicant_national_code=applicant.national_code,
            counterparty_national_code=counterparty,
            idempotency_key=f"demo-{inquiry_id:06d}",
        )
        queued = any(check.state == CHECK_QUEUED for check in checks)
        pending = any(check.state == CHECK_PENDING for check in checks)
        inquiry = InquiryRecord(
            id=inquiry_id,
            tracking_code=self._tracking_code(),
            kind=kind.name,
            partner_kind=partner.kind.value,
            partner_id=partner.principal_id,
            organisation=partner.organisation,
            idempotency_key=submission.idempotency_key,
            input_digest=submission.digest(),
            parcel_id=parcel.id,
            region=parcel.region_id,
            renewal_code=parcel.renewal_code,
            registry_plate=parcel.registry_plate,
            applicant_national_code=applicant.national_code,
            counterparty_national_code=counterparty,
            # Decided ones are signed once every inquiry is made, in the order decided.
            status=WAITING_FOR_DEPARTMENT if queued else PENDING if pending else DECIDED,
            submitted_at=naive(submitted),
        )
        for check in checks:
            check.inquiry_id = inquiry_id
        return _Made(inquiry, checks, finished)

    def decide(self, made: Sequence[_Made]) -> None:
        """Signs every decided inquiry's answer, oldest decision first, as the workflow
        does (workflow.decide): each supersedes the previous answer for its parcel and
        kind."""
        decided = sorted(
            (m for m in made if m.inquiry.status == DECIDED),
            key=lambda m: (m.finished, m.inquiry.id),
        )
        latest: dict[tuple[int, str], InquiryRecord] = {}
        for item in decided:
            inquiry = item.inquiry
            issued = item.finished + dt.timedelta(seconds=self.dice.uniform(0.02, 0.4))
            older = latest.get((inquiry.parcel_id, inquiry.kind))
            decide(
                inquiry,
                item.checks,
                self.config,
                issued_at=issued,
                answer_id=self._answer_id(),
                older=() if older is None else (older,),
            )
            latest[(inquiry.parcel_id, inquiry.kind)] = inquiry


# --- Writing --------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoInquiries:
    """What `seed_demo_inquiries` wrote."""

    inquiries: int
    decided: int
    waiting_for_department: int
    pending: int
    superseded: int


def count_for(parcels: int) -> int:
    """How many demo inquiries suit a city of `parcels` (DEFAULT_COUNT for the default city)."""
    return max(1, min(DEFAULT_COUNT, round(parcels * _PER_PARCEL)))


def _values(record: Any, table: Table) -> dict[str, Any]:
    return {column.key: getattr(record, column.key) for column in table.columns}


async def _insert(connection: AsyncConnection, table: Table, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), _ROWS_PER_EXECUTE):
        await connection.execute(insert(table), rows[start : start + _ROWS_PER_EXECUTE])


async def _reset_sequences(connection: AsyncConnection, tables_: Sequence[Table]) -> None:
    """Explicit ids leave PostgreSQL's serial sequences behind; move them past the rows
    (SQLite and MariaDB continue after the largest id by themselves)."""
    if connection.dialect.name != "postgresql":
        return
    quote = connection.dialect.identifier_preparer.quote
    for table in tables_:
        await connection.execute(
            text(
                "SELECT setval(pg_get_serial_sequence(:name, 'id'), "
                f"COALESCE((SELECT MAX(id) FROM {quote(table.name)}), 0) + 1, false)"
            ),
            {"name": table.name},
        )


async def seed_demo_inquiries(
    databases: Databases,
    settings: Settings,
    *,
    count: int = DEFAULT_COUNT,
    now: dt.datetime,
    seed: int = DEFAULT_SEED,
) -> DemoInquiries | None:
    """Writes `count` past inquiries over the demo city, when the gateway holds no inquiry
    yet and the city has parcels; None when it wrote nothing. `now` is aware: the inquiries
    were submitted in the twelve months before it."""
    if count < 1:
        raise ValueError("count must be at least 1")
    if now.tzinfo is None:
        raise ValueError("now must be aware")
    async with databases.gateway.connect() as connection:
        if await connection.scalar(select(exists().select_from(_inquiries))):
            return None
    dice = _Dice(seed)
    city = await _city(databases, dice, count)
    if not city:
        return None
    demo = _Demo(inquiry_settings(settings), city, dice, seed, now.astimezone(dt.UTC))
    made = [demo.make(inquiry_id) for inquiry_id in range(1, count + 1)]
    demo.decide(made)
    checks = [check for item in made for check in item.checks]
    for check_id, check in enumerate(checks, start=1):
        check.id = check_id
    async with databases.gateway.begin() as connection:
        await _insert(connection, _inquiries, [_values(m.inquiry, _inquiries) for m in made])
        await _insert(connection, _checks, [_values(check, _checks) for check in checks])
        await _reset_sequences(connection, (_inquiries, _checks))
    statuses = [item.inquiry.status for item in made]
    return DemoInquiries(
        inquiries=len(made),
        decided=statuses.count(DECIDED),
        waiting_for_department=statuses.count(WAITING_FOR_DEPARTMENT),
        pending=statuses.count(PENDING),
        superseded=sum(item.inquiry.superseded_by is not None for item in made),
    )


async def clear(databases: Databases) -> None:
    """Deletes every inquiry with its checks and webhook deliveries (`gateway seed --reset`:
    a new city makes the old inquiries' parcels meaningless)."""
    async with databases.gateway.begin() as connection:
        for table in (
            WebhookAttempt.metadata.tables[WebhookAttempt.__tablename__],
            WebhookDelivery.metadata.tables[WebhookDelivery.__tablename__],
            _checks,
            _inquiries,
        ):
            await connection.execute(delete(table))
