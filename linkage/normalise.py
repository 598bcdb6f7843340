"""Cleaning of clear identifiers before encoding: names, dates, postcodes, sex, UPN, NHS number.

Pure functions on single values, so each rule is unit-tested on its own. The encoder calls them once per
distinct raw value (names and postcodes repeat a lot), never per row. A function returns ``None`` for a
missing value and raises :class:`InvalidValue` for a present but unusable one; the caller decides whether
that rejects the row, and the message never contains the value itself.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Iterable, Sequence


class InvalidValue(ValueError):
    """A present value that cannot be used. The message is a reason, never the value."""


_TITLES = frozenset({
    "mr", "mrs", "ms", "miss", "mx", "dr", "prof", "professor", "rev", "revd", "sir", "dame", "lady", "lord",
    "master", "mstr", "sr", "sra", "fr",
})
_SUFFIXES = frozenset({"jr", "jnr", "snr", "ii", "iii", "iv", "phd", "md", "obe", "mbe", "esq"})
# Everything that is not a letter or digit separates name parts, except apostrophes, which join
# (O'Brien and OBrien are the same surname).
_APOSTROPHES = re.compile(r"['\u2019\u2018`\u00b4]")
_SEPARATORS = re.compile(r"[^0-9a-z]+")


def strip_accents(text: str) -> str:
    """NFKD-decompose and drop combining marks: Zoë → Zoe, Łukasz → Lukasz (ł has no decomposition)."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return stripped.translate(_EXTRA_LATIN)


