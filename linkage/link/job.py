"""``link_extracts``: the one link job, whatever engine runs it.

The job owns the phases (check, load, plan blocking, train, score, export, cluster, finish), their
counts and progress, the manifest and the report. The heavy steps run on a backend
(``linkage.link.backends``: DuckDB or Spark) behind one protocol; every backend hands over the pairs it
scored, and everything after that (the labels-free operating point, clustering, person ids, chain guards,
summary, report, sorted output files) runs once, on DuckDB, over those pairs. So the report reads the
pairs already written, never re-running an engine's job, and two backends cannot drift apart after
scoring: the same scored pairs give the same threshold and partition.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import platform
import shutil
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import splink
from splink import Linker, SettingsCreator
from splink.internals.duckdb.database_api import DuckDBAPI

import linkage
from linkage.audit.gate import check_release_audits
from linkage.config import BloomSettings
from linkage.errors import LinkageConfigError, LinkageInputError
from linkage.io import PhaseTimer, atomic_output_dir, check_output_dir, progress, write_json
from linkage.link.backends import BACKENDS, LinkPlan, Progress, open_backend
from linkage.link.checks import Extract, check_extracts
from linkage.link.cluster import chain_guards, cluster_into_persons, run_sql
from linkage.link.config import (
    BackendSettings,
    DuckDBBackendSettings,
    LinkConfig,
    SparkBackendSettings,
    load_link_config,
)
from linkage.link.levels import bind_bloom_sizes
from linkage.link.model import build_settings, plan_blocking_on_files
from linkage.link.report import build_report, linkage_summary
from linkage.link.sql import Dialect, string
from linkage.link.tables import duckdb_session
from linkage.link.threshold import choose_operating_point

PHASES = ("check extracts", "start backend", "load tokens", "plan blocking", "train model", "score pairs",
          "export results", "cluster into persons", "persons and guards", "write outputs", "report", "dashboards")

# --- what the job decides before any engine work (shared by every backend) -------------------------------


def column_types(extracts: list[Extract]) -> dict[str, str]:
    """Every encoding column of the inputs and its kind (token, token_list, bloom), sorted by name."""
    types: dict[str, str] = {}
    for ex in extracts:
        for col, spec in ex.columns.items():
            types.setdefault(col, spec.get("type", "token"))
    return dict(sorted(types.items()))


def bloom_bytes(extracts: list[Extract], types: dict[str, str]) -> dict[str, int]:
    """Stored bytes per Bloom filter, from each manifest's Bloom settings after hardening (XOR-folding
    halves the length, balancing doubles it), checked against the width the token file really holds.

    A disagreement is refused naming file and column: on Spark a wrong length would silently compare
    the wrong words (the bug this replaces assumed 64 bytes for every layout).
    """
    out: dict[str, int] = {}
    for ex in extracts:
        declared = ex.manifest["encodings"].get("bloom")
        bloom_cols = [c for c in ex.columns if types.get(c) == "bloom"]
        if not bloom_cols:
            continue
        if not declared:
            raise LinkageInputError("manifest declares Bloom columns but no Bloom settings", file=str(ex.path),
                                    field="encodings.bloom")
        try:
            settings = BloomSettings.model_validate({k: v for k, v in declared.items()
                                                     if k in BloomSettings.model_fields})
        except Exception:
            raise LinkageInputError("manifest's Bloom settings do not validate", file=str(ex.path),
                                    field="encodings.bloom") from None
        n_bytes = settings.output_bits() // 8
        schema = pq.read_schema(ex.tokens_path)
        for col in bloom_cols:
            kind = schema.field(col).type
            width = kind.byte_width if pa.types.is_fixed_size_binary(kind) else None
            if width != n_bytes:
                raise LinkageInputError(f"Bloom column holds {width or 'variable-length'} bytes per filter but the "
                                        f"manifest declares {n_bytes}", file=str(ex.tokens_path), field=col)
            if out.setdefault(col, n_bytes) != n_bytes:
                raise LinkageInputError(f"Bloom filters of {n_bytes} bytes cannot be compared with "
                                        f"{out[col]}-byte ones", file=str(ex.path), field=col)
    return out


def plan_link(extracts: list[Extract], config: LinkConfig) -> tuple[str, list[str], list[str]]:
    """Splink link type, sources to deduplicate, and sources promised duplicate-free."""
    sources = [ex.source for ex in extracts]
    unknown = set(config.dedupe_sources) - set(sources)
    if unknown:
        raise LinkageConfigError(f"dedupe_sources names a source that is not an input: {sorted(unknown)[0]}")
    if len(extracts) == 1:
        return "dedupe_only", sources, []
    dedupe = [ex.source for ex in extracts if not ex.one_person_per_id or ex.source in config.dedupe_sources]
    duplicate_free = [s for s in sources if s not in dedupe]
    return ("link_and_dedupe" if dedupe else "link_only"), dedupe, duplicate_free


def make_plan(extracts: list[Extract], config: LinkConfig) -> LinkPlan:
    types = column_types(extracts)
    link_type, dedupe, duplicate_free = plan_link(extracts, config)
    return LinkPlan(extracts, types, bloom_bytes(extracts, types), link_type, dedupe, duplicate_free)


def pair_filter(link_type: str, dedupe: list[str], dialect: Dialect = "duckdb") -> str:
    """SQL appended to every blocking rule: no pair within one record, no within-source pair unless deduplicated."""
    if link_type == "link_only":
        return ""
    sql = " AND l.record_id <> r.record_id"  # identity rows of one record are the same person by definition
    if link_type == "link_and_dedupe":
        allowed = ", ".join(string(s, dialect) for s in dedupe)
        sql += f" AND (l.source <> r.source OR l.source IN ({allowed}))"
    return sql


def model_settings(plan: LinkPlan, config: LinkConfig, rules: list[Any], dialect: Dialect) -> SettingsCreator:
    """The Splink settings for one dialect, with every Bloom level sized from the manifests."""
    settings = build_settings(plan.columns, config, plan.link_type, pair_filter(plan.link_type, plan.dedupe, dialect),
                              rules)
    bind_bloom_sizes(settings.comparisons, plan.bloom_bytes, bloom_layout(plan.extracts))
    return settings


def bloom_layout(extracts: list[Extract]) -> dict[str, Any] | None:
    """The validated Bloom settings the extracts declare (the checks made them agree), for the balanced levels'
    Dice spread; None without Bloom columns."""
    for ex in extracts:
        declared = ex.manifest["encodings"].get("bloom")
        if declared and any(spec.get("type") == "bloom" for spec in ex.columns.values()):
            # bloom_bytes validated this block already; validate again rather than trust a raw manifest value
            return BloomSettings.model_validate({k: v for k, v in declared.items()
                                                 if k in BloomSettings.model_fields}).model_dump()
    return None


def resolve_backend(config: LinkConfig, backend: str | None = None, *, spark_master: str | None = None,
                    spark_conf: Mapping[str, str] | Sequence[str] | None = None) -> BackendSettings:
    """The config's backend section with the caller's (CLI) choices laid over it; flags only override."""
    settings = config.backend
    if backend is not None and backend != settings.kind:
        if backend == "duckdb":
            settings = DuckDBBackendSettings()
        elif backend == "spark":
            settings = SparkBackendSettings()
        else:
            raise LinkageConfigError(f"backend '{backend}' is not supported ({' or '.join(BACKENDS)})")
    if isinstance(settings, SparkBackendSettings) and (spark_master or spark_conf):
        from linkage.link.backends.spark import parse_spark_conf

        settings = settings.model_copy(update={
            "master": spark_master or settings.master,
            "conf": {**settings.conf, **parse_spark_conf(spark_conf)}})
    return settings


def link_manifest(plan: LinkPlan, cfg: LinkConfig, training: dict[str, Any], counts: dict[str, Any],
                  guards: dict[str, Any], *, backend: str, extra_versions: dict[str, str] | None = None,
                  audit_overrides: dict[Path, str] | None = None) -> dict[str, Any]:
    """The link folder's manifest.json: inputs by checksum and KCV, config, training, counts, guards, and the
    release-gate override used for any input linked without a passing audit."""
    extracts = plan.extracts
    return {
        "schema_version": 1,
        "kind": "link",
        "tool_version": linkage.__version__,
        "backend": backend,
        "versions": {"splink": splink.__version__, "duckdb": duckdb.__version__,
                     "python": platform.python_version(), **(extra_versions or {})},
        "project_id": extracts[0].manifest["project_id"],
        "kcv": extracts[0].manifest["kcv"],
        "inputs": [{"path": str(ex.path), "source": ex.source, "files": ex.manifest["files"],
                    "extract_id": ex.manifest.get("extract_id"),
                    "release_audit": (ex.manifest.get("release_audit") or {}).get("status", "none recorded"),
                    "release_audit_override": (audit_overrides or {}).get(ex.path),
                    "one_person_per_id": ex.one_person_per_id, "counts": ex.manifest["counts"]}
                   for ex in extracts],
        "link_type": plan.link_type, "deduplicated_sources": plan.dedupe, "one_to_one_sources": plan.duplicate_free,
        "bloom_bytes": plan.bloom_bytes,
        "config": cfg.model_dump(mode="json"),
        "training": training,
        "counts": counts,
        "chain_guards": guards,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def duckdb_report_linker(con: duckdb.DuckDBPyConnection, model: dict[str, Any], plan: LinkPlan, config: LinkConfig,
                         rules: list[Any], tables: list[str]) -> tuple[Linker, DuckDBAPI]:
    """A DuckDB linker carrying the trained parameters (``model``, Splink's model JSON) of a linker that ran
    elsewhere (Spark), for the report.

    The report's charts and waterfall render level SQL in DuckDB's dialect over the finishing database,
    so the settings are rebuilt for DuckDB and only the numbers are copied across.
    """
    settings = model_settings(plan, config, rules, "duckdb").create_settings_dict("duckdb")
    for c_dst, c_src in zip(settings["comparisons"], model["comparisons"], strict=True):
        for l_dst, l_src in zip(c_dst["comparison_levels"], c_src["comparison_levels"], strict=True):
            for key in ("m_probability", "u_probability", "tf_adjustment_column", "tf_adjustment_weight"):
                if key in l_src:
                    l_dst[key] = l_src[key]
    settings["probability_two_random_records_match"] = model["probability_two_random_records_match"]
    db_api = DuckDBAPI(connection=con)
    inputs = [db_api.register(t, table_name=f"__report_input_{i}", dataset_display_name=plan.aliases[ex.source])
              for i, (ex, t) in enumerate(zip(plan.extracts, tables, strict=True))]
    return Linker(inputs, settings, log_level=logging.ERROR), db_api


def set_model_prior(linker: Linker, prior: float) -> None:
    """Carry the operating point's prior into a linker (its charts and waterfall then use it)."""
    linker._settings_obj._probability_two_random_records_match = prior


def operating_point_and_clusters(con: duckdb.DuckDBPyConnection, plan: LinkPlan, config: LinkConfig,
                                 rule_prior: float, identities: dict[str, int],
                                 rules: list[Any] | None = None) -> tuple[dict[str, Any], int, float]:
    """The labels-free operating point, the clustering and the person ids, one step for every backend.

    Reads ``_scored`` (every pair the backend scored down to the scoring floor, under the rule-based prior),
    ``_records`` and ``_identities`` of the finishing database: re-estimates the prior from the scores and
    re-prices the pairs (``linkage.link.threshold``), keeps ``_pairs`` at or above
    ``pairs_min_match_probability``, builds the record graph, re-weights one-to-one candidates, chooses the
    threshold of highest expected F1 on the clustered edges and clusters into ``_clusters`` (chain guard
    included). Single-node DuckDB over files any backend wrote, so the same scored pairs give the same
    threshold and partition whatever engine scored them. Returns the operating point, the number of record
    edges and the threshold clustered at.
    """
    # the blocking rules and the columns' encodings let the prior count the matches no rule produced
    column_specs = {name: spec for ex in plan.extracts for name, spec in ex.columns.items()}
    op = choose_operating_point(con, "_scored", rule_prior, config, identities, plan.link_type, plan.dedupe,
                                rules=rules, column_specs=column_specs)
    run_sql(con, "CREATE OR REPLACE TABLE _pairs AS SELECT * FROM _scored WHERE match_probability >= ? "
                 "ORDER BY identity_id_l, identity_id_r", [float(config.pairs_min_match_probability)])
    run_sql(con, "DROP TABLE _scored")
    # with an 'auto' threshold, the clustering chooses it on the clustered edges and records it in op
    threshold = cluster_into_persons(con, config.clustering, plan.aliases, plan.duplicate_free, op["threshold"], op)
    n_edges = int(run_sql(con, "SELECT count(*) FROM _edges")[0][0])
    return op, n_edges, threshold


# --- the job ---------------------------------------------------------------------------------------------

def link_extracts(encoded_dirs: list[str | Path], out_dir: str | Path, config: LinkConfig | str | Path | None = None,
                  backend: str | None = None, *, quiet: bool = False, spark_master: str | None = None,
                  spark_conf: Mapping[str, str] | Sequence[str] | None = None,
                  allow_unaudited: bool = False) -> dict[str, Any]:
    """Link encoded extracts into persons; write the link folder atomically and return its manifest.

    The release gate lives here, so every caller (``linkage link``, ``linkage.link_extracts``, the demo, a
    Spark driver script) gets it: an extract whose manifest holds no passing release audit is refused with
    :class:`linkage.audit.gate.UnauditedExtractError` unless ``allow_unaudited`` (each one let through is
    named on stderr).

    ``backend`` (``"duckdb"`` or ``"spark"``), ``spark_master`` and ``spark_conf`` override the config's
    ``backend`` section (the CLI's flags); left out, the config decides (default DuckDB).
    """
    cfg = config if isinstance(config, LinkConfig) else load_link_config(config)
    settings = resolve_backend(cfg, backend, spark_master=spark_master, spark_conf=spark_conf)
    if settings.kind == "spark":
        from linkage.link.backends.spark import check_spark_available

        check_spark_available()  # one line, before any work
    check_output_dir(out_dir)
    logging.getLogger("splink").setLevel(logging.WARNING)
    logging.getLogger("py4j").setLevel(logging.WARNING)
    timer = PhaseTimer(echo=False)

    @contextlib.contextmanager
    def phase(name: str) -> Iterator[None]:
        """One phase: a progress line (step k of n, elapsed) unless quiet, and its time in the manifest."""
        if not quiet:
            print(f"[{timer.total:7.1f}s] {PHASES.index(name) + 1}/{len(PHASES)} {name} …", file=sys.stderr,
                  flush=True)
        with timer.phase(name):
            yield

    with phase("check extracts"):
        extracts = check_extracts(encoded_dirs)
        audit_overrides = check_release_audits([(ex.path, ex.manifest) for ex in extracts],
                                               allow_unaudited=allow_unaudited)
        plan = make_plan(extracts, cfg)
    counts: dict[str, Any] = {}
    with duckdb_session(cfg) as con, atomic_output_dir(out_dir) as tmp, contextlib.ExitStack() as running:
        staging = tmp / ".staging"
        staging.mkdir()
        with phase("start backend"):
            engine = running.enter_context(open_backend(settings, cfg))
            engine.attach(con)
        with phase("load tokens"):
            counts.update(engine.load_tokens(plan))
        with phase("plan blocking"):
            rules, blocking_plan = plan_blocking_on_files([ex.tokens_path for ex in plan.extracts], plan.columns, cfg)
        settings_creator = model_settings(plan, cfg, rules, engine.name)  # type: ignore[arg-type]
        # Splink's own warnings (untrained levels, EM sampling) are handled and reported by the job.
        linker = Linker(engine.register(plan), settings_creator, log_level=logging.ERROR)
        with phase("train model"):
            training = engine.train(linker, plan, cfg)
        with phase("score pairs"):
            n_chunks = engine.predict_chunks(cfg)
            counts["score_chunks"] = n_chunks
            with progress(total=n_chunks, desc="score pairs", unit="slices", quiet=quiet) as bar:
                scored = engine.predict(linker, plan, cfg, staging, Progress(advance=bar.update, quiet=quiet))
        model = linker.misc.save_model_to_json()
        rule_prior = float(model["probability_two_random_records_match"])
        versions = getattr(engine, "versions", {})
        running.close()
        # The engine is released here (Spark stopped, its JVM ended): what follows is single-node, on DuckDB,
        # and the same code for every backend.
        with phase("export results"):
            engine.export(plan, scored, con)
        with phase("cluster into persons"):
            operating, counts["record_edges"], threshold = operating_point_and_clusters(
                con, plan, cfg, rule_prior, counts["identities"], rules)
            model["probability_two_random_records_match"] = operating["prior"]
            if engine.name == "duckdb":
                set_model_prior(linker, operating["prior"])  # the report's charts use this linker
        with phase("persons and guards"):
            counts["pairs_scored"] = int(run_sql(con, "SELECT count(*) FROM _pairs")[0][0])
            counts["pairs_at_threshold"] = int(run_sql(con, "SELECT count(*) FROM _pairs WHERE match_probability >= ?",
                                                       [threshold])[0][0])
            guards = chain_guards(con, "_identities", cfg.clustering, plan.columns)
            summary = linkage_summary(con, plan.sources)
            counts.update(summary["counts"])
        with phase("write outputs"):
            write_outputs(tmp, con, model)
            shutil.rmtree(staging, ignore_errors=True)
        manifest = link_manifest(plan, cfg, training, counts, guards, backend=engine.name, extra_versions=versions,
                                 audit_overrides=audit_overrides)
        manifest["blocking"] = blocking_plan
        manifest["operating_point"] = operating
        manifest["timings_seconds"] = dict(timer.timings)  # phases so far, shown in the report
        with phase("report"):
            # The histogram and waterfall read the written pairs in DuckDB; no engine job runs for the report.
            if engine.name == "duckdb":
                report_linker, report_api = linker, engine.db_api
            else:
                tables = [f"tok_{i}" for i in range(len(plan.extracts))]  # made by load_tokens_duckdb
                report_linker, report_api = duckdb_report_linker(con, model, plan, cfg, rules, tables)
            pairs_frame = report_api.register("_pairs", table_name="__splink__df_predict")  # the name Splink expects
            build_report(report_linker, pairs_frame, con, manifest, summary, cfg).write(tmp / "report.html")
        with phase("dashboards"):
            # Splink's comparison viewer and cluster studio, agreement levels only (no token values)
            from linkage.link.dashboards import worst_flagged, write_dashboards

            # Splink's dashboards expect its own prediction columns (source_dataset_l/_r), renamed in _pairs
            run_sql(con, "CREATE OR REPLACE VIEW _pairs_splink AS SELECT * EXCLUDE (source_l, source_r), "
                         "source_l AS source_dataset_l, source_r AS source_dataset_r FROM _pairs")
            splink_pairs = report_api.register("_pairs_splink", table_name="__link_dashboard_predict")
            write_dashboards(report_linker, splink_pairs, con, tmp, worst_flagged(con, threshold))
        manifest["timings_seconds"] = {**timer.timings, "total": timer.total}
        write_json(tmp / "manifest.json", manifest)
    return manifest


def write_outputs(tmp: Path, con: duckdb.DuckDBPyConnection, model: dict[str, Any]) -> None:
    """crosswalk.parquet and pairs.parquet, sorted, and model.json, into the output folder being built."""
    run_sql(con, f"COPY (SELECT person_id, source, record_id FROM _crosswalk ORDER BY person_id, source, "
                 f"record_id) TO {string(str(tmp / 'crosswalk.parquet'))} (FORMAT parquet)")
    run_sql(con, f"COPY (SELECT * FROM _pairs ORDER BY identity_id_l, identity_id_r) "
                 f"TO {string(str(tmp / 'pairs.parquet'))} (FORMAT parquet)")
    write_json(tmp / "model.json", model)

