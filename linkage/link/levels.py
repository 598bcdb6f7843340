"""Comparison levels of the link model that Splink's library does not have, rendered per SQL dialect.

Each is a Splink ``ComparisonLevelCreator``: Splink asks it for SQL in the dialect of the backend the
``Linker`` runs on, so the same settings object serves DuckDB and Spark (no SQL rewriting). Column names
are quoted by ``linkage.link.sql``.

Bloom filters are stored differently per backend (see ``linkage.link.backends``): DuckDB holds one ``BIT``
value, Spark holds the filter as 64-bit ``BIGINT`` words ``<col>__w0 .. __w{n-1}``, because Spark has no
bit-string type but a fast built-in ``bit_count`` on integers. The number of words comes from the length
the manifest declares for the stored filter (``BloomSettings.output_bits``: 32 bytes XOR-folded, 128
balanced, 64 by default), bound to the levels by ``bind_bloom_sizes`` before the ``Linker`` is built.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from splink.internals.comparison_level_creator import ComparisonLevelCreator
from splink.internals.dialects import SplinkDialect

from linkage.errors import LinkageConfigError
from linkage.link.sql import Dialect, column

BLOOM_POPCOUNT_SUFFIX = "_pc"  # precomputed bit_count of each Bloom column, so Dice needs one popcount per pair
BLOOM_WORD = "__w"  # on Spark, Bloom column X is held as BIGINT words X__w0, X__w1, ... (64 bits each)


def bloom_word_columns(col: str, n_bytes: int) -> list[str]:
    """The Spark word columns holding an ``n_bytes`` Bloom filter (the last word zero-padded)."""
    return [f"{col}{BLOOM_WORD}{i}" for i in range(math.ceil(n_bytes / 8))]


def _dialect(sql_dialect: SplinkDialect) -> Dialect:
    name = sql_dialect.sql_dialect_str
    if name not in ("duckdb", "spark"):
        raise LinkageConfigError(f"the link model has no SQL for backend '{name}' (duckdb or spark)")
    return name


def balanced_spread(bits: int, hashes: int, ngram: int, xor_fold: bool = False, name_length: int = 6) -> float:
    """(|a| + |b|) / width of two plain name filters before balancing: twice the expected fill of one, for a name
    of ``name_length`` letters (padded n-grams, ``hashes`` positions each; folding XORs two halves of that fill).
    A balanced filter's Hamming distance is the plain one's and its half-length is the plain width, so plain
    Dice d is balanced Dice 1 - (1 - d) x this."""
    grams = name_length + 2 - ngram + 1 if ngram > 1 else name_length
    fill = 1 - (1 - 1 / bits) ** (hashes * grams)
    return 2 * (2 * fill * (1 - fill) if xor_fold else fill)


# The shipped layout (512 bits, 15 hashes, bigrams): about 2 x 95 of 512 bits, 0.371.
BALANCED_SPREAD = round(balanced_spread(512, 15, 2), 4)


class BloomDiceLevel(ComparisonLevelCreator):
    """Dice coefficient of two Bloom filters, ``2 |a AND b| / (|a| + |b|)``, at or above a threshold."""

    def __init__(self, col: str, threshold: float, n_bytes: int | None = None, spread: float | None = None) -> None:
        if not 0 < threshold <= 1:
            raise LinkageConfigError(f"Bloom Dice threshold must be in (0, 1], got {threshold}")
        self.col, self.threshold, self.n_bytes = col, float(threshold), n_bytes
        self.spread = spread  # balanced filters: balanced_spread of the extracts' Bloom settings (None: shipped)

    def common_bits_sql(self, dialect: Dialect) -> str:
        if dialect == "duckdb":
            return f"bit_count({column(self.col, 'l', dialect)} & {column(self.col, 'r', dialect)})"
        if not self.n_bytes:
            raise LinkageConfigError(f"Bloom column '{self.col}' has no declared length; call bind_bloom_sizes")
        words = bloom_word_columns(self.col, self.n_bytes)
        return " + ".join(f"bit_count({column(w, 'l', dialect)} & {column(w, 'r', dialect)})" for w in words)

    def dice_sql(self, dialect: Dialect) -> str:
        pc = self.col + BLOOM_POPCOUNT_SUFFIX
        # NULLIF: two empty filters have no Dice (Spark's ANSI mode would raise on the division by zero).
        return (f"2.0 * ({self.common_bits_sql(dialect)}) / "
                f"nullif({column(pc, 'l', dialect)} + {column(pc, 'r', dialect)}, 0)")

    def create_sql(self, sql_dialect: SplinkDialect) -> str:
        d = _dialect(sql_dialect)
        if not self.n_bytes:
            return f"{self.dice_sql(d)} >= {self.threshold!r}"
        # Balanced filters (filter + complement, permuted) hold exactly half their bits set, and their Dice is
        # 1 - Hamming / half-length: two unrelated names score about 0.65, so a plain-Dice threshold would take
        # most strangers for similar names. Such pairs (both sides exactly half set, which a plain filter almost
        # never is) get the balanced equivalent of the threshold, 1 - (1 - t) x BALANCED_SPREAD.
        half = 4 * self.n_bytes
        pc = self.col + BLOOM_POPCOUNT_SUFFIX
        spread = BALANCED_SPREAD if self.spread is None else self.spread
        balanced = round(1 - (1 - self.threshold) * spread, 4)
        return (f"{self.dice_sql(d)} >= CASE WHEN {column(pc, 'l', d)} = {half} AND {column(pc, 'r', d)} = {half} "
                f"THEN {balanced!r} ELSE {self.threshold!r} END")

    def create_label_for_charts(self) -> str:
        return f"Bloom Dice >= {self.threshold:g}"


class ListOverlapLevel(ComparisonLevelCreator):
    """The two sides' token lists share at least one token (stops at the first shared element)."""

    def __init__(self, col: str, label: str) -> None:
        self.col, self.label = col, label

    def create_sql(self, sql_dialect: SplinkDialect) -> str:
        d = _dialect(sql_dialect)
        fn = "list_has_any" if d == "duckdb" else "arrays_overlap"
        return f"{fn}({column(self.col, 'l', d)}, {column(self.col, 'r', d)})"

    def create_label_for_charts(self) -> str:
        return self.label