_EXTRA_LATIN = str.maketrans({"ł": "l", "Ł": "L", "ø": "o", "Ø": "O", "đ": "d", "Đ": "D", "ß": "ss",
                              "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "ı": "i"})


def name_parts(raw: str | None, *, drop_titles: bool = True) -> list[str]:
    """Clean a name field into lower-case ASCII parts.

    Titles (Mr, Dr…) and suffixes (Jr, III…) are dropped; hyphens, dots, commas and spaces split parts;
    apostrophes join. ``"Dr. Mary-Ann  O'Neil Jr"`` → ``["mary", "ann", "oneil"]``.
    """
    if raw is None:
        return []
    text = strip_accents(str(raw)).casefold()
    text = _APOSTROPHES.sub("", text)
    parts = [p for p in _SEPARATORS.split(text) if p]
    if drop_titles:
        while parts and parts[0] in _TITLES and len(parts) > 1:
            parts = parts[1:]
        while parts and parts[-1] in _SUFFIXES and len(parts) > 1:
            parts = parts[:-1]
        if len(parts) == 1 and parts[0] in _TITLES:
            parts = []
    return [p for p in parts if not p.isdigit()]


def parse_date(raw: str | None, formats: Sequence[str]) -> dt.date | None:
    """Parse with the first matching strptime format. Impossible dates (31/02/2010) raise."""
    if raw is None:
        return None
    text = str(raw).strip()
    if not text:
        return None
    for fmt in formats:
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise InvalidValue("impossible or unparseable date (expected " + " or ".join(formats) + ")")


def check_dob(value: dt.date | None, earliest: dt.date, latest: dt.date,
              placeholders: Iterable[dt.date] = ()) -> tuple[dt.date | None, bool]:
    """Range-check a date of birth. Returns (date or None, was_placeholder). Out of range raises."""
    if value is None:
        return None, False
    if value in set(placeholders):
        return None, True
    if value < earliest:
        raise InvalidValue(f"date of birth before {earliest.isoformat()}")
    if value > latest:
        raise InvalidValue(f"date of birth after {latest.isoformat()}")
    return value, False


def swapped_day_month(value: dt.date) -> dt.date | None:
    """The date with day and month exchanged, or None if that is not a date or is the same date."""
    if value.day == value.month or value.day > 12:
        return None
    return dt.date(value.year, value.day, value.month)


# UK postcode: outward code (area letters, district digits, optional letter/digit), inward code (digit +
# two letters). Accepts any spacing and case.
_UK_POSTCODE = re.compile(r"^([A-Z]{1,2}[0-9][A-Z0-9]?)([0-9][A-Z]{2})$")


def postcode_parts(raw: str | None, fmt: str = "uk",
                   missing_markers: Iterable[str] = ()) -> tuple[str, str, str] | None:
    """Normalise a postcode to (full, sector, district), or None if missing.

    ``uk``: ``"le2 1ab"`` → ``("LE2 1AB", "LE2 1", "LE2")``. ``digits4``: ``"2119"`` → ``("2119", "211", "21")``.
    ``any``: the upper-cased, space-free value for all three.
    """
    if raw is None:
        return None
    text = re.sub(r"\s+", "", str(raw)).upper()
    if not text or text in {re.sub(r"\s+", "", m).upper() for m in missing_markers}:
        return None
    if fmt == "uk":
        match = _UK_POSTCODE.match(text)
        if not match:
            raise InvalidValue("malformed UK postcode")
        outward, inward = match.groups()
        return f"{outward} {inward}", f"{outward} {inward[0]}", outward
    if fmt == "digits4":
        if not re.fullmatch(r"[0-9]{4}", text):
            raise InvalidValue("malformed postcode (expected 4 digits)")
        return text, text[:3], text[:2]
    return text, text, text


def sex_code(raw: str | None, codes: dict[str, str | None]) -> str | None:
    """Map a raw sex/gender code to M, F or None. Unknown codes raise."""
    if raw is None:
        return None
    text = str(raw).strip().upper()
    if not text:
        return None
    lookup = {k.upper(): v for k, v in codes.items()}
    if text not in lookup:
        raise InvalidValue("unrecognised sex code")
    return lookup[text]


_UPN = re.compile(r"^[A-Z][0-9]{11}[0-9A-Z]$")


def upn(raw: str | None) -> str | None:
    """Validate a 13-character Unique Pupil Number (a temporary UPN ends in a letter)."""
    if raw is None:
        return None
    text = re.sub(r"\s+", "", str(raw)).upper()
    if not text:
        return None
    if not _UPN.match(text):
        raise InvalidValue("malformed UPN (expected a letter, 11 digits and a digit or letter)")
    return text


def nhs_number(raw: str | None) -> str | None:
    """Validate a 10-digit NHS number with its modulus-11 check digit."""
    if raw is None:
        return None
    text = re.sub(r"[\s\-]+", "", str(raw))
    if not text:
        return None
    if not re.fullmatch(r"[0-9]{10}", text):
        raise InvalidValue("malformed NHS number (expected 10 digits)")
    total = sum(int(d) * w for d, w in zip(text[:9], range(10, 1, -1), strict=True))
    check = 11 - total % 11
    check = 0 if check == 11 else check
    if check == 10 or check != int(text[9]):
        raise InvalidValue("NHS number fails its check digit")
    return text


def deletion_neighbourhood(value: str) -> list[str]:
    """The value and every string made by deleting one character, sorted and without repeats.

    Two values share an element exactly when they are within one deletion/insertion/substitution of
    each other (Damerau–Levenshtein ≤ 1 for most typos), which makes fuzzy matching possible on hashes.
    """
    variants = {value}
    variants.update(value[:i] + value[i + 1:] for i in range(len(value)))
    variants.discard("")
    return sorted(variants)


# --- i13: dates that are well formed but not on the calendar ------------------------------------------

_DATE_FIELD_PATTERNS = {"%Y": r"(?P<Y>\d{4})", "%m": r"(?P<m>\d{1,2})", "%d": r"(?P<d>\d{1,2})"}


def date_digits(raw: str | None, formats: Sequence[str]) -> str | None:
    """YYYYMMDD digits of a date written in one of ``formats``, whether or not it is on the calendar.

    A month of 81 or a 30 February is usually a typo of a real date; the digits still carry evidence for
    a one-digit-edit comparison (see linkage.encode.evidence), so the encoder keeps them for that
    comparison only. They are never a valid date: cohorts and ages use :func:`parse_date`. Formats with
    fields other than %Y, %m and %d (or a two-digit year) give None.
    """
    if raw is None:
        return None
    text = str(raw).strip()
    for fmt in formats:
        if any(tok not in _DATE_FIELD_PATTERNS for tok in re.findall(r"%.", fmt)):
            continue
        pattern = re.escape(fmt)
        for tok, group in _DATE_FIELD_PATTERNS.items():
            pattern = pattern.replace(re.escape(tok), group)
        found = re.fullmatch(pattern, text)
        if found and {"Y", "m", "d"} <= set(found.groupdict()):
            return f"{found['Y']}{int(found['m']):02d}{int(found['d']):02d}"
    return None
