"""The link config (``configs/linkage.yaml``): model, training, clustering and output settings as data.

Anything left empty here is generated from the encodings the input manifests declare (see
``linkage.link.model``), so one config serves extracts with different column sets.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from linkage.config import SCHEMA_MODELS, StrictModel, load_yaml_model

# A blocking rule is a list of columns that must be equal on both sides, or one SQL condition on l./r.
BlockingRule = list[str] | str


class ComparisonSettings(StrictModel):
    """Which comparisons to build and where their fuzzy levels cut."""

    fields: list[Literal["given_name", "surname", "dob", "postcode", "sex", "upn", "nhs_number"]] = Field(
        default_factory=lambda: ["given_name", "surname", "dob", "postcode", "sex", "upn", "nhs_number"],
        description="fields to compare when the extracts carry them; others are ignored")
    bloom_dice_thresholds: list[float] = Field(
        default_factory=lambda: [0.8, 0.6], description="Dice cut-offs for Bloom-filter name levels, descending")
    term_frequency_adjustments: list[str] = Field(
        default_factory=lambda: ["given_name", "surname", "postcode"],
        description="fields whose exact level is adjusted for how common the token is")
    use_name_parts: bool = Field(True, description="level for a name found among the other side's name parts")
    deletion_levels: list[str] = Field(
        default_factory=lambda: ["postcode"],
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
        default_factory=lambda: [["given_name__exact", "surname__exact", "dob__exact"]],
        description="deterministic rules whose matches estimate the prior match probability")
    prior_recall: float = Field(0.7, gt=0, le=1, description="assumed recall of prior_rules")
    em_rules: list[BlockingRule] = Field(
        default_factory=lambda: [["dob__exact"], ["given_name__exact", "surname__exact", "postcode__exact"]],
        description="blocking rules of the EM sessions that estimate m (each fixes the fields it uses). The "
                    "second needs the postcode: on names alone, same-name relatives at other addresses pass as "
                    "matches and EM learns that a different date of birth is common among matches")
    em_max_pairs: float | None = Field(2e6, description="cap on pairs per EM session (deterministic sample)")
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
    threshold_match_probability: float = Field(
        0.99, gt=0, lt=1, description="record pairs at or above this are linked. The prior falls as the population "
                                      "grows, so large multi-agency links need a high threshold; FEBRL-sized "
                                      "benchmarks do best near 0.5")
    method: Literal["auto", "connected_components"] = Field(
        "auto", description="auto: one-to-one between sources declaring one person per id, connected "
                            "components for the rest")
    max_cluster_size: int = Field(12, ge=2, description="clusters above this size are flagged as possible chains")
    trusted_identifiers: list[str] = Field(
        default_factory=lambda: ["upn__exact", "nhs_number__exact"],
        description="token columns that should never differ within a person; clusters where they do are flagged")


class LinkConfig(StrictModel):
    """Everything ``linkage link`` needs beyond the encoded extracts."""

    comparisons: ComparisonSettings = Field(default_factory=ComparisonSettings)
    blocking_rules: list[BlockingRule] | None = Field(
        None, description="prediction blocking rules; null = generated from the encodings present")
    blocking_budget_pairs_per_identity: float | None = Field(
        4.0, gt=0, description="skip an equality rule whose estimated pairs exceed this many per identity row "
                               "(n(n-1)/2 per shared key value, counted before scoring). null: run every rule. "
                               "At 1M people the full-name rule alone would add 177 per row")
    training: TrainingSettings = Field(default_factory=TrainingSettings)
    clustering: ClusterSettings = Field(default_factory=ClusterSettings)
    pairs_min_match_probability: float = Field(
        0.01, ge=0, lt=1, description="scored pairs below this are not kept in pairs.parquet")
    dedupe_sources: list[str] = Field(
        default_factory=list, description="deduplicate these sources even if their manifest declares one "
                                          "person per id (a single input is always deduplicated)")
    score_chunks: int = Field(
        1, ge=1, description="DuckDB: score pairs in this many slices of the right-hand records, with progress "
                             "per slice. At 1M people 4 slices took 228 s instead of 171 s and peaked at 15.7 "
                             "instead of 17.1 GB; to bound memory, duckdb_memory_limit works better (8 GB: "
                             "6 min 6 s in all)")
    duckdb_threads: int | None = Field(None, ge=1, description="DuckDB threads (default: all cores)")
    duckdb_memory_limit: str | None = Field(None, description="e.g. '8GB' (default: DuckDB's, 80% of RAM); "
                                                              "beyond it DuckDB spills to disk")
    duckdb_temp_directory: str | None = Field(
        None, description="parent folder of the private spill folder (default: the system temp folder); the "
                          "spill folder is removed when the link ends")
    waterfall_samples: int = Field(8, ge=0, le=50, description="sample pairs shown in the report's waterfall")


SCHEMA_MODELS["link-config"] = LinkConfig


def load_link_config(path: str | Path | None = None) -> LinkConfig:
    """Load a link config; ``None`` means the shipped ``configs/linkage.yaml`` (or built-in defaults)."""
    if path is None:
        from linkage.resources import default_link_config

        shipped = default_link_config()
        return load_yaml_model(shipped, LinkConfig) if shipped.is_file() else LinkConfig()
    return load_yaml_model(path, LinkConfig)
