"""Place-name normalisation and whole-name matching, as tables of cases with reasons."""

import pytest

from geo_r_lite.places import (
    CONTINENTS,
    continent_of_name,
    country_code_of,
    country_table,
    match_city,
    match_continent,
    match_country,
    match_region,
    names_match,
    normalize_name,
)


@pytest.mark.parametrize(
    "text, expected",
    [
        pytest.param("São Paulo", "sao paulo", id="accents-folded"),
        pytest.param("Łódź", "lodz", id="letters-nfkd-cannot-split"),
        pytest.param("Straße", "strasse", id="sharp-s"),
        pytest.param("  New   YORK!! ", "new york", id="case-and-spaces"),
        pytest.param("Côte d'Ivoire", "cote d ivoire", id="apostrophe-is-space"),
        pytest.param("Bosnia & Herzegovina", "bosnia and herzegovina", id="ampersand"),
        pytest.param(None, "", id="none"),
        pytest.param("", "", id="empty"),
        pytest.param("東京", "", id="no-ascii-left"),
    ],
)
def test_normalize_name(text, expected):
    assert normalize_name(text) == expected


@pytest.mark.parametrize(
    "pred, truth, ok",
    [
        pytest.param("Niger", "Nigeria", False, id="no-prefix-substring"),
        pytest.param("Nigeria", "Niger", False, id="no-superstring"),
        pytest.param("York", "New York City", False, id="part-of-a-name"),
        pytest.param("New York City", "New York", True, id="generic-city-suffix"),
        pytest.param("New York", "New York City", True, id="generic-city-suffix-other-way"),
        pytest.param("West Virginia", "Virginia", False, id="qualified-name-is-another-place"),
        pytest.param("Paris, France", "Paris", True, id="comma-part-matches"),
        pytest.param("Springfield (Illinois)", "Springfield", True, id="parenthesis-qualifies-the-first-part"),
        pytest.param("Paris, Lyon, Marseille", "Lyon", False, id="a-list-of-guesses-earns-nothing"),
        pytest.param("Bavaria / Saxony", "Saxony", False, id="slash-separated-guesses-earn-nothing"),
        pytest.param("Lyon, Paris", "Lyon", True, id="first-of-the-parts-counts"),
        pytest.param("Paris", "Paris, Texas", False, id="truth-is-never-split"),
        pytest.param("Washington DC", "Washington, D.C.", True, id="initials-joined"),
        pytest.param("St. Petersburg", "Saint Petersburg", True, id="st-is-saint"),
        pytest.param("MUNCHEN", "München", True, id="ascii-fold-both-sides"),
        pytest.param("The Hague", "Hague", True, id="leading-the"),
        pytest.param("Guangdong Province", "Guangdong", True, id="generic-province-suffix"),
        pytest.param("City", "City", True, id="suffix-kept-when-alone"),
        pytest.param("", "Paris", False, id="empty-prediction"),
        pytest.param("Paris", None, False, id="unknown-truth-never-matches"),
        pytest.param(None, None, False, id="both-unknown"),
        pytest.param("Арачиново", "Арачиново", True, id="non-latin-name-matches-itself"),
        pytest.param("Арачиново", "Петровец", False, id="non-latin-names-differ"),
        pytest.param("!!!", "???", False, id="punctuation-only-never-matches"),
    ],
)
def test_names_match(pred, truth, ok):
    assert names_match(pred, truth) is ok


@pytest.mark.parametrize(
    "pred, continent, ok",
    [
        pytest.param("Europe", "Europe", True, id="exact"),
        pytest.param("europe", "Europe", True, id="case"),
        pytest.param("Australia", "Oceania", True, id="australia-continent-name"),
        pytest.param("Southeast Asia", "Asia", True, id="qualified-asia"),
        pytest.param("Sub-Saharan Africa", "Africa", True, id="qualified-africa"),
        pytest.param("Central America", "North America", True, id="central-america-is-na"),
        pytest.param("Caribbean", "North America", True, id="caribbean-is-na"),
        pytest.param("South America", "North America", False, id="other-america"),
        pytest.param("Americas", "North America", False, id="hedge-spanning-two"),
        pytest.param("Americas", "South America", False, id="hedge-spanning-two-south"),
        pytest.param("Middle East", "Asia", False, id="middle-east-spans-two"),
        pytest.param("Eurasia", "Europe", False, id="eurasia-spans-two"),
        pytest.param("Antarctic", "Antarctica", True, id="adjective"),
        pytest.param("Asia", None, False, id="unknown-truth"),
    ],
)
def test_match_continent(pred, continent, ok):
    assert match_continent(pred, continent) is ok


def test_every_continent_name_maps_to_itself():
    assert [continent_of_name(name) for name in CONTINENTS] == list(CONTINENTS)


