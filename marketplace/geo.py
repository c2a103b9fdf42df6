"""Great-circle distance, for "does this member's service area cover the site", and
the approximate point partners see instead of the site.

A rival may move its own base and read the distance again, as often as it likes;
distances from the exact site, however rounded, would let it trilaterate the
site.  So partners only ever get distances from the job's *approximate point*:
drawn once when the job is posted, in a random direction and between
APPROX_MIN_KM and APPROX_MAX_KM from the site, and stored, so every read gives
the same point (a point drawn anew per request would average out to the site).
Those distances are whole kilometres, and "under NEAR_KM" near the point.
"""

from __future__ import annotations

import secrets
from math import asin, atan2, cos, degrees, radians, sin, sqrt
from random import Random

EARTH_RADIUS_KM = 6371.0088
#: The promise: the approximate point is at least this far from the site.
APPROX_MIN_KM = 1.0
APPROX_MAX_KM = 1.5
#: Published coordinates are rounded to this many decimals (at most ~80 m off), so
#: the drawn distance starts that much above the promise.
APPROX_DECIMALS = 3
_ROUNDING_MARGIN_KM = 0.1
#: Closer than this, a partner is told "under NEAR_KM km", not a number.
NEAR_KM = 2


def distance_km(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Haversine distance between two points in kilometres."""
    phi1, phi2 = radians(lat1), radians(lat2)
    dphi, dlmb = radians(lat2 - lat1), radians(lng2 - lng1)
    h = sin(dphi / 2) ** 2 + cos(phi1) * cos(phi2) * sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_KM * asin(min(1.0, sqrt(h)))


def destination(lat: float, lng: float, km: float, bearing_degrees: float
                ) -> tuple[float, float]:
    """The point `km` away from (lat, lng) in direction `bearing_degrees` (0 = north)."""
    phi, lmb, theta = radians(lat), radians(lng), radians(bearing_degrees)
    delta = km / EARTH_RADIUS_KM
    phi2 = asin(sin(phi) * cos(delta) + cos(phi) * sin(delta) * cos(theta))
    lmb2 = lmb + atan2(sin(theta) * sin(delta) * cos(phi), cos(delta) - sin(phi) * sin(phi2))
    return degrees(phi2), (degrees(lmb2) + 540) % 360 - 180


def approximate_point(lat: float, lng: float, rng: Random | None = None
                      ) -> tuple[float, float]:
    """A point APPROX_MIN_KM..APPROX_MAX_KM from the site in a random direction, rounded
    as it is published (a system random source unless the caller passes one)."""
    draw = rng or secrets.SystemRandom()
    km = draw.uniform(APPROX_MIN_KM + _ROUNDING_MARGIN_KM, APPROX_MAX_KM)
    point_lat, point_lng = destination(lat, lng, km, draw.uniform(0.0, 360.0))
    return round(point_lat, APPROX_DECIMALS), round(point_lng, APPROX_DECIMALS)


def coarse_km(km: float) -> tuple[int, str]:
    """A distance as partners see it: ("under", NEAR_KM) below NEAR_KM, else whole
    kilometres ("about", n)."""
    if km < NEAR_KM:
        return NEAR_KM, "under"
    return round(km), "about"
