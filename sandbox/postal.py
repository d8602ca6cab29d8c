"""The simulated postal company: addresses by postal code over REST and JSON."""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from identifiers import InvalidIdentifier, parse_postal_code
from sandbox.calls import Call, CallLog
from sandbox.chaos import Chaos, down_response
from sandbox.dataset import Dataset

logger = logging.getLogger(__name__)

NAME = "postal"


def _error(status: int, code: str, message: str, headers: dict[str, str] | None) -> Response:
    return JSONResponse({"error": {"code": code, "message": message}}, status, headers=headers)


class Postal:
    def __init__(
        self, dataset: Dataset, *, chaos: Chaos | None = None, calls: CallLog | None = None
    ) -> None:
        self.dataset = dataset
        self.chaos = chaos or Chaos()
        self.calls = calls or CallLog()

    def app(self) -> Starlette:
        routes = [
            Route("/", self.root, methods=["GET"]),
            Route("/addresses/{postal_code}", self.address, methods=["GET"]),
            *self.chaos.routes(),
            *self.calls.routes(),
        ]
        app = Starlette(routes=routes)
        app.state.agency = self
        return app

    async def root(self, request: Request) -> Response:
        return PlainTextResponse(f"{NAME}: GET /addresses/{{postalCode}}\n")

    async def address(self, request: Request) -> Response:
        call = self.calls.start(NAME, request)
        call.operation = "GetAddress"
        started = time.perf_counter()
        try:
            response = await self._address(request, call)
        finally:
            call.duration_ms = round((time.perf_counter() - started) * 1000, 3)
        call.status = response.status_code
        return response

    async def _address(self, request: Request, call: Call) -> Response:
        if self.chaos.down:
            call.outcome = "chaos:down"
            return down_response()
        await self.chaos.delay()
        request_id = request.headers.get("x-request-id")
        headers = {"X-Request-Id": request_id} if request_id else None
        if self.chaos.should_fail():
            call.outcome = "chaos:error"
            return _error(
                503, "SERVICE_UNAVAILABLE", "the service is temporarily unavailable", headers
            )
        try:
            postal_code = parse_postal_code(request.path_params["postal_code"])
        except InvalidIdentifier as exc:
            call.outcome = "error:INVALID_POSTAL_CODE"
            return _error(400, "INVALID_POSTAL_CODE", str(exc), headers)
        try:
            address = await self.dataset.address(postal_code)
        except Exception:
            logger.exception("postal failed")
            call.outcome = "error:INTERNAL_ERROR"
            return _error(500, "INTERNAL_ERROR", "the agency failed to answer", headers)
        if address is None:
            call.outcome = "error:NOT_FOUND"
            return _error(404, "NOT_FOUND", "no address has this postal code", headers)
        call.outcome = "ok"
        body: dict[str, Any] = {
            "postalCode": address.postal_code,
            "province": address.province,
            "city": address.city,
            "region": address.region,
            "address": address.address,
            "latitude": address.latitude,
            "longitude": address.longitude,
        }
        return JSONResponse(body, headers=headers)


def build(dataset: Dataset, *, chaos: Chaos | None = None, calls: CallLog | None = None) -> Postal:
    return Postal(dataset, chaos=chaos, calls=calls)
