"""The inquiries' addresses outside GraphQL: the public keys and the status list verifiers
fetch, the letter a partner prints, and the verification page anyone opens from the address
under a letter's QR code (or by pasting the answer the code holds).

The keys, the status list and the form at /v need no key (PUBLIC_PATHS). The letter is the
asking partner's alone: anyone else, anonymous or not, gets the same 404 as a code that does
not exist. The letter and verification pages are charged to the caller's rate-limit window
(CHARGED_PATHS, by the rate-limit middleware), as /graphql is, so that tracking codes cannot
be tried quickly. Pages are self-contained HTML with their own
Content-Security-Policy: no script, nothing fetched, printable offline.
"""

from __future__ import annotations

import html
from urllib.parse import parse_qs

from sqlalchemy import true
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from db.engines import Databases
from db.gateway import InquiryRecord
from gateway.access.principals import ANONYMOUS, Principal
from gateway.access.rows import RULES, sees_none
from gateway.clock import WallClock
from gateway.edge.errors import error_response
from gateway.edge.requests import bad_request, http_refusal
from gateway.errors import Conflict
from gateway.inquiries import answers
from gateway.inquiries.config import (
    JWKS_PATH,
    STATUS_LIST_PATH,
    InquirySettings,
    inquiry_settings,
)
from gateway.inquiries.letter import render_letter, render_verification_page
from gateway.inquiries.publication import (
    REBUILD_AFTER,
    StatusListCache,
    letter_reasons,
    published_answer,
    verify_answer,
)
from gateway.inquiries.status import Verification
from gateway.inquiries.tracking import parse_tracking_code
from gateway.settings import Settings
from identifiers import InvalidIdentifier

__all__ = ["CHARGED_PATHS", "PUBLIC_PATHS", "VERIFY_PATH", "InquiryPages"]

VERIFY_PATH = "/v"
PUBLIC_PATHS = frozenset({JWKS_PATH, STATUS_LIST_PATH, VERIFY_PATH})
LETTER_PATH = "/inquiries/{tracking_code}/letter"
VERIFY_CODE_PATH = VERIFY_PATH + "/{tracking_code}"
# What names or tries an inquiry is charged to the caller's window (gateway/edge/middleware.py
# RateLimit); what verifiers fetch and cache (keys, status list) and the empty form are not.
CHARGED_PATHS = frozenset({f"GET {LETTER_PATH}", f"POST {VERIFY_PATH}", f"GET {VERIFY_CODE_PATH}"})

# Verifiers cache the keys for minutes; a new key is published ahead of its turn (keys.py).
JWKS_MAX_AGE_S = 300
# Pages: no script, no network; styles inline. Only the pages with the form may post it.
PAGE_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'none'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
FORM_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
_FORM_FIELDS = 8  # a posted form with more fields than this is not ours

_STYLE = """
body { font-family: Vazirmatn, Tahoma, sans-serif; margin: 2cm; color: #000; }
h1 { font-size: 1.4em; margin: 0 0 .2em; }
.verdict { font-size: 1.3em; font-weight: bold; }
textarea { width: 100%; font-family: monospace; direction: ltr; }
"""


def _form_page(municipality: str, message: str) -> str:
    """The page with the form that posts an answer (the text of a letter's QR code) to /v."""
    return f"""<!DOCTYPE html>
<html lang="fa" dir="rtl">
<head>
<meta charset="utf-8">
<meta name="referrer" content="no-referrer">
<title>بررسی پاسخ استعلام</title>
<style>{_STYLE}</style>
</head>
<body>
<h1>{html.escape(municipality)}</h1>
<p class="verdict">{html.escape(message)}</p>
<form method="post" action="{VERIFY_PATH}">
<p><label for="answer">متن پاسخ امضاشده را (همان که در کد QR نامه است) اینجا بگذارید:</label></p>
<p><textarea id="answer" name="answer" rows="8" dir="ltr" required></textarea></p>
<p><button type="submit">بررسی پاسخ</button></p>
</form>
</body>
</html>
"""


