"""``linkage init``: a starting partner config written from a sample of the partner's own extract.

The choices that decide whether 3% or 97% of rows survive (text encoding, delimiter, which column holds
which identifier, date formats, placeholder dates, what to do with an unusable value) are made from the
data and explained in a YAML comment beside each one, so a partner edits a config that already works
instead of writing one from the schema. Only a sample is read (the first rows), and no value is copied
into the config except dates that look like placeholders (a date, not a person).

Columns that look like personal identifiers the linker does not use (addresses, phone numbers, other
id numbers) are left out of the payload and listed in a comment: the payload travels to the analysis
step in clear, so an identifier there would defeat the encoding.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from linkage import normalise as nz
from linkage.config import PartnerConfig
from linkage.errors import LinkageInputError

SAMPLE_ROWS = 5000
MISSING_MARKERS = ["NFA", "NK", "UNKNOWN", "N/A", "ZZ99 3VZ"]  # the postcode field's defaults
SAMPLE_BYTES = 4 << 20

# Tried in this order; day-first before month-first because the extracts are British.
DATE_FORMATS = ("%d/%m/%Y", "%Y-%m-%d", "%d-%m-%Y", "%d.%m.%Y", "%Y%m%d", "%Y/%m/%d", "%d %b %Y", "%d-%b-%Y",
                "%d %B %Y", "%d/%m/%y", "%m/%d/%Y")
DATETIME_FORMATS = ("%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%d/%m/%Y %H:%M", "%d/%m/%Y %H:%M:%S",
                    "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M")

# Header names (lower case, non-alphanumerics removed) that name each identifier.
NAME_HINTS: dict[str, tuple[str, ...]] = {
    "given_name": ("forename", "forenames", "firstname", "givenname", "first", "fname", "christianname"),
    "middle_names": ("middlename", "middlenames", "middle", "othernames"),
    "surname": ("surname", "lastname", "familyname", "lname"),
    "former_surnames": ("formersurname", "previoussurname", "maidenname", "preferredsurname", "alias_surname",
                        "aliassurname", "birthsurname"),
    "date_of_birth": ("dob", "dateofbirth", "birthdate", "birthdt", "dateofbirthdob"),
    "sex": ("sex", "gender"),
    "postcode": ("postcode", "postalcode", "pcode", "zipcode", "zip"),
    "upn": ("upn", "uniquepupilnumber"),
    "nhs_number": ("nhsnumber", "nhsno", "nhs"),
}
LOCAL_ID_HINTS = ("nominalid", "personid", "childid", "recid", "recordid", "localid", "clientid", "pupilid",
                  "patientid", "subjectid", "id")
# Personal identifiers the linker does not use: never proposed as payload. Whole words of the header
# (so "ethnicity" is not "city"), or these fragments anywhere in it.
IDENTIFYING_WORDS = {"address", "street", "suburb", "town", "city", "phone", "mobile", "tel", "telephone", "email",
                     "nino", "ni", "ssn", "passport", "licence", "license", "name", "names", "dob", "birth",
                     "house", "flat", "road", "addr"}
IDENTIFYING_FRAGMENTS = ("address", "socsec", "phone", "email", "surname", "forename", "firstname", "lastname",
                         "nationalinsurance", "dateofbirth", "street")


def looks_identifying(column: str) -> bool:
    """A header that names a personal identifier (address, phone, other id numbers): keep out of the payload."""
    words = set(re.split(r"[^a-z0-9]+", re.sub(r"(?<=[a-z])(?=[A-Z])", "_", column).lower())) - {""}
    words |= {re.sub(r"\d+$", "", w) for w in words}
    return bool(words & IDENTIFYING_WORDS) or any(f in _key(column) for f in IDENTIFYING_FRAGMENTS)


@dataclass
class Sample:
    """The first rows of an extract as text, with how the file was read."""

    header: list[str]
    rows: list[list[str]]
    format: str
    encoding: str = "utf-8"
    delimiter: str = ","
    notes: dict[str, str] = field(default_factory=dict)

    def column(self, name: str) -> list[str]:
        i = self.header.index(name)
        return [r[i].strip() if i < len(r) else "" for r in self.rows]


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _detect_encoding(raw: bytes) -> tuple[str, str]:
    if raw.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig", "the file starts with a UTF-8 byte-order mark"
    try:
        raw.decode("utf-8")
        return "utf-8", "every sampled byte is valid UTF-8"
    except UnicodeDecodeError as exc:
        if exc.start >= len(raw) - 4:  # a character cut by the sample's end
            return "utf-8", "every sampled byte is valid UTF-8"
    try:
        raw.decode("cp1252")
        return "cp1252", "not valid UTF-8 but valid Windows-1252 (the usual export of Excel and SQL Server)"
    except UnicodeDecodeError:
        return "latin-1", "neither UTF-8 nor Windows-1252; Latin-1 reads any byte (check accented names)"


def read_sample(path: str | Path, rows: int = SAMPLE_ROWS) -> Sample:
    """The header and first ``rows`` rows of a CSV (encoding and delimiter detected), Parquet or .xlsx file."""
    path = Path(path)
    if not path.is_file():
        raise LinkageInputError("file not found", file=str(path))
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".xlsx"):
        import pandas as pd

        if suffix == ".parquet":
            import pyarrow.parquet as pq

            frame = next(pq.ParquetFile(path).iter_batches(batch_size=rows)).to_pandas()
        else:
            frame = pd.read_excel(path, dtype=str, nrows=rows, keep_default_na=False)
        frame = frame.astype(str).replace({"None": "", "nan": "", "NaT": ""})
        return Sample([str(c).strip() for c in frame.columns], frame.values.tolist(), suffix[1:])
    with open(path, "rb") as handle:
        raw = handle.read(SAMPLE_BYTES)
    if not raw.strip():
        raise LinkageInputError("file is empty", file=str(path))
    encoding, why_encoding = _detect_encoding(raw)
    text = raw.decode(encoding, errors="replace")
    if len(raw) == SAMPLE_BYTES and "\n" in text:
        text = text[: text.rindex("\n") + 1]  # drop the row cut by the sample's end
    first_line = text.splitlines()[0]
    counts = {d: first_line.count(d) for d in (",", ";", "\t", "|")}
    delimiter = max(counts, key=lambda d: counts[d])
    if counts[delimiter] == 0:
        raise LinkageInputError("no delimiter (comma, semicolon, tab or bar) in the header line", file=str(path),
                                row=1)
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    header = [h.strip() for h in next(reader)]
    body = [row for _, row in zip(range(rows), reader, strict=False) if any(c.strip() for c in row)]
    names = {",": "comma", ";": "semicolon", "\t": "tab", "|": "vertical bar"}
    notes = {"encoding": why_encoding,
             "delimiter": f"the header line splits into {len(header)} columns on the {names[delimiter]}"}
    return Sample(header, body, "csv", encoding, delimiter, notes)


def _share(values: list[str], test: Callable[[str], Any]) -> float:
    """Share of non-empty values for which ``test`` returns a value (not None, no exception)."""
    present = [v for v in values if v]
    if not present:
        return 0.0
    ok = 0
    for v in present:
        try:
            ok += test(v) is not None
        except (ValueError, nz.InvalidValue):
            pass
    return ok / len(present)


def _parses(fmt: str) -> Callable[[str], dt.datetime]:
    return lambda v: dt.datetime.strptime(v, fmt)


def date_formats(values: list[str], candidates: tuple[str, ...] = DATE_FORMATS) -> tuple[list[str], float]:
    """Formats (best first, at most three) that together parse the most values, and the share they parse."""
    present = [v for v in set(values) if v]
    if not present:
        return [], 0.0
    chosen: list[str] = []
    left = present
    for _ in range(3):
        best = max(candidates, key=lambda f: (sum(1 for v in left if _ok(f, v)), -candidates.index(f)))
        hits = [v for v in left if _ok(best, v)]
        if not hits:
            break
        chosen.append(best)
        left = [v for v in left if not _ok(best, v)]
        if not left:
            break
    weights = Counter(v for v in values if v)
    parsed = sum(n for v, n in weights.items() if any(_ok(f, v) for f in chosen))
    return chosen, parsed / sum(weights.values())


def _ok(fmt: str, value: str) -> bool:
    try:
        dt.datetime.strptime(value, fmt)
        return True
    except ValueError:
        return False


def _placeholder_dates(values: list[str], formats: list[str]) -> list[dt.date]:
    """Dates far more frequent than any real birthday: a system's stand-in for 'unknown'."""
    dates: Counter[dt.date] = Counter()
    for v in values:
        if v:
            try:
                d = nz.parse_date(v, formats)
            except nz.InvalidValue:
                continue
            if d is not None:
                dates[d] += 1
    if len(dates) < 20:
        return []
    typical = sorted(dates.values())[len(dates) // 2]
    return sorted(d for d, n in dates.items() if n >= max(5, 20 * typical) and (d.month, d.day) == (1, 1))


def _dob_check(formats: list[str], earliest: dt.date, placeholders: list[dt.date]) -> Callable[[str], Any]:
    """The encoder's date-of-birth test: parses under ``formats`` and lies in earliest..today (or a placeholder)."""
    return lambda v: nz.check_dob(nz.parse_date(v, formats), earliest, dt.date.today(), placeholders)[1] or "ok"


def _content_scores(sample: Sample, column: str) -> dict[str, float]:
    values = sample.column(column)
    return {
        "postcode_uk": _share(values, lambda v: nz.postcode_parts(v, "uk", MISSING_MARKERS) or "missing marker"),
        "postcode_digits4": _share(values, lambda v: v if re.fullmatch(r"\d{4}", v) else None),
        "upn": _share(values, nz.upn),
        "nhs_number": _share(values, nz.nhs_number),
        "sex": _share(values, lambda v: v if v.upper() in {"M", "F", "MALE", "FEMALE", "1", "2", "U", "X"}
                      else None),
    }


def propose(sample: Sample, *, source: str, project_id: str) -> tuple[dict[str, Any], dict[str, str],
                                                                      dict[str, Any]]:
    """The config dict, a comment per config path, and figures for the summary."""
    why: dict[str, str] = {}
    keys = {_key(c): c for c in sample.header}
    taken: set[str] = set()
    identifiers: dict[str, Any] = {}
    n = len(sample.rows)

    def by_name(field: str) -> str | None:
        for hint in NAME_HINTS[field]:
            column = keys.get(hint)
            if column and column not in taken:
                return column
        return None

    # Local id: a named id column, else the column with most distinct values among *id* names.
    local = next((keys[h] for h in LOCAL_ID_HINTS if h in keys), None)
    if local is None:
        id_like = [c for c in sample.header if _key(c).endswith("id") or _key(c) in ("upn", "nhsnumber")]
        local = max(id_like or sample.header[:1], key=lambda c: len(set(sample.column(c))))
        why["local_id"] = f"'{local}': the id-like column with most distinct values (no usual id name found)"
    else:
        why["local_id"] = f"'{local}': its name marks it as the partner's own record id"
    ids = sample.column(local)
    distinct = len(set(v for v in ids if v))
    why["local_id"] += f"; {distinct:,} distinct values in {n:,} sampled rows"
    # A local id is taken only when it is the record key; UPN/NHS number may also be identifiers.
    for field_name in ("given_name", "middle_names", "surname", "date_of_birth", "sex", "postcode", "upn",
                       "nhs_number"):
        column = by_name(field_name)
        scores = None
        if column is None and field_name in ("postcode", "upn", "nhs_number", "sex"):
            # By content: a column none of whose name hints matched but whose values fit.
            for c in sample.header:
                if c in taken or c == local:
                    continue
                scores = _content_scores(sample, c)
                fit = {"postcode": max(scores["postcode_uk"], scores["postcode_digits4"])}.get(field_name,
                                                                                             scores.get(field_name))
                if fit is not None and fit >= 0.9:
                    column = c
                    why[f"identifiers.{field_name}"] = f"'{c}': {100 * fit:.0f}% of its values look like one"
                    break
        if column is None:
            continue
        taken.add(column)
        values = sample.column(column)
        spec: dict[str, Any] = {"column": column}
        why.setdefault(f"identifiers.{field_name}", f"'{column}': matched by its name")
        empty = sum(1 for v in values if not v)
        if field_name == "date_of_birth":
            formats, parsed = date_formats(values)
            if not formats:
                taken.discard(column)
                why.pop(f"identifiers.{field_name}")
                continue
            spec["formats"] = formats
            spec["min"] = dt.date(1900, 1, 1)
            placeholders = _placeholder_dates(values, formats)
            default_placeholders = [dt.date(1900, 1, 1), dt.date(1901, 1, 1), dt.date(1800, 1, 1)]
            if placeholders:
                spec["placeholders"] = sorted(set(placeholders) | set(default_placeholders))
            note = f"formats {formats} parse {100 * parsed:.1f}% of the {len(values) - empty:,} sampled dates"
            if "%m/%d/%Y" in formats:
                note += " (month-first needed for some: check with the data owner)"
            if placeholders:
                note += "; placeholders: " + ", ".join(d.isoformat() for d in placeholders) + \
                        " occur far more often than any real birthday, so they are read as 'unknown'"
            usable = _share(values, _dob_check(formats, spec["min"], spec.get("placeholders", default_placeholders)))
            if usable < 1.0:
                spec["on_invalid"] = "blank"
                note += (f"; {100 * (1 - usable):.1f}% are unparseable or outside {spec['min'].isoformat()}..today, "
                         "so on_invalid: blank keeps those rows without a date of birth")
            why[f"identifiers.{field_name}"] += "; " + note
        elif field_name == "postcode":
            uk = _share(values, lambda v: nz.postcode_parts(v, "uk", MISSING_MARKERS) or "missing marker")
            four = _share(values, lambda v: v if re.fullmatch(r"\d{4}", v) else None)
            spec["format"] = "uk" if uk >= four and uk > 0.5 else "digits4" if four > 0.5 else "any"
            share = {"uk": uk, "digits4": four}.get(spec["format"], 1.0)
            why[f"identifiers.{field_name}"] += (f"; format {spec['format']}: {100 * share:.1f}% of the sampled "
                                                 "values fit it")
            if share < 1.0 and spec["format"] != "any":
                spec["on_invalid"] = "blank"
                why[f"identifiers.{field_name}"] += "; on_invalid: blank keeps rows whose postcode does not"
        elif field_name in ("sex", "upn", "nhs_number"):
            tests: dict[str, Callable[[str], Any]] = {
                "sex": lambda v: nz.sex_code(v, {"M": "M", "MALE": "M", "1": "M", "F": "F", "FEMALE": "F",
                                                 "2": "F", "U": None, "0": None, "9": None, "X": None,
                                                 "UNKNOWN": None}) or "ok",
                "upn": nz.upn, "nhs_number": nz.nhs_number}
            share = _share(values, tests[field_name])
            why[f"identifiers.{field_name}"] += f"; {100 * share:.1f}% of the sampled values are valid"
            if share < 1.0:
                spec["on_invalid"] = "blank"
                why[f"identifiers.{field_name}"] += "; on_invalid: blank keeps rows with an invalid one"
        if empty:
            why[f"identifiers.{field_name}"] += f"; empty in {100 * empty / max(n, 1):.1f}% of rows"
        identifiers[field_name] = spec
    former = [keys[h] for h in NAME_HINTS["former_surnames"] if h in keys and keys[h] not in taken]
    if former:
        identifiers["former_surnames"] = {"columns": former}
        why["identifiers.former_surnames"] = f"{former}: earlier or preferred surnames, matched by name"
        taken.update(former)
    order = ["given_name", "middle_names", "surname", "former_surnames", "date_of_birth", "sex", "postcode",
             "upn", "nhs_number"]
    identifiers = {k: identifiers[k] for k in order if k in identifiers}

    payload: list[dict[str, Any]] = []
    withheld: list[str] = []
    for column in sample.header:
        if column in taken or column == local:
            continue
        if looks_identifying(column):
            withheld.append(column)
            continue
        values = sample.column(column)
        entry: dict[str, Any] = {"column": column}
        present = [v for v in values if v]
        if present:
            dt_formats, dt_share = date_formats(values, DATETIME_FORMATS)
            d_formats, d_share = date_formats(values, DATE_FORMATS[:-1])  # never guess month-first for payload
            if dt_share == 1.0:
                entry.update(type="datetime", formats=dt_formats)
            elif d_share == 1.0:
                entry.update(type="date", formats=d_formats)
            elif all(re.fullmatch(r"-?[1-9][0-9]{0,8}|0", v) for v in present):
                entry["type"] = "int"
        payload.append(entry)
    if withheld:
        why["payload"] = ("left out as they look like personal identifiers (the payload travels in clear): "
                          + ", ".join(withheld))
    config: dict[str, Any] = {
        "project_id": project_id, "source": source,
        "input": {"format": sample.format} | ({"encoding": sample.encoding, "delimiter": sample.delimiter}
                                              if sample.format == "csv" else {}),
        "local_id": local, "one_person_per_id": False, "identifiers": identifiers, "payload": payload}
    why["input"] = "; ".join(f"{k}: {v}" for k, v in sample.notes.items()) or f"a {sample.format} file"
    why["one_person_per_id"] = ("false is the safe choice (linkage then also looks for duplicates within this "
                                "source); set true only if each local id is certainly one person")
    return config, why, {"rows_sampled": n, "local_ids_distinct": distinct}


def _yaml_value(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=10_000)
    return text.removesuffix("...\n").strip()  # a plain scalar is dumped as a document with an end marker


def render(config: dict[str, Any], why: dict[str, str], sample_path: str) -> str:
    """The config as YAML with each choice explained in a comment above it."""
    lines = [f"# Starting partner config written by `linkage init` from a sample of {Path(sample_path).name}.",
             "# Every choice below was made from the data; the comment above it says why. Review them, then",
             "# check with `linkage hash --dry-run --config THIS --input EXTRACT` before encoding.",
             ""]

    def comment(key: str, indent: str = "") -> None:
        if key in why:
            lines.append(f"{indent}# {why[key]}")

    for key in ("project_id", "source"):
        lines.append(f"{key}: {_yaml_value(config[key])}")
    comment("input")
    lines.append(f"input: {_yaml_value(config['input'])}")
    comment("local_id")
    lines.append(f"local_id: {_yaml_value(config['local_id'])}")
    comment("one_person_per_id")
    lines.append(f"one_person_per_id: {_yaml_value(config['one_person_per_id'])}")
    lines.append("identifiers:")
    for name, spec in config["identifiers"].items():
        comment(f"identifiers.{name}", "  ")
        lines.append(f"  {name}: {_yaml_value(spec)}")
    lines.append("# Payload: attributes for the analysis step, never used for linkage. Each travels in clear:")
    lines.append("# keep only what the data-sharing agreement names. Typed date/int columns reject rows whose")
    lines.append("# value does not parse, so a type was set only where every sampled value parsed.")
    comment("payload")
    if config["payload"]:
        lines.append("payload:")
        lines += [f"  - {_yaml_value(p)}" for p in config["payload"]]
    else:
        lines.append("payload: []")
    return "\n".join(lines) + "\n"


def init_config(input_path: str | Path, out: str | Path, *, source: str | None = None,
                project_id: str = "my-project", rows: int = SAMPLE_ROWS) -> dict[str, Any]:
    """Write a starting partner config for an extract to ``out`` (which must not exist); return a summary."""
    out = Path(out)
    if out.exists():
        from linkage.errors import OutputError

        raise OutputError(f"{out}: already exists; choose a new file name")
    sample = read_sample(input_path, rows)
    name = source or re.sub(r"[^A-Za-z0-9_\-]+", "_", Path(input_path).stem) or "partner"
    config, why, figures = propose(sample, source=name, project_id=project_id)
    if not config["identifiers"]:
        raise LinkageInputError("no identifier column recognised by name or content (names, date of birth, "
                                "sex, postcode, UPN, NHS number)", file=str(input_path))
    text = render(config, why, str(input_path))
    PartnerConfig.model_validate(yaml.safe_load(text))  # what we write must load
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return {"config": config, "why": why, **figures, "path": str(out)}
