"""Apache Spark execution path of ``linkage link``: the session factory, token loading into Spark, the
model's SQL in Spark's dialect, and scoring and clustering on Spark.

The heavy work (training, scoring every blocked pair, clustering) runs on Spark. What follows it is small
and single-node by nature (person ids from cluster ids, chain guards, the summary, the report, and writing
the sorted Parquet outputs) and reuses the DuckDB code of ``linkage.link.run`` over what Spark wrote, so
both backends produce the same files in the same layout.

Nothing here is imported on the DuckDB path: pyspark and Java are needed only when ``backend="spark"``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb
from splink import Linker

from linkage.errors import LinkageConfigError
from linkage.io import PhaseTimer, atomic_output_dir, check_output_dir, write_json
from linkage.link.checks import Extract, check_extracts
from linkage.link.cluster import assign_person_ids, chain_guards, resolved_threshold, run_sql, splink_clusters
from linkage.link.config import ClusterSettings, LinkConfig, load_link_config
from linkage.link.model import BLOOM_POPCOUNT_SUFFIX, build_settings, plan_blocking_on_files, train
from linkage.link.report import build_report, linkage_summary

log = logging.getLogger(__name__)

BLOOM_WORD = "__w"  # Bloom column X becomes BIGINT words X__w0, X__w1, ... (64 bits each) at load
DEFAULT_LOCAL_MASTER = "local[*]"


class SparkUnavailableError(LinkageConfigError):
    """The Spark backend was asked for but pyspark or Java is missing, or Spark would not start."""


# --- session ---------------------------------------------------------------------------------------------

def check_spark_available() -> None:
    """Fail in one line, before any work, if pyspark or a Java runtime is missing."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise SparkUnavailableError("backend 'spark' needs pyspark: pip install 'linkage[spark]'") from None
    java_home = os.environ.get("JAVA_HOME")
    if not (java_home and Path(java_home, "bin", "java").is_file()) and shutil.which("java") is None:
        raise SparkUnavailableError("backend 'spark' needs a Java runtime (17 or 21): install one or set "
                                    "JAVA_HOME")


def _local_cores(master: str) -> int:
    m = re.fullmatch(r"local\[(\d+|\*)(?:,\s*\d+)?\]", master)
    if master == "local":
        return 1
    if m is None:
        return 0  # a cluster: Spark's own defaults apply
    return (os.cpu_count() or 2) if m.group(1) == "*" else int(m.group(1))


def parse_spark_conf(conf: Mapping[str, str] | Sequence[str] | None) -> dict[str, str]:
    """Spark settings as a dict, from a mapping or from ``KEY=VALUE`` strings (the CLI's --spark-conf)."""
    if conf is None:
        return {}
    if isinstance(conf, Mapping):
        return {str(k): str(v) for k, v in conf.items()}
    out = {}
    for item in conf:
        key, sep, value = str(item).partition("=")
        if not sep or not key.strip().startswith("spark."):
            raise LinkageConfigError(f"--spark-conf expects KEY=VALUE with a spark.* key, got '{key.strip()}'")
        out[key.strip()] = value.strip()
    return out


