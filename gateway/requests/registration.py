"""Registering a citizen request (ثبت درخواست): checked, located, routed, given its tracking
code and deadline, and committed with the first steps of its history, idempotently.

Whoever registers it (the citizen portal's department key acting for a citizen, a 137
operator on the phone, a partner app, an Open311 client) names it by an idempotency key of
its own: the same key again returns the same request, with another input it is a CONFLICT,
and two registrations with one key at the same moment make one request (the unique index on
(registered_by, idempotency_key) decides; the loser reads the winner's).

Where: coordinates inside the city resolve the region by its boundary; a point outside every
region is refused unless an address is given too (the 137 centre then locates it), and an
address alone is accepted. A renewal code (the parcel's) names its region when the point does
not. The service must be enabled in the region resolved (pilots), else
SERVICE_NOT_AVAILABLE_IN_REGION.

Then the rules route it (gateway/requests/routing.py): ASSIGNED to a department with a
deadline of the service's working days (the 137 centre's week: records.load_workweek), or
REFERRED to an outside agency and marked so. Open requests for the same service close by
(within `request_duplicate_radius_m` and `request_duplicate_window_hours`) are offered as
possible duplicates; merging them is an officer's act (gateway/requests/merging.py).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import ColumnElement, and_, insert, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from db.contact import REQUEST_CHANNELS, REQUEST_KINDS
from db.engines import Databases, begin_write
from gateway.access.principals import Principal, PrincipalKind
from gateway.errors import BadUserInput, Conflict, ServiceNotAvailableInRegion
from gateway.inquiries.tracking import new_tracking_code
from gateway.inquiries.workdays import Deadline
from gateway.requests import geo, routing
from gateway.requests.records import (
    DATABASE,
    HISTORY,
    OPEN_STATUSES,
    REQUESTS,
    CitizenRequest,
    ServiceDefinition,
    load,
    load_service,
    load_workweek,
    naive,
)
from identifiers import InvalidIdentifier, normalize_digits, parse_renewal_code

__all__ = [
    "MAX_DESCRIPTION",
    "MAX_PHOTOS",
    "DuplicatePolicy",
    "Registered",
    "Submission",
    "channel_of",
    "find_duplicates",
    "find_duplicates_of_many",
    "normalize_mobile",
    "register",
]

MAX_IDEMPOTENCY_KEY = 200
MAX_DESCRIPTION = 4000
MAX_ADDRESS = 500
MAX_NAME = 200
MAX_PHOTOS = 10
MAX_PHOTO_URL = 500
MAX_ANSWERS = 30
MAX_ANSWER = 500

# An Iranian mobile number: 09 and nine digits (+98 9…, 0098 9… and 9… are folded to it).
_MOBILE = re.compile(r"09[0-9]{9}")
_MOBILE_NOISE = re.compile(r"[\s\-()\u200c]+")


@dataclass(frozen=True)
class DuplicatePolicy:
    """What "possibly the same" means: same service, still open, this close, this recent."""

    radius_m: float = 150.0
    window: dt.timedelta = dt.timedelta(hours=72)
    limit: int = 5


@dataclass(frozen=True)
class Submission:
    kind: str
    service_code: str
    description: str
    citizen_name: str
    citizen_mobile: str
    idempotency_key: str
    latitude: float | None = None
    longitude: float | None = None
    address: str | None = None
    renewal_code: str | None = None
    photo_urls: tuple[str, ...] = ()
    answers: Mapping[str, str] = field(default_factory=dict)
    public_consent: bool = False

    def digest(self) -> str:
        """What "the same input" means for an idempotency key: every field but the key."""
        canonical = json.dumps(
            [
                self.kind,
                self.service_code,
                self.description,
                self.citizen_name,
                self.citizen_mobile,
                self.latitude,
                self.longitude,
                self.address,
                self.renewal_code,
                list(self.photo_urls),
                sorted(self.answers.items()),
                self.public_consent,
            ],
            separators=(",", ":"),
            ensure_ascii=False,
        )
        return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Registered:
    request: CitizenRequest
    created: bool  # False: the same key from the same registrar named it already
    duplicates: tuple[CitizenRequest, ...]


def channel_of(principal: Principal) -> str:
    """How a principal's registrations came in: the 137 centre's officers (and operators)
    on the phone, partners' apps, any other department key is the citizen portal."""
    if principal.kind is PrincipalKind.OPERATOR or (
        principal.kind is PrincipalKind.DEPARTMENT and principal.department == "contact137"
    ):
        return "CENTRE_137"
    if principal.kind.partner:
        return "PARTNER_APP"
    return "PORTAL"


