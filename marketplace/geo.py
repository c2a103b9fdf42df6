"""Great-circle distance, for "does this member's service area cover the site"."""

from __future__ import annotations

from math import asin, cos, radians, sin, sqrt

EARTH_RADIUS_KM = 6371.0088


def distance_km(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Haversine distance between two points in kilometres."""
    phi1, phi2 = radians(lat1), radians(lat2)
    dphi, dlmb = radians(lat2 - lat1), radians(lng2 - lng1)
    h = sin(dphi / 2) ** 2 + cos(phi1) * cos(phi2) * sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_KM * asin(min(1.0, sqrt(h)))
