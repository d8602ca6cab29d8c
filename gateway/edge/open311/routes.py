"""The Open311 addresses, each in XML and JSON by its suffix:

    /open311/v2/discovery.{fmt}            the Service Discovery file (also /open311/discovery)
    /open311/v2/services.{fmt}             the catalogue's services
    /open311/v2/services/{code}.{fmt}      a service's definition: its questions as attributes
    /open311/v2/requests.{fmt}        GET  requests, filtered; POST registers one (API key)
    /open311/v2/requests/{id}.{fmt}        one request by its tracking code
    /open311/v2/tokens/{token}.{fmt}       the request a client registered under an
                                           Idempotency-Key, by that key

Who is calling: `Authorization: Bearer <key>` on any address, or, on POST, the form's
`api_key` (the specification's), an API key (or JWT) of this gateway either way. These paths
are not authenticated by the middleware (gateway/edge/middleware.py skips them) because
Open311 answers a bad key with its own 403 in the format asked for; the same authenticator,
cache and failed-attempt throttle decide here. A key in the address's query is refused, since
addresses end up in logs. Every address is charged to the caller's rate-limit window, as
/graphql is. What a caller reads is what the row rules let it read through GraphQL (its own
registrations for a partner app, its queue for a department, everything for operators), with
nothing personal in it; the public reads the catalogue.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import ColumnElement
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from db.contact import CitizenRequestRecord
from db.engines import Databases
from gateway.access.audit import AuditEntry, AuditTrail
from gateway.access.authentication import (
    AuthenticationFailed,
    AuthenticationThrottled,
    AuthenticationUnavailable,
    Authenticator,
)
from gateway.access.principals import ANONYMOUS, Principal
from gateway.access.replays import audit_registration
from gateway.access.rows import RULES, sees_none
from gateway.clock import WallClock
from gateway.edge.open311 import documents
from gateway.edge.open311.documents import Language
from gateway.edge.open311.errors import Open311Error, error_response, from_gateway_error
from gateway.edge.open311.formats import Document, Format, render, w3_datetime
from gateway.edge.open311.params import (
    Form,
    parse_form,
    parse_moment,
    parse_request_filter,
    split_format,
)
from gateway.edge.requests import client_address, request_ids, sane_token
from gateway.errors import GatewayError
from gateway.guards.ratelimit import RateLimits
from gateway.inquiries.tracking import parse_tracking_code
from gateway.requests import listing, records, registration
from gateway.settings import Settings
from identifiers import InvalidIdentifier, normalize_digits

__all__ = ["ENDPOINT", "PREFIX", "Open311"]

log = logging.getLogger("gateway.edge.open311")

PREFIX = "/open311/"
OPEN311_CHANNEL = "OPEN311"
# The audit trail's name for a registration through Open311 (GraphQL's is the mutation's).
AUDIT_OPERATION = "Open311.POST requests"
ENDPOINT = "/open311/v2"
# Every method reaches the handler, so that a wrong one is refused in Open311's shape too.
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE")
# The catalogue changes rarely; clients may keep it a few minutes.
CATALOGUE_CACHE = "public, max-age=300"
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)", re.ASCII)


@dataclass(frozen=True)
class Call:
    """One Open311 request as the handlers see it."""

    request: Request
    format: Format
    language: Language
    principal: Principal
    argument: str | None  # the service code, request id or token in the address
    form: Form | None = None  # POST's


Handler = Callable[["Open311", Call], Awaitable[Response]]


class Open311:
    """The routes, with what they need from the app: its settings, databases, rate limits,
    authenticator (shared with /graphql: one cache, one throttle), wall clock and audit
    trail (the GraphQL view's: one chain, one process's appends in order)."""

    def __init__(
        self,
        settings: Settings,
        databases: Databases,
        rate_limits: RateLimits,
        authenticator: Authenticator,
        wall_clock: WallClock,
        audit_trail: AuditTrail,
    ) -> None:
        self.settings = settings
        self.databases = databases
        self.rate_limits = rate_limits
        self.authenticator = authenticator
        self.wall_clock = wall_clock
        self.audit_trail = audit_trail
        public = urlsplit(settings.public_url)
        self.endpoint_url = f"{settings.public_url.rstrip('/')}{ENDPOINT}"
        host = (public.hostname or "").lower().removeprefix("www.")
        self.jurisdictions = frozenset(filter(None, {settings.municipality_code.lower(), host}))

    @property
    def routes(self) -> list[BaseRoute]:
        return [Route(PREFIX + "{path:path}", self.dispatch, methods=list(_METHODS))]

    async def dispatch(self, request: Request) -> Response:
        path: str = request.path_params["path"]
        format_ = Format.JSON if path.lower().endswith(".json") else Format.XML
        try:
            handler, format_, argument = self._resolve(path, request.method)
            query = _multi(request.query_params.multi_items())
            if "api_key" in query:
                raise Open311Error.bad_request(
                    "Send the API key as api_key in the POSTed form or as "
                    "'Authorization: Bearer', never in the address."
                )
            form: Form | None = None
            form_key: str | None = None
            jurisdictions = [v for v in query.get("jurisdiction_id", ()) if v.strip()]
            if handler is Open311.create_request:
                form = await self._form(request)
                form_key = form.get("api_key")
                jurisdictions.append(form.get("jurisdiction_id") or "")
            for jurisdiction_id in filter(None, jurisdictions):
                self._check_jurisdiction(jurisdiction_id)
            principal = await self._authenticate(request, form_key)
            # Where the middleware would have left it: logs and metrics name the caller.
            request.scope["principal"] = principal
            await self._charge(request, principal)
            call = Call(
                request=request,
                format=format_,
                language=Language.from_header(request.headers.get("accept-language")),
                principal=principal,
                argument=argument,
                form=form,
            )
            return await handler(self, call)
        except Open311Error as refused:
            return error_response(refused, format_)
        except GatewayError as refused:
            return error_response(from_gateway_error(refused, POST_FIELDS), format_)
        except Exception:
            request_id, _ = request_ids(request.scope)
            log.exception("Open311 request failed (request %s)", request_id)
            failed = Open311Error(500, f"Internal error; request id {request_id}.", "INTERNAL")
            return error_response(failed, format_)

    # --- the addresses ------------------------------------------------------------------------

    def _resolve(self, path: str, method: str) -> tuple[Handler, Format, str | None]:
        head, _, last = path.rpartition("/")
        stem, format_ = split_format(last)
        parts = [*head.split("/"), stem] if head else [stem]
        handler: Handler | None = None
        argument: str | None = None
        allowed: tuple[str, ...] = ("GET", "HEAD")
        match parts:
            case ["discovery"] | ["v2", "discovery"]:
                handler = Open311.discovery
            case ["v2", "services"]:
                handler = Open311.service_list
            case ["v2", "services", code] if code:
                handler, argument = Open311.service_definition, code
            case ["v2", "requests"]:
                allowed = ("GET", "HEAD", "POST")
                handler = Open311.create_request if method == "POST" else Open311.request_list
            case ["v2", "requests", request_id] if request_id:
                handler, argument = Open311.one_request, request_id
            case ["v2", "tokens", token] if token:
                handler, argument = Open311.token, token
        if handler is None:
            raise Open311Error.not_found(f"{ENDPOINT}/ serves no such resource.")
        if method not in allowed:
            methods = " or ".join(m for m in allowed if m != "HEAD")
            raise Open311Error(
                405,
                f"{method} is not allowed here; use {methods}.",
                "BAD_REQUEST",
                headers={"Allow": ", ".join(allowed)},
            )
        return handler, format_, argument

    def _check_jurisdiction(self, jurisdiction_id: str) -> None:
        """Optional, this endpoint serving one jurisdiction; when sent it must be ours."""
        given = jurisdiction_id.strip().lower().removeprefix("www.")
        if given not in self.jurisdictions:
            raise Open311Error.not_found(
                "This jurisdiction_id is not served here; this endpoint serves "
                f"{' or '.join(sorted(self.jurisdictions))}."
            )

    async def _authenticate(self, request: Request, form_key: str | None) -> Principal:
        found = [value for name, value in request.scope["headers"] if name == b"authorization"]
        if len(found) > 1:
            raise _invalid_key()
        header = found[0].decode("latin-1") if found else None
        if form_key is not None:
            if header is not None and header.strip() != f"Bearer {form_key.strip()}":
                raise Open311Error.bad_request(
                    "api_key and the Authorization header name different keys."
                )
            header = f"Bearer {form_key.strip()}"
        if header is None:
            return ANONYMOUS
        try:
            return await self.authenticator.authenticate(header, client_address(request.scope))
        except AuthenticationFailed:
            raise _invalid_key() from None
        except AuthenticationThrottled as throttled:
            raise Open311Error(
                429,
                "Too many failed attempts with an api_key; retry later.",
                "RATE_LIMITED",
                headers={"Retry-After": str(throttled.retry_after)},
            ) from None
        except AuthenticationUnavailable:
            request_id, _ = request_ids(request.scope)
            log.exception("authentication unavailable (request %s)", request_id)
            raise Open311Error(
                503, f"Keys cannot be checked now; try again (request {request_id}).", "INTERNAL"
            ) from None

    async def _charge(self, request: Request, principal: Principal) -> None:
        retry_after = await self.rate_limits.charge(principal, client_address(request.scope))
        if retry_after is not None:
            raise Open311Error(
                429,
                f"Too many requests; try again in {retry_after} s.",
                "RATE_LIMITED",
                headers={"Retry-After": str(retry_after)},
            )

    async def _form(self, request: Request) -> Form:
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type not in ("", "application/x-www-form-urlencoded"):
            raise Open311Error.bad_request(
                "Send the service request as application/x-www-form-urlencoded."
            )
        return parse_form(await request.body())

    def _condition(self, principal: Principal) -> ColumnElement[bool]:
        return RULES.condition(CitizenRequestRecord, principal)

    # --- the handlers ---------------------------------------------------------------------------

    async def discovery(self, call: Call) -> Response:
        async with self.databases.engine(records.DATABASE).connect() as connection:
            changed = await listing.catalogue_changed_at(connection)
        changeset = w3_datetime(changed) if changed is not None else "1970-01-01T00:00:00Z"
        name = self.settings.municipality_name
        fa = call.language is Language.FA
        document = documents.discovery(
            endpoint_url=self.endpoint_url,
            changeset=changeset,
            production=not self.settings.development,
            contact=(
                f"{name}، مرکز ارتباط مردمی ۱۳۷ (تلفن ۱۳۷)"
                if fa
                else f"{name}, the 137 contact centre (call 137)"
            ),
            key_service=(
                "کلید API را واحد فناوری اطلاعات شهرداری صادر می‌کند؛ آن را در api_key یا "
                "سرآیند Authorization: Bearer بفرستید."
                if fa
                else "API keys are issued by the municipality's IT operators; send one as "
                "api_key or in an 'Authorization: Bearer' header."
            ),
        )
        return _answer(document, call, cache=CATALOGUE_CACHE)

    async def service_list(self, call: Call) -> Response:
        async with self.databases.engine(records.DATABASE).connect() as connection:
            services = await records.load_services(connection)
        return _answer(documents.service_list(services, call.language), call, cache=CATALOGUE_CACHE)

    async def service_definition(self, call: Call) -> Response:
        assert call.argument is not None
        async with self.databases.engine(records.DATABASE).connect() as connection:
            service = await records.load_service(connection, code=call.argument)
        if service is None or not service.active:
            raise Open311Error.not_found("No service has this service_code.")
        document = documents.service_definition(service, call.language)
        return _answer(document, call, cache=CATALOGUE_CACHE)

    async def request_list(self, call: Call) -> Response:
        query = _multi(call.request.query_params.multi_items())
        wanted = parse_request_filter(query, self.wall_clock())
        condition = self._condition(call.principal)
        found: list[records.CitizenRequest] = []
        if not sees_none(condition):
            async with self.databases.engine(records.DATABASE).connect() as connection:
                if wanted.ids:
                    codes = [_tracking_code(value) for value in wanted.ids]
                    found = await listing.by_tracking_codes(
                        connection,
                        codes,
                        where=condition,
                        offset=wanted.offset,
                        limit=wanted.page_size,
                    )
                else:
                    assert wanted.since is not None
                    assert wanted.until is not None
                    found = await listing.registered_between(
                        connection,
                        wanted.since,
                        wanted.until,
                        service_codes=wanted.service_codes,
                        open_="open" in wanted.statuses,
                        closed="closed" in wanted.statuses,
                        where=condition,
                        offset=wanted.offset,
                        limit=wanted.page_size,
                    )
                return await self._requests(connection, found, call)
        return await self._requests(None, found, call)

    async def one_request(self, call: Call) -> Response:
        assert call.argument is not None
        code = _tracking_code(call.argument)
        condition = self._condition(call.principal)
        if not sees_none(condition):
            async with self.databases.engine(records.DATABASE).connect() as connection:
                found = await records.load_by_tracking_code(connection, code, where=condition)
                if found is not None:
                    return await self._requests(connection, [found], call)
        raise Open311Error.not_found("No request with this service_request_id was found.")

    async def token(self, call: Call) -> Response:
        """A client that sent an Idempotency-Key with its POST (and lost the answer) finds the
        request's id by that key: its own registrations only."""
        assert call.argument is not None
        condition = self._condition(call.principal)
        if call.principal is not ANONYMOUS and not sees_none(condition):
            async with self.databases.engine(records.DATABASE).connect() as connection:
                found = await listing.by_idempotency_key(
                    connection, call.principal.label, call.argument, where=condition
                )
            if found is not None:
                return _answer(documents.token_answer(found, call.argument), call)
        raise Open311Error.not_found("No request of yours was registered with this token.")

    async def create_request(self, call: Call) -> Response:
        """Registers the request through the one registration path (gateway/requests/
        registration.py), as submitCitizenRequest does: the same checks, routing, tracking
        code, deadline and idempotency (the client's Idempotency-Key header, if it sends
        one), audited the same way once it is committed."""
        form = call.form
        assert form is not None
        if call.principal is ANONYMOUS:
            raise Open311Error(
                403, "An api_key is required to create a service request.", "FORBIDDEN"
            )
        code = form.get("service_code")
        if code is None:
            raise Open311Error.bad_request("service_code is required.")
        async with self.databases.engine(records.DATABASE).connect() as connection:
            service = await records.load_service(connection, code=code.strip())
        if service is None or not service.active:
            raise Open311Error.not_found("No service has this service_code.")
        submission = _submission(form, service, call.request.headers.get("idempotency-key"))
        settings = self.settings
        registered = await registration.register(
            self.databases,
            call.principal,
            submission,
            now=self.wall_clock(),
            channel=OPEN311_CHANNEL,
            duplicates=registration.duplicate_policy(
                settings.request_duplicate_radius_m, settings.request_duplicate_window_hours
            ),
        )
        await self._audit(call, registered.request, created=registered.created)
        document = documents.submitted(
            registered.request, service, call.language, duplicates=len(registered.duplicates)
        )
        return _answer(document, call)

    async def _audit(self, call: Call, request: records.CitizenRequest, *, created: bool) -> None:
        """The registration in the audit trail under the caller, before the answer leaves,
        as the mutation's is (the request holds the citizen's name and mobile); a replay
        writes it when the original's write failed (gateway/access/replays.py)."""
        request_id, caller_request_id = request_ids(call.request.scope)
        entry = AuditEntry(
            principal_kind=call.principal.kind.value,
            principal_id=call.principal.id,
            action="change",
            operation=AUDIT_OPERATION,
            subject_type="CitizenRequest",
            subject_id=str(request.id),
            purpose=sane_token(call.request.headers.get("x-road-issue", "")),
            request_id=request_id,
            caller_request_id=caller_request_id,
        )
        try:
            await audit_registration(
                self.audit_trail, self.audit_trail.append, entry, created=created
            )
        except Exception:
            log.exception(
                "a committed registration is not in the audit trail (request %s)", request_id
            )
            raise

    async def _requests(
        self,
        connection: AsyncConnection | None,
        found: Sequence[records.CitizenRequest],
        call: Call,
    ) -> Response:
        services: dict[int, records.ServiceDefinition] = {}
        if found and connection is not None:
            loaded = await records.load_services(
                connection, ids={r.service_id for r in found}, include_inactive=True
            )
            services = {service.id: service for service in loaded}
        return _answer(documents.request_list(found, services, call.language), call)