def normalize_mobile(text: str) -> str:
    """An Iranian mobile number as 09xxxxxxxxx; Persian digits, spaces, dashes and the
    +98/0098 prefix are accepted. BadUserInput (citizenMobile) otherwise."""
    digits = _MOBILE_NOISE.sub("", normalize_digits(text))
    if digits.startswith("+98"):
        digits = "0" + digits[3:]
    elif digits.startswith("0098"):
        digits = "0" + digits[4:]
    elif digits.startswith("9") and len(digits) == 10:
        digits = "0" + digits
    if _MOBILE.fullmatch(digits) is None:
        raise BadUserInput(
            "A mobile number is 11 digits starting 09 (e.g. 0912 345 6789).",
            field="citizenMobile",
        )
    return digits


def _clean(submission: Submission, channel: str) -> Submission:
    """The submission checked field by field, its text trimmed and its mobile normalised."""
    if submission.kind not in REQUEST_KINDS:
        raise BadUserInput(f"kind is one of {', '.join(REQUEST_KINDS)}.", field="kind")
    if channel not in REQUEST_CHANNELS:
        raise ValueError(f"unknown channel {channel!r}")
    key = submission.idempotency_key
    if not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY or not key.isprintable() or key != key.strip():
        raise BadUserInput(
            f"An idempotency key is 1 to {MAX_IDEMPOTENCY_KEY} printable characters.",
            field="idempotencyKey",
        )
    description = submission.description.strip()
    if not description or len(description) > MAX_DESCRIPTION:
        raise BadUserInput(
            f"The description is 1 to {MAX_DESCRIPTION} characters.", field="description"
        )
    name = " ".join(submission.citizen_name.split())
    if not 2 <= len(name) <= MAX_NAME:
        raise BadUserInput(f"The name is 2 to {MAX_NAME} characters.", field="citizenName")
    mobile = normalize_mobile(submission.citizen_mobile)
    latitude, longitude = submission.latitude, submission.longitude
    if (latitude is None) != (longitude is None):
        raise BadUserInput(
            "Give both latitude and longitude, or neither.",
            field="latitude" if latitude is None else "longitude",
        )
    if latitude is not None and longitude is not None and not geo.valid_point(latitude, longitude):
        # Name the coordinate at fault: a longitude beyond ±180 is not the latitude's.
        wrong = "latitude" if not geo.valid_point(latitude, 0.0) else "longitude"
        raise BadUserInput("Not a point on Earth (WGS 84 degrees).", field=wrong)
    address = None if submission.address is None else " ".join(submission.address.split())
    if address is not None and not 1 <= len(address) <= MAX_ADDRESS:
        raise BadUserInput(f"An address is 1 to {MAX_ADDRESS} characters.", field="address")
    if latitude is None and address is None:
        raise BadUserInput(
            "Say where: coordinates (latitude and longitude) or an address.", field="address"
        )
    renewal = submission.renewal_code
    if renewal is not None:
        try:
            renewal = str(parse_renewal_code(renewal))
        except InvalidIdentifier as exc:
            raise BadUserInput(str(exc), field="renewalCode") from None
    if len(submission.photo_urls) > MAX_PHOTOS:
        raise BadUserInput(f"At most {MAX_PHOTOS} photos.", field="photoUrls")
    for url in submission.photo_urls:
        parts = urlsplit(url)
        if len(url) > MAX_PHOTO_URL or parts.scheme not in ("https", "http") or not parts.netloc:
            raise BadUserInput(
                f"A photo is an http(s) URL of at most {MAX_PHOTO_URL} characters.",
                field="photoUrls",
            )
    if len(submission.answers) > MAX_ANSWERS or any(
        len(str(value)) > MAX_ANSWER for value in submission.answers.values()
    ):
        raise BadUserInput("Too many or too long answers.", field="answers")
    return Submission(
        kind=submission.kind,
        service_code=submission.service_code.strip(),
        description=description,
        citizen_name=name,
        citizen_mobile=mobile,
        idempotency_key=key,
        latitude=latitude,
        longitude=longitude,
        address=address,
        renewal_code=renewal,
        photo_urls=tuple(submission.photo_urls),
        answers={str(k): str(v).strip() for k, v in submission.answers.items()},
        public_consent=submission.public_consent,
    )


