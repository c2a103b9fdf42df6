"""The place service: towns from the shipped gazetteer (accents, case, qualifiers,
largest first, the cluster's countries), and the point a form's hidden fields may carry."""

from __future__ import annotations

import pytest

from marketplace.errors import ValidationError
from marketplace.places import service as places_service
from marketplace.places.service import DEVICE, countries_for, find_town, locate, suggest

CANADA = countries_for("en_CA", "America/Toronto")


def test_a_cluster_country_comes_from_its_locale_and_its_time_zone() -> None:
    assert CANADA == {"CA"}
    assert countries_for("de", "Europe/Berlin") == {"DE"}
    assert countries_for(None, None) == frozenset()


@pytest.mark.parametrize("typed", ["montreal", "Montréal", "MONTRÉAL", "montr", " Montreal "])
def test_towns_match_by_prefix_without_accents_or_case(typed: str) -> None:
    labels = [p.label for p in suggest(typed, CANADA)]
    assert labels[0] == "Montréal, QC, Canada"


def test_largest_first_and_only_the_clusters_country() -> None:
    places = suggest("ott", CANADA)
    assert places[0].label == "Ottawa, ON, Canada"
    assert all(p.label.endswith("Canada") for p in places)
    # Without a country, the world: the American Ottawa is there too, after the capital.
    labels = [p.label for p in suggest("Ottawa", frozenset(), limit=20)]
    assert labels.index("Ottawa, ON, Canada") < labels.index("Ottawa, IL, United States")


def test_a_province_or_country_after_a_comma_narrows_the_town() -> None:
    assert find_town("Springfield, IL").label == "Springfield, IL, United States"  # type: ignore[union-attr]
    assert find_town("Springfield, MA").label == "Springfield, MA, United States"  # type: ignore[union-attr]
    # A picked suggestion's own label finds the same town again.
    ottawa = find_town("Ottawa, ON, Canada", CANADA)
    assert ottawa is not None and (ottawa.lat, ottawa.lng) == (45.41117, -75.69812)
    assert ottawa.precision == "town" and ottawa.town == "Ottawa"


def test_an_exact_name_beats_a_bigger_town_it_is_the_prefix_of() -> None:
    place = find_town("Laval", CANADA)
    assert place is not None and place.town == "Laval"


def test_a_town_gives_the_town_centre() -> None:
    place = locate("Gatineau", countries=CANADA)
    assert (place.town, place.precision) == ("Gatineau", "town")
    assert abs(place.lat - 45.48) < 0.05 and abs(place.lng + 75.70) < 0.05


def test_unknown_text_is_refused_on_its_field_with_what_to_type() -> None:
    with pytest.raises(ValidationError) as refused:
        locate("Xqzzy Corners", countries=CANADA, field="address")
    assert refused.value.code == "place_not_found"
    assert refused.value.params == {"place": "Xqzzy Corners"}
    assert "Type a town and its province" in refused.value.fields["address"]


def test_coordinates_from_the_phone_stand_whatever_is_typed() -> None:
    place = locate("back gate of the Smith farm", lat="45.3000", lng="-75.9000",
                   resolved=DEVICE, countries=CANADA)
    assert (place.lat, place.lng, place.precision) == (45.3, -75.9, "device")
    assert place.town  # the nearest town, for the locality partners see


def test_a_picked_suggestion_keeps_its_point_until_the_text_changes() -> None:
    picked = locate("Ottawa, ON, Canada", lat="45.41117", lng="-75.69812",
                    resolved="Ottawa, ON, Canada", countries=CANADA)
    assert (picked.lat, picked.lng) == (45.41117, -75.69812)
    retyped = locate("Gatineau", lat="45.41117", lng="-75.69812",
                     resolved="Ottawa, ON, Canada", countries=CANADA)
    assert retyped.town == "Gatineau"


@pytest.mark.parametrize(("lat", "lng"), [("200", "-75"), ("45", "-181"), ("nan", "0"),
                                          ("north", "west"), ("45", "")])
def test_a_point_off_the_globe_is_refused(lat: str, lng: str) -> None:
    with pytest.raises(ValidationError) as refused:
        locate("Ottawa", lat=lat, lng=lng, resolved=DEVICE, field="address")
    assert refused.value.fields == {"address": places_service.BAD_POINT}
