"""The catalogue and citizen requests as GeoReport v2 documents: the discovery file, the
service list, a service definition (its attributes are the service's questions), service
requests, and what POST and tokens answer.

A request's `service_request_id` is its tracking code (کد پیگیری), the number the citizen
quotes to the 137 centre. Its nine statuses map onto Open311's two: open while the
municipality still owes an answer (submitted, assigned, in progress, waiting for the citizen,
reopened), closed once it does not (resolved, rejected, referred to another agency, closed);
`status_notes` says which, in Persian or English. Nothing personal leaves here: not the
citizen's name or mobile number, not an officer's note, not the tracking code of the request
a duplicate was merged into.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence

from gateway.edge.open311.formats import Document, Value, w3_datetime
from gateway.requests.records import CLOSED_STATUSES, CitizenRequest, ServiceDefinition

__all__ = [
    "SPECIFICATION",
    "Language",
    "discovery",
    "request_list",
    "service_definition",
    "service_list",
    "submitted",
    "token_answer",
]

SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
FORMATS = ("text/xml", "application/json")
LIST_DATATYPES = frozenset({"singlevaluelist", "multivaluelist"})


class Language(enum.Enum):
    """The language of names and notes: Persian unless the client prefers English."""

    FA = "fa"
    EN = "en"

    @classmethod
    def from_header(cls, accept_language: str | None) -> Language:
        """The first of fa or en in Accept-Language's order of preference (q-values
        honoured); Persian when neither is named."""
        best: tuple[float, int, Language] | None = None
        for position, part in enumerate((accept_language or "").split(",")):
            tag, _, params = part.strip().partition(";")
            primary = tag.strip().lower().split("-")[0]
            if primary not in ("fa", "en"):
                continue
            quality = 1.0
            params = params.strip()
            if params.startswith("q="):
                try:
                    quality = float(params[2:])
                except ValueError:
                    quality = 0.0
            if quality <= 0:
                continue
            candidate = (-quality, position, cls(primary))
            if best is None or candidate < best:
                best = candidate
        return best[2] if best is not None else cls.FA

    def pick(self, fa: str | None, en: str | None) -> str | None:
        """The text in this language, else in the other."""
        return (fa or en) if self is Language.FA else (en or fa)


# Each status's note (status_notes), Persian and English.
STATUS_NOTES: dict[str, tuple[str, str]] = {
    "SUBMITTED": ("ثبت شده است و در انتظار ارجاع است.", "Registered; waiting to be assigned."),
    "ASSIGNED": ("به واحد مسئول ارجاع شده است.", "Assigned to the responsible department."),
    "IN_PROGRESS": ("در دست اقدام است.", "In progress."),
    "WAITING_FOR_CITIZEN": (
        "در انتظار پاسخ یا اطلاعات شهروند است.",
        "Waiting for information from the citizen.",
    ),
    "RESOLVED": ("رسیدگی شده است.", "Resolved."),
    "REJECTED": ("رد شده است.", "Rejected."),
    "REFERRED": ("به دستگاه مسئول خارج از شهرداری ارجاع شده است.", "Referred to another agency."),
    "REOPENED": ("دوباره باز شده است.", "Reopened."),
    "CLOSED": ("بسته شده است.", "Closed."),
}
AGENCIES: dict[str, tuple[str, str]] = {
    "water": ("شرکت آب و فاضلاب", "the water and sewage company"),
    "electricity": ("شرکت توزیع برق", "the electricity distribution company"),
    "gas": ("شرکت گاز", "the gas company"),
    "police": ("پلیس", "the police"),
}
# Departments as agency_responsible names them (unknown codes are shown as they are).
DEPARTMENTS: dict[str, tuple[str, str]] = {
    "planning": ("معاونت شهرسازی و معماری", "Urban planning and architecture"),
    "revenue": ("اداره درآمد", "Revenue"),
    "contact137": ("مرکز ارتباط مردمی ۱۳۷", "The 137 contact centre"),
    "inspection": ("اداره بازرسی", "Inspection"),
    "urban_services": ("معاونت خدمات شهری", "Urban services"),
    "transport": ("معاونت حمل و نقل و ترافیک", "Transport and traffic"),
    "green_space": ("سازمان سیما، منظر و فضای سبز شهری", "Parks and green space"),
    "civil_works": ("معاونت فنی و عمرانی", "Civil works"),
    "culture_social": ("معاونت فرهنگی و اجتماعی", "Cultural and social affairs"),
    "public_relations": ("اداره روابط عمومی", "Public relations"),
}
MERGED = (
    "با درخواست مشابهی یکی شده است و پاسخ آن را می‌گیرد.",
    "Merged with a duplicate request, whose answer it receives.",
)


def discovery(
    *,
    endpoint_url: str,
    changeset: str,
    production: bool,
    contact: str,
    key_service: str,
) -> Document:
    """The Service Discovery file: this one endpoint, both formats."""
    return Document(
        "discovery",
        {
            "changeset": changeset,
            "contact": contact,
            "key_service": key_service,
            "endpoints": [
                {
                    "specification": SPECIFICATION,
                    "url": endpoint_url,
                    "changeset": changeset,
                    "type": "production" if production else "test",
                    "formats": list(FORMATS),
                }
            ],
        },
    )


def service_list(services: Sequence[ServiceDefinition], language: Language) -> Document:
    return Document("services", [_service(service, language) for service in services])


def _service(service: ServiceDefinition, language: Language) -> dict[str, Value]:
    return {
        "service_code": service.code,
        "service_name": language.pick(service.name_fa, service.name_en),
        "description": language.pick(service.description_fa, service.description_en),
        "metadata": bool(service.questions),
        # The request's id (its tracking code) is known the moment it is registered.
        "type": "realtime",
        "keywords": service.keywords,
        "group": language.pick(service.group_name_fa, service.group_name_en),
    }


def service_definition(service: ServiceDefinition, language: Language) -> Document:
    questions = sorted(service.questions, key=lambda question: int(question.get("order") or 0))
    attributes: list[Value] = []
    for position, question in enumerate(questions, start=1):
        datatype = str(question.get("datatype") or "string")
        attribute: dict[str, Value] = {
            "variable": bool(question.get("variable", True)),
            "code": str(question["code"]),
            "datatype": datatype,
            "required": bool(question.get("required", False)),
            "datatype_description": language.pick(
                question.get("datatype_description_fa"), question.get("datatype_description_en")
            ),
            "order": int(question.get("order") or position),
            "description": language.pick(
                question.get("description_fa"), question.get("description_en")
            ),
        }
        if datatype in LIST_DATATYPES:
            attribute["values"] = [
                {
                    "key": str(value["key"]),
                    "name": language.pick(value.get("name_fa"), value.get("name_en")),
                }
                for value in question.get("values") or ()
            ]
        attributes.append(attribute)
    return Document("service_definition", {"service_code": service.code, "attributes": attributes})


def open311_status(status: str) -> str:
    return "closed" if status in CLOSED_STATUSES else "open"


def status_notes(request: CitizenRequest, language: Language) -> str:
    index = 0 if language is Language.FA else 1
    if request.merged_into_id is not None:
        return MERGED[index]
    note = STATUS_NOTES.get(request.status, (request.status, request.status))[index]
    if request.status == "REFERRED" and request.referred_to:
        agency = AGENCIES.get(request.referred_to, (request.referred_to, request.referred_to))
        note = (
            f"به {agency[0]} ارجاع شده است."
            if language is Language.FA
            else f"Referred to {agency[1]}."
        )
    return note


def service_notice(service: ServiceDefinition, language: Language) -> str:
    if language is Language.FA:
        return f"مهلت پاسخ: {service.deadline_days} روز کاری (شنبه تا چهارشنبه، بدون تعطیلات رسمی)."
    return (
        f"Answered within {service.deadline_days} working days "
        "(Saturday to Wednesday, public holidays excluded)."
    )


def _in(language: Language, names: tuple[str, str] | None, fallback: str) -> str:
    if names is None:
        return fallback
    return names[0] if language is Language.FA else names[1]


def _request(
    request: CitizenRequest, service: ServiceDefinition | None, language: Language
) -> dict[str, Value]:
    agency: str | None = None
    if request.referred_to:
        agency = _in(language, AGENCIES.get(request.referred_to), request.referred_to)
    elif request.department:
        agency = _in(language, DEPARTMENTS.get(request.department), request.department)
    return {
        "service_request_id": request.tracking_code,
        "status": open311_status(request.status),
        "status_notes": status_notes(request, language),
        "service_name": language.pick(service.name_fa, service.name_en) if service else None,
        "service_code": service.code if service else None,
        "description": request.description,
        "agency_responsible": agency,
        "service_notice": service_notice(service, language) if service else None,
        "requested_datetime": w3_datetime(request.registered_at),
        "updated_datetime": w3_datetime(request.updated_at),
        "expected_datetime": w3_datetime(request.deadline_at) if request.deadline_at else None,
        "address": request.address,
        "address_id": None,
        "zipcode": None,
        "lat": request.latitude,
        "long": request.longitude,
        "media_url": request.photo_urls[0] if request.photo_urls else None,
    }


def request_list(
    requests: Sequence[CitizenRequest],
    services: Mapping[int, ServiceDefinition],
    language: Language,
) -> Document:
    return Document(
        "service_requests", [_request(r, services.get(r.service_id), language) for r in requests]
    )


def submitted(
    request: CitizenRequest, service: ServiceDefinition, language: Language, *, duplicates: int = 0
) -> Document:
    """POST requests' answer: the new request's id (its tracking code), and what to expect:
    the deadline, or the agency it was referred to; and whether similar requests are open
    close by (not which: they are other citizens')."""
    if request.status == "REFERRED":
        notice = status_notes(request, language)
    else:
        notice = service_notice(service, language)
    if duplicates:
        notice += (
            f" {duplicates} درخواست مشابه در همین نزدیکی باز است و ممکن است با آن یکی شود."
            if language is Language.FA
            else f" {duplicates} similar open request(s) nearby; they may be merged."
        )
    return Document(
        "service_requests",
        [
            {
                "service_request_id": request.tracking_code,
                "service_notice": notice,
                "account_id": None,
            }
        ],
    )


def token_answer(request: CitizenRequest, token: str) -> Document:
    return Document(
        "service_requests", [{"service_request_id": request.tracking_code, "token": token}]
    )