class CoveredElsewhereLevel(ComparisonLevelCreator):
    """A null (neutral) level: ``base_sql``, or any of ``agreeing`` levels' conditions holds while ``exact``
    does not agree (rendered per dialect). The name comparisons use it to stay neutral where the full-name
    composites agree and the date-salted exact tokens do not, so one agreement counts once.

    ``not_covered_when``: SQL under which the comparison owning ``agreeing`` is neutral although they agree, so
    this comparison must count the agreement itself (a name order swap with the same date of birth: the full-name
    comparison is neutral where the dates agree, and the per-name order-swapped levels count it)."""

    def __init__(self, base_sql: str, agreeing: list[ComparisonLevelCreator], exact: str, label: str,
                 not_covered_when: str | None = None) -> None:
        self.base_sql, self.agreeing, self.exact, self.label = base_sql, agreeing, exact, label
        self.not_covered_when = not_covered_when
        self.is_null_level = True

    def create_sql(self, sql_dialect: SplinkDialect) -> str:
        any_agrees = " OR ".join(f"({lvl.create_sql(sql_dialect)})" for lvl in self.agreeing)
        covered = f"({any_agrees}) AND NOT coalesce({self.exact}_l = {self.exact}_r, false)"
        if self.not_covered_when is not None:
            covered += f" AND NOT coalesce({self.not_covered_when}, false)"
        return f"({self.base_sql}) OR ({covered})"

    def create_label_for_charts(self) -> str:
        return self.label


