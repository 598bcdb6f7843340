"""Typed parsing of payload (attribute) columns: the data that travels without identifiers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from linkage.config import PayloadColumn

ARROW_TYPES = {"string": pa.string(), "int": pa.int64(), "float": pa.float64(), "bool": pa.bool_(),
               "date": pa.date32(), "datetime": pa.timestamp("s")}
_TRUE = {"Y", "YES", "TRUE", "T", "1"}
_FALSE = {"N", "NO", "FALSE", "F", "0"}


def payload_schema(columns: list[PayloadColumn]) -> pa.Schema:
    return pa.schema([pa.field("record_id", pa.string()), pa.field("row_number", pa.int64())]
                     + [pa.field(c.column, ARROW_TYPES[c.type]) for c in columns])


def _parse_dates(text: pd.Series, formats: list[str], with_time: bool) -> pd.Series:
    result = pd.Series(pd.NaT, index=text.index, dtype="datetime64[s]")
    for fmt in formats or (["%Y-%m-%d %H:%M"] if with_time else ["%Y-%m-%d"]):
        todo = result.isna() & (text != "")
        if not todo.any():
            break
        result[todo] = pd.to_datetime(text[todo], format=fmt, errors="coerce")
    return result


def parse_payload(chunk: pd.DataFrame, columns: list[PayloadColumn]
                  ) -> tuple[dict[str, pa.Array], list[tuple[np.ndarray, str, str]]]:
    """Typed arrow arrays per payload column, and [(bad-row mask, column, reason)] for unusable values."""
    arrays: dict[str, pa.Array] = {}
    problems: list[tuple[np.ndarray, str, str]] = []
    for col in columns:
        text = chunk[col.column].astype(str).str.strip()
        empty = (text == "").to_numpy()
        if col.required and empty.any():
            problems.append((empty, col.column, "required value missing"))
        if col.type == "string":
            arrays[col.column] = pa.array(text.where(~empty, None), type=pa.string())
            continue
        if col.type in ("int", "float"):
            numbers = pd.to_numeric(text.where(~empty, None), errors="coerce")
            bad = numbers.isna().to_numpy() & ~empty
            if col.type == "int":
                bad |= (numbers.notna() & (numbers != numbers.round())).to_numpy()
            if bad.any():
                problems.append((bad, col.column, f"not a valid {'integer' if col.type == 'int' else 'number'}"))
            numbers = numbers.where(~bad)
            arrays[col.column] = pa.array(numbers.to_numpy(dtype=float), mask=numbers.isna().to_numpy(),
                                          type=pa.float64()).cast(ARROW_TYPES[col.type], safe=False)
            continue
        if col.type == "bool":
            upper = text.str.upper()
            value = upper.isin(_TRUE)
            bad = ~empty & ~value.to_numpy() & ~upper.isin(_FALSE).to_numpy()
            if bad.any():
                problems.append((bad, col.column, "not a yes/no value"))
            arrays[col.column] = pa.array(value.to_numpy(), mask=empty | bad, type=pa.bool_())
            continue
        parsed = _parse_dates(text, col.formats, with_time=col.type == "datetime")
        bad = parsed.isna().to_numpy() & ~empty
        if bad.any():
            problems.append((bad, col.column, "impossible or unparseable date"))
        if col.type == "date":
            values = [d.date() if not pd.isna(d) else None for d in parsed]
            arrays[col.column] = pa.array(values, type=pa.date32())
        else:
            arrays[col.column] = pa.array(parsed.to_numpy(), mask=parsed.isna().to_numpy(),
                                          type=pa.timestamp("s"))
    return arrays, problems


__all__ = ["ARROW_TYPES", "parse_payload", "payload_schema"]