@pytest.mark.parametrize(
    "pred, code",
    [
        pytest.param("USA", "US", id="usa"),
        pytest.param("U.S.A.", "US", id="usa-dotted"),
        pytest.param("US", "US", id="alpha2"),
        pytest.param("United States of America", "US", id="official"),
        pytest.param("America", "US", id="america"),
        pytest.param("UK", "GB", id="uk"),
        pytest.param("Great Britain", "GB", id="great-britain"),
        pytest.param("England", "GB", id="constituent-country"),
        pytest.param("GBR", "GB", id="alpha3"),
        pytest.param("Czechia", "CZ", id="czechia"),
        pytest.param("Czech Republic", "CZ", id="czech-republic"),
        pytest.param("Türkiye", "TR", id="turkiye-accented"),
        pytest.param("Turkey", "TR", id="turkey"),
        pytest.param("South Korea", "KR", id="south-korea"),
        pytest.param("Korea, Republic of", "KR", id="iso-name-with-comma"),
        pytest.param("North Korea", "KP", id="north-korea"),
        pytest.param("Russian Federation", "RU", id="russian-federation"),
        pytest.param("Ivory Coast", "CI", id="ivory-coast"),
        pytest.param("Côte d’Ivoire", "CI", id="cote-divoire-curly-apostrophe"),
        pytest.param("The Netherlands", "NL", id="leading-the"),
        pytest.param("Holland", "NL", id="holland"),
        pytest.param("Viet Nam", "VN", id="iso-spelling"),
        pytest.param("DRC", "CD", id="drc"),
        pytest.param("Kosovo", "XK", id="not-in-iso-list"),
        pytest.param("Niger", "NE", id="niger"),
        pytest.param("Nigeria", "NG", id="nigeria"),
        pytest.param("Lyon, France", "FR", id="last-part"),
        pytest.param("Atlantis", None, id="unknown-name"),
        pytest.param("", None, id="empty"),
        pytest.param(None, None, id="none"),
    ],
)
def test_country_code_of(pred, code):
    assert country_code_of(pred) == code


@pytest.mark.parametrize(
    "pred, country, code, ok",
    [
        pytest.param("USA", "United States", "US", True, id="alias-vs-table-name"),
        pytest.param("Niger", "Nigeria", "NG", False, id="niger-is-not-nigeria"),
        pytest.param("Guinea", "Papua New Guinea", "PG", False, id="guinea-is-not-png"),
        pytest.param("UK", "United Kingdom", None, True, id="name-only-truth"),
        pytest.param("Austria", None, "AU", False, id="austria-is-not-australia"),
        pytest.param("Australia", None, "au", True, id="lower-case-code"),
        pytest.param("France", None, None, False, id="unknown-truth"),
        pytest.param(None, "France", "FR", False, id="missing-prediction"),
    ],
)
def test_match_country(pred, country, code, ok):
    assert match_country(pred, country, code) is ok


def test_every_table_name_maps_back_to_its_code():
    wrong = {code: name for code, (name, _) in country_table().items()
             if country_code_of(name) != code}
    assert wrong == {}


def test_table_continents_are_the_seven():
    assert {continent for _, continent in country_table().values()} == set(CONTINENTS)


@pytest.mark.parametrize(
    "pred, region, code, ok",
    [
        pytest.param("California", "California", "US", True, id="name"),
        pytest.param("CA", "California", "US", True, id="us-state-code"),
        pytest.param("CA", "California", "CA", False, id="code-outside-its-country"),
        pytest.param("CA", "California", None, False, id="code-without-country"),
        pytest.param("ON", "Ontario", "CA", True, id="canadian-province-code"),
        pytest.param("B.C.", "British Columbia", "CA", True, id="dotted-province-code"),
        pytest.param("NSW", "New South Wales", "AU", True, id="australian-state-code"),
        pytest.param("DC", "District of Columbia", "US", True, id="dc-iso-name"),
        pytest.param("Washington, D.C.", "District of Columbia", "US", True, id="dc-alias"),
        pytest.param("Washington DC", "District of Columbia", "US", True, id="dc-alias-no-comma"),
        pytest.param("Washington DC", "Washington", "US", False, id="dc-is-not-the-state"),
        pytest.param("Buenos Aires", "Buenos Aires F.D.", "AR", True, id="federal-district-suffix"),
        pytest.param("WA", "Washington", "US", True, id="wa-in-us"),
        pytest.param("WA", "Western Australia", "AU", True, id="wa-in-au"),
        pytest.param("VA", "West Virginia", "US", False, id="code-of-the-other-virginia"),
        pytest.param("Virginia", "West Virginia", "US", False, id="whole-name-only"),
        pytest.param("New York State", "New York", "US", True, id="state-suffix"),
        pytest.param("Île-de-France", "Ile-de-France", "FR", True, id="accents"),
        pytest.param("Bavaria", None, "DE", False, id="unknown-truth"),
    ],
)
def test_match_region(pred, region, code, ok):
    assert match_region(pred, region, code) is ok


@pytest.mark.parametrize(
    "pred, city, ok",
    [
        pytest.param("New York", "New York City", True, id="city-suffix"),
        pytest.param("Mexico City", "Mexico City", True, id="exact"),
        pytest.param("San Jose", "San José", True, id="accent"),
        pytest.param("Sydney, NSW", "Sydney", True, id="qualified"),
        pytest.param("Sydney", "North Sydney", False, id="different-suburb"),
        pytest.param("", "Sydney", False, id="empty"),
    ],
)
def test_match_city(pred, city, ok):
    assert match_city(pred, city) is ok
