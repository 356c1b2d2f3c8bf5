"""Place-name normalisation and matching for the Chain-of-Region hierarchy (pure, fast, cached).

A predicted name (free text from the model) is compared with a true name (from the gazetteer) at
one level: continent, country, region (state/province) or city. All matching is on whole names,
never substrings: "Niger" does not match "Nigeria", "West Virginia" does not match "Virginia".

Rules, decided once here so rewards and metrics agree:

- ``normalize_name``: Unicode folded to ASCII, lower case, punctuation to space, spaces collapsed.
- Matching key (on top of that): runs of single letters are joined ("U.S.A." -> "usa",
  "D.C." -> "dc"), a leading "the" is dropped, "st"/"mt"/"ft" become "saint"/"mount"/"fort", and one
  generic trailing word ("city", "province", "state", ...) or leading "state of"/"region of" is
  dropped when a name is left, so "New York City" matches "New York", "Guangdong Province"
  matches "Guangdong" and "Berlin" matches GeoNames' "State of Berlin".
  A name with no Latin letters (a few GeoNames rows are Cyrillic) is compared case-folded in its
  own script.
- A prediction with commas, slashes or parentheses matches when the whole text or its FIRST part
  matches ("Paris, France" and "Springfield (Illinois)" match their city): later parts only qualify
  the first. Only the first counts so that a list of guesses ("Paris, Lyon, Marseille",
  "Bavaria / Saxony") cannot earn the reward for whichever is right. The true name is never split.
- Countries compare ISO-3166 alpha-2 codes: names, official and common names and alpha-2/alpha-3
  codes from pycountry, our country table, and a short alias table (USA, UK, Britain, England,
  Scotland, Wales, Holland, Burma, Czech Republic, Turkiye, Korea -> South Korea, ...).
- Continents: exactly the seven names, "Australia"/"Australasia" for Oceania, "Central America"
  and "Caribbean" for North America, and qualified forms such as "Southeast Asia" or
  "Western Europe" for Africa, Asia and Europe. "America(s)", "Latin America", "Eurasia" and
  "Middle East" span two continents and match none (a hedge must not earn the reward).
- Regions: also US, Canadian and Australian subdivision codes, only within their own country
  ("CA" is California only when the true country code is "US").
"""

from __future__ import annotations

import csv
import functools
import re
import unicodedata
from importlib import resources

CONTINENTS = (
    "Africa",
    "Antarctica",
    "Asia",
    "Europe",
    "North America",
    "Oceania",
    "South America",
)

# Letters NFKD does not decompose into ASCII; without them "Łódź" would lose its first letter.
_EXTRA_FOLD = str.maketrans(
    {"ß": "ss", "Æ": "AE", "æ": "ae", "Ø": "O", "ø": "o", "Œ": "OE", "œ": "oe", "Ł": "L",
     "ł": "l",
     "Đ": "D", "đ": "d", "Ð": "D", "ð": "d", "Þ": "Th", "þ": "th", "ı": "i", "&": " and "}
)
_NON_ALNUM = re.compile(r"[^a-z0-9]+")
_NON_WORD = re.compile(r"[\W_]+")
_PART_SPLIT = re.compile(r"[,;/()\[\]|]")
_ABBREVIATIONS = {"st": "saint", "ste": "sainte", "mt": "mount", "ft": "fort"}
_GENERIC_SUFFIXES = frozenset(
    {"city", "town", "village", "municipality", "province", "state", "region", "prefecture",
     "county", "district", "oblast", "governorate", "department", "territory", "parish", "krai",
     "kraj", "division", "fd"}
)
_GENERIC_PREFIXES = (("state", "of"), ("region", "of"))
_CONTINENT_QUALIFIERS = (
    "north", "northern", "south", "southern", "east", "eastern", "west", "western", "central",
    "southeast", "south east", "southeastern", "northeast", "north east", "northeastern",
    "southwest", "south west", "southwestern", "northwest", "north west", "northwestern",
    "sub saharan", "subsaharan", "mainland", "continental",
)
_CONTINENT_EXTRA = {
    "australia": "Oceania",
    "australasia": "Oceania",
    "australia oceania": "Oceania",
    "antarctic": "Antarctica",
    "central america": "North America",
    "caribbean": "North America",
    "the caribbean": "North America",
}
_REGION_CODE_COUNTRIES = ("US", "CA", "AU")
# Common names of admin-1 regions that are neither GeoNames' name nor a subdivision code.
_REGION_ALIASES = {("US", "washington dc"): "district of columbia"}


@functools.lru_cache(maxsize=65536)
def normalize_name(text: str | None) -> str:
    """Fold ``text`` to ASCII lower case, punctuation to single spaces; ``None`` gives ``""``."""
    if not text:
        return ""
    folded = unicodedata.normalize("NFKD", text.translate(_EXTRA_FOLD))
    # Accents go; any other non-ASCII character (a curly apostrophe) separates words like "'".
    letters = "".join(char for char in folded if not unicodedata.combining(char))
    return _NON_ALNUM.sub(" ", letters.lower()).strip()


