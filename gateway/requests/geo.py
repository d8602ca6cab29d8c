"""Points and areas of the city: which region's boundary holds a point, and how far apart two
points are.

Boundaries are single rings of [latitude, longitude] points (db/contact.py's region_areas and
routing rules' areas), small enough (a city) that treating degrees as a plane for the
point-in-polygon test is exact enough; distances are great-circle (haversine) in metres. A
point on a shared edge belongs to the region listed first.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

EARTH_RADIUS_M = 6_371_008.8

Ring = Sequence[Sequence[float]]


@dataclass(frozen=True, slots=True)
class Point:
    latitude: float
    longitude: float


def valid_point(latitude: float, longitude: float) -> bool:
    return (
        math.isfinite(latitude)
        and math.isfinite(longitude)
        and -90 <= latitude <= 90
        and -180 <= longitude <= 180
    )


def contains(ring: Ring, point: Point) -> bool:
    """Whether the ring holds the point (even-odd rule; a point on an edge counts as in)."""
    y, x = point.latitude, point.longitude
    inside = False
    count = len(ring)
    for index in range(count):
        y1, x1 = ring[index][0], ring[index][1]
        y2, x2 = ring[(index + 1) % count][0], ring[(index + 1) % count][1]
        # On the edge itself: inside.
        cross = (x2 - x1) * (y - y1) - (y2 - y1) * (x - x1)
        if (
            abs(cross) < 1e-12
            and min(x1, x2) <= x <= max(x1, x2)
            and min(y1, y2) <= y <= max(y1, y2)
        ):
            return True
        if (y1 > y) != (y2 > y):
            at = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
            if x < at:
                inside = not inside
    return inside


def region_of(point: Point, regions: Iterable[tuple[int, Ring]]) -> int | None:
    """The first region whose boundary holds the point, or None outside every one."""
    for region, ring in regions:
        if contains(ring, point):
            return region
    return None


def distance_m(a: Point, b: Point) -> float:
    """Great-circle distance in metres."""
    phi1, phi2 = math.radians(a.latitude), math.radians(b.latitude)
    dphi = phi2 - phi1
    dlambda = math.radians(b.longitude - a.longitude)
    h = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlambda / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def bounding_box(centre: Point, radius_m: float) -> tuple[float, float, float, float]:
    """(south, north, west, east) of a box holding every point within `radius_m`: what an
    index narrows to before distance_m decides."""
    dlat = math.degrees(radius_m / EARTH_RADIUS_M)
    cos_lat = max(math.cos(math.radians(centre.latitude)), 1e-6)
    dlon = math.degrees(radius_m / (EARTH_RADIUS_M * cos_lat))
    return (
        centre.latitude - dlat,
        centre.latitude + dlat,
        centre.longitude - dlon,
        centre.longitude + dlon,
    )
