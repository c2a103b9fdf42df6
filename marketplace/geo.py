"""Great-circle distance, for "does this member's service area cover the site", and
the approximate point partners see instead of the site.

A rival may move its own base and read the distance again, as often as it likes;
distances from the exact site, however rounded, would let it trilaterate the
site.  So partners only ever learn about the job's *approximate point*: in a
random-looking direction and between APPROX_MIN_KM and APPROX_MAX_KM from the
site, and the same every time -- stored with the job, and drawn from a keyed
hash of the site (`site_point`), so a job posted again at the same site gets
the same point (fresh draws per read, or per posting, would average out to the
site).  The key is the cluster's own secret: without it, nobody can test
candidate sites against a published point.  Distances shown are whole
kilometres from that point, "under NEAR_KM" near it, and eligibility measures
the service area from it too (jobs/eligibility.py).
"""

from __future__ import annotations

import hashlib
import hmac
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
#: Sites this close (decimals of a degree, ~100 m) share one draw of distance and
#: direction: the same site always gets the same point, a site a few metres off the
#: same point or the next published step (test_approximate_point.py).
SITE_CELL_DECIMALS = 3
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


def site_point(key: str, lat: float, lng: float) -> tuple[float, float]:
    """The approximate point of a site, fixed by the cluster's `key` and the site
    (rounded to SITE_CELL_DECIMALS, about 100 m, so the same yard gets the same point)."""
    site = f"{lat:.{SITE_CELL_DECIMALS}f},{lng:.{SITE_CELL_DECIMALS}f}"
    digest = hmac.new(key.encode(), site.encode(), hashlib.sha256).digest()
    return approximate_point(lat, lng, Random(int.from_bytes(digest, "big")))


def coarse_km(km: float) -> tuple[int, str]:
    """A distance as partners see it: ("under", NEAR_KM) below NEAR_KM, else whole
    kilometres ("about", n)."""
    if km < NEAR_KM:
        return NEAR_KM, "under"
    return round(km), "about"
