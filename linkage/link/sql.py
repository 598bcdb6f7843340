"""Quoting of SQL identifiers and string literals for the link backends (DuckDB and Spark SQL).

Every name or value that reaches SQL from a manifest, a config or a path goes through these two
functions; nothing is formatted into SQL raw. Both refuse NUL and other control characters, which no
legitimate source name, column name or path contains and which some SQL parsers treat unpredictably.
"""

from __future__ import annotations

from typing import Literal

from linkage.errors import LinkageConfigError

Dialect = Literal["duckdb", "spark"]
DIALECTS: tuple[Dialect, ...] = ("duckdb", "spark")


def _check(value: str, what: str) -> str:
    if not isinstance(value, str):
        raise LinkageConfigError(f"{what} must be text, got {type(value).__name__}")
    if any(ord(ch) < 32 and ch not in "\t" for ch in value):
        raise LinkageConfigError(f"{what} contains a control character; refusing to put it into SQL")
    return value


def ident(name: str, dialect: Dialect = "duckdb") -> str:
    """A quoted identifier: ``"name"`` on DuckDB, ``\\`name\\``` on Spark, inner quotes doubled."""
    _check(name, "SQL identifier")
    if dialect == "spark":
        return "`" + name.replace("`", "``") + "`"
    return '"' + name.replace('"', '""') + '"'


def string(value: str, dialect: Dialect = "duckdb") -> str:
    """A quoted string literal. Spark SQL reads backslash escapes in literals, DuckDB does not."""
    _check(value, "SQL string")
    if dialect == "spark":
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return "'" + value.replace("'", "''") + "'"


def column(name: str, side: str | None = None, dialect: Dialect = "duckdb") -> str:
    """A (possibly side-suffixed) column as Splink names it in a comparison: ``name_l`` / ``name_r``."""
    return ident(f"{name}_{side}" if side else name, dialect)