@contextlib.contextmanager
def spark_session(master: str | None = None, conf: Mapping[str, str] | Sequence[str] | None = None,
                  app_name: str = "linkage-link") -> Iterator[Any]:
    """A Spark session for one job, stopped afterwards, with its scratch folders removed.

    Local masters get settings that suit one machine: a few shuffle partitions (Spark's default of 200
    makes a small job ten times slower), a loopback driver, no UI. ``conf`` entries override everything,
    e.g. executor memory or a shared checkpoint folder on a cluster (``spark.checkpoint.dir``).
    """
    check_spark_available()
    # pyspark warns that pandas 3 is not yet fully supported; the conversions this job makes (a few small
    # chart tables) work, and the warning would otherwise print on every toPandas call.
    warnings.filterwarnings("ignore", message=".*PySpark does not yet fully support pandas.*")
    from pyspark.sql import SparkSession
    from splink.backends.spark import similarity_jar_location

    active = SparkSession.getActiveSession()
    if active is not None:
        # Called from a notebook or job that already has a session (e.g. under spark-submit): use it as
        # configured, and leave it running. Splink's jar and a checkpoint folder are then the caller's.
        if active.sparkContext.getCheckpointDir() is None:
            active.sparkContext.setCheckpointDir(tempfile.mkdtemp(prefix="linkage-spark-checkpoints-"))
        yield active
        return
    master = master or os.environ.get("LINKAGE_SPARK_MASTER") or DEFAULT_LOCAL_MASTER
    conf = parse_spark_conf(conf)
    scratch = Path(tempfile.mkdtemp(prefix="linkage-spark-"))
    settings = {
        # Splink's string-similarity functions live in a jar shipped in its wheel; it must be on the
        # classpath before the JVM starts. Our model uses none, but Splink registers them at start-up.
        "spark.jars": similarity_jar_location(),
        "spark.sql.warehouse.dir": str(scratch / "warehouse"),
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.adaptive.enabled": "true",
        # The comparison-vector CASE (every level of every field, eight bit_counts per Dice level) is
        # too big for one whole-stage Java method: Janino fails at 64 KB, logs a long stack trace and
        # Spark falls back anyway. Per-expression code generation avoids both and measured faster here.
        "spark.sql.codegen.wholeStage": "false",
    }
    # Spark's start-up chatter (log4j banner, WARN lines) goes to the terminal before setLogLevel can act;
    # a log4j2 file keeps the driver at ERROR from the first line.
    log_config = scratch / "log4j2.properties"
    log_config.write_text("rootLogger.level = error\nrootLogger.appenderRef.stderr.ref = console\n"
                          "appender.console.type = Console\nappender.console.name = console\n"
                          "appender.console.target = SYSTEM_ERR\nappender.console.layout.type = PatternLayout\n"
                          "appender.console.layout.pattern = spark %p %c{1}: %m%n\n")
    settings["spark.driver.extraJavaOptions"] = f"-Dlog4j2.configurationFile=file:{log_config}"
    cores = _local_cores(master)
    if cores:
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # else a WARN about the hostname's address
        settings.update({
            "spark.driver.bindAddress": "127.0.0.1",
            "spark.driver.host": "127.0.0.1",
            "spark.sql.shuffle.partitions": str(max(2, 2 * cores)),
            "spark.default.parallelism": str(max(2, 2 * cores)),
            "spark.driver.memory": "2g",
        })
    settings.update(conf)
    checkpoint_dir = settings.pop("spark.checkpoint.dir", str(scratch / "checkpoints"))
    builder = SparkSession.builder.master(master).appName(app_name)
    for key, value in settings.items():
        builder = builder.config(key, value)
    try:
        spark = builder.getOrCreate()
    except Exception as exc:  # Py4J / Java start-up failures come as several types
        shutil.rmtree(scratch, ignore_errors=True)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SparkUnavailableError(f"Spark did not start (master {master}): {first[:200]}") from None
    try:
        spark.sparkContext.setLogLevel("ERROR")
        spark.sparkContext.setCheckpointDir(checkpoint_dir)
        yield spark
    finally:
        spark.stop()
        shutil.rmtree(scratch, ignore_errors=True)


# --- loading and SQL dialect ------------------------------------------------------------------------------

