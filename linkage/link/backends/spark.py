"""Spark backend: load, train, score and cluster on Apache Spark through Splink's Spark backend.

Tokens become the same 64 bits as on DuckDB (signed ``BIGINT``); each Bloom filter becomes 64-bit words
(``linkage.link.levels.bloom_word_columns``, as many as the manifests' declared length needs) plus its
popcount, so Dice is a sum of built-in ``bit_count`` calls: no Python UDF, executors need no Python
packages. Loading uses the DataFrame API (no SQL text); the model's SQL comes from the dialect-aware
levels. The scored pairs are written as Parquet; the job's single-node steps (operating point,
clustering, outputs, report) read them on DuckDB after Spark is released, so no Spark job runs after
scoring.

Nothing here is imported on the DuckDB path: pyspark and Java are needed only for ``kind: spark``.
"""

from __future__ import annotations

import contextlib
import logging
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
from linkage.link.backends.base import LinkPlan, Progress, SplinkBackend
from linkage.link.cluster import run_sql
from linkage.link.config import LinkConfig, SparkBackendSettings
from linkage.link.levels import BLOOM_POPCOUNT_SUFFIX, bloom_word_columns
from linkage.link.sql import ident
from linkage.link.tables import load_tokens_duckdb, read_parquet_sql

log = logging.getLogger(__name__)

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


def local_cores(master: str) -> int:
    """Cores of a local master (``local``, ``local[4]``, ``local[*]``); 0 for a cluster master."""
    if master == "local":
        return 1
    m = re.fullmatch(r"local\[(\d+|\*)(?:,\s*\d+)?\]", master)
    if m is None:
        return 0
    return (os.cpu_count() or 2) if m.group(1) == "*" else int(m.group(1))


def parse_spark_conf(conf: Mapping[str, str] | Sequence[str] | None) -> dict[str, str]:
    """Spark settings as a dict, from a mapping or from ``KEY=VALUE`` strings (the CLI's --spark-conf)."""
    if conf is None:
        return {}
    if isinstance(conf, Mapping):
        pairs = [(str(k), str(v)) for k, v in conf.items()]
    else:
        pairs = []
        for item in conf:
            key, sep, value = str(item).partition("=")
            if not sep:
                raise LinkageConfigError(f"--spark-conf expects KEY=VALUE with a spark.* key, got '{key.strip()}'")
            pairs.append((key, value))
    out = {}
    for key, value in pairs:
        if not key.strip().startswith("spark."):
            raise LinkageConfigError(f"--spark-conf expects KEY=VALUE with a spark.* key, got '{key.strip()}'")
        out[key.strip()] = value.strip()
    return out


def session_settings(settings: SparkBackendSettings, master: str, scratch: Path) -> dict[str, str]:
    """Spark configuration for one job: small-box defaults in local mode, then ``settings``, then ``conf``."""
    conf = {
        "spark.sql.warehouse.dir": str(scratch / "warehouse"),
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.adaptive.enabled": "true",
        # The comparison-vector CASE (every level of every field, a bit_count per Bloom word) is too big
        # for one whole-stage Java method: Janino fails at 64 KB, logs a long trace and Spark falls back.
        "spark.sql.codegen.wholeStage": "false",
    }
    cores = local_cores(master)
    if cores:
        partitions = settings.shuffle_partitions or max(2, 2 * cores)
        conf.update({
            "spark.driver.bindAddress": "127.0.0.1",
            "spark.driver.host": "127.0.0.1",
            "spark.sql.shuffle.partitions": str(partitions),
            "spark.default.parallelism": str(partitions),
            "spark.driver.memory": settings.driver_memory,
            # Local mode runs executors inside the driver: results collected to it stay small here.
            "spark.driver.maxResultSize": "1g",
        })
    else:
        conf["spark.driver.memory"] = settings.driver_memory
        if settings.shuffle_partitions:
            conf["spark.sql.shuffle.partitions"] = str(settings.shuffle_partitions)
    conf.update(parse_spark_conf(settings.conf))
    return conf


def release_jvm() -> None:
    """End the JVM pyspark started for this process, so its heap goes back to the machine.

    ``SparkSession.stop`` keeps the JVM (and its resident heap, 16 GB at 1M people) for a later session.
    The gateway JVM exits when its stdin closes; pyspark starts a new one for the next session.
    """
    from pyspark import SparkContext

    gateway = SparkContext._gateway
    if gateway is None:
        return
    proc = getattr(gateway, "proc", None)
    with contextlib.suppress(Exception):
        gateway.shutdown()
    if proc is not None:
        with contextlib.suppress(Exception):
            proc.stdin.close()
            proc.wait(timeout=60)
    SparkContext._gateway = None
    SparkContext._jvm = None