def check_answers(service: ServiceDefinition, answers: Mapping[str, str]) -> None:
    """The answers fit the service's questions: every required one answered, each code a
    question of the service, a list's answer one of its values."""
    questions = {str(q["code"]): q for q in service.questions}
    for code in answers:
        if code not in questions:
            raise BadUserInput(
                f"The service {service.code} asks no question {code!r}.", field="answers"
            )
    for code, question in questions.items():
        answer = answers.get(code)
        if not answer:
            if question.get("required"):
                raise BadUserInput(f"The question {code!r} needs an answer.", field="answers")
            continue
        values = [str(v["key"]) for v in question.get("values") or ()]
        if question.get("datatype") in ("singlevaluelist", "multivaluelist") and values:
            given = answer.split(",") if question["datatype"] == "multivaluelist" else [answer]
            if any(item not in values for item in given):
                raise BadUserInput(
                    f"The answer to {code!r} is one of: {', '.join(values)}.", field="answers"
                )


async def _existing(
    connection: AsyncConnection, registrar: str, submission: Submission
) -> CitizenRequest | None:
    row = (
        await connection.execute(
            select(REQUESTS).where(
                REQUESTS.c.registered_by == registrar,
                REQUESTS.c.idempotency_key == submission.idempotency_key,
            )
        )
    ).first()
    if row is None:
        return None
    if row.input_digest != submission.digest():
        raise Conflict(
            "This idempotency key was used for another request with a different input.",
            field="idempotencyKey",
            trackingCode=row.tracking_code,
        )
    return CitizenRequest.from_row(row)


async def find_duplicates(
    connection: AsyncConnection,
    request: CitizenRequest,
    policy: DuplicatePolicy,
) -> tuple[CitizenRequest, ...]:
    """Open requests for the same service registered within the policy's window before this
    one, within its radius (by coordinates), or at the same address or parcel; nearest and
    newest first. Merged requests are not offered again."""
    rows = await connection.execute(
        select(REQUESTS).where(_duplicate_condition(request, policy)).limit(200)
    )
    return _nearest(request, policy, [CitizenRequest.from_row(row) for row in rows])


async def find_duplicates_of_many(
    connection: AsyncConnection,
    requests: Sequence[CitizenRequest],
    policy: DuplicatePolicy,
    where: ColumnElement[bool],
) -> list[tuple[CitizenRequest, ...]]:
    """`find_duplicates` for each of `requests`, in one statement, among the requests that
    meet `where` (the caller's row rule: a duplicate the caller may not see is not offered)."""
    if not requests:
        return []
    statement = select(REQUESTS).where(
        where, or_(*(_duplicate_condition(request, policy) for request in requests))
    )
    candidates = [CitizenRequest.from_row(row) for row in await connection.execute(statement)]
    found = []
    for request in requests:
        # The statement's condition for this request, applied to the candidates of all.
        since = request.registered_at - policy.window
        own = [
            other
            for other in candidates
            if other.service_id == request.service_id
            and other.id != request.id
            and since <= other.registered_at <= request.registered_at
        ]
        found.append(_nearest(request, policy, own))
    return found


def _duplicate_condition(request: CitizenRequest, policy: DuplicatePolicy) -> ColumnElement[bool]:
    since = naive(request.registered_at - policy.window)
    places: list[ColumnElement[bool]] = []
    if request.latitude is not None and request.longitude is not None:
        centre = geo.Point(request.latitude, request.longitude)
        south, north, west, east = geo.bounding_box(centre, policy.radius_m)
        places.append(
            REQUESTS.c.latitude.between(south, north) & REQUESTS.c.longitude.between(west, east)
        )
    if request.address is not None:
        places.append(REQUESTS.c.address == request.address)
    if request.renewal_code is not None:
        places.append(REQUESTS.c.renewal_code == request.renewal_code)
    return and_(
        REQUESTS.c.service_id == request.service_id,
        REQUESTS.c.id != request.id,
        REQUESTS.c.status.in_(sorted(OPEN_STATUSES)),
        REQUESTS.c.merged_into_id.is_(None),
        REQUESTS.c.registered_at >= since,
        REQUESTS.c.registered_at <= naive(request.registered_at),
        or_(*places),
    )


