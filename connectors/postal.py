"""The postal company: an address by postal code, over REST and JSON."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from connectors.answers import Malformed, field, number, reading
from connectors.errors import AgencyRejected, AgencyTimeout, AgencyUnavailable
from connectors.resilience import AgencyGuard
from identifiers import InvalidIdentifier, parse_postal_code

__all__ = ["PostalAddress", "PostalService"]

AGENCY = "postal"
GET_ADDRESS = "GetAddress"
INVALID_POSTAL_CODE = "INVALID_POSTAL_CODE"


@dataclass(frozen=True, slots=True)
class PostalAddress:
    postal_code: str
    province: str
    city: str
    region: int  # the municipality's region number
    address: str
    latitude: float
    longitude: float


def _json(response: httpx.Response) -> Any:
    media_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise Malformed("not JSON")
    return json.loads(response.content)


def _error_code(response: httpx.Response) -> str | None:
    """The agency's own code from {"error": {"code": …}}, when the answer is that."""
    try:
        body = _json(response)
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, Mapping) else None
    code = error.get("code") if isinstance(error, Mapping) else None
    if isinstance(code, str) and code.replace("_", "").isalnum() and len(code) <= 64:
        return code
    return None


def _address(data: Mapping[str, Any]) -> PostalAddress:
    return PostalAddress(
        postal_code=field(data, "postalCode", str),
        province=field(data, "province", str),
        city=field(data, "city", str),
        region=field(data, "region", int),
        address=field(data, "address", str),
        latitude=number(data, "latitude"),
        longitude=number(data, "longitude"),
    )


class PostalService:
    def __init__(self, http: httpx.AsyncClient, guard: AgencyGuard, *, address: str) -> None:
        self.guard = guard
        self._http = http
        self._base = address.rstrip("/")

    def __repr__(self) -> str:
        return "PostalService()"

    async def address(self, postal_code: str) -> PostalAddress | None:
        """The address with this postal code, or None when the postal company has none.

        A code that is not ten digits (Persian digits and a dash are fine) is rejected here,
        as the agency would: sent as is, a path its router cannot match would look like an
        outage, and a caller's typo could open the breaker.
        """
        try:
            canonical = parse_postal_code(postal_code)
        except InvalidIdentifier as exc:
            raise AgencyRejected(AGENCY, GET_ADDRESS, INVALID_POSTAL_CODE) from exc

        async def fetch() -> PostalAddress | None:
            return await self._get_address(canonical)

        return await self.guard.call(GET_ADDRESS, canonical, fetch)

    async def _get_address(self, postal_code: str) -> PostalAddress | None:
        url = f"{self._base}/addresses/{quote(postal_code, safe='')}"
        try:
            response = await self._http.get(url, headers={"Accept": "application/json"})
        except httpx.TimeoutException as exc:
            raise AgencyTimeout(AGENCY, GET_ADDRESS) from exc
        except httpx.TransportError as exc:
            raise AgencyUnavailable(AGENCY, GET_ADDRESS) from exc
        status = response.status_code
        if status == 404:
            # The agency's own "no such address"; a bare 404 (a proxy, a wrong base URL) is not.
            if _error_code(response) is None:
                raise AgencyUnavailable(AGENCY, GET_ADDRESS)
            return None
        if status == 408:
            raise AgencyTimeout(AGENCY, GET_ADDRESS)
        if 400 <= status < 500 and status != 429:
            raise AgencyRejected(AGENCY, GET_ADDRESS, _error_code(response))
        if status != 200:
            raise AgencyUnavailable(AGENCY, GET_ADDRESS)
        with reading(AGENCY, GET_ADDRESS):
            return _address(_json(response))
