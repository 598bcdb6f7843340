"""The link config (``configs/linkage.yaml``): model, training, clustering and output settings as data.

Anything left empty here is generated from the encodings the input manifests declare (see
``linkage.link.model``), so one config serves extracts with different column sets.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, get_args

from pydantic import Field, field_validator

from linkage.config import SCHEMA_MODELS, StrictModel, load_yaml_model
from linkage.contracts.names import COLUMN_PATTERN, is_token_list_column

# A blocking rule is a list of columns that must be equal on both sides, or one SQL condition on l./r.
# A list rule names token columns (all equal); they reach SQL, so they must follow the column grammar of the
# identifier-package contract. A string rule is SQL the linkage unit writes itself, never read from a partner.
TokenColumn = Annotated[str, Field(pattern=COLUMN_PATTERN)]
BlockingRule = list[TokenColumn] | str
#: The fields a comparison can be built for (each only when the extracts carry it).
ComparedField = Literal["given_name", "surname", "dob", "postcode", "sex", "upn", "nhs_number"]


def _rules(*rules: BlockingRule) -> list[BlockingRule]:
    """A typed default list of blocking rules (for ``default_factory``)."""
    return list(rules)


class ComparisonSettings(StrictModel):
    """Which comparisons to build and where their fuzzy levels cut."""

    fields: list[ComparedField] = Field(
        default_factory=lambda: list(get_args(ComparedField)),
        description="fields to compare when the extracts carry them; others are ignored")
    bloom_dice_thresholds: list[float] = Field(
        default_factory=lambda: [0.8, 0.6], description="Dice cut-offs for Bloom-filter name levels, descending")
    term_frequency_adjustments: list[str] = Field(
        default_factory=lambda: ["given_name", "surname", "postcode"],
        description="fields whose exact level is adjusted for how common the token is")
    use_name_parts: bool = Field(True, description="level for a name found among the other side's name parts")
    alias_levels: list[str] = Field(
        default_factory=lambda: ["given_name"],
        description="fields whose nickname level (alias tokens, when encoded) is used")
    deletion_levels: list[str] = Field(
        default_factory=lambda: ["postcode", "dob"],
        description="fields whose deletion-neighbourhood (one edit apart) level is used when encoded; each "
                    "costs a list comparison per pair, the dearest level in training. Names rely on Bloom Dice "
                    "instead: on FEBRL4 the name deletion levels added no F1 and doubled u-estimation time")


class TrainingSettings(StrictModel):
    seed: int = Field(42, description="seed of u sampling (fixed so reruns are identical)")
    u_max_pairs: float = Field(1e6, gt=0, description="random pairs sampled to estimate u")
    u_num_chunks: int = Field(
        1, ge=1, description="slices the u sample is counted in (Splink's default 10). Without early stopping the "
                             "slices only add queries: FEBRL4 u took 3.9 s in one slice vs 5.2 s in ten, same u")
    u_min_count_per_level: int | None = Field(
        None, ge=1, description="stop u sampling early once every level has this many pairs (Splink's default "
                                "100). null: use the whole sample. Early stopping takes u from a probe of ~1% of "
                                "the right-hand records, which on small extracts moved u(sex) by 0.06 between "
                                "backends; the whole sample is reproducible across DuckDB and Spark")
    prior_rules: list[BlockingRule] = Field(
        default_factory=lambda: _rules(["given_name__exact", "surname__exact", "dob__exact"]),
        description="deterministic rules whose matches estimate the prior match probability")
    prior_recall: float = Field(0.7, gt=0, le=1, description="assumed recall of prior_rules")
    em_rules: list[BlockingRule] = Field(
        default_factory=lambda: _rules(["dob__exact"], ["given_name__exact", "surname__exact", "postcode__exact"]),
        description="blocking rules of the EM sessions that estimate m (each fixes the fields it uses). The "
                    "second needs the postcode: on names alone, same-name relatives at other addresses pass as "
                    "matches and EM learns that a different date of birth is common among matches")
    em_max_pairs: float | None = Field(2e6, description="cap on pairs per EM session (deterministic sample)")

    @field_validator("prior_rules", "em_rules")
    @classmethod
    def _no_token_lists(cls, rules: list[BlockingRule]) -> list[BlockingRule]:
        # Splink trains only on plain joins: an exploded (token-list) rule would abort the link mid-training.
        for rule in rules:
            if isinstance(rule, list) and any(is_token_list_column(c) for c in rule):
                raise ValueError("training rules cannot use token-list columns (__del1, __alias, __near_dob, "
                                 "__parts); use them in blocking_rules only")
        return rules
    unobserved_level_m: Literal["neutral", "fixed"] = Field(
        "neutral", description="levels never seen in EM: 'neutral' sets m = u (weight 0); 'fixed' uses "
                               "unobserved_fixed_m. Never Splink's default, which can add ~10 bits of false evidence")
    unobserved_fixed_m: float = Field(1e-3, gt=0, lt=1)
    m_floor: float = Field(1e-3, ge=0, lt=1, description="smallest m after training, so no single "
                                                            "disagreement becomes a veto (~-10 bits at most)")
    m_from_trusted_identifier: str | None = Field(
        None, description="token column (e.g. upn__exact) whose equal values label true matches; m is then "
                          "estimated from those pairs too. Off by default")


class ClusterSettings(StrictModel):
    threshold_match_probability: float | Literal["auto"] = Field(
        "auto", description="record pairs at or above this match probability are linked. 'auto': the threshold "
                            "of highest expected F1, computed from the scored pairs' probabilities (no labels; "
                            "linkage.link.threshold). A number fixes it (try others with `linkage cluster`)")
    prior: Literal["from_scores", "rules"] = Field(
        "from_scores", description="prior match probability: 'from_scores' re-estimates it from the trained "
                                   "model over the scored pairs (maximum likelihood with m and u fixed), starting "
                                   "from the rule-based estimate; 'rules' keeps Splink's rule-based estimate "
                                   "(training.prior_rules / prior_recall), which can be several times off")
    auto_threshold_min: float = Field(0.05, gt=0, lt=1, description="lowest threshold 'auto' may choose")
    auto_threshold_max: float = Field(0.999, gt=0, lt=1, description="highest threshold 'auto' may choose")
    one_to_one_posteriors: bool = Field(
        True, description="between two duplicate-free sources, re-weight each pair for the one-to-one constraint "
                          "(a record's candidates compete; see linkage.link.cluster.one_to_one_posteriors)")
    split_oversized: bool = Field(
        True, description="chain guard for connected components: a cluster above max_cluster_size is re-split "
                          "at rising thresholds (0.9, 0.99, 0.999, 0.9999) until its parts fit; other clusters "
                          "are untouched")
    method: Literal["auto", "connected_components"] = Field(
        "auto", description="auto: one-to-one between sources declaring one person per id, connected "
                            "components for the rest")
    max_cluster_size: int = Field(12, ge=2, description="clusters above this size are flagged as possible chains")
    trusted_identifiers: list[str] = Field(
        default_factory=lambda: ["upn__exact", "nhs_number__exact"],
        description="token columns that should never differ within a person; clusters where they do are flagged")


class DuckDBBackendSettings(StrictModel):
    """One machine: DuckDB in process (the default; fastest up to a few million records)."""

    kind: Literal["duckdb"] = "duckdb"
    threads: int | None = Field(None, ge=1, description="DuckDB threads (default: all cores)")
    memory_limit: str | None = Field(None, description="e.g. '8GB' (default: DuckDB's, 80% of RAM); beyond it "
                                                        "DuckDB spills to disk")
    temp_directory: str | None = Field(
        None, description="parent folder of the private spill folder (default: the system temp folder); the spill "
                          "folder is removed when the link ends")
    score_chunks: int | None = Field(
        None, ge=1, description="score pairs in this many slices of the right-hand records, with progress per slice "
                                "(default 1). At 1M people 4 slices took 228 s instead of 171 s; to bound memory "
                                "use memory_limit")


class SparkBackendSettings(StrictModel):
    """Apache Spark through Splink's Spark backend (pip install 'linkage[spark]', Java 17 or 21)."""

    kind: Literal["spark"] = "spark"
    master: str | None = Field(None, description="master URL, e.g. local[4], spark://host:7077, yarn (default: "
                                                 "$LINKAGE_SPARK_MASTER, else local[*])")
    driver_memory: str = Field(
        "6g", pattern=r"^[0-9]+[kmgtKMGT]?$",
        description="driver heap (local mode: the whole job's). At most ~40% of RAM on one machine: the Python "
                    "side needs the rest after Spark (a 14g heap on 24 GB was OOM-killed at 1M people)")
    shuffle_partitions: int | None = Field(
        None, ge=1, description="spark.sql.shuffle.partitions (default: 2 x cores in local mode, Spark's own on a "
                                "cluster; there use 2-3 x the executor cores). Spark's 200 made small jobs 10x slower")
    checkpoint_dir: str | None = Field(
        None, description="folder every executor can reach for Splink's intermediate tables and checkpoints "
                          "(default: a private temporary folder, removed afterwards; on a cluster e.g. hdfs:///tmp/x)")
    lineage: Literal["parquet", "persist", "delta_lake_table", "checkpoint"] = Field(
        "parquet", description="how Splink breaks lineage between steps (Splink's break_lineage_method). 'parquet' "
                               "writes each intermediate table under checkpoint_dir; 'persist' caches in memory")
    score_chunks: int | None = Field(
        None, ge=1, description="score pairs in this many slices of the right-hand records, each written as it "
                                "finishes, with progress per slice (default 1)")
    release_jvm: bool = Field(
        True, description="end the local JVM once Spark's phases are done, so its heap is returned before the "
                          "single-node steps (crosswalk, report) run; off keeps it for a later job in the process")
    conf: dict[str, str] = Field(
        default_factory=dict, description="further Spark settings (spark.* keys); they override the above")


