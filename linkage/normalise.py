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
from collections.abc import Iterable, Mapping, Sequence

from anyascii import anyascii


class InvalidValue(ValueError):
    """A present value that cannot be used. The message is a reason, never the value."""


class BlankedValue(InvalidValue):
    """A present value that means 'missing' (a placeholder) or leaves nothing usable after cleaning.

    Never rejects the row: the field is blanked and the reason counted in the manifest.
    """


PLACEHOLDER_REASON = "placeholder for unknown"
#: The form native date cells (Excel, Parquet date/timestamp columns) are given by the reader. No partner
#: types it by hand, it is unambiguous, and it is accepted whatever date formats the config lists.
NATIVE_DATE_FORMAT = "%Y-%m-%dT%H:%M:%S"
# Format characters (zero-width space/joiners, BOM, soft hyphen, bidi marks) and symbols such as emoji
# carry no letters of a name: they are removed before transliteration. Control characters become spaces.
_DROPPED_CATEGORIES = frozenset({"Cf", "Cc", "Cs", "Co", "Cn", "So"})


_TITLES = frozenset({
    "mr", "mrs", "ms", "miss", "mx", "dr", "prof", "professor", "rev", "revd", "sir", "dame", "lady", "lord",
    "master", "mstr", "sr", "sra", "fr",
})
_SUFFIXES = frozenset({"jr", "jnr", "snr", "ii", "iii", "iv", "phd", "md", "obe", "mbe", "esq"})
# Everything that is not a letter or digit separates name parts, except apostrophes, which join
# (O'Brien and OBrien are the same surname).
_APOSTROPHES = re.compile(r"['\u2019\u2018`\u00b4]")
_SEPARATORS = re.compile(r"[^0-9a-z]+")


def fold_text(text: str) -> str:
    """Unicode text to plain ASCII, never silently losing letters.

    Zero-width and other invisible characters and symbols (emoji) are removed; then every character is
    transliterated with ``anyascii`` (ISC licence, maintained; Unidecode is GPL): accented Latin letters
    lose their accents (Zoë → Zoe, Łukasz → Lukasz, ß → ss), and letters of other scripts are romanised
    (Cyrillic, Greek, Arabic, Devanagari, CJK…). Look-alike letters from other scripts (Cyrillic о, Greek
    ο in an otherwise Latin name) therefore fold to the Latin letter they imitate.
    """
    text = str(text)
    if text.isascii() and text.isprintable():  # the common case: nothing to remove or fold
        return text
    text = unicodedata.normalize("NFKC", text)
    # Control characters (tab, line breaks) separate words; the others are dropped in place.
    kept = "".join(" " if unicodedata.category(ch) == "Cc" else ch for ch in text
                   if unicodedata.category(ch) not in _DROPPED_CATEGORIES or unicodedata.category(ch) == "Cc")
    if kept.isascii():
        return kept
    return anyascii(kept)


def strip_accents(text: str) -> str:
    """Accents dropped and every non-ASCII letter transliterated (see :func:`fold_text`)."""
    return fold_text(text)


def placeholder_key(raw: str) -> str:
    """The form placeholders are compared in: upper case, runs of spaces as one."""
    return " ".join(str(raw).split()).upper()


def is_placeholder(raw: str, placeholders: Iterable[str]) -> bool:
    """True when ``raw`` is one of the values that stand for 'unknown' (case and spacing ignored).

    ``placeholders`` may be a frozenset of :func:`placeholder_key` forms, which callers on a hot path
    build once.
    """
    keys = placeholders if isinstance(placeholders, frozenset) else frozenset(map(placeholder_key, placeholders))
    text = placeholder_key(raw)
    return bool(text) and text in keys


def clean_name(raw: str | None, placeholders: Iterable[str] = ()) -> str | None:
    """A name field as space-joined clean parts, or ``None`` when empty.

    A present value that yields no name raises :class:`BlankedValue` with the reason (placeholder, digits
    only, a title only, symbols only), so every such blank is counted rather than silently dropped.
    """
    if raw is None or not str(raw).strip():
        return None
    if is_placeholder(raw, placeholders):
        raise BlankedValue(PLACEHOLDER_REASON)
    parts = name_parts(raw)
    if parts:
        return " ".join(parts)
    folded = _SEPARATORS.sub(" ", _APOSTROPHES.sub("", fold_text(raw).casefold())).split()
    if not folded:
        raise BlankedValue("no letters (symbols, emoji or punctuation only)")
    if all(p.isdigit() for p in folded):
        raise BlankedValue("digits only, not a name")
    raise BlankedValue("a title or suffix only, no name")


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