def _nearest(
    request: CitizenRequest, policy: DuplicatePolicy, candidates: Sequence[CitizenRequest]
) -> tuple[CitizenRequest, ...]:
    """Of the candidates, those within the radius or at the same place, nearest and newest
    first, at most the policy's limit."""
    centre: geo.Point | None = None
    if request.latitude is not None and request.longitude is not None:
        centre = geo.Point(request.latitude, request.longitude)
    found: list[tuple[float, CitizenRequest]] = []
    for other in candidates:
        distance = math.inf
        if centre is not None and other.latitude is not None and other.longitude is not None:
            distance = geo.distance_m(centre, geo.Point(other.latitude, other.longitude))
        same_place = (request.address is not None and other.address == request.address) or (
            request.renewal_code is not None and other.renewal_code == request.renewal_code
        )
        if distance <= policy.radius_m or same_place:
            found.append((distance if distance != math.inf else 0.0, other))
    found.sort(key=lambda pair: (pair[0], -pair[1].id))
    return tuple(other for _, other in found[: policy.limit])


async def _locate(
    connection: AsyncConnection, submission: Submission, regions: Sequence[routing.Region]
) -> tuple[int | None, geo.Point | None]:
    point = None
    region = None
    if submission.latitude is not None and submission.longitude is not None:
        point = geo.Point(submission.latitude, submission.longitude)
        region = geo.region_of(point, [(r.number, r.boundary) for r in regions])
        if region is None and submission.address is None:
            raise BadUserInput(
                "This point lies outside every region of the city; give an address too, "
                "and the 137 centre will locate it.",
                field="latitude",
            )
    if region is None and submission.renewal_code is not None:
        region = parse_renewal_code(submission.renewal_code).region
    return region, point