@contextlib.contextmanager
def spark_session(settings: SparkBackendSettings | None = None, app_name: str = "linkage-link") -> Iterator[Any]:
    """A Spark session for one job, stopped afterwards, with its scratch folders removed.

    Inside a process that already has a session (a notebook, ``spark-submit``) that session is used as
    configured and left running; Splink's jar and a shared checkpoint folder are then the caller's.
    """
    settings = settings or SparkBackendSettings()
    check_spark_available()
    # pyspark warns that pandas 3 is not yet fully supported; this job converts nothing large to pandas.
    warnings.filterwarnings("ignore", message=".*PySpark does not yet fully support pandas.*")
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        if active.sparkContext.getCheckpointDir() is None:
            active.sparkContext.setCheckpointDir(settings.checkpoint_dir or
                                                 tempfile.mkdtemp(prefix="linkage-spark-checkpoints-"))
        yield active
        return
    master = settings.master or os.environ.get("LINKAGE_SPARK_MASTER") or DEFAULT_LOCAL_MASTER
    scratch = Path(tempfile.mkdtemp(prefix="linkage-spark-"))
    from splink.backends.spark import similarity_jar_location

    # Splink registers its string-similarity functions at start-up from a jar in its wheel; it must be on
    # the classpath before the JVM starts (the model uses none of them).
    conf = {"spark.jars": similarity_jar_location(), **session_settings(settings, master, scratch)}
    # Spark's start-up chatter goes to the terminal before setLogLevel can act; a log4j2 file keeps the
    # driver at ERROR from the first line.
    log_config = scratch / "log4j2.properties"
    log_config.write_text("rootLogger.level = error\nrootLogger.appenderRef.stderr.ref = console\n"
                          "appender.console.type = Console\nappender.console.name = console\n"
                          "appender.console.target = SYSTEM_ERR\nappender.console.layout.type = PatternLayout\n"
                          "appender.console.layout.pattern = spark %p %c{1}: %m%n\n")
    conf.setdefault("spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile=file:{log_config}")
    checkpoint_dir = conf.pop("spark.checkpoint.dir", None) or settings.checkpoint_dir or str(scratch / "checkpoints")
    if local_cores(master):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # else a WARN about the hostname's address
    builder = SparkSession.builder.master(master).appName(app_name)
    for key, value in conf.items():
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
        if settings.release_jvm and local_cores(master):
            release_jvm()
        shutil.rmtree(scratch, ignore_errors=True)


# --- loading -----------------------------------------------------------------------------------------------

def _token(c: Any) -> Any:
    from pyspark.sql import functions as F

    # Same 64 bits as DuckDB (first 16 hex digits), read as a signed BIGINT: to_base -10 makes conv()
    # return the two's-complement value, so no digit string overflows the cast.
    return F.conv(F.substring(c, 1, 16), 16, -10).cast("bigint")


def token_frame(spark: Any, extract: Any, types: dict[str, str], bloom_bytes: dict[str, int]) -> Any:
    """One extract as a DataFrame with the union of columns (absent ones NULL), built without SQL text.

    Bloom filters are split once here into 64-bit words plus their popcount (``bloom_bytes`` from the
    manifests), so Dice is a sum of built-in ``bit_count`` calls per pair.
    """
    from pyspark.sql import functions as F

    def col(name: str) -> Any:
        return F.col(ident(name, "spark"))  # quoted: a manifest's column name is never parsed as SQL

    out = [col("record_id").cast("string").alias("record_id"), col("identity_id").cast("string").alias("identity_id"),
           F.lit(extract.source).alias("source"), F.lit(extract.source).alias("source_dataset")]
    for name, kind in types.items():
        present = name in extract.columns
        if kind == "bloom":
            words = bloom_word_columns(name, bloom_bytes[name])
            exprs = [F.conv(F.hex(F.substring(col(name), 8 * i + 1, 8)), 16, -10).cast("bigint") if present
                     else F.lit(None).cast("bigint") for i in range(len(words))]
            out += [e.alias(w) for e, w in zip(exprs, words, strict=True)]
            pc = sum((F.bit_count(e) for e in exprs), F.lit(0)).cast("int") if present else F.lit(None).cast("int")
            out.append(pc.alias(name + BLOOM_POPCOUNT_SUFFIX))
        elif kind == "token_list":
            out.append((F.transform(col(name), _token) if present else F.lit(None).cast("array<bigint>")).alias(name))
        else:
            out.append((_token(col(name)) if present else F.lit(None).cast("bigint")).alias(name))
    return spark.read.parquet(str(extract.tokens_path.resolve())).select(*out)


