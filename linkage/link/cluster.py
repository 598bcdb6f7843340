"""From scored identity pairs to persons: record-level edges, clustering, chain guards, person ids.

Splink scores identity rows (a record can carry aliases), but the crosswalk is per record, and the
one-person-per-id promise is about records. So pairs are first collapsed to record pairs (best score),
then clustered on records: one-to-one between sources that promise no duplicates, connected components
for the rest.
"""

from __future__ import annotations

from typing import Any

import duckdb
from splink.internals.clustering import cluster_pairwise_predictions_at_threshold
from splink.internals.duckdb.database_api import DuckDBAPI
from splink.internals.one_to_one_clustering import one_to_one_clustering

from linkage.link.config import ClusterSettings


def run_sql(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> list[tuple]:
    """Execute and fetch everything: DuckDB refuses new work while a result is left unfetched."""
    return con.execute(sql, params or []).fetchall()


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def build_record_graph(con: duckdb.DuckDBPyConnection, pairs_table: str, records_table: str,
                       aliases: dict[str, str]) -> None:
    """Create ``_nodes`` (node_id, source_dataset alias) and ``_edges`` (best probability per record pair)."""
    case = " ".join(f"WHEN {_sql_str(s)} THEN {_sql_str(a)}" for s, a in aliases.items())
    run_sql(con, f"""CREATE OR REPLACE TABLE _nodes AS
        SELECT record_id AS node_id, CASE source {case} END AS source_dataset
        FROM {records_table} ORDER BY record_id""")
    run_sql(con, f"""CREATE OR REPLACE TABLE _edges AS
        WITH p AS (SELECT least(record_id_l, record_id_r) AS a, greatest(record_id_l, record_id_r) AS b,
                          match_probability FROM {pairs_table} WHERE record_id_l <> record_id_r)
        SELECT p.a AS node_id_l, p.b AS node_id_r, max(p.match_probability) AS match_probability,
               any_value(na.source_dataset) AS source_dataset_l, any_value(nb.source_dataset) AS source_dataset_r
        FROM p JOIN _nodes na ON na.node_id = p.a JOIN _nodes nb ON nb.node_id = p.b
        GROUP BY p.a, p.b ORDER BY p.a, p.b""")


def splink_clusters(nodes: Any, edges: Any, db_api: Any, settings: ClusterSettings, duplicate_free: list[str]) -> Any:
    """Splink's one-to-one clustering between duplicate-free sources, else connected components.

    ``nodes`` and ``edges`` are SplinkDataFrames registered with ``db_api`` (DuckDB or Spark); returns
    Splink's result frame with node_id and cluster_id.
    """
    threshold = settings.threshold_match_probability
    if settings.method == "auto" and duplicate_free:
        result = one_to_one_clustering(
            nodes_table=nodes, edges_table=edges, node_id_column_name="node_id",
            source_dataset_column_name="source_dataset", edge_id_column_name_left="node_id_l",
            edge_id_column_name_right="node_id_r", duplicate_free_datasets=sorted(duplicate_free),
            ties_method="lowest_id", db_api=db_api, threshold_match_probability=threshold)
    else:
        result = cluster_pairwise_predictions_at_threshold(
            nodes, edges, db_api=db_api, node_id_column_name="node_id", edge_id_column_name_left="node_id_l",
            edge_id_column_name_right="node_id_r", threshold_match_probability=threshold)
    return result


def cluster_records(con: duckdb.DuckDBPyConnection, db_api: DuckDBAPI, settings: ClusterSettings,
                    duplicate_free: list[str]) -> str:
    """Cluster ``_nodes``/``_edges``; returns the name of a table (node_id, cluster_id)."""
    nodes = db_api.register("_nodes", table_name="__link_nodes")
    edges = db_api.register("_edges", table_name="__link_edges")
    result = splink_clusters(nodes, edges, db_api, settings, duplicate_free)
    run_sql(con, f"CREATE OR REPLACE TABLE _clusters AS SELECT node_id, cluster_id FROM {result.physical_name}")
    return "_clusters"


def assign_person_ids(con: duckdb.DuckDBPyConnection, records_table: str) -> None:
    """``_crosswalk``: person id = hash of the cluster's smallest record id (deterministic, order-free)."""
    run_sql(con, f"""CREATE OR REPLACE TABLE _crosswalk AS
        WITH c AS (SELECT r.record_id, r.source, coalesce(k.cluster_id, r.record_id) AS cluster_id
                   FROM {records_table} r LEFT JOIN _clusters k ON k.node_id = r.record_id),
        m AS (SELECT cluster_id, min(record_id) AS first_record FROM c GROUP BY cluster_id)
        SELECT 'P' || substr(sha256('person' || m.first_record), 1, 20) AS person_id, c.source, c.record_id
        FROM c JOIN m USING (cluster_id)
        ORDER BY person_id, source, record_id""")


def chain_guards(con: duckdb.DuckDBPyConnection, identities_table: str, settings: ClusterSettings,
                 available: set[str]) -> dict[str, Any]:
    """Flag clusters that hold two different trusted identifiers, or that exceed the size limit."""
    trusted = [c for c in settings.trusted_identifiers if c in available]
    conflict_sql = " OR ".join(f"count(DISTINCT i.{c}) > 1" for c in trusted) or "false"
    run_sql(con, f"""CREATE OR REPLACE TABLE _flags AS
        WITH sizes AS (SELECT person_id, count(*) AS n_records FROM _crosswalk GROUP BY person_id),
        conflicts AS (SELECT x.person_id, ({conflict_sql}) AS identifier_conflict
                      FROM _crosswalk x JOIN {identities_table} i USING (record_id) GROUP BY x.person_id)
        SELECT s.person_id, s.n_records, coalesce(c.identifier_conflict, false) AS identifier_conflict,
               s.n_records > {settings.max_cluster_size} AS oversized
        FROM sizes s LEFT JOIN conflicts c USING (person_id)
        WHERE coalesce(c.identifier_conflict, false) OR s.n_records > {settings.max_cluster_size}
        ORDER BY person_id""")
    n_conflict, n_big = con.execute(
        "SELECT coalesce(sum(identifier_conflict::INT), 0), coalesce(sum(oversized::INT), 0) FROM _flags"
    ).fetchall()[0]
    flagged = [r[0] for r in con.execute("SELECT person_id FROM _flags LIMIT 100").fetchall()]
    return {"trusted_identifiers_checked": trusted, "clusters_with_conflicting_identifiers": int(n_conflict),
            "clusters_over_size_limit": int(n_big), "max_cluster_size": settings.max_cluster_size,
            "flagged_person_ids_first_100": flagged}
