import datetime as dt

import pytest

from linkage import normalise as nz


@pytest.mark.parametrize("raw, parts", [
    ("Zoë", ["zoe"]),
    ("ŁUKASZ", ["lukasz"]),
    ("  mary-ann  ", ["mary", "ann"]),
    ("O'Neil", ["oneil"]),
    ("O’Brien", ["obrien"]),
    ("Dr. John Smith Jr", ["john", "smith"]),
    ("MR", []),
    ("Mr", []),
    ("Singh  Kaur", ["singh", "kaur"]),
    ("José María", ["jose", "maria"]),
    ("smith, john", ["smith", "john"]),
    ("", []),
    (None, []),
    ("Miss", []),
])
def test_name_parts(raw, parts):
    assert nz.name_parts(raw) == parts


def test_title_only_dropped_at_edges_and_never_the_whole_name():
    assert nz.name_parts("Master Chef") == ["chef"]
    assert nz.name_parts("Lord") == []


@pytest.mark.parametrize("raw, fmts, expected", [
    ("09/04/1956", ["%d/%m/%Y"], dt.date(1956, 4, 9)),
    ("1956-04-09", ["%d/%m/%Y", "%Y-%m-%d"], dt.date(1956, 4, 9)),
    ("19560409", ["%Y%m%d"], dt.date(1956, 4, 9)),
    ("", ["%Y%m%d"], None),
])
def test_parse_date(raw, fmts, expected):
    assert nz.parse_date(raw, fmts) == expected


@pytest.mark.parametrize("raw", ["31/02/2010", "2010-13-01", "yesterday", "00/00/0000"])
def test_impossible_dates_raise_without_the_value(raw):
    with pytest.raises(nz.InvalidValue) as info:
        nz.parse_date(raw, ["%d/%m/%Y"])
    assert raw not in str(info.value)


def test_dob_range_and_placeholders():
    lo, hi = dt.date(1900, 1, 1), dt.date(2025, 1, 1)
    assert nz.check_dob(dt.date(2000, 5, 1), lo, hi) == (dt.date(2000, 5, 1), False)
    assert nz.check_dob(dt.date(1900, 1, 1), lo, hi, [dt.date(1900, 1, 1)]) == (None, True)
    with pytest.raises(nz.InvalidValue, match="after"):
        nz.check_dob(dt.date(2030, 1, 1), lo, hi)
    with pytest.raises(nz.InvalidValue, match="before"):
        nz.check_dob(dt.date(1850, 1, 1), lo, hi)


def test_swapped_day_month():
    assert nz.swapped_day_month(dt.date(2001, 4, 9)) == dt.date(2001, 9, 4)
    assert nz.swapped_day_month(dt.date(2001, 4, 4)) is None
    assert nz.swapped_day_month(dt.date(2001, 4, 25)) is None


@pytest.mark.parametrize("raw, expected", [
    ("le2 1ab", ("LE2 1AB", "LE2 1", "LE2")),
    ("LE21AB", ("LE2 1AB", "LE2 1", "LE2")),
    ("  le11  3tu ", ("LE11 3TU", "LE11 3", "LE11")),
    ("PE9 2AA", ("PE9 2AA", "PE9 2", "PE9")),
    ("EC1A 1BB", ("EC1A 1BB", "EC1A 1", "EC1A")),
    ("", None),
])
def test_uk_postcodes(raw, expected):
    assert nz.postcode_parts(raw, "uk", ["NFA"]) == expected


def test_missing_marker_postcode_is_blanked_with_a_counted_reason():
    with pytest.raises(nz.BlankedValue, match="placeholder"):
        nz.postcode_parts(" nfa ", "uk", ["NFA"])


@pytest.mark.parametrize("raw", ["LE2", "12345", "LE2 1A", "L2E 1AB!"])
def test_malformed_uk_postcodes_raise(raw):
    with pytest.raises(nz.InvalidValue, match="malformed"):
        nz.postcode_parts(raw, "uk")


def test_digits4_postcodes():
    assert nz.postcode_parts("2119", "digits4") == ("2119", "211", "21")
    with pytest.raises(nz.InvalidValue):
        nz.postcode_parts("21a9", "digits4")


def test_sex_codes():
    codes = {"M": "M", "F": "F", "1": "M", "2": "F", "0": None}
    assert nz.sex_code("m", codes) == "M"
    assert nz.sex_code("2", codes) == "F"
    assert nz.sex_code("0", codes) is None
    assert nz.sex_code("", codes) is None
    with pytest.raises(nz.InvalidValue):
        nz.sex_code("Q", codes)


def test_upn_and_nhs_number():
    assert nz.upn("g80120000101a") == "G80120000101A"
    assert nz.upn("A123456789012") == "A123456789012"
    with pytest.raises(nz.InvalidValue):
        nz.upn("12345")
    assert nz.nhs_number("943 476 5919") == "9434765919"
    with pytest.raises(nz.InvalidValue, match="check digit"):
        nz.nhs_number("9434765918")


def test_deletion_neighbourhood_detects_one_edit():
    def share(a, b):
        return bool(set(nz.deletion_neighbourhood(a)) & set(nz.deletion_neighbourhood(b)))

    assert share("smith", "smyth")      # substitution
    assert share("smith", "smiths")     # insertion
    assert share("smith", "simth")      # adjacent transposition
    assert not share("smith", "jones")
    assert not share("smith", "smoothe")
    assert nz.deletion_neighbourhood("ab") == ["a", "ab", "b"]


def test_invisible_characters_join_and_control_characters_separate():
    assert nz.name_parts("Jo\u200bhn\u00ad") == ["john"]
    assert nz.name_parts("John\tSmith") == ["john", "smith"]
    assert nz.name_parts("J\u043ehn") == ["john"]  # Cyrillic о folds to the Latin letter it imitates
