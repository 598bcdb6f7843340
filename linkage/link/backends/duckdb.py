"""DuckDB backend: the whole link in one in-process DuckDB database (the job's finishing database).

Tokens are read once; Bloom filters become ``BIT`` values with their popcount at load, so Dice never
casts per comparison. The scored pairs stay a table (``_scored``) of the same database, where the job
chooses the operating point and clusters them as it does for every backend.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
from splink import Linker
from splink.internals.duckdb.database_api import DuckDBAPI
from splink.internals.pipeline import CTEPipeline

from linkage.link.backends.base import LinkPlan, Progress, SplinkBackend
from linkage.link.cluster import run_sql
from linkage.link.config import DuckDBBackendSettings, LinkConfig
from linkage.link.sql import ident, string
from linkage.link.tables import duckdb_settings, load_tokens_duckdb


class DuckDBBackend(SplinkBackend):
    """``LinkBackend`` on DuckDB. Works in the connection the job gives it (``attach``)."""

    name = "duckdb"

    def __init__(self, settings: DuckDBBackendSettings, config: LinkConfig) -> None:
        self.settings = settings
        self.score_chunks = duckdb_settings(config).score_chunks or 1
        self.con: duckdb.DuckDBPyConnection | None = None
        self.db_api: Any = None
        self.inputs: list[str] = []  # the token tables, one per extract

    def attach(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self.db_api = DuckDBAPI(connection=con)

    def _con(self) -> duckdb.DuckDBPyConnection:
        if self.con is None:
            raise RuntimeError("DuckDBBackend used before attach()")
        return self.con

    def load_tokens(self, plan: LinkPlan) -> dict[str, dict[str, int]]:
        con = self._con()
        self.inputs = load_tokens_duckdb(con, plan.extracts, plan.column_types)
        identities = {ex.source: int(con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0])
                      for ex, t in zip(plan.extracts, self.inputs, strict=True)}
        records = {s: int(n) for s, n in con.execute(
            "SELECT source, count(*) FROM _records GROUP BY source ORDER BY source").fetchall()}
        return {"identities": identities, "records": records}

    def predict(self, linker: Linker, plan: LinkPlan, config: LinkConfig, out: Path, progress: Progress
                ) -> Path | None:
        """Splink's predict, in ``score_chunks`` slices of the right-hand records, into the table ``_scored``.

        Pairs are scored down to the scoring floor (lower than ``pairs_min_match_probability`` when the prior
        is re-estimated from the scores); nothing is staged as a file (returns None).
        """
        con = self._con()
        parts = list(self.scored_slices(linker, config, progress))
        if len(parts) == 1:
            predictions = parts[0]
        else:
            pipeline = CTEPipeline()
            pipeline.enqueue_sql(" UNION ALL ".join(f"SELECT * FROM {p.physical_name}" for p in parts),
                                 "__splink__df_predict")
            predictions = self.db_api.sql_pipeline_to_splink_dataframe(pipeline)
            for part in parts:
                part.drop_table_from_database_and_remove_from_cache()
        cols = [c[0] for c in con.execute(f"DESCRIBE {predictions.physical_name}").fetchall()]
        run_sql(con, f"CREATE OR REPLACE TABLE _scored AS SELECT {pairs_select(cols, plan)} "
                     f"FROM {predictions.physical_name}")
        predictions.drop_table_from_database_and_remove_from_cache()
        return None

    def export(self, plan: LinkPlan, scored: Path | None, con: duckdb.DuckDBPyConnection) -> None:
        """``_identities``, ``_records`` and ``_scored`` are already tables of the finishing database (its own)."""
        if con is not self.con:
            raise RuntimeError("DuckDBBackend exports only into the connection it ran in")

    def close(self) -> None:
        """Nothing to release: the connection is the job's."""


def pairs_select(cols: list[str], plan: LinkPlan) -> str:
    """Splink's prediction columns with the sources renamed source_l / source_r and put last (DuckDB SQL)."""
    keep = [ident(c) for c in cols if c not in ("source_dataset_l", "source_dataset_r")]
    if "source_dataset_l" in cols:
        return ", ".join([*keep, "source_dataset_l AS source_l", "source_dataset_r AS source_r"])
    src = string(plan.extracts[0].source)  # dedupe_only: one source, Splink adds no source column
    return ", ".join([*keep, f"{src} AS source_l", f"{src} AS source_r"])
