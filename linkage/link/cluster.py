"""From scored identity pairs to persons: record-level edges, clustering, chain guards, person ids.

Splink scores identity rows (a record can carry aliases), but the crosswalk is per record, and the
one-person-per-id promise is about records. So pairs are first collapsed to record pairs (best score),
then clustered on records: one-to-one between sources that promise no duplicates, connected components
for the rest.
"""

from __future__ import annotations

import itertools
from typing import Any

import duckdb
from splink.internals.clustering import cluster_pairwise_predictions_at_threshold
from splink.internals.duckdb.database_api import DuckDBAPI
from splink.internals.one_to_one_clustering import one_to_one_clustering

from linkage.graph import components
from linkage.link.config import ClusterSettings
from linkage.link.sql import string


def run_sql(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> list[tuple]:
    """Execute and fetch everything: DuckDB refuses new work while a result is left unfetched."""
    return con.execute(sql, params or []).fetchall()


def build_record_graph(con: duckdb.DuckDBPyConnection, pairs_table: str, records_table: str,
                       aliases: dict[str, str]) -> None:
    """Create ``_nodes`` (node_id, source_dataset alias) and ``_edges`` (best probability per record pair)."""
    case = " ".join(f"WHEN {string(s)} THEN {string(a)}" for s, a in aliases.items())
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


# Auto threshold used where no operating point is at hand (a re-cluster of a link folder without one).
AUTO_FALLBACK_THRESHOLD = 0.99
SPLIT_THRESHOLDS = (0.9, 0.99, 0.999, 0.9999)
_REGISTRATIONS = itertools.count()


def resolved_threshold(settings: ClusterSettings, chosen: float | None = None) -> float:
    """The clustering threshold: a fixed config value, else the operating point's choice."""
    if settings.threshold_match_probability != "auto":
        return float(settings.threshold_match_probability)
    return float(chosen) if chosen is not None else AUTO_FALLBACK_THRESHOLD


def splink_clusters(nodes: Any, edges: Any, db_api: Any, settings: ClusterSettings, duplicate_free: list[str],
                    threshold: float | None = None) -> Any:
    """Splink's one-to-one clustering between duplicate-free sources, else connected components.

    ``nodes`` and ``edges`` are SplinkDataFrames registered with ``db_api`` (DuckDB or Spark); returns
    Splink's result frame with node_id and cluster_id. ``threshold``: the operating point's choice when
    the config says 'auto'.
    """
    threshold = resolved_threshold(settings, threshold)
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


def one_to_one_posteriors(con: duckdb.DuckDBPyConnection, duplicate_free: list[str]) -> None:
    """Re-weight edges between two duplicate-free sources for the one-to-one constraint.

    A pairwise probability treats every candidate of a record independently. When each record of A has at
    most one match in B, a's candidates compete: P(a-b) = o_ab / ((1 - pi_A) + sum_k o_ak), where o are the
    pairwise odds over a's scored candidates k in B and pi_A = expected A-B matches / |A| (the share of A
    that has a match in B). The same from b's side; the smaller of the two is kept. A lone moderate
    candidate of a record that almost surely has a match rises; one of several falls. Edges touching a
    deduplicated source keep their pairwise probability.
    """
    if len(duplicate_free) < 2:
        return
    free = ", ".join(string(s) for s in duplicate_free)
    run_sql(con, f"""CREATE OR REPLACE TABLE _edges AS
        WITH e AS (SELECT *, least(greatest(match_probability, 1e-12), 1 - 1e-12) AS p FROM _edges),
        o AS (SELECT *, p / (1 - p) AS odds,
                     source_dataset_l IN ({free}) AND source_dataset_r IN ({free})
                     AND source_dataset_l <> source_dataset_r AS one_to_one FROM e),
        n AS (SELECT source_dataset, count(*) AS n FROM _nodes GROUP BY source_dataset),
        m AS (SELECT least(source_dataset_l, source_dataset_r) AS a, greatest(source_dataset_l, source_dataset_r) AS b,
                     sum(p) AS expected FROM o WHERE one_to_one GROUP BY ALL),
        sides AS (SELECT node_id_l AS node, source_dataset_l AS own, source_dataset_r AS other, odds FROM o
                  WHERE one_to_one
                  UNION ALL SELECT node_id_r, source_dataset_r, source_dataset_l, odds FROM o WHERE one_to_one),
        -- per record and other source: its candidates' summed odds and 1 - (share of its source with a match)
        k AS (SELECT sides.node, sides.other, sum(sides.odds) AS total,
                     1 - least(any_value(m.expected) / any_value(n.n), 1.0) AS unmatched
              FROM sides JOIN n ON n.source_dataset = sides.own
              JOIN m ON m.a = least(sides.own, sides.other) AND m.b = greatest(sides.own, sides.other)
              GROUP BY sides.node, sides.other)
        SELECT o.node_id_l, o.node_id_r,
               CASE WHEN o.one_to_one THEN least(o.odds / (kl.unmatched + kl.total), o.odds / (kr.unmatched + kr.total))
                    ELSE o.match_probability END AS match_probability,
               o.source_dataset_l, o.source_dataset_r
        FROM o LEFT JOIN k kl ON kl.node = o.node_id_l AND kl.other = o.source_dataset_r
        LEFT JOIN k kr ON kr.node = o.node_id_r AND kr.other = o.source_dataset_l
        ORDER BY o.node_id_l, o.node_id_r""")


def cluster_records(con: duckdb.DuckDBPyConnection, db_api: DuckDBAPI, settings: ClusterSettings,
                    duplicate_free: list[str], threshold: float | None = None,
                    operating: dict[str, Any] | None = None) -> str:
    """Cluster ``_nodes``/``_edges``; returns the name of a table (node_id, cluster_id).

    With ``settings.one_to_one_posteriors`` the edges between duplicate-free sources are re-weighted first.
    With an ``operating`` point and an 'auto' threshold, the threshold is chosen here, on the edges
    actually clustered, and written into ``operating``.
    """
    if settings.one_to_one_posteriors and settings.method == "auto":
        one_to_one_posteriors(con, duplicate_free)
    if operating is not None and settings.threshold_match_probability == "auto":
        from linkage.link.threshold import choose_threshold_on_edges

        sources = {r[0] for r in run_sql(con, "SELECT DISTINCT source_dataset FROM _nodes")}
        transitive = settings.method != "auto" or bool(sources - set(duplicate_free))
        operating.update(choose_threshold_on_edges(con, operating, settings.auto_threshold_min,
                                                   settings.auto_threshold_max, transitive,
                                                   duplicate_free if settings.method == "auto" else []))
        threshold = operating["threshold"]
    # A fresh registration name per call, so one session can cluster at several thresholds.
    tag = next(_REGISTRATIONS)
    nodes = db_api.register("_nodes", table_name=f"__link_nodes_{tag}")
    edges = db_api.register("_edges", table_name=f"__link_edges_{tag}")
    result = splink_clusters(nodes, edges, db_api, settings, duplicate_free, threshold)
    run_sql(con, f"CREATE OR REPLACE TABLE _clusters AS SELECT node_id, cluster_id FROM {result.physical_name}")
    if settings.split_oversized:
        split_oversized_clusters(con, settings.max_cluster_size, resolved_threshold(settings, threshold))
    return "_clusters"


def split_oversized_clusters(con: duckdb.DuckDBPyConnection, max_size: int, threshold: float) -> int:
    """Chain guard: re-split each cluster above ``max_size`` records on its own edges at rising thresholds
    until every part fits (or the highest threshold is reached). Returns the number of clusters split.

    A chain forms when a few weak links join several people; their within-person links are much
    stronger, so raising the threshold inside the oversized cluster only cuts the weak links. Clusters
    within the limit keep the chosen threshold.
    """
    big = run_sql(con, f"""SELECT cluster_id, list(node_id ORDER BY node_id) FROM _clusters GROUP BY cluster_id
                           HAVING count(*) > {int(max_size)} ORDER BY cluster_id""")
    if not big:
        return 0
    rows = run_sql(con, f"""WITH big AS (SELECT node_id, cluster_id FROM _clusters WHERE cluster_id IN
                               (SELECT cluster_id FROM _clusters GROUP BY cluster_id HAVING count(*) > {int(max_size)}))
        SELECT a.cluster_id, e.node_id_l, e.node_id_r, e.match_probability FROM _edges e
        JOIN big a ON a.node_id = e.node_id_l JOIN big b ON b.node_id = e.node_id_r AND b.cluster_id = a.cluster_id
        WHERE e.match_probability >= ? ORDER BY 1, 2, 3""", [threshold])
    edges_of: dict[Any, list[tuple[str, str, float]]] = {}
    for cid, a, b, p in rows:
        edges_of.setdefault(cid, []).append((a, b, p))
    new_ids: list[tuple[str, str]] = []
    for cid, nodes in big:
        edges = edges_of.get(cid, [])
        pending = [list(nodes)]
        for t in [x for x in SPLIT_THRESHOLDS if x > threshold]:
            still = []
            for part in pending:
                if len(part) <= max_size:
                    new_ids += [(n, min(part)) for n in part]
                    continue
                members = set(part)
                kept = [(a, b) for a, b, p in edges if p >= t and a in members and b in members]
                still += components(part, kept)
            pending = still
        for part in pending:
            new_ids += [(n, min(part)) for n in part]
    con.execute("CREATE OR REPLACE TEMP TABLE _split (node_id VARCHAR, new_id VARCHAR)")
    con.executemany("INSERT INTO _split VALUES (?, ?)", [(str(n), str(c)) for n, c in new_ids])
    run_sql(con, """CREATE OR REPLACE TABLE _clusters AS SELECT c.node_id,
        CASE WHEN s.new_id IS NULL THEN c.cluster_id::VARCHAR ELSE 'split-' || s.new_id END AS cluster_id
        FROM _clusters c LEFT JOIN _split s ON s.node_id = c.node_id::VARCHAR ORDER BY c.node_id""")
    return len(big)


def assign_person_ids(con: duckdb.DuckDBPyConnection, records_table: str) -> None:
    """``_crosswalk``: person id = hash of the cluster's smallest record id (deterministic, order-free)."""
    run_sql(con, f"""CREATE OR REPLACE TABLE _crosswalk AS
        WITH c AS (SELECT r.record_id, r.source, coalesce(k.cluster_id, r.record_id) AS cluster_id
                   FROM {records_table} r LEFT JOIN _clusters k ON k.node_id = r.record_id),
        m AS (SELECT cluster_id, min(record_id) AS first_record FROM c GROUP BY cluster_id)
        SELECT 'P' || substr(sha256('person' || m.first_record), 1, 20) AS person_id, c.source, c.record_id
        FROM c JOIN m USING (cluster_id)
        ORDER BY person_id, source, record_id""")


def cluster_into_persons(con: duckdb.DuckDBPyConnection, settings: ClusterSettings, aliases: dict[str, str],
                         duplicate_free_sources: list[str], threshold: float | None = None,
                         operating: dict[str, Any] | None = None) -> float:
    """From ``_pairs`` and ``_records`` to ``_crosswalk``: the record graph, its clustering and the person ids.

    The one clustering path of ``linkage link`` and of a re-cluster, so a re-cluster at the threshold a link
    chose gives the link's partition. ``aliases`` names the sources as Splink's clustering sees them;
    ``threshold`` and ``operating`` are passed to ``cluster_records`` (an 'auto' threshold is chosen there).
    Returns the threshold the records were clustered at.
    """
    build_record_graph(con, "_pairs", "_records", aliases)
    cluster_records(con, DuckDBAPI(connection=con), settings, [aliases[s] for s in duplicate_free_sources],
                    threshold, operating)
    assign_person_ids(con, "_records")
    chosen = operating.get("threshold") if operating is not None else threshold
    return resolved_threshold(settings, chosen)


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
