"""From raw identifier columns to clean values, then to keyed encodings.

Two steps, both vectorised over *distinct* values: :meth:`IdentifierEncoder.clean` normalises each
distinct raw value once (and reports the rows whose value is unusable); :meth:`IdentifierEncoder.encode`
turns each distinct clean value into tokens, deletion neighbourhoods and Bloom filters. The column names
and meanings are the contract in docs/data-contracts.md §2.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import jellyfish
import numpy as np
import pandas as pd
import pyarrow as pa

from linkage import normalise as nz
from linkage.config import MultiColumnField, PartnerConfig
from linkage.encode.bloom import BloomEncoder
from linkage.encode.tokens import Tokeniser

ERROR = object()  # marks an unusable value in a per-value cache

# clean column -> identifier field it comes from
CLEAN_COLUMNS = {
    "given": "given_name", "middle": "middle_names", "surname": "surname", "former": "former_surnames",
    "dob": "date_of_birth", "sex": "sex", "pc_full": "postcode", "pc_sector": "postcode",
    "pc_district": "postcode", "upn": "upn", "nhs": "nhs_number",
}


def _map_distinct(values: pd.Series, func: Callable[[str], Any], cache: dict) -> np.ndarray:
    """Apply ``func`` once per distinct value (memoised across chunks); return an object array."""
    codes, uniques = pd.factorize(values, sort=False, use_na_sentinel=True)
    results = np.empty(len(uniques) + 1, dtype=object)
    for i, raw in enumerate(uniques):
        if raw in cache:
            results[i] = cache[raw]
        else:
            try:
                out = func(raw)
            except nz.InvalidValue as exc:
                out = (ERROR, str(exc))
            if len(cache) < 1_000_000:
                cache[raw] = out
            results[i] = out
    results[-1] = None  # NA sentinel (-1) picks the last slot
    return results[codes]


def _blank_to_none(text: str) -> str | None:
    text = text.strip()
    return text or None


class IdentifierEncoder:
    """Cleans and encodes the identifier fields of one partner config with one key."""

    def __init__(self, cfg: PartnerConfig, key: bytes, today: dt.date | None = None) -> None:
        self.cfg = cfg
        self.ids = cfg.identifiers
        self.enc = cfg.encodings
        self.key = key
        self.today = today or dt.date.today()
        self._caches: dict[str, dict] = {}
        self._toks: dict[tuple[str, str], Tokeniser] = {}
        self._blooms: dict[str, BloomEncoder] = {}
        self.placeholder_dobs = 0
        self.columns = self._describe_columns()

    # -- clean ------------------------------------------------------------------------------------

    def clean(self, chunk: pd.DataFrame) -> tuple[pd.DataFrame, list[tuple[np.ndarray, str, str, str]]]:
        """Clean identifier columns.

        Returns (clean frame, [(bad-row mask, column, reason, action), …]) where action is the field's
        ``on_invalid`` setting: "reject" (drop the row) or "blank" (keep the row, field missing).
        """
        out: dict[str, np.ndarray] = {}
        problems: list[tuple[np.ndarray, str, str, str]] = []

        def run(name: str, column: str, func: Callable[[str], Any]) -> np.ndarray:
            action = getattr(getattr(self.ids, name), "on_invalid", "reject")
            values = _map_distinct(chunk[column], lambda raw: func(raw) if raw.strip() else None,
                                   self._caches.setdefault(name, {}))
            bad = np.fromiter((isinstance(v, tuple) and v and v[0] is ERROR for v in values),
                              dtype=bool, count=len(values))
            if bad.any():
                for reason in sorted({values[i][1] for i in np.flatnonzero(bad)}):
                    mask = bad & np.fromiter((isinstance(v, tuple) and v[1] == reason for v in values),
                                             dtype=bool, count=len(values))
                    problems.append((mask, column, reason, action))
                values = values.copy()
                values[bad] = None
            return values

        def joined_parts(raw: str) -> str | None:
            return " ".join(nz.name_parts(raw)) or None

        ids = self.ids
        for name in ("given_name", "middle_names", "surname"):
            spec = getattr(ids, name)
            if spec is not None:
                out[{"given_name": "given", "middle_names": "middle", "surname": "surname"}[name]] = run(
                    name, spec.column, joined_parts)
        if isinstance(ids.former_surnames, MultiColumnField):
            cols = [run("former_surnames", c, joined_parts) for c in ids.former_surnames.columns]
            out["former"] = np.array(["|".join(v for v in vals if v) or None for vals in zip(*cols, strict=True)],
                                     dtype=object)
        if ids.date_of_birth is not None:
            spec = ids.date_of_birth
            latest = spec.max or self.today

            def dob(raw: str) -> Any:
                parsed, placeholder = nz.check_dob(nz.parse_date(raw, spec.formats), spec.min, latest,
                                                   spec.placeholders)
                return "PLACEHOLDER" if placeholder else parsed.strftime("%Y%m%d")

            values = run("date_of_birth", spec.column, dob)
            placeholder = values == "PLACEHOLDER"
            self._placeholder_mask = placeholder
            values[placeholder] = None
            out["dob"] = values
        if ids.sex is not None:
            out["sex"] = run("sex", ids.sex.column, lambda raw: nz.sex_code(raw, ids.sex.codes))
        if ids.postcode is not None:
            spec = ids.postcode
            parts = run("postcode", spec.column,
                        lambda raw: nz.postcode_parts(raw, spec.format, spec.missing_markers))
            for i, col in enumerate(("pc_full", "pc_sector", "pc_district")):
                out[col] = np.array([p[i] if p else None for p in parts], dtype=object)
        if ids.upn is not None:
            out["upn"] = run("upn", ids.upn.column, nz.upn)
        if ids.nhs_number is not None:
            out["nhs"] = run("nhs_number", ids.nhs_number.column, nz.nhs_number)
        return pd.DataFrame(out, index=chunk.index), problems

    def count_placeholders(self, accepted: np.ndarray) -> None:
        if self.ids.date_of_birth is not None:
            self.placeholder_dobs += int((self._placeholder_mask & accepted).sum())

    # -- encode -----------------------------------------------------------------------------------

    def _tok(self, field: str, purpose: str) -> Tokeniser:
        key = (field, purpose)
        if key not in self._toks:
            self._toks[key] = Tokeniser(self.key, self.cfg.project_id, field, purpose)
        return self._toks[key]

    def _bloom(self, field: str) -> BloomEncoder:
        if field not in self._blooms:
            b = self.enc.bloom
            assert b is not None
            self._blooms[field] = BloomEncoder(self.key, self.cfg.project_id, field, b.bits, b.hashes, b.ngram)
        return self._blooms[field]

    def _describe_columns(self) -> dict[str, dict[str, Any]]:
        """Every encoding column this config produces: name -> {field, encoding, type}."""
        cols: dict[str, dict[str, Any]] = {}

        def add(name: str, field: str, encoding: str, kind: str) -> None:
            cols[name] = {"field": field, "encoding": encoding, "type": kind}

        bloom_fields = set(self.enc.bloom.fields) if self.enc.bloom else set()
        for field in ("given_name", "surname"):
            if getattr(self.ids, field) is None:
                continue
            for variant in self.enc.name_variants:
                add(f"{field}__{variant}", field, variant, "token_list" if variant == "del1" else "token")
            if field in bloom_fields:
                add(f"{field}__bloom", field, "bloom", "bloom")
        if self.enc.shared_name_tokens and (self.ids.given_name or self.ids.surname):
            add("name__parts", "name", "parts", "token_list")
            if self.ids.given_name:
                add("name__given_shared", "name", "given_shared", "token")
            if self.ids.surname:
                add("name__surname_shared", "name", "surname_shared", "token")
        if self.ids.date_of_birth is not None:
            for variant in self.enc.dob_variants:
                add(f"dob__{variant}", "date_of_birth", variant, "token")
        if self.ids.sex is not None:
            add("sex__exact", "sex", "exact", "token")
        if self.ids.postcode is not None:
            for variant in self.enc.postcode_variants:
                add(f"postcode__{variant}", "postcode", variant, "token_list" if variant == "del1" else "token")
        if self.ids.upn is not None:
            add("upn__exact", "upn", "exact", "token")
        if self.ids.nhs_number is not None:
            add("nhs_number__exact", "nhs_number", "exact", "token")
        return cols

    def arrow_schema(self) -> pa.Schema:
        fields = [pa.field("record_id", pa.string()), pa.field("_first_row", pa.int64())]
        n_bytes = self.enc.bloom.bits // 8 if self.enc.bloom else 0
        kinds = {"token": pa.string(), "token_list": pa.list_(pa.string()), "bloom": pa.binary(n_bytes)}
        fields += [pa.field(name, kinds[spec["type"]]) for name, spec in self.columns.items()]
        return pa.schema(fields)

    def encode(self, clean: pd.DataFrame) -> dict[str, np.ndarray]:
        """Encodings for each row of a (deduplicated) clean frame, keyed by output column."""
        out: dict[str, np.ndarray] = {}
        cols = self.columns
        cache = self._caches

        def per_value(column: str, name: str, func: Callable[[str], Any]) -> None:
            if name in cols:
                out[name] = _map_distinct(clean[column], func, cache.setdefault(f"enc:{name}", {}))

        for field, column in (("given_name", "given"), ("surname", "surname")):
            if column not in clean:
                continue
            # Given name: the first part (middle names join name__parts). Surname: all parts joined,
            # so "Smith-Jones", "Smith Jones" and "Smithjones" agree.
            def value_of(v: str, field: str = field) -> str:
                return v.split(" ")[0] if field == "given_name" else v.replace(" ", "")

            exact, phon, init = self._tok(field, "exact"), self._tok(field, "phonetic"), self._tok(field, "initial")
            dele = self._tok(field, "del1")
            per_value(column, f"{field}__exact", lambda v, f=value_of, t=exact: t.token(f(v)))
            per_value(column, f"{field}__phonetic",
                      lambda v, f=value_of, t=phon: t.token(jellyfish.metaphone(f(v)) or None))
            per_value(column, f"{field}__initial", lambda v, f=value_of, t=init: t.token(f(v)[0]))
            per_value(column, f"{field}__del1", lambda v, f=value_of, t=dele: t.tokens(nz.deletion_neighbourhood(f(v))))
            if f"{field}__bloom" in cols:
                bloom = self._bloom(field)
                per_value(column, f"{field}__bloom", lambda v, f=value_of, b=bloom: b.encode(f(v)))

        if "name__parts" in cols:
            shared = self._tok("name", "shared")
            frame = clean.reindex(columns=["given", "middle", "surname", "former"])
            combined = frame.fillna("").agg("|".join, axis=1) if len(frame) else pd.Series([], dtype=object)

            def all_parts(v: str) -> list[str] | None:
                given, middle, surname, former = v.split("|", 3)
                text = " ".join((given, middle, surname, former.replace("|", " ")))
                parts = [p for p in text.split(" ") if p]
                if " " in surname:
                    parts.append(surname.replace(" ", ""))
                for alt in former.split("|"):
                    if " " in alt:
                        parts.append(alt.replace(" ", ""))
                return shared.tokens(parts)

            out["name__parts"] = _map_distinct(combined.replace("|||", np.nan) if len(combined) else combined,
                                               all_parts, cache.setdefault("enc:name__parts", {}))
            per_value("given", "name__given_shared", lambda v: shared.token(v.split(" ")[0]))
            per_value("surname", "name__surname_shared", lambda v: shared.token(v.replace(" ", "")))

        if "dob" in clean:
            exact = self._tok("date_of_birth", "exact")

            def swap(v: str) -> str | None:
                date = dt.date(int(v[:4]), int(v[4:6]), int(v[6:]))
                other = nz.swapped_day_month(date)
                return exact.token(other.strftime("%Y%m%d")) if other else None

            per_value("dob", "dob__exact", exact.token)
            per_value("dob", "dob__swap", swap)
            ym, year, md = (self._tok("date_of_birth", p) for p in ("ym", "year", "md"))
            per_value("dob", "dob__ym", lambda v: ym.token(v[:6]))
            per_value("dob", "dob__year", lambda v: year.token(v[:4]))
            per_value("dob", "dob__md", lambda v: md.token(v[4:]))
        if "sex" in clean:
            per_value("sex", "sex__exact", self._tok("sex", "exact").token)
        if "pc_full" in clean:
            per_value("pc_full", "postcode__exact", self._tok("postcode", "exact").token)
            per_value("pc_sector", "postcode__sector", self._tok("postcode", "sector").token)
            per_value("pc_district", "postcode__district", self._tok("postcode", "district").token)
            pdel = self._tok("postcode", "del1")
            per_value("pc_full", "postcode__del1",
                      lambda v: pdel.tokens(nz.deletion_neighbourhood(v.replace(" ", ""))))
        if "upn" in clean:
            per_value("upn", "upn__exact", self._tok("upn", "exact").token)
        if "nhs" in clean:
            per_value("nhs", "nhs_number__exact", self._tok("nhs_number", "exact").token)
        return out