def _spark_str(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _token_expr(x: str) -> str:
    # Same 64 bits as the DuckDB path (first 16 hex digits), read as a signed BIGINT: to_base -10 makes
    # conv() return the two's-complement value, so no digit string overflows the cast.
    return f"CAST(conv(substr({x}, 1, 16), 16, -10) AS BIGINT)"


def _bloom_word_exprs(col: str, n_bytes: int) -> list[str]:
    return [f"CAST(conv(hex(substring({col}, {8 * i + 1}, 8)), 16, -10) AS BIGINT)"
            for i in range(math.ceil(n_bytes / 8))]


def bloom_bytes(extracts: list[Extract], types: dict[str, str]) -> dict[str, int]:
    """Bytes per Bloom column, from the manifests (``bits``), checked equal across extracts upstream."""
    out: dict[str, int] = {}
    for ex in extracts:
        default_bits = (ex.manifest["encodings"].get("bloom") or {}).get("bits")
        for col, spec in ex.columns.items():
            if types.get(col) == "bloom":
                bits = spec.get("bits", default_bits)
                if not bits:
                    raise LinkageConfigError(f"{ex.path}: manifest gives no bit length for Bloom column '{col}'")
                out.setdefault(col, math.ceil(int(bits) / 8))
    return out


def load_tokens_spark(spark: Any, extracts: list[Extract], types: dict[str, str],
                      bloom_sizes: dict[str, int]) -> list[Any]:
    """One DataFrame per extract with the union of columns (absent ones NULL), like the DuckDB loader.

    Bloom filters are split once here into 64-bit words plus their popcount, so Dice is a sum of built-in
    ``bit_count`` calls per pair: no Python UDF, no per-pair cast.
    """
    frames = []
    for ex in extracts:
        select = ["CAST(record_id AS STRING) AS record_id", "CAST(identity_id AS STRING) AS identity_id",
                  f"{_spark_str(ex.source)} AS source"]
        for col, kind in types.items():
            present = col in ex.columns
            if kind == "bloom":
                words = _bloom_word_exprs(col, bloom_sizes[col])
                for i, expr in enumerate(words):
                    select.append(f"{expr if present else 'CAST(NULL AS BIGINT)'} AS {col}{BLOOM_WORD}{i}")
                pc = " + ".join(f"bit_count({w})" for w in words)
                select.append(f"{f'CAST({pc} AS INT)' if present else 'CAST(NULL AS INT)'} "
                              f"AS {col}{BLOOM_POPCOUNT_SUFFIX}")
            elif kind == "token_list":
                expr = f"transform({col}, t -> {_token_expr('t')})" if present else "CAST(NULL AS ARRAY<BIGINT>)"
                select.append(f"{expr} AS {col}")
            else:
                select.append(f"{_token_expr(col) if present else 'CAST(NULL AS BIGINT)'} AS {col}")
        frames.append(spark.read.parquet(str(ex.tokens_path.resolve())).selectExpr(*select))
    return frames


_BIT_COUNT = re.compile(r"bit_count\((\w+)_l & (\w+)_r\)")
_DICE_DENOMINATOR = re.compile(r"/ \((\w+)_l \+ (\w+)_r\)")


def to_spark_condition(sql: str, bloom_sizes: dict[str, int]) -> str:
    """Rewrite one DuckDB comparison condition of ``linkage.link.model`` into Spark SQL.

    Raises if a DuckDB-only construct would be left, so a new level in the model fails loudly here
    rather than as a Spark analysis error mid-job.
    """
    def words(m: re.Match[str]) -> str:
        col = m.group(1)
        if col != m.group(2) or col not in bloom_sizes:
            raise LinkageConfigError(f"cannot express bit_count over '{col}' on Spark (not a Bloom column)")
        n = math.ceil(bloom_sizes[col] / 8)
        return "(" + " + ".join(f"bit_count({col}{BLOOM_WORD}{i}_l & {col}{BLOOM_WORD}{i}_r)"
                                for i in range(n)) + ")"

    out = _BIT_COUNT.sub(words, sql)
    # Spark's ANSI mode raises on division by zero where DuckDB gives NULL; NULL keeps the level false.
    out = _DICE_DENOMINATOR.sub(r"/ nullif(\1_l + \2_r, 0)", out)
    out = re.sub(r"\blist_has_any\(", "arrays_overlap(", out)
    out = re.sub(r"\blist_contains\(", "array_contains(", out)
    leftover = re.search(r"\blist_\w+\(|::|\bbit_count\((?!\w+__w\d+_l & )", out)
    if leftover:
        raise LinkageConfigError(f"comparison SQL has no Spark translation yet: '{leftover.group(0)}'")
    return out


def spark_settings(settings: Any, bloom_sizes: dict[str, int]) -> Any:
    """Translate the custom levels of a ``build_settings`` result in place; returns it for chaining."""
    from splink.internals.comparison_level_library import CustomLevel

    for comparison in settings.comparisons:
        for level in getattr(comparison, "_comparison_levels", []):
            if isinstance(level, CustomLevel):
                level.sql_condition = to_spark_condition(level.sql_condition, bloom_sizes)
    for i, rule in enumerate(settings.blocking_rules_to_generate_predictions):
        if isinstance(rule, str):
            settings.blocking_rules_to_generate_predictions[i] = to_spark_condition(rule, bloom_sizes)
    return settings


# --- clustering on Spark -----------------------------------------------------------------------------------

def cluster_on_spark(spark: Any, db_api: Any, pairs: Any, records: Any, aliases: dict[str, str],
                     settings: ClusterSettings, duplicate_free: list[str]) -> tuple[Any, int]:
    """Record graph and clusters on Spark, as ``linkage.link.cluster`` does on DuckDB.

    Returns a DataFrame (node_id, cluster_id) and the number of record edges.
    """

    pairs.createOrReplaceTempView("__link_pairs")
    records.createOrReplaceTempView("__link_records")
    case = " ".join(f"WHEN {_spark_str(s)} THEN {_spark_str(a)}" for s, a in aliases.items())
    nodes = spark.sql(f"SELECT record_id AS node_id, CASE source {case} END AS source_dataset FROM __link_records")
    nodes.createOrReplaceTempView("__link_nodes_v")
    edges = spark.sql("""
        WITH p AS (SELECT least(record_id_l, record_id_r) AS a, greatest(record_id_l, record_id_r) AS b,
                          match_probability FROM __link_pairs WHERE record_id_l <> record_id_r)
        SELECT p.a AS node_id_l, p.b AS node_id_r, max(p.match_probability) AS match_probability,
               first(na.source_dataset) AS source_dataset_l, first(nb.source_dataset) AS source_dataset_r
        FROM p JOIN __link_nodes_v na ON na.node_id = p.a JOIN __link_nodes_v nb ON nb.node_id = p.b
        GROUP BY p.a, p.b""").persist()
    n_edges = edges.count()
    nodes_sdf = db_api.register(nodes, table_name="__link_nodes")
    edges_sdf = db_api.register(edges, table_name="__link_edges")
    result = splink_clusters(nodes_sdf, edges_sdf, db_api, settings, duplicate_free)
    return result.as_spark_dataframe().select("node_id", "cluster_id"), n_edges


# --- the job ---------------------------------------------------------------------------------------------

def _stage(df: Any, folder: Path) -> str:
    """Write a Spark DataFrame as Parquet parts for DuckDB to read; returns the glob."""
    df.write.mode("overwrite").parquet(str(folder))
    return str(folder / "*.parquet")


def link_extracts_spark(encoded_dirs: list[str | Path], out_dir: str | Path,
                        config: LinkConfig | str | Path | None = None, *, master: str | None = None,
                        spark_conf: Mapping[str, str] | Sequence[str] | None = None, lineage: str | None = None,
                        quiet: bool = False) -> dict[str, Any]:
    """``link_extracts`` on Spark: same checks, model, clustering and output files as the DuckDB path.

    The output folder must be on a filesystem the driver and every executor can see (it is local in
    ``local[*]`` mode): Spark stages its results there before DuckDB sorts them into the final files.
    """
    from linkage.link.run import _column_types, _pair_filter, _plan, _write_outputs, link_manifest

    check_spark_available()
    spark_conf = parse_spark_conf(spark_conf)  # a malformed setting fails before any work
    cfg = config if isinstance(config, LinkConfig) else load_link_config(config)
    check_output_dir(out_dir)
    logging.getLogger("splink").setLevel(logging.WARNING)
    logging.getLogger("py4j").setLevel(logging.WARNING)
    timer = PhaseTimer(echo=not quiet)
    counts: dict[str, Any] = {}

    with timer.phase("check extracts"):
        extracts = check_extracts(encoded_dirs)
    link_type, dedupe, duplicate_free = _plan(extracts, cfg)
    types = _column_types(extracts)
    sizes = bloom_bytes(extracts, types)
    cols = set(types)

    with atomic_output_dir(out_dir) as tmp:
        staging = tmp / ".spark-staging"
        with contextlib.ExitStack() as stack:
            with timer.phase("start spark"):
                spark = stack.enter_context(spark_session(master, spark_conf))
            from pyspark import __version__ as pyspark_version
            from splink.backends.spark import SparkAPI

            resolved_master = spark.sparkContext.master
            # Splink breaks lineage by writing intermediate tables to Parquet under the checkpoint folder
            # (its default). "persist" was tried locally: cached tables piled up in a 2 GB driver and
            # Spark's cleaner timed out, so it is only an opt-in.
            db_api = SparkAPI(spark_session=spark, break_lineage_method=lineage or "parquet",
                              num_partitions_on_repartition=int(spark.conf.get("spark.sql.shuffle.partitions")))
            with timer.phase("load tokens"):
                frames = [f.persist() for f in load_tokens_spark(spark, extracts, types, sizes)]
                counts["identities"] = {ex.source: f.count() for ex, f in zip(extracts, frames, strict=True)}
                inputs = [db_api.register(f, dataset_display_name=ex.source)
                          for ex, f in zip(extracts, frames, strict=True)]
                identities = frames[0]
                for f in frames[1:]:
                    identities = identities.unionByName(f)
                records = identities.select("record_id", "source").distinct().persist()
                counts["records"] = {r["source"]: r["n"] for r in
                                     records.groupBy("source").count().withColumnRenamed("count", "n")
                                     .orderBy("source").collect()}
            with timer.phase("plan blocking"):
                rules, blocking_plan = plan_blocking_on_files([ex.tokens_path for ex in extracts], cols, cfg)
            settings = spark_settings(build_settings(cols, cfg, link_type, _pair_filter(link_type, dedupe), rules),
                                      sizes)
            linker = Linker(inputs, settings, log_level=logging.WARNING)

            with timer.phase("train model"):
                training = train(linker, cols, cfg)
            with timer.phase("score pairs"):
                predictions = linker.inference.predict(threshold_match_probability=cfg.pairs_min_match_probability)
                pairs = predictions.as_spark_dataframe()
                # Sources last, as on DuckDB, so pairs.parquet has one column order whatever the backend.
                kept = [f"`{c}`" for c in pairs.columns if c not in ("source_dataset_l", "source_dataset_r")]
                if "source_dataset_l" in pairs.columns:
                    pairs = pairs.selectExpr(*kept, "source_dataset_l AS source_l", "source_dataset_r AS source_r")
                else:  # dedupe_only: one source, Splink adds no source column
                    lit = _spark_str(extracts[0].source)
                    pairs = pairs.selectExpr(*kept, f"{lit} AS source_l", f"{lit} AS source_r")
                pairs_glob = _stage(pairs, staging / "pairs")
                pairs = spark.read.parquet(str(staging / "pairs"))
            with timer.phase("cluster into persons"):
                aliases = {ex.source: f"s{i}" for i, ex in enumerate(extracts)}
                clusters, counts["record_edges"] = cluster_on_spark(
                    spark, db_api, pairs, records, aliases, cfg.clustering, [aliases[s] for s in duplicate_free])
                clusters_glob = _stage(clusters, staging / "clusters")
                records_glob = _stage(records, staging / "records")
            with timer.phase("report"):
                # Charts come from the Spark linker; the waterfall is drawn by DuckDB SQL over the
                # predictions, which live in Spark here, so the report leaves it out.
                con = _qa_connection(extracts, types, pairs_glob, clusters_glob, records_glob)
                report_cfg = cfg.model_copy(update={"waterfall_samples": 0})
                counts["pairs_scored"] = con.execute("SELECT count(*) FROM _pairs").fetchall()[0][0]
                counts["pairs_at_threshold"] = con.execute(
                    "SELECT count(*) FROM _pairs WHERE match_probability >= ?",
                    [resolved_threshold(cfg.clustering)]).fetchall()[0][0]  # i13: 'auto' not yet computed here
                assign_person_ids(con, "_records")
                guards = chain_guards(con, "_identities", cfg.clustering, cols)
                summary = linkage_summary(con, [ex.source for ex in extracts])
                counts.update(summary["counts"])
                manifest = link_manifest(extracts, cfg, link_type, dedupe, duplicate_free, training, counts, guards,
                                         backend="spark", extra_versions={"pyspark": pyspark_version,
                                                                          "spark_master": resolved_master})
                manifest["blocking"] = blocking_plan
                report = build_report(linker, predictions, con, manifest, summary, report_cfg)
        # Spark is stopped here; the rest is single-node.
        with timer.phase("write outputs"):
            _write_outputs(tmp, con, linker, predictions, cfg)
            shutil.rmtree(staging, ignore_errors=True)
            con.close()
        manifest["timings_seconds"] = {**timer.timings, "total": timer.total}
        report.write(tmp / "report.html")
        write_json(tmp / "manifest.json", manifest)
    manifest["timings_seconds"] = {**timer.timings, "total": timer.total}
    return manifest


def _qa_connection(extracts: list[Extract], types: dict[str, str], pairs_glob: str, clusters_glob: str,
                   records_glob: str) -> duckdb.DuckDBPyConnection:
    """DuckDB over Spark's staged results plus the tokens, holding the tables ``run`` and ``cluster`` expect."""
    from linkage.link.run import load_tokens

    con = duckdb.connect()
    tables = load_tokens(con, extracts, types)
    union = " UNION ALL BY NAME ".join(f"SELECT * FROM {t}" for t in tables)
    run_sql(con, f"CREATE TABLE _identities AS {union}")
    run_sql(con, f"CREATE TABLE _pairs AS SELECT * FROM read_parquet('{pairs_glob}') "
                 "ORDER BY identity_id_l, identity_id_r")
    run_sql(con, f"CREATE TABLE _clusters AS SELECT node_id, cluster_id FROM read_parquet('{clusters_glob}')")
    run_sql(con, f"CREATE TABLE _records AS SELECT record_id, source FROM read_parquet('{records_glob}') "
                 "ORDER BY record_id")
    return con