# --- the backend -------------------------------------------------------------------------------------------

class SparkBackend(SplinkBackend):
    """``LinkBackend`` on Spark: heavy steps on Spark, results staged as Parquet for the single-node steps."""

    name = "spark"

    def __init__(self, settings: SparkBackendSettings, config: LinkConfig) -> None:
        check_spark_available()
        parse_spark_conf(settings.conf)  # a malformed setting fails before any work
        self.settings = settings
        self.score_chunks = settings.score_chunks or config.score_chunks
        self._stack = contextlib.ExitStack()
        self.spark = self._stack.enter_context(spark_session(settings))
        from pyspark import __version__ as pyspark_version
        from splink.backends.spark import SparkAPI

        self.versions = {"pyspark": pyspark_version, "spark_master": self.spark.sparkContext.master}
        partitions = int(self.spark.conf.get("spark.sql.shuffle.partitions"))
        # Splink breaks lineage by writing each intermediate table as Parquet under the checkpoint folder;
        # "persist" piled cached tables up in a 2 GB driver here, so it is only an opt-in.
        self.db_api: Any = SparkAPI(spark_session=self.spark, break_lineage_method=settings.lineage,
                                    num_partitions_on_repartition=partitions)
        self.inputs: list[Any] = []  # the token DataFrames (persisted), one per extract

    def attach(self, con: duckdb.DuckDBPyConnection) -> None:
        """The finishing database is used only by ``export``, after Spark is released."""

    def load_tokens(self, plan: LinkPlan) -> dict[str, dict[str, int]]:
        self.inputs = [token_frame(self.spark, ex, plan.column_types, plan.bloom_bytes).persist()
                       for ex in plan.extracts]
        identities = {ex.source: int(f.count()) for ex, f in zip(plan.extracts, self.inputs, strict=True)}
        union = self.inputs[0]
        for f in self.inputs[1:]:
            union = union.unionByName(f)
        distinct = union.select("record_id", "source").distinct()
        records = {r["source"]: int(r["count"]) for r in distinct.groupBy("source").count().collect()}
        return {"identities": identities, "records": dict(sorted(records.items()))}

    def predict(self, linker: Linker, plan: LinkPlan, config: LinkConfig, out: Path, progress: Progress
                ) -> Path | None:
        """Score in ``score_chunks`` slices of the right-hand records, each appended to out/pairs as Parquet."""
        from pyspark.sql import functions as F

        folder = out / "pairs"
        for i, predictions in enumerate(self.scored_slices(linker, config, progress)):
            df = predictions.as_spark_dataframe()
            keep = [F.col(ident(c, "spark")) for c in df.columns if c not in ("source_dataset_l", "source_dataset_r")]
            if "source_dataset_l" in df.columns:
                sources = [F.col("source_dataset_l").alias("source_l"), F.col("source_dataset_r").alias("source_r")]
            else:  # dedupe_only: one source, Splink adds no source column
                sources = [F.lit(plan.sources[0]).alias("source_l"), F.lit(plan.sources[0]).alias("source_r")]
            df.select(*keep, *sources).write.mode("overwrite" if i == 0 else "append").parquet(str(folder))
            predictions.drop_table_from_database_and_remove_from_cache()
        return folder

    def export(self, plan: LinkPlan, scored: Path | None, con: duckdb.DuckDBPyConnection) -> None:
        """Tokens and Spark's staged pairs as the finishing database's tables (no Spark needed)."""
        if scored is None:
            raise RuntimeError("SparkBackend.export needs the staged pairs")
        load_tokens_duckdb(con, plan.extracts, plan.column_types)
        run_sql(con, f"CREATE OR REPLACE TABLE _scored AS SELECT * FROM {read_parquet_sql(scored)}")

    def close(self) -> None:
        """Stop Spark (and end a local JVM unless ``release_jvm`` is off); staged files stay."""
        self.inputs = []
        self._stack.close()
