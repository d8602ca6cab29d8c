"""The postal company answers addresses by postal code from planning's parcels."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import select

from db.planning import Parcel, Region
from sandbox.dataset import CITY, PROVINCE, URMIA
from sandbox.run import Agencies

PERSIAN = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")


async def parcels(city: Any) -> list[Any]:
    async with city.planning.connect() as connection:
        return list(
            (
                await connection.execute(
                    select(Parcel.id, Parcel.postal_code, Parcel.address, Region.number)
                    .join(Region, Region.id == Parcel.region_id)
                    .order_by(Parcel.id)
                    .limit(40)
                )
            ).all()
        )


async def test_addresses_agree_with_planning(
    city: Any, agencies: Agencies, http: httpx.AsyncClient
) -> None:
    for parcel in await parcels(city):
        response = await http.get(f"{agencies.postal}/addresses/{parcel.postal_code}")
        assert response.status_code == 200
        body = response.json()
        assert body["postalCode"] == parcel.postal_code
        assert (body["province"], body["city"]) == (PROVINCE, CITY)
        assert body["region"] == parcel.number
        assert body["address"] == parcel.address
        assert abs(body["latitude"] - URMIA[0]) < 0.05
        assert abs(body["longitude"] - URMIA[1]) < 0.05


async def test_persian_digits_find_the_same_address(
    city: Any, agencies: Agencies, http: httpx.AsyncClient
) -> None:
    code = (await parcels(city))[0].postal_code
    ascii_body = (await http.get(f"{agencies.postal}/addresses/{code}")).json()
    persian = await http.get(f"{agencies.postal}/addresses/{code.translate(PERSIAN)}")

    assert persian.json() == ascii_body


async def test_unknown_postal_code_is_404_json(agencies: Agencies, http: httpx.AsyncClient) -> None:
    response = await http.get(f"{agencies.postal}/addresses/2222222222")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NOT_FOUND"


async def test_malformed_postal_code_is_400_json(
    agencies: Agencies, http: httpx.AsyncClient
) -> None:
    response = await http.get(f"{agencies.postal}/addresses/12-34")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "INVALID_POSTAL_CODE"