# The domain's names for a submission's fields, as Open311's form calls them (errors name
# the form's field).
POST_FIELDS: Mapping[str, str] = {
    "answers": "attribute",
    "serviceCode": "service_code",
    "service_code": "service_code",
    "latitude": "lat",
    "longitude": "long",
    "address": "address_string",
    "citizenName": "first_name",
    "citizen_name": "first_name",
    "citizenMobile": "phone",
    "citizen_mobile": "phone",
    "photoUrls": "media_url",
    "photo_urls": "media_url",
    "idempotencyKey": "Idempotency-Key",
    "idempotency_key": "Idempotency-Key",
}


def _number(text: str) -> float | None:
    """A decimal number in ASCII, Persian or Arabic-Indic digits; None for anything else
    (float() would also take "1_0", "inf" and other scripts' digits)."""
    folded = normalize_digits(text)
    if len(folded) > 40 or _DECIMAL.fullmatch(folded) is None:
        return None
    return float(folded)


def _coordinate(form: Form, name: str) -> float | None:
    text = form.get(name)
    if text is None:
        return None
    value = _number(text)
    if value is None:
        raise Open311Error.bad_request(f"'{name}' must be a number (WGS 84 degrees).")
    return value


def _answers(
    attributes: Mapping[str, str | list[str]], service: records.ServiceDefinition
) -> dict[str, str]:
    """The answers to the service's questions as registration keeps them (a multivaluelist's
    keys comma-joined), each checked against its datatype; registration then checks that
    every code is a question, every required one is answered and list values are the
    question's."""
    datatypes = {str(q["code"]): str(q.get("datatype") or "string") for q in service.questions}
    answers: dict[str, str] = {}
    for code, given in attributes.items():
        datatype = datatypes.get(code)
        field = f"attribute[{code}]"
        if isinstance(given, list):
            if datatype != "multivaluelist":
                raise Open311Error.bad_request(f"'{field}' takes one value, not a list.")
            values = [value.strip() for value in given if value.strip()]
            if any("," in value for value in values):
                raise Open311Error.bad_request(f"'{field}' values are keys without commas.")
            answer = ",".join(values)
        else:
            answer = given.strip()
        if not answer:
            continue
        if datatype == "number":
            if _number(answer) is None:
                raise Open311Error.bad_request(f"'{field}' must be a number.")
            answer = normalize_digits(answer)
        elif datatype == "datetime":
            answer = w3_datetime(parse_moment(answer, field))
        elif datatype == "string" and ("\n" in answer or "\r" in answer):
            raise Open311Error.bad_request(f"'{field}' is one line of text.")
        answers[code] = answer
    return answers


