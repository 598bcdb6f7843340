"""Reading a partner extract straight from a database (PostgreSQL, SQL Server, ...) through SQLAlchemy.

Police and council systems keep their data in SQL databases; ``linkage hash --input postgresql://...``
with ``--table`` or ``--query`` reads it in chunks, as the file readers do, so the same cleaning,
counting and rejection rules apply and memory stays bounded. SQLAlchemy was chosen over a driver's own
API because one URL syntax then covers PostgreSQL (psycopg), SQL Server (pyodbc) and others, and its
dialects quote identifiers correctly for each.

Credentials never travel in the URL: a URL holding a password is refused (it would end up in shell
history and process lists). The password comes from ``LINKAGE_DB_PASSWORD``, from a file named by
``--password-file`` or ``LINKAGE_DB_PASSWORD_FILE``, or from the driver's own mechanisms (``PGPASSWORD``,
``~/.pgpass``). Every message names the database by its URL with the password removed, and any error
text from the driver is scrubbed of the password before it is shown.

Values are read as text, as from a CSV: a text column gives exactly the CSV's bytes (so tokens are
byte-identical); a typed column is converted to its ISO form (dates ``YYYY-MM-DD``, timestamps
``YYYY-MM-DD HH:MM:SS``), so a config reading it needs that format.
"""

from __future__ import annotations

import datetime as dt
import decimal
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from linkage.errors import LinkageInputError

PASSWORD_ENV = "LINKAGE_DB_PASSWORD"
PASSWORD_FILE_ENV = "LINKAGE_DB_PASSWORD_FILE"


def is_database_url(value: str | Path) -> bool:
    """True for ``dialect[+driver]://...`` (not for a file path, which has no scheme)."""
    text = str(value)
    scheme, sep, _ = text.partition("://")
    return bool(sep) and scheme.replace("+", "").replace("_", "").isalnum() and scheme.lower() != "file"


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, decimal.Decimal):
        return format(value, "f")
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value)


@dataclass
class DatabaseSource:
    """A table or query in a database, read in chunks of text columns."""

    url: str
    table: str | None = None
    query: str | None = None
    password_file: str | Path | None = None

    def __post_init__(self) -> None:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            parsed = make_url(self.url)
        except ArgumentError:
            raise LinkageInputError("not a database URL (expected e.g. postgresql://user@host/db)") from None
        if parsed.password:
            raise LinkageInputError(f"{parsed.render_as_string(hide_password=True)}: the URL holds a password; "
                                    f"give it in {PASSWORD_ENV} or a password file instead") from None
        if (self.table is None) == (self.query is None):
            raise LinkageInputError(f"{self}: give exactly one of --table or --query")
        self._url = parsed

    def __str__(self) -> str:
        return self._url.render_as_string(hide_password=True) if hasattr(self, "_url") else "database"

    def _password(self) -> str | None:
        path = self.password_file or os.environ.get(PASSWORD_FILE_ENV)
        if path:
            try:
                return Path(path).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise LinkageInputError(f"password file not readable ({exc.strerror})", file=str(path)) from None
        return os.environ.get(PASSWORD_ENV)

    def _scrub(self, text: str, password: str | None) -> str:
        return text.replace(password, "***") if password else text

    def iter_chunks(self, needed: list[str], chunk_rows: int) -> Iterator[pa.Table]:
        """Tables of ``needed`` columns as strings (empty for NULL), ``chunk_rows`` rows each."""
        import sqlalchemy as sa
        from sqlalchemy.exc import SQLAlchemyError

        password = self._password()
        url = self._url.set(password=password) if password else self._url
        engine = sa.create_engine(url, hide_parameters=True)
        try:
            with engine.connect() as conn:
                statement: Any
                if self.table is not None:
                    schema, _, name = self.table.rpartition(".")
                    source: Any = sa.table(name, schema=schema or None)
                    statement = sa.select(*[sa.column(c) for c in needed]).select_from(source)
                else:
                    sub = sa.text(self.query or "").columns().subquery("extract")
                    statement = sa.select(*[sa.column(c) for c in needed]).select_from(sub)
                result = conn.execution_options(stream_results=True, yield_per=chunk_rows).execute(statement)
                for rows in result.partitions(chunk_rows):
                    columns = list(zip(*rows, strict=True)) if rows else [() for _ in needed]
                    yield pa.table({c: pa.array([_text(v) for v in col], pa.string())
                                    for c, col in zip(needed, columns, strict=True)})
        except SQLAlchemyError as exc:
            detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            missing = [c for c in needed if f'"{c}"' in detail or f" {c} " in f" {detail} "]
            if missing and "does not exist" in detail:
                raise LinkageInputError(f"{self}: column not found in the {self._what()}",
                                        field=missing[0]) from None
            raise LinkageInputError(f"{self}: {type(exc).__name__}: {self._scrub(detail, password)}") from None
        finally:
            engine.dispose()

    def _what(self) -> str:
        return f"table {self.table}" if self.table is not None else "query result"


def open_input(value: str | Path, *, table: str | None = None, query: str | None = None,
               password_file: str | Path | None = None) -> Path | DatabaseSource:
    """A file path, or a :class:`DatabaseSource` for a database URL (which needs ``table`` or ``query``)."""
    if is_database_url(value):
        return DatabaseSource(str(value), table=table, query=query, password_file=password_file)
    if table is not None or query is not None:
        raise LinkageInputError("--table and --query apply only to a database URL", file=str(value))
    return Path(value)
