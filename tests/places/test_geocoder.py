"""The production geocoder (Nominatim through geopy) against a Nominatim fake at the
wire: a street address keeps its address point, towns never leave the machine, and a
geocoder that finds nothing or is too slow falls back to the gazetteer."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from marketplace.places.service import NominatimGeocoder, countries_for, locate
from tests.places.nominatim_fake import FakeNominatim, nominatim

CANADA = countries_for("en_CA", "America/Toronto")
ADDRESS = "111 wellington st, ottawa"
POINT = (45.42366, -75.70077)


@pytest.fixture
def fake() -> Iterator[FakeNominatim]:
    with nominatim() as server:
        server.known[ADDRESS] = (*POINT, "111, Wellington Street, Centretown, Ottawa, Ontario",
                                 {"house_number": "111", "road": "Wellington Street",
                                  "city": "Ottawa", "country_code": "ca"})
        yield server


def test_a_street_address_gets_its_address_point(fake: FakeNominatim) -> None:
    place = locate("111 Wellington St, Ottawa", countries=CANADA,
                   geocoder=NominatimGeocoder(fake.url, timeout=2))
    assert (place.lat, place.lng, place.precision, place.town) == (*POINT, "address", "Ottawa")
    [request] = fake.requests
    assert request["path"] == ["/search"] and request["q"] == ["111 Wellington St, Ottawa"]
    assert request["countrycodes"] == ["ca"] and request["format"] == ["json"]


def test_a_known_town_is_found_offline_without_asking(fake: FakeNominatim) -> None:
    place = locate("Kingston", countries=CANADA, geocoder=NominatimGeocoder(fake.url))
    assert (place.town, place.precision) == ("Kingston", "town")
    assert fake.requests == []


def test_an_address_the_geocoder_does_not_know_lands_on_its_town(fake: FakeNominatim) -> None:
    place = locate("Ottawa, ON", countries=CANADA, geocoder=NominatimGeocoder(fake.url))
    assert place.town == "Ottawa" and fake.requests == []
    # A digit makes it an address: asked, nothing found, the gazetteer still answers
    # for the town part.
    place = locate("Ottawa 99", countries=CANADA, geocoder=NominatimGeocoder(fake.url))
    assert place.precision == "town" and len(fake.requests) == 1


def test_a_slow_geocoder_costs_its_timeout_then_the_gazetteer_answers(
        fake: FakeNominatim) -> None:
    fake.delay = 1.5
    place = locate("Gatineau 12", countries=CANADA,
                   geocoder=NominatimGeocoder(fake.url, timeout=0.3))
    assert place.town == "Gatineau" and place.precision == "town"
