"""Typed parsing of payload (attribute) columns: the data that travels without identifiers.

Values are parsed once per distinct value (dates and codes repeat), with Python's strict ``strptime`` so
that impossible dates such as 31/02/2010 are caught rather than rolled over into March.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from linkage.config import PayloadColumn
from linkage.encode.identifiers import map_distinct, take
from linkage.normalise import NATIVE_DATE_FORMAT, InvalidValue

ARROW_TYPES = {"string": pa.string(), "int": pa.int64(), "float": pa.float64(), "bool": pa.bool_(),
               "date": pa.date32(), "datetime": pa.timestamp("s")}
_BOOLS = {"Y": True, "YES": True, "TRUE": True, "T": True, "1": True,
          "N": False, "NO": False, "FALSE": False, "F": False, "0": False}
_REASONS = {"int": "not a valid integer", "float": "not a valid number", "bool": "not a yes/no value",
            "date": "impossible or unparseable date", "datetime": "impossible or unparseable date"}


def payload_schema(columns: list[PayloadColumn]) -> pa.Schema:
    return pa.schema([pa.field("record_id", pa.string()), pa.field("row_number", pa.int64())]
                     + [pa.field(c.column, ARROW_TYPES[c.type]) for c in columns])


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
