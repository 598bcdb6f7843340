"""Typed parsing and minimisation of payload (attribute) columns: the data that travels without identifiers.

Values are parsed once per distinct value (dates and codes repeat), with Python's strict ``strptime`` so
that impossible dates such as 31/02/2010 are caught rather than rolled over into March. Then each column
is generalised as its config says (:func:`generalise_payload`) before it goes into the attribute package:
timestamps coarsened to a band, hour, day, month or year; strings such as a crime reference that embeds a
date replaced by a keyed pseudonym; columns that are only checked dropped. Only declared columns travel.
"""

from __future__ import annotations

import datetime as dt
import hashlib

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from linkage.config import PayloadColumn
from linkage.encode.identifiers import map_distinct, take
from linkage.keys import derive_subkey
from linkage.normalise import NATIVE_DATE_FORMAT, InvalidValue

ARROW_TYPES = {"string": pa.string(), "int": pa.int64(), "float": pa.float64(), "bool": pa.bool_(),
               "date": pa.date32(), "datetime": pa.timestamp("s")}
_BOOLS = {"Y": True, "YES": True, "TRUE": True, "T": True, "1": True,
          "N": False, "NO": False, "FALSE": False, "F": False, "0": False}
_REASONS = {"int": "not a valid integer", "float": "not a valid number", "bool": "not a yes/no value",
            "date": "impossible or unparseable date", "datetime": "impossible or unparseable date"}


def shipped_columns(columns: list[PayloadColumn]) -> list[PayloadColumn]:
    """The payload columns that travel in the attribute package (all but those generalised to ``drop``)."""
    return [c for c in columns if c.generalise != "drop"]


def payload_schema(columns: list[PayloadColumn]) -> pa.Schema:
    """Schema of the attribute package's Parquet: key columns, then each shipped column as generalised."""
    return pa.schema([pa.field("record_id", pa.string()), pa.field("row_number", pa.int64())]
                     + [pa.field(c.column, ARROW_TYPES[c.shipped_type()]) for c in shipped_columns(columns)])


def _coarsen(values: pa.Array, col: PayloadColumn) -> pa.Array:
    rule = col.generalise
    if rule in ("month", "year"):
        start = pc.floor_temporal(values, unit=rule)
        return pc.cast(start, pa.date32()) if col.type == "datetime" else start
    if rule == "day":
        return pc.cast(pc.floor_temporal(values, unit="day"), pa.date32())
    if rule == "hour":
        return pc.floor_temporal(values, unit="hour")
    return pc.floor_temporal(values, multiple=col.band_hours, unit="hour")  # hour_band


class PayloadGeneraliser:
    """Applies each column's ``generalise`` rule; keyed pseudonyms are memoised across chunks."""

    def __init__(self, columns: list[PayloadColumn], key: bytes, project_id: str, source: str) -> None:
        self.columns = columns
        self.subkeys = {c.column: derive_subkey(key, project_id, f"payload/{source}/{c.column}", "pseudonym")
                        for c in columns if c.generalise == "pseudonym"}
        self.caches: dict[str, dict] = {name: {} for name in self.subkeys}

    def apply(self, arrays: dict[str, pa.Array]) -> dict[str, pa.Array]:
        out: dict[str, pa.Array] = {}
        for col in shipped_columns(self.columns):
            values = arrays[col.column]
            if col.generalise == "pseudonym":
                subkey = self.subkeys[col.column]

                def pseudonym(value: str, subkey: bytes = subkey) -> str:
                    return hashlib.blake2b(value.encode(), key=subkey, digest_size=16).hexdigest()

                index, results = map_distinct(values, pseudonym, self.caches[col.column])
                values = take(index, results, pa.string())
            elif col.generalise != "none":
                values = _coarsen(values, col)
            out[col.column] = values
        return out


def _parser(col: PayloadColumn):
    if col.type == "int":
        def parse(v: str) -> int:
            number = float(v)
            if not number.is_integer() or not -(2**63) <= number < 2**63:  # int64 column: no OverflowError
                raise ValueError
            return int(number)
        return parse
    if col.type == "float":
        return float
    if col.type == "bool":
        return lambda v: _BOOLS[v.upper()]
    formats = col.formats or (["%Y-%m-%d %H:%M"] if col.type == "datetime" else ["%Y-%m-%d"])

    def parse_date(v: str) -> dt.date | dt.datetime:
        for fmt in (*formats, NATIVE_DATE_FORMAT):  # native Excel/Parquet date cells are always accepted
            try:
                parsed = dt.datetime.strptime(v, fmt)
            except ValueError:
                continue
            return parsed.date() if col.type == "date" else parsed
        raise ValueError
    return parse_date


def parse_payload(chunk: pa.Table, columns: list[PayloadColumn]
                  ) -> tuple[dict[str, pa.Array], list[tuple[np.ndarray, str, str]]]:
    """Typed Arrow arrays per payload column, and [(bad-row mask, column, reason)] for unusable values."""
    arrays: dict[str, pa.Array] = {}
    problems: list[tuple[np.ndarray, str, str]] = []
    for col in columns:
        text = pc.utf8_trim_whitespace(chunk.column(col.column).combine_chunks())
        empty = pc.equal(text, "").to_numpy(zero_copy_only=False)
        if col.required and empty.any():
            problems.append((empty, col.column, "required value missing"))
        if col.type == "string":
            arrays[col.column] = pc.if_else(pa.array(empty), pa.scalar(None, pa.string()), text)
            continue
        parse = _parser(col)

        def checked(v: str, parse=parse, reason=_REASONS[col.type]):
            if not v:
                return None
            try:
                return parse(v)
            except (ValueError, KeyError):
                raise InvalidValue(reason) from None

        index, results = map_distinct(text, checked, {})
        bad_unique = np.array([not isinstance(r, (int, float, bool, dt.date)) and r is not None for r in results]
                              + [False])
        bad = bad_unique[index]
        if bad.any():
            problems.append((bad, col.column, _REASONS[col.type]))
        clean = [r if isinstance(r, (int, float, bool, dt.date)) else None for r in results]
        arrays[col.column] = take(index, clean, ARROW_TYPES[col.type])
    return arrays, problems