class InquiryPages:
    """The routes, with what they need from the app: its settings (the inquiries'
    configuration is read on first use, so an app without signing keys still serves the rest),
    databases and wall clock."""

    def __init__(
        self,
        settings: Settings,
        databases: Databases,
        wall_clock: WallClock,
    ) -> None:
        self.settings = settings
        self.databases = databases
        self.wall_clock = wall_clock
        self.status_lists = StatusListCache()

    @property
    def routes(self) -> list[BaseRoute]:
        return [
            Route(JWKS_PATH, self.jwks, methods=["GET"]),
            Route(STATUS_LIST_PATH, self.status_list, methods=["GET"]),
            Route(LETTER_PATH, self.letter, methods=["GET"]),
            Route(VERIFY_PATH, self.verify_form, methods=["GET"]),
            Route(VERIFY_PATH, self.verify_posted, methods=["POST"]),
            Route(VERIFY_CODE_PATH, self.verify_code, methods=["GET"]),
        ]

    @property
    def config(self) -> InquirySettings:
        return inquiry_settings(self.settings)

    async def jwks(self, _request: Request) -> Response:
        return JSONResponse(
            self.config.keys.jwks(),
            media_type="application/jwk-set+json",
            headers={
                "Cache-Control": f"public, max-age={JWKS_MAX_AGE_S}",
                # Public keys for anyone, a verifier's web page included.
                "Access-Control-Allow-Origin": "*",
            },
        )

    async def status_list(self, _request: Request) -> Response:
        async with self.databases.session("gateway") as session:
            token = await self.status_lists.token(session, self.config, self.wall_clock())
        return Response(
            token,
            media_type="application/statuslist+jwt",
            headers={
                "Cache-Control": f"public, max-age={int(REBUILD_AFTER.total_seconds())}",
                "Access-Control-Allow-Origin": "*",
            },
        )

    async def letter(self, request: Request) -> Response:
        try:
            code = parse_tracking_code(request.path_params["tracking_code"])
        except InvalidIdentifier as exc:
            return bad_request(f"{str(exc).capitalize()}.")
        condition = RULES.condition(InquiryRecord, _principal(request))
        if sees_none(condition):
            return http_refusal(404, "")
        config = self.config
        async with self.databases.session("gateway") as session:
            try:
                found = await published_answer(session, code, condition)
            except Conflict as exc:
                return error_response(409, str(exc), exc.code)
            if found is None:
                return http_refusal(404, "")
            inquiry, token = found
            reasons = await letter_reasons(session, inquiry)
        # The answer this gateway stored and signed: failing here means its key left the
        # configuration too early (keys.py, rotation), an internal error.
        answer = answers.verify(token, config.keys.verification_keys).answer
        page = render_letter(
            answer,
            token,
            municipality=config.municipality,
            verification_url=config.verification_url(code),
            reasons=reasons,
        )
        return _page(page, PAGE_CSP, cache="private, no-store")

    async def verify_form(self, _request: Request) -> Response:
        return self._form(200, "بررسی اصالت و اعتبار پاسخ استعلام")

    async def verify_posted(self, request: Request) -> Response:
        try:
            fields = parse_qs((await request.body()).decode("latin-1"), max_num_fields=_FORM_FIELDS)
        except ValueError:
            fields = {}
        token = (fields.get("answer") or [""])[0].strip()
        if not token:
            return self._form(400, "متن پاسخ امضاشده فرستاده نشد.")
        async with self.databases.session("gateway") as session:
            verification = await verify_answer(token, session, self.config, self.wall_clock())
        return self._verification(verification)

    async def verify_code(self, request: Request) -> Response:
        try:
            code = parse_tracking_code(request.path_params["tracking_code"])
        except InvalidIdentifier:
            return self._form(400, "کد پیگیری نادرست است: ۱۶ رقم، همان که زیر کد QR نامه آمده.")
        async with self.databases.session("gateway") as session:
            try:
                found = await published_answer(session, code, true())
            except Conflict:
                found = None  # the public learns nothing of inquiries not yet answered
            if found is None:
                return self._form(404, "پاسخی با این کد پیگیری یافت نشد.")
            verification = await verify_answer(found[1], session, self.config, self.wall_clock())
        return self._verification(verification)

    def _verification(self, verification: Verification) -> Response:
        page = render_verification_page(verification, municipality=self.config.municipality)
        return _page(page, PAGE_CSP, cache="no-store")

    def _form(self, status_code: int, message: str) -> Response:
        page = _form_page(self.settings.municipality_name, message)
        return _page(page, FORM_CSP, cache="no-store", status_code=status_code)


def _principal(request: Request) -> Principal:
    """Who is calling (AuthenticationMiddleware); public paths are never authenticated."""
    principal: Principal = request.scope.get("principal", ANONYMOUS)
    return principal


def _page(page: str, csp: str, *, cache: str, status_code: int = 200) -> Response:
    return HTMLResponse(
        page,
        status_code=status_code,
        headers={"Content-Security-Policy": csp, "Cache-Control": cache},
    )
