"""The backend protocol of the link job, the plan the job and a backend exchange, and the part every
Splink-driven backend shares.

A backend implements ``LinkBackend`` (load tokens, register, train, predict, export, close);
``linkage.link.job`` drives it phase by phase. ``SplinkBackend`` holds what does not depend on the engine
(registering the loaded inputs with Splink, training, slicing the scoring), so an engine module writes
only loading, turning Splink's predictions into scored pairs, export and release.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import duckdb
from splink import Linker

from linkage.link.checks import Extract
from linkage.link.config import LinkConfig
from linkage.link.model import train
from linkage.link.threshold import scoring_floor


@dataclass(frozen=True)
class LinkPlan:
    """What the job decided before any engine work: inputs, column kinds, Bloom lengths, link type."""

    extracts: list[Extract]
    column_types: dict[str, str]  # column -> token | token_list | bloom
    bloom_bytes: dict[str, int]  # Bloom column -> stored bytes per filter (from the manifests)
    link_type: str
    dedupe: list[str]  # sources deduplicated
    duplicate_free: list[str]  # sources promised one person per id

    @property
    def columns(self) -> set[str]:
        return set(self.column_types)

    @property
    def sources(self) -> list[str]:
        return [ex.source for ex in self.extracts]

    @property
    def aliases(self) -> dict[str, str]:
        """Short, SQL-safe names for the sources (s0, s1, ...), used where Splink formats names into SQL."""
        return {ex.source: f"s{i}" for i, ex in enumerate(self.extracts)}


@dataclass
class Progress:
    """Progress callback of a phase: ``advance(n)`` of ``total`` units (the job draws bar and ETA)."""

    advance: Callable[[int], None] = field(default=lambda n: None)
    quiet: bool = True


@runtime_checkable
class LinkBackend(Protocol):
    """One engine's implementation of the heavy steps of ``linkage link``."""

    name: str  # also Splink's SQL dialect
    db_api: Any  # Splink's database API for this engine

    def attach(self, con: duckdb.DuckDBPyConnection) -> None:
        """The job's finishing DuckDB database (DuckDB works in it; other engines export into it)."""

    def load_tokens(self, plan: LinkPlan) -> dict[str, dict[str, int]]:
        """Load every extract's tokens; return counts {"identities": {source: n}, "records": {source: n}}."""

    def register(self, plan: LinkPlan) -> list[Any]:
        """The loaded extracts as Splink input frames (one per extract, in plan order)."""

    def train(self, linker: Linker, plan: LinkPlan, config: LinkConfig) -> dict[str, Any]:
        """Estimate the model's parameters; returns what training did (rules, fixed levels, timings)."""

    def predict_chunks(self, config: LinkConfig) -> int:
        """How many slices scoring runs in (progress units of the score phase)."""

    def predict(self, linker: Linker, plan: LinkPlan, config: LinkConfig, out: Path, progress: Progress
                ) -> Path | None:
        """Score blocked pairs down to ``threshold.scoring_floor`` (under the model's rule-based prior), with
        Splink's columns and the sources as ``source_l`` / ``source_r`` last; stage them as Parquet under out
        and return the path, or return None when they are already the table ``_scored`` of the job's database."""

    def export(self, plan: LinkPlan, scored: Path | None, con: duckdb.DuckDBPyConnection) -> None:
        """After ``close``: make ``_identities``, ``_records`` and ``_scored`` tables of ``con``. The job then
        chooses the operating point and clusters on them (one code path for every backend)."""

    def close(self) -> None:
        """Release the engine (stop Spark, close DuckDB); staged files stay."""


class SplinkBackend:
    """The engine-neutral half of a ``LinkBackend``: what every engine does the same way through Splink.

    A subclass sets ``name`` (Splink's dialect), ``db_api`` (Splink's database API on its engine) and
    ``score_chunks``; its ``load_tokens`` fills ``inputs`` with one Splink-registrable input per extract
    (a table name on DuckDB, a DataFrame on Spark), in plan order. It implements the engine-specific
    methods of the protocol (attach, load_tokens, predict, export, close); ``predict`` takes Splink's
    predictions from ``scored_slices``.
    """

    name: str
    db_api: Any
    score_chunks: int = 1
    inputs: list[Any]

    def register(self, plan: LinkPlan) -> list[Any]:
        """The loaded inputs as Splink frames, named for Splink by short aliases (never a source's own name)."""
        aliases = plan.aliases
        return [self.db_api.register(frame, table_name=f"__link_input_{i}", dataset_display_name=aliases[ex.source])
                for i, (ex, frame) in enumerate(zip(plan.extracts, self.inputs, strict=True))]

    def train(self, linker: Linker, plan: LinkPlan, config: LinkConfig) -> dict[str, Any]:
        return train(linker, plan.columns, config)

    def predict_chunks(self, config: LinkConfig) -> int:
        return self.score_chunks

    def scored_slices(self, linker: Linker, config: LinkConfig, progress: Progress) -> Iterator[Any]:
        """Splink's predictions in ``score_chunks`` slices of the right-hand records (one whole predict when 1),
        each down to the scoring floor (the operating point re-estimates the prior from these). Progress
        advances once a slice has been consumed; the consumer drops each slice's table when done with it."""
        threshold, n = scoring_floor(config), self.score_chunks
        for i in range(1, n + 1):
            if n == 1:
                yield linker.inference.predict(threshold_match_probability=threshold)
            else:
                yield linker.inference.predict_chunk(right_chunk=(i, n), left_chunk=(1, 1),
                                                     threshold_match_probability=threshold, warning_mode="never")
            progress.advance(1)