BackendSettings = Annotated[DuckDBBackendSettings | SparkBackendSettings, Field(discriminator="kind")]


class LinkConfig(StrictModel):
    """Everything ``linkage link`` needs beyond the encoded extracts."""

    comparisons: ComparisonSettings = Field(default_factory=ComparisonSettings)
    blocking_rules: list[BlockingRule] | None = Field(
        None, description="prediction blocking rules; null = generated from the encodings present")
    blocking_budget_pairs_per_identity: float | None = Field(
        4.0, gt=0, description="skip an equality rule whose estimated pairs exceed this many per identity row "
                               "(n(n-1)/2 per shared key value, counted before scoring). null: run every rule. "
                               "At 1M people the full-name rule alone would add 177 per row")
    blocking_budget_min_pairs: float = Field(
        2e6, ge=0, description="a rule within this many estimated pairs always runs, whatever the per-row budget: "
                               "on small files (FEBRL: 10,000 records) single-field rules cost seconds and find "
                               "pairs with errors in every other field")
    training: TrainingSettings = Field(default_factory=TrainingSettings)
    clustering: ClusterSettings = Field(default_factory=ClusterSettings)
    pairs_min_match_probability: float = Field(
        0.01, ge=0, lt=1, description="scored pairs below this are not kept in pairs.parquet")
    dedupe_sources: list[str] = Field(
        default_factory=list, description="deduplicate these sources even if their manifest declares one "
                                          "person per id (a single input is always deduplicated)")
    backend: BackendSettings = Field(
        default_factory=DuckDBBackendSettings,
        description="where the link runs: {kind: duckdb, ...} or {kind: spark, ...}; `linkage link --backend` and "
                    "the --spark-* flags override it")
    # Older names of the DuckDB backend's settings, still read when the backend section leaves them unset.
    score_chunks: int = Field(1, ge=1, description="older name of backend.score_chunks (also read by Spark)")
    duckdb_threads: int | None = Field(None, ge=1, description="older name of backend.threads")
    duckdb_memory_limit: str | None = Field(None, description="older name of backend.memory_limit")
    duckdb_temp_directory: str | None = Field(None, description="older name of backend.temp_directory")
    waterfall_samples: int = Field(8, ge=0, le=50, description="sample pairs shown in the report's waterfall")


SCHEMA_MODELS["link-config"] = LinkConfig


def load_link_config(path: str | Path | None = None) -> LinkConfig:
    """Load a link config; ``None`` means the shipped ``configs/linkage.yaml`` (or built-in defaults)."""
    if path is None:
        from linkage.resources import default_link_config

        shipped = default_link_config()
        return load_yaml_model(shipped, LinkConfig) if shipped.is_file() else LinkConfig()
    return load_yaml_model(path, LinkConfig)