_DATE_SHAPES = (
    (re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"), "YYYY-MM-DD", "%Y-%m-%d"),
    (re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9]{2}:[0-9]{2}:[0-9]{2}$"), "YYYY-MM-DD hh:mm:ss",
     "%Y-%m-%d %H:%M:%S"),
    (re.compile(r"^[0-9]{4}/[0-9]{2}/[0-9]{2}$"), "YYYY/MM/DD", "%Y/%m/%d"),
    (re.compile(r"^[0-9]{8}$"), "YYYYMMDD", "%Y%m%d"),
    (re.compile(r"^[0-9]{1,2}/[0-9]{1,2}/[0-9]{4}$"), "DD/MM/YYYY", "%d/%m/%Y"),
    (re.compile(r"^[0-9]{1,2}-[0-9]{1,2}-[0-9]{4}$"), "DD-MM-YYYY", "%d-%m-%Y"),
    (re.compile(r"^[0-9]{1,2}\.[0-9]{1,2}\.[0-9]{4}$"), "DD.MM.YYYY", "%d.%m.%Y"),
    (re.compile(r"^[0-9]{1,2}/[0-9]{1,2}/[0-9]{2}$"), "DD/MM/YY", "%d/%m/%y"),
    (re.compile(r"^[0-9]{1,2} [A-Za-z]{3} [0-9]{4}$"), "DD Mon YYYY", "%d %b %Y"),
    (re.compile(r"^[0-9]{1,2}-[A-Za-z]{3}-[0-9]{4}$"), "DD-Mon-YYYY", "%d-%b-%Y"),
)


def date_shape_hint(text: str, field: str = "date_of_birth") -> str:
    """A hint naming the shape of an unparseable date and the format to add, e.g. for YYYY-MM-DD.

    Only the shape is described (digits and separators), never the value.
    """
    for pattern, shape, fmt in _DATE_SHAPES:
        if pattern.fullmatch(text):
            return f"looks like {shape}; add '{fmt}' to {field}.formats"
    return "matches no common date layout"


def parse_date(raw: str | None, formats: Sequence[str], field: str = "date_of_birth") -> dt.date | None:
    """Parse with the first matching strptime format. Impossible dates (31/02/2010) raise.

    Native date cells (see :data:`NATIVE_DATE_FORMAT`) are accepted whatever ``formats`` says. The error
    names the expected formats and, when the value has a recognisable layout, the format to add.
    """
    if raw is None:
        return None
    text = str(raw).strip()
    if not text:
        return None
    for fmt in (*formats, NATIVE_DATE_FORMAT):
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    shape = next((fmt for pattern, _, fmt in _DATE_SHAPES if pattern.fullmatch(text)), None)
    if shape is not None and shape in formats:
        raise InvalidValue("impossible date (day or month out of range)")
    raise InvalidValue("unparseable date (expected " + " or ".join(formats) + "; " + date_shape_hint(text, field)
                       + ")")


def format_date(value: dt.date) -> str:
    """YYYYMMDD with a zero-padded four-digit year (``strftime('%Y')`` does not pad years < 1000 on Linux)."""
    return f"{value.year:04d}{value.month:02d}{value.day:02d}"


def check_dob(value: dt.date | None, earliest: dt.date, latest: dt.date,
              placeholders: Iterable[dt.date] = ()) -> tuple[dt.date | None, bool]:
    """Range-check a date of birth. Returns (date or None, was_placeholder). Out of range raises."""
    if value is None:
        return None, False
    if value in set(placeholders):
        return None, True
    if value < earliest:
        raise InvalidValue(f"date of birth before {_iso(earliest)}")
    if value > latest:
        raise InvalidValue(f"date of birth after {_iso(latest)}")
    return value, False


def _iso(value: dt.date) -> str:
    return f"{value.year:04d}-{value.month:02d}-{value.day:02d}"


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
    if not text:
        return None
    if text in {re.sub(r"\s+", "", m).upper() for m in missing_markers}:
        raise BlankedValue(PLACEHOLDER_REASON)
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


def sex_code(raw: str | None, codes: Mapping[str, str | None]) -> str | None:
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