async def register(
    databases: Databases,
    principal: Principal,
    submission: Submission,
    *,
    now: dt.datetime,
    channel: str | None = None,
    duplicates: DuplicatePolicy | None = None,
    open311_token: str | None = None,
) -> Registered:
    """The request, committed before this returns, whether this call created it, and the
    possible duplicates offered. Refused with nothing stored: a field that is not valid
    (BAD_USER_INPUT naming it), a service unknown or withdrawn (BAD_USER_INPUT serviceCode),
    one not enabled in the region (SERVICE_NOT_AVAILABLE_IN_REGION), a key reused with another
    input (CONFLICT). `now` is aware; `channel` defaults to the principal's (`channel_of`)."""
    channel = channel or channel_of(principal)
    submission = _clean(submission, channel)
    policy = duplicates or DuplicatePolicy()
    registrar = principal.label
    engine = databases.engine(DATABASE)
    async with engine.connect() as connection:
        found = await _existing(connection, registrar, submission)
        if found is not None:
            return Registered(found, False, await find_duplicates(connection, found, policy))
        service = await load_service(connection, code=submission.service_code)
        if service is None or not service.active:
            raise BadUserInput("No service of the catalogue has this code.", field="serviceCode")
        check_answers(service, submission.answers)
        regions = await routing.load_regions(connection)
        region, point = await _locate(connection, submission, regions)
        if region is not None and region not in service.regions:
            raise ServiceNotAvailableInRegion(
                f"The service {service.code} is not offered in region {region} yet.",
                serviceCode=service.code,
                region=region,
                regions=list(service.regions),
            )
        if region is None and not service.regions:
            raise ServiceNotAvailableInRegion(
                f"The service {service.code} is not offered in any region yet.",
                serviceCode=service.code,
                region=None,
                regions=[],
            )
        chosen = await routing.route(
            connection,
            service=service,
            kind=submission.kind,
            region=region,
            point=point,
            at=now,
            answers=submission.answers,
            regions=regions,
        )
        workweek = await load_workweek(connection)
    status = "REFERRED" if chosen.referred_to else "ASSIGNED"
    deadline = (
        None
        if chosen.referred_to
        else Deadline.working_days(service.deadline_days).due_at(now, workweek)
    )
    for _attempt in range(5):  # a tracking code already taken: draw another
        values: dict[str, Any] = {
            "tracking_code": new_tracking_code(),
            "kind": submission.kind,
            "status": status,
            "service_id": service.id,
            "channel": channel,
            "registered_by_kind": principal.kind.value,
            "registered_by": registrar,
            "idempotency_key": submission.idempotency_key,
            "input_digest": submission.digest(),
            "description": submission.description,
            "latitude": submission.latitude,
            "longitude": submission.longitude,
            "address": submission.address,
            "renewal_code": submission.renewal_code,
            "region": region,
            "department": chosen.department,
            "region_office": chosen.region_office,
            "referred_to": chosen.referred_to,
            "routing_rule_id": chosen.rule_id,
            "citizen_name": submission.citizen_name,
            "citizen_mobile": submission.citizen_mobile,
            "photo_urls": list(submission.photo_urls),
            "answers": dict(submission.answers),
            "open311_token": open311_token,
            "registered_at": naive(now),
            "updated_at": naive(now),
            "assigned_at": None if chosen.referred_to else naive(now),
            "deadline_at": None if deadline is None else naive(deadline),
            "paused_seconds": 0,
            "reopen_count": 0,
            "public_consent": submission.public_consent,
            "version": 1,
        }
        try:
            async with engine.connect() as connection:
                # Writers take SQLite's lock up front, with short retries (db/engines.py).
                await begin_write(connection)
                created = await _insert(connection, values)
                await _first_history(connection, created.id, principal, chosen, status, now)
                await connection.commit()
                offered = await find_duplicates(connection, created, policy)
            return Registered(created, True, offered)
        except IntegrityError:
            pass
        # Either the same key arrived at the same moment (it won: answer with its request)
        # or the tracking code was taken (draw again).
        async with engine.connect() as connection:
            found = await _existing(connection, registrar, submission)
            if found is not None:
                return Registered(found, False, await find_duplicates(connection, found, policy))
    raise RuntimeError("no free tracking code after five draws")


async def _insert(connection: AsyncConnection, values: dict[str, Any]) -> CitizenRequest:
    """Inserts the request and reads it back: in the one statement where the backend
    returns rows from an INSERT (PostgreSQL, SQLite), else by its new id."""
    if connection.dialect.insert_returning:
        row = (
            await connection.execute(insert(REQUESTS).values(**values).returning(REQUESTS))
        ).one()
        return CitizenRequest.from_row(row)
    inserted = await connection.execute(insert(REQUESTS).values(**values))
    key = inserted.inserted_primary_key
    assert key is not None
    created = await load(connection, int(key[0]))
    assert created is not None
    return created


async def _first_history(
    connection: AsyncConnection,
    request_id: int,
    principal: Principal,
    chosen: routing.Route,
    status: str,
    now: dt.datetime,
) -> None:
    """REGISTERED (as SUBMITTED), then the routing's move to ASSIGNED or REFERRED: the same
    rows records.append_history writes, in one statement."""
    common = {"request_id": request_id, "at": naive(now)}
    await connection.execute(
        insert(HISTORY),
        [
            {
                **common,
                "event": "REGISTERED",
                "from_status": None,
                "to_status": "SUBMITTED",
                "actor_kind": principal.kind.value,
                "actor": principal.label,
                "department": None,
                "note": "Registered.",
            },
            {
                **common,
                "event": "TRANSITION",
                "from_status": "SUBMITTED",
                "to_status": status,
                "actor_kind": "system",
                "actor": "routing",
                "department": chosen.department,
                "note": routing.describe(chosen),
            },
        ],
    )


def duplicate_policy(radius_m: float, window_hours: float) -> DuplicatePolicy:
    return DuplicatePolicy(radius_m=radius_m, window=dt.timedelta(hours=window_hours))


def tracking_codes(requests: Sequence[CitizenRequest]) -> list[str]:
    return [request.tracking_code for request in requests]
