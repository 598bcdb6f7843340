"""The single-node DuckDB database every link finishes in, whatever engine scored the pairs.

Owns the DuckDB session (private spill folder, memory and thread limits) and the loader of token files
into DuckDB tables (tokens as 64-bit integers, Bloom filters as ``BIT`` with their popcount). The DuckDB
backend runs the whole job in this database; after Spark the job reads Spark's staged Parquet into it.
Tables made here: ``tok_<i>`` per extract, ``_identities`` (their union), ``_records``.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import duckdb

from linkage.errors import LinkageConfigError
from linkage.link.checks import Extract
from linkage.link.cluster import run_sql
from linkage.link.config import DuckDBBackendSettings, LinkConfig
from linkage.link.levels import BLOOM_POPCOUNT_SUFFIX
from linkage.link.sql import ident, string

# Tokens are 128-bit MACs in hex. Equality needs far fewer bits: the first 64 make a chance collision
# ~1e-19 per pair, and integers compare (and sit in lists) much faster than 32-character strings.
TOKEN_SQL_TYPES = {"token": "UBIGINT", "token_list": "UBIGINT[]", "bloom": "BIT"}


def _token(expr: str) -> str:
    return f"('0x' || substr({expr}, 1, 16))::UBIGINT"


def _load_expr(col: str, kind: str) -> str:
    q = ident(col)
    if kind == "bloom":
        return f"{q}::BLOB::BIT"
    if kind == "token_list":
        return f"list_transform({q}, lambda t: {_token('t')})"
    return _token(q)


def duckdb_settings(cfg: LinkConfig) -> DuckDBBackendSettings:
    """The DuckDB settings in force: ``backend`` when it is DuckDB's, else defaults; older top-level keys fill gaps."""
    b = cfg.backend if isinstance(cfg.backend, DuckDBBackendSettings) else DuckDBBackendSettings()
    return b.model_copy(update={
        "threads": b.threads or cfg.duckdb_threads,
        "memory_limit": b.memory_limit or cfg.duckdb_memory_limit,
        "temp_directory": b.temp_directory or cfg.duckdb_temp_directory,
        "score_chunks": b.score_chunks or cfg.score_chunks})


@contextlib.contextmanager
def duckdb_session(cfg: LinkConfig) -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory DuckDB whose spill files go to a private temporary folder, removed afterwards.

    Without a set temp_directory DuckDB spills into ``.tmp`` under the current directory (measured: 5.6 GB
    there at 1M people with an 8 GB memory limit), and the files hold token columns.
    """
    s = duckdb_settings(cfg)
    if s.temp_directory is not None and not Path(s.temp_directory).is_dir():
        setting = "backend.temp_directory" if getattr(cfg.backend, "temp_directory", None) else "duckdb_temp_directory"
        raise LinkageConfigError(f"{setting} is not an existing folder: {s.temp_directory}")
    spill = Path(tempfile.mkdtemp(prefix="linkage-duckdb-", dir=s.temp_directory))
    con = duckdb.connect()
    try:
        run_sql(con, f"SET temp_directory = {string(str(spill))}")
        if s.threads:
            run_sql(con, f"SET threads = {int(s.threads)}")
        if s.memory_limit:
            run_sql(con, f"SET memory_limit = {string(s.memory_limit)}")
        yield con
    finally:
        con.close()
        shutil.rmtree(spill, ignore_errors=True)


def load_tokens_duckdb(con: duckdb.DuckDBPyConnection, extracts: list[Extract], types: dict[str, str]) -> list[str]:
    """One table per extract with the union of columns (absent ones NULL), plus ``_identities`` and
    ``_records``; returns the per-extract table names. ``source_dataset`` repeats the source as data, so
    Splink never formats a source name into SQL itself."""
    tables = []
    for i, ex in enumerate(extracts):
        src = string(ex.source)
        select = ["record_id::VARCHAR AS record_id", "identity_id::VARCHAR AS identity_id",
                  f"{src} AS source", f"{src} AS source_dataset"]
        for col, kind in types.items():
            sql_type = TOKEN_SQL_TYPES.get(kind, "VARCHAR")
            present = col in ex.columns
            select.append(f"{_load_expr(col, kind) if present else f'NULL::{sql_type}'} AS {ident(col)}")
            if kind == "bloom":
                pc = ident(col + BLOOM_POPCOUNT_SUFFIX)
                select.append(f"bit_count({ident(col)}::BLOB::BIT)::INTEGER AS {pc}" if present
                              else f"NULL::INTEGER AS {pc}")
        table = f"tok_{i}"
        run_sql(con, f"CREATE OR REPLACE TABLE {table} AS SELECT {', '.join(select)} "
                     f"FROM read_parquet({string(str(ex.tokens_path))}) ORDER BY identity_id")
        tables.append(table)
    union = " UNION ALL BY NAME ".join(f"SELECT * FROM {t}" for t in tables)
    run_sql(con, f"CREATE OR REPLACE TABLE _identities AS {union}")
    run_sql(con, "CREATE OR REPLACE TABLE _records AS SELECT DISTINCT record_id, source FROM _identities "
                 "ORDER BY record_id")
    return tables


def read_parquet_sql(path: Path) -> str:
    """``read_parquet`` over a file, or over every part of a folder Spark wrote."""
    target = str(path / "*.parquet") if path.is_dir() else str(path)
    return f"read_parquet({string(target)})"
