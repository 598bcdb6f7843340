"""Splink's comparison viewer and cluster studio dashboards for the linkage unit, without tokens.

Both dashboards normally show the compared values side by side. Here the values are keyed tokens, which
the VRN should not browse (and which mean nothing to a reader), so every compared column is replaced by
a blank before Splink sees it: what remains is each pair's agreement level per comparison, its Bayes
factors and match weight, which is what a reviewer needs to judge how the model scores a kind of pair.
The cluster studio likewise shows a flagged person's records as nodes (record id, source) and its scored
pairs as edges with their levels and weights. Both are standalone HTML files with their JavaScript inlined.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
from splink import Linker
from splink.internals.duckdb.dataframe import DuckDBDataFrame

from linkage.link.cluster import run_sql


def _token_columns(linker: Linker) -> list[str]:
    comparisons = linker._settings_obj.comparisons
    return sorted({ic.unquote().name for c in comparisons for ic in c._input_columns_used_by_case_statement})


@contextlib.contextmanager
def _matching_columns_declared(linker: Linker) -> Iterator[None]:
    """Splink checks that compared values were kept; they are supplied (blank) by the views below."""
    settings = linker._settings_obj
    before = settings._retain_matching_columns
    settings._retain_matching_columns = True
    try:
        yield
    finally:
        settings._retain_matching_columns = before


def _blank_pairs_view(con: duckdb.DuckDBPyConnection, linker: Linker, predictions: Any, name: str,
                      where: str = "true") -> None:
    """The scored pairs with agreement levels (gamma), Bayes factors, and every compared column NULL.

    Predictions keep per-comparison match weights but not levels, so the levels are recomputed here
    from the tokens (Splink's own CASE expressions); the tokens themselves are not selected.
    """
    comparisons = linker._settings_obj.comparisons
    tokens = _token_columns(linker)
    sides = ", ".join(f'{side}."{col}" AS "{col}_{side}"' for col in tokens for side in ("l", "r"))
    cases = ", ".join(c._case_statement for c in comparisons)
    pred_cols = [c[0] for c in con.execute(f"DESCRIBE {predictions.physical_name}").fetchall()]
    keep = ", ".join(f'p."{c}"' for c in pred_cols if f"{c}" not in {f"{t}_{s}" for t in tokens for s in "lr"})
    bayes = ", ".join(f'pow(2, "{c}") AS "bf_{c[3:]}"' for c in pred_cols if c.startswith("mw_"))
    blanks = ", ".join(f'NULL::VARCHAR AS "{c}_{side}"' for c in tokens for side in ("l", "r"))
    run_sql(con, f"""CREATE OR REPLACE TABLE {name} AS
        WITH j AS (SELECT {keep}, {sides} FROM {predictions.physical_name} p
                   JOIN _identities l ON l.identity_id = p.identity_id_l
                   JOIN _identities r ON r.identity_id = p.identity_id_r WHERE {where})
        SELECT * EXCLUDE ({", ".join(f'"{c}_{s}"' for c in tokens for s in "lr")}), {bayes}, {blanks}
        FROM (SELECT *, {cases} FROM j)""")


def write_comparison_viewer(linker: Linker, predictions: Any, con: duckdb.DuckDBPyConnection, out_path: Path,
                            examples: int = 2) -> Path:
    """Splink's comparison viewer over all scored pairs (agreement patterns, with example pairs per pattern)."""
    db_api = linker._db_api
    _blank_pairs_view(con, linker, predictions, "_viewer_pairs")
    # Splink's SQL reads the predictions under their templated name.
    frame = DuckDBDataFrame("__splink__df_predict", "_viewer_pairs", db_api)
    with _matching_columns_declared(linker):
        linker.visualisations.comparison_viewer_dashboard(frame, str(out_path), overwrite=True,
                                                          num_example_rows=examples)
    run_sql(con, "DROP TABLE IF EXISTS _viewer_pairs")
    return out_path


def write_cluster_studio(linker: Linker, predictions: Any, con: duckdb.DuckDBPyConnection, out_path: Path,
                         person_ids: list[str]) -> Path | None:
    """Splink's cluster studio for the given persons (e.g. the flagged ones, most likely false merge first).

    Nodes are the persons' identifier sets (record id and source only); edges are their scored pairs with
    agreement levels and weights. Returns None when there is no person to show.
    """
    if not person_ids:
        return None
    db_api = linker._db_api
    tokens = _token_columns(linker)
    run_sql(con, "CREATE OR REPLACE TEMP TABLE _studio_persons AS SELECT unnest(?::VARCHAR[]) AS person_id",
            [list(person_ids)])
    blanks = ", ".join(f'NULL::VARCHAR AS "{c}"' for c in tokens)
    run_sql(con, f"""CREATE OR REPLACE TABLE _studio_nodes AS
        SELECT i.identity_id, i.source AS source_dataset, i.record_id, x.person_id AS cluster_id, {blanks}
        FROM _identities i JOIN _crosswalk x USING (record_id) JOIN _studio_persons USING (person_id)""")
    _blank_pairs_view(con, linker, predictions, "_studio_pairs",
                      where="p.identity_id_l IN (SELECT identity_id FROM _studio_nodes) "
                            "AND p.identity_id_r IN (SELECT identity_id FROM _studio_nodes)")
    nodes = DuckDBDataFrame("__splink__df_clustered", "_studio_nodes", db_api)
    edges = DuckDBDataFrame("__splink__df_predict", "_studio_pairs", db_api)
    with _matching_columns_declared(linker):
        linker.visualisations.cluster_studio_dashboard(edges, nodes, str(out_path), cluster_ids=list(person_ids),
                                                       overwrite=True)
    for table in ("_studio_nodes", "_studio_pairs", "_studio_persons"):
        run_sql(con, f"DROP TABLE IF EXISTS {table}")
    return out_path


def worst_flagged(con: duckdb.DuckDBPyConnection, threshold: float, n: int = 20) -> list[str]:
    """The flagged persons most likely to hold a false merge (the chain-guard ranking), for the cluster studio."""
    from linkage.link.report import chain_guard_review

    return [str(p) for p in chain_guard_review(con, threshold).person_id[:n]]


def write_dashboards(linker: Linker, predictions: Any, con: duckdb.DuckDBPyConnection, folder: Path,
                     person_ids: list[str]) -> list[str]:
    """Both dashboards into ``folder``; returns the file names written."""
    written = [write_comparison_viewer(linker, predictions, con, folder / "comparison_viewer.html").name]
    studio = write_cluster_studio(linker, predictions, con, folder / "cluster_studio.html", person_ids)
    if studio is not None:
        written.append(studio.name)
    return written