@functools.lru_cache(maxsize=65536)
def _key(text: str | None) -> str:
    """The matching key of one name (see the module docstring); ``""`` when nothing is left."""
    words = normalize_name(text).split()
    if not words and text:
        # A name with no Latin letters at all (a few GeoNames rows are Cyrillic): compare it
        # case-folded in its own script rather than never matching.
        return " ".join(_NON_WORD.sub(" ", text.casefold()).split())
    merged: list[str] = []
    run = ""
    for word in words:
        if len(word) == 1 and word.isalpha():
            run += word
            continue
        if run:
            merged.append(run)
            run = ""
        merged.append(_ABBREVIATIONS.get(word, word))
    if run:
        merged.append(run)
    if len(merged) > 1 and merged[0] == "the":
        merged = merged[1:]
    if len(merged) > 2 and tuple(merged[:2]) in _GENERIC_PREFIXES:
        merged = merged[2:]
    elif len(merged) > 1 and merged[-1] in _GENERIC_SUFFIXES:
        merged = merged[:-1]
    return " ".join(merged)


@functools.lru_cache(maxsize=65536)
def _pred_keys(pred: str | None) -> frozenset[str]:
    """Keys of the whole prediction and of its first comma/slash/parenthesis-separated part."""
    if not pred:
        return frozenset()
    keys = {_key(pred), _key(_PART_SPLIT.split(pred, maxsplit=1)[0])}
    keys.discard("")
    return frozenset(keys)


def names_match(pred: str | None, truth: str | None) -> bool:
    """True when ``pred`` names ``truth`` as a whole name (rules in the module docstring)."""
    truth_key = _key(truth)
    return bool(truth_key) and truth_key in _pred_keys(pred)


@functools.lru_cache(maxsize=1)
def _continent_aliases() -> dict[str, str]:
    aliases = {_key(name): name for name in CONTINENTS}
    for name in ("Africa", "Asia", "Europe"):
        for qualifier in _CONTINENT_QUALIFIERS:
            aliases[f"{qualifier} {name.lower()}"] = name
    aliases.update(_CONTINENT_EXTRA)
    return aliases


def continent_of_name(pred: str | None) -> str | None:
    """The continent (one of ``CONTINENTS``) that free text names, or ``None``."""
    aliases = _continent_aliases()
    for key in _pred_keys(pred):
        if key in aliases:
            return aliases[key]
    return None


def match_continent(pred: str | None, continent: str | None) -> bool:
    """True when ``pred`` names the true ``continent`` (one of ``CONTINENTS``)."""
    return continent is not None and continent_of_name(pred) == continent


def _asset_rows(name: str) -> list[dict[str, str]]:
    with resources.files(__package__).joinpath("assets", name).open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@functools.lru_cache(maxsize=1)
def country_table() -> dict[str, tuple[str, str]]:
    """ISO alpha-2 code -> (common English short name, continent), from ``assets/countries.csv``."""
    return {row["alpha2"]: (row["name"], row["continent"]) for row in _asset_rows("countries.csv")}


@functools.lru_cache(maxsize=1)
def _country_aliases() -> dict[str, str]:
    """Matching key -> ISO alpha-2 code for every country name, code and alias we know."""
    import pycountry  # imported here: only country matching needs its database

    aliases: dict[str, str] = {}
    for country in pycountry.countries:
        code = country.alpha_2
        names = (country.alpha_2, country.alpha_3, country.name,
                 getattr(country, "official_name", None), getattr(country, "common_name", None))
        for text in names:
            if text:
                aliases.setdefault(_key(text), code)
    for code, (name, _) in country_table().items():
        aliases.setdefault(_key(code), code)
        aliases[_key(name)] = code
    for row in _asset_rows("country_aliases.csv"):
        aliases[_key(row["alias"])] = row["alpha2"]
    return aliases


@functools.lru_cache(maxsize=65536)
def country_code_of(name: str | None) -> str | None:
    """ISO-3166 alpha-2 code named by free text (name, alias or alpha-2/alpha-3 code), or ``None``.

    The whole text is tried first, then each comma-separated part from the last ("Paris, France").
    """
    if not name:
        return None
    aliases = _country_aliases()
    whole = aliases.get(_key(name))
    if whole is not None:
        return whole
    for part in reversed(_PART_SPLIT.split(name)):
        code = aliases.get(_key(part))
        if code is not None:
            return code
    return None


def match_country(pred: str | None, country: str | None = None,
                  country_code: str | None = None) -> bool:
    """True when ``pred`` names the true country, given by ``country_code`` (preferred) or name."""
    true_code = country_code.upper() if country_code else country_code_of(country)
    return true_code is not None and country_code_of(pred) == true_code


@functools.lru_cache(maxsize=1)
def _region_codes() -> dict[tuple[str, str], str]:
    """(country alpha-2, code or alias key) -> matching key of the subdivision name."""
    import pycountry

    codes = dict(_REGION_ALIASES)
    for country_code in _REGION_CODE_COUNTRIES:
        for subdivision in pycountry.subdivisions.get(country_code=country_code):
            short = subdivision.code.split("-", 1)[1].lower()
            codes[(country_code, short)] = _key(subdivision.name)
    return codes


def match_region(pred: str | None, region: str | None, country_code: str | None = None) -> bool:
    """True when ``pred`` names the true admin-1 ``region`` (state/province).

    Subdivision codes ("CA", "ON", "NSW") count only when ``country_code`` is US, CA or AU.
    """
    if names_match(pred, region):
        return True
    if not country_code or not region:
        return False
    codes = _region_codes()
    truth_key = _key(region)
    country_code = country_code.upper()
    return any(codes.get((country_code, key)) == truth_key for key in _pred_keys(pred))


def match_city(pred: str | None, city: str | None) -> bool:
    """True when ``pred`` names the true ``city`` as a whole name."""
    return names_match(pred, city)