def _submission(
    form: Form, service: records.ServiceDefinition, idempotency_key: str | None
) -> registration.Submission:
    """The form as registration's submission. The citizen's name (first_name, last_name) and
    mobile (phone) are required here, where the specification leaves them optional: the 137
    centre answers the citizen by them. email, device_id and account_id are not kept."""
    latitude, longitude = _coordinate(form, "lat"), _coordinate(form, "long")
    if (latitude is None) != (longitude is None):
        raise Open311Error.bad_request("Send both lat and long, or neither.")
    address = form.get("address_string")
    if latitude is None and address is None:
        if form.get("address_id") is not None:
            raise Open311Error.bad_request(
                "address_id is not known here: send lat and long, or address_string."
            )
        raise Open311Error.bad_request("A location is required: lat and long, or address_string.")
    name = " ".join(
        part.strip() for part in (form.get("first_name"), form.get("last_name")) if part
    )
    if not name:
        raise Open311Error.bad_request(
            "first_name (and last_name) are required: the 137 centre answers the citizen."
        )
    phone = form.get("phone")
    if phone is None:
        raise Open311Error.bad_request("phone is required: the citizen's mobile number (09…).")
    description = form.get("description")
    if description is None:
        raise Open311Error.bad_request("description is required.")
    media_url = form.get("media_url")
    return registration.Submission(
        kind="REQUEST",
        service_code=service.code,
        description=description,
        citizen_name=name,
        citizen_mobile=phone,
        idempotency_key=(
            idempotency_key.strip() if idempotency_key else f"open311:{uuid.uuid4().hex}"
        ),
        latitude=latitude,
        longitude=longitude,
        address=address,
        photo_urls=(media_url.strip(),) if media_url else (),
        answers=_answers(form.attributes, service),
    )


def _invalid_key() -> Open311Error:
    return Open311Error(403, "Invalid api_key received.", "UNAUTHENTICATED")


def _tracking_code(value: str) -> str:
    try:
        return parse_tracking_code(value)
    except InvalidIdentifier:
        raise Open311Error.bad_request(
            "A service_request_id is a tracking code: 16 digits, the last a check digit."
        ) from None


def _multi(items: Sequence[tuple[str, str]]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for name, value in items:
        grouped.setdefault(name, []).append(value)
    return grouped


def _answer(document: Document, call: Call, *, cache: str | None = None) -> Response:
    headers = {"Vary": "Accept-Language, Authorization"}
    headers["Cache-Control"] = (
        cache if cache is not None and call.principal is ANONYMOUS else "private, no-store"
    )
    return render(document, call.format, headers=headers)