class TokenInListLevel(ComparisonLevelCreator):
    """One side's token is among the other side's token list, either way round.

    ``unless_equal_to``: a token column of the other side; a token that is only the other side's value of
    that column does not count (the name-parts level: Ali Khan / Khan Ahmed share one name, and that one
    coincidence must not fire in both the given-name and the surname comparison).
    """

    def __init__(self, list_col: str, token_col: str, label: str, unless_equal_to: str | None = None) -> None:
        self.list_col, self.token_col, self.label, self.unless = list_col, token_col, label, unless_equal_to

    def create_sql(self, sql_dialect: SplinkDialect) -> str:
        d = _dialect(sql_dialect)
        fn = "list_contains" if d == "duckdb" else "array_contains"
        sides = []
        for own, other in (("l", "r"), ("r", "l")):
            test = f"{fn}({column(self.list_col, other, d)}, {column(self.token_col, own, d)})"
            if self.unless is not None:
                # NULL-safe "differs": a missing other name never blocks the level
                test = (f"({test} AND ({column(self.unless, other, d)} IS NULL "
                        f"OR {column(self.token_col, own, d)} <> {column(self.unless, other, d)}))")
            sides.append(test)
        return " OR ".join(sides)

    def create_label_for_charts(self) -> str:
        return self.label


def bloom_levels(comparisons: Iterable[Any]) -> list[BloomDiceLevel]:
    """Every Bloom Dice level in Splink comparison creators (``SettingsCreator.comparisons``), also those inside
    another level's condition (a covered-elsewhere level's agreeing levels, a list level's ``unless_levels``)."""
    def nested(level: Any) -> Iterable[Any]:
        yield level
        for inner in [*getattr(level, "agreeing", []), *getattr(level, "unless_levels", [])]:
            yield from nested(inner)

    return [lvl for c in comparisons for top in c.create_comparison_levels() for lvl in nested(top)
            if isinstance(lvl, BloomDiceLevel)]


def bind_bloom_sizes(comparisons: Iterable[Any], n_bytes: Mapping[str, int],
                     bloom_settings: Mapping[str, Any] | None = None) -> None:
    """Give every Bloom Dice level the stored length of its column; refuse a level on an unsized column.

    ``bloom_settings``: the manifests' ``encodings.bloom`` block (bits, hashes, ngram); with it, balanced levels
    take the Dice spread of that layout instead of the shipped one's."""
    spread = None
    if bloom_settings and all(k in bloom_settings for k in ("bits", "hashes", "ngram")):
        spread = balanced_spread(int(bloom_settings["bits"]), int(bloom_settings["hashes"]),
                                 int(bloom_settings["ngram"]), bool(bloom_settings.get("xor_fold")))
    for level in bloom_levels(comparisons):
        if level.col not in n_bytes:
            raise LinkageConfigError(f"Bloom column '{level.col}' has no declared length in the manifests")
        level.n_bytes = int(n_bytes[level.col])
        level.spread = spread


class ListOverlapUnlessLevel(ComparisonLevelCreator):
    """The two sides' token lists share a token, and none of the ``unless`` token columns agrees (a missing side
    does not agree). The full name's deletion-neighbourhood level uses it to fire only where no date or postcode
    is in common, so it never takes the place of the name evidence those salts carry."""

    def __init__(self, col: str, label: str, unless: list[str],
                 unless_levels: list[ComparisonLevelCreator] | None = None) -> None:
        self.col, self.label, self.unless = col, label, list(unless)
        self.unless_levels = list(unless_levels or [])  # nor does any of these levels hold (e.g. a Bloom Dice)

    def create_sql(self, sql_dialect: SplinkDialect) -> str:
        d = _dialect(sql_dialect)
        fn = "list_has_any" if d == "duckdb" else "arrays_overlap"
        sql = f"{fn}({column(self.col, 'l', d)}, {column(self.col, 'r', d)})"
        for other in self.unless:
            sql += f" AND NOT coalesce({column(other, 'l', d)} = {column(other, 'r', d)}, false)"
        for level in self.unless_levels:
            sql += f" AND NOT coalesce(({level.create_sql(sql_dialect)}), false)"
        return sql

    def create_label_for_charts(self) -> str:
        return self.label


class OutsideLevel(ComparisonLevelCreator):
    """A null (neutral) level: ``inner`` does not hold (or cannot be evaluated, a missing side). A comparison of
    one level uses it so that every pair but that level's is neutral."""

    def __init__(self, inner: ComparisonLevelCreator, label: str) -> None:
        self.inner, self.label = inner, label
        self.is_null_level = True

    def create_sql(self, sql_dialect: SplinkDialect) -> str:
        return f"NOT coalesce(({self.inner.create_sql(sql_dialect)}), false)"

    def create_label_for_charts(self) -> str:
        return self.label
