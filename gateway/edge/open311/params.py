"""What an Open311 client sends, read strictly: the format in the address, the query's filters
(`service_request_id`, `service_code`, `start_date`, `end_date`, `status`, `page`,
`page_size`), and a POSTed form (`application/x-www-form-urlencoded`, with
`attribute[code]=value` and `attribute[code][]=value` for the service definition's answers).

Each refusal is an Open311Error naming the parameter, so that a client sees what to correct.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from gateway.edge.open311.errors import Open311Error
from gateway.edge.open311.formats import Format

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MAX_PAGE_SIZE",
    "MAX_RANGE",
    "Form",
    "RequestFilter",
    "parse_form",
    "parse_request_filter",
    "split_format",
]

# "Default query limit is a span of 90 days or first 1000 requests returned, whichever is
# smallest"; a range may not span more than 90 days.
MAX_RANGE = dt.timedelta(days=90)
DEFAULT_PAGE_SIZE = 1000
MAX_PAGE_SIZE = 1000
MAX_IDS = 100  # service_request_id=a,b,c… at most this many
MAX_FORM_FIELDS = 200
STATUSES = ("open", "closed")
_ATTRIBUTE = re.compile(r"attribute\[([^\[\]]{1,64})\](\[\])?")


def split_format(name: str) -> tuple[str, Format]:
    """`services.json` → ("services", JSON). An address without a suffix, or with another
    one, is refused in XML (the specification's required format)."""
    stem, dot, suffix = name.rpartition(".")
    if not dot or not stem:
        raise Open311Error.not_found("Add the format to the address: .xml or .json.")
    try:
        return stem, Format(suffix.lower())
    except ValueError:
        raise Open311Error.not_found("The format must be .xml or .json.") from None


def _one(query: Mapping[str, Sequence[str]], name: str) -> str | None:
    """One parameter, None when absent or empty ("a null parameter should be treated as
    equivalent to a non-declared parameter"); sent twice it is refused."""
    values = [value for value in query.get(name, ()) if value.strip()]
    if len(values) > 1:
        raise Open311Error.bad_request(f"'{name}' was sent more than once.")
    return values[0].strip() if values else None


def _list(query: Mapping[str, Sequence[str]], name: str) -> list[str]:
    """A comma-delimited parameter, which the specification lets a client also repeat."""
    items = [item.strip() for value in query.get(name, ()) for item in value.split(",")]
    return [item for item in items if item]


def parse_moment(text: str, name: str) -> dt.datetime:
    """A W3C date-time (`2010-01-01T00:00:00Z`, or with an offset); a bare date is midnight
    UTC, and so is a moment without an offset (the specification requires one; clients that
    leave it out mean UTC)."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        if len(value) == 10:
            moment = dt.datetime.combine(dt.date.fromisoformat(value), dt.time())
        else:
            moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise Open311Error.bad_request(
            f"'{name}' is not a date and time in W3C format, e.g. 2026-11-01T00:00:00Z."
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    try:
        return moment.astimezone(dt.UTC)
    except OverflowError:
        raise Open311Error.bad_request(f"'{name}' is out of range.") from None


def _positive(query: Mapping[str, Sequence[str]], name: str, default: int, maximum: int) -> int:
    text = _one(query, name)
    if text is None:
        return default
    if not (text.isascii() and text.isdigit()) or len(text) > 9 or int(text) < 1:
        raise Open311Error.bad_request(f"'{name}' must be a whole number from 1 to {maximum}.")
    number = int(text)
    if number > maximum:
        raise Open311Error.bad_request(f"'{name}' must be a whole number from 1 to {maximum}.")
    return number


@dataclass(frozen=True)
class RequestFilter:
    """GET requests' filters. With `ids`, the others are ignored ("This overrides all other
    arguments"); otherwise `since` ≤ requested < `until`, a span of at most 90 days."""

    ids: tuple[str, ...] = ()
    service_codes: tuple[str, ...] = ()
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    statuses: frozenset[str] = frozenset(STATUSES)
    page: int = 1
    page_size: int = DEFAULT_PAGE_SIZE

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.page_size


def parse_request_filter(query: Mapping[str, Sequence[str]], now: dt.datetime) -> RequestFilter:
    page = _positive(query, "page", 1, 1_000_000)
    page_size = _positive(query, "page_size", DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    ids = _list(query, "service_request_id")
    if ids:
        if len(ids) > MAX_IDS:
            raise Open311Error.bad_request(
                f"'service_request_id' names more than {MAX_IDS} requests."
            )
        return RequestFilter(ids=tuple(dict.fromkeys(ids)), page=page, page_size=page_size)
    start = _one(query, "start_date")
    end = _one(query, "end_date")
    since = parse_moment(start, "start_date") if start else None
    until = parse_moment(end, "end_date") if end else None
    if since is None and until is None:
        until = now
    if since is None:
        assert until is not None
        since = until - MAX_RANGE
    if until is None:
        until = since + MAX_RANGE
    if until < since:
        raise Open311Error.bad_request("'end_date' is before 'start_date'.")
    if until - since > MAX_RANGE:
        raise Open311Error.bad_request(
            "'start_date' and 'end_date' may not span more than 90 days."
        )
    statuses = {status.lower() for status in _list(query, "status")}
    unknown = statuses - set(STATUSES)
    if unknown:
        raise Open311Error.bad_request("'status' must be open, closed or both (comma delimited).")
    return RequestFilter(
        service_codes=tuple(dict.fromkeys(_list(query, "service_code"))),
        since=since,
        until=until,
        statuses=frozenset(statuses or STATUSES),
        page=page,
        page_size=page_size,
    )


@dataclass(frozen=True)
class Form:
    """A POSTed service request, as sent: one value per field, and the attributes' answers
    (a list for `attribute[code][]`, else one value)."""

    fields: Mapping[str, str]
    attributes: Mapping[str, str | list[str]] = field(default_factory=dict)

    def get(self, name: str) -> str | None:
        """A field, None when absent or blank (blank is not declared)."""
        value = self.fields.get(name)
        return value if value is not None and value.strip() else None


def parse_form(body: bytes) -> Form:
    """The form of POST requests: UTF-8, urlencoded. A field sent twice is refused, rather
    than one of its values being picked silently."""
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(
            text, keep_blank_values=True, strict_parsing=False, max_num_fields=MAX_FORM_FIELDS
        )
    except UnicodeDecodeError:
        raise Open311Error.bad_request("The form is not UTF-8.") from None
    except ValueError:
        raise Open311Error.bad_request(
            f"The form has more than {MAX_FORM_FIELDS} fields."
        ) from None
    fields: dict[str, str] = {}
    attributes: dict[str, str | list[str]] = {}
    for name, value in pairs:
        matched = _ATTRIBUTE.fullmatch(name)
        if matched:
            code, many = matched.group(1), matched.group(2)
            if many:
                answers = attributes.setdefault(code, [])
                if not isinstance(answers, list):
                    raise Open311Error.bad_request(f"'attribute[{code}]' was sent more than once.")
                answers.append(value)
            elif code in attributes:
                raise Open311Error.bad_request(f"'attribute[{code}]' was sent more than once.")
            else:
                attributes[code] = value
            continue
        if name in fields:
            raise Open311Error.bad_request(f"'{name}' was sent more than once.")
        fields[name] = value
    return Form(fields=fields, attributes=attributes)
