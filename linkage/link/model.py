"""The Splink model built from the encodings the manifests declare: comparisons, blocking, training.

Every level compares tokens only (equality, list overlap, Bloom-filter Dice); the VRN never sees a value.
Levels follow the order of evidence strength, so a pair lands in the first level it satisfies.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from pathlib import Path
from typing import Any

import duckdb
import splink.comparison_level_library as cll
import splink.comparison_library as cl
from splink import Linker, SettingsCreator, block_on
from splink.blocking_rule_library import CustomRule

from linkage.contracts.names import FULL_NAME_COMPOSITES, is_token_list_column
from linkage.link.config import BlockingRule, LinkConfig
from linkage.link.levels import (
    BLOOM_POPCOUNT_SUFFIX,
    BloomDiceLevel,
    CoveredElsewhereLevel,
    ListOverlapLevel,
    ListOverlapUnlessLevel,
    OutsideLevel,
    TokenInListLevel,
)
from linkage.link.sql import Dialect, ident

log = logging.getLogger(__name__)


def _dice(col: str, threshold: float) -> BloomDiceLevel:
    # Dialect-aware (linkage.link.levels): BIT on DuckDB, 64-bit words on Spark, sized from the manifests.
    return BloomDiceLevel(col, threshold)


BLOOM_PC_PREFIX = "similar name, same postcode"
NICKNAME_LABEL = "nickname of the other name"
NICKNAME_PC_LABEL = "nickname of the other name, same postcode"


def bloom_pc_label(threshold: float) -> str:
    return f"{BLOOM_PC_PREFIX} (Dice >= {threshold:g})"


def _overlap(col: str) -> ListOverlapLevel:
    return ListOverlapLevel(col, "one edit apart (deletion neighbourhood)")


def _name_comparison(field: str, cols: set[str], config: LinkConfig) -> cl.CustomComparison | None:
    opts = config.comparisons
    exact = f"{field}__exact"
    if exact not in cols:
        return None
    tf = field in opts.term_frequency_adjustments
    composite = [c for c in (f"{field}__near_dob", "name__full", f"{field}__exact_pc", f"{field}__phonetic_pc",
                             f"{field}__pcbloom", f"{field}__alias_pc", *FULL_NAME_COMPOSITES) if c in cols]
    if composite:
        # Hardened profile: a name salted with a missing date has no exact token, yet its composites with the
        # postcode or the other name may agree; missing only when none is there.
        # A Bloom column is tested through its popcount: on Spark the filter itself is split into 64-bit words.
        tested = [c + BLOOM_POPCOUNT_SUFFIX if c.endswith("bloom") else c for c in [exact, *composite]]
        sides = [" AND ".join(f"{c}_{side} IS NULL" for c in tested) for side in ("l", "r")]
        null: Any = cll.CustomLevel(f"({sides[0]}) OR ({sides[1]})").configure(
            is_null_level=True, label_for_charts=f"{field} missing")
        agreeing = _full_name_agreement(cols, config) + _typo_cover(cols, config)
        if agreeing:
            # Full-name composites agree where this name's date-salted token does not (the date differs): the
            # full-name comparison counts it once; here it is neither agreement nor an "all other" penalty.
            # Not for a name order swap with the same date: the full-name comparison is neutral where the dates
            # agree, so the order-swapped level below counts it (see _same_date_swap_sql).
            null = CoveredElsewhereLevel(f"({sides[0]}) OR ({sides[1]})", agreeing, exact,
                                         f"{field} missing, or compared by the full-name composites",
                                         not_covered_when=_same_date_swap_sql(cols))
    else:
        null = cll.NullLevel(exact)
    levels: list[Any] = [null, cll.ExactMatchLevel(exact, term_frequency_adjustments=tf)]
    if f"{field}__near_dob" in cols:  # name + date-tolerant salts (hardened profile): date one error apart
        levels.append(ListOverlapLevel(f"{field}__near_dob", "same name, date of birth one error apart"))
    if "name__full" in cols and not set(FULL_NAME_COMPOSITES) & cols:
        # given name and surname together, not composite with the date (per-name hardened profile); with the
        # full-name composites it is the full-name comparison's lowest level instead, counted once
        levels.append(cll.ExactMatchLevel("name__full").configure(label_for_charts="same full name"))
    if f"{field}__exact_pc" in cols:  # name + postcode composite (hardened profile): dates of birth differ
        levels.append(cll.ExactMatchLevel(f"{field}__exact_pc").configure(label_for_charts="same name, same postcode"))
    if f"{field}__phonetic_pc" in cols:  # Metaphone + postcode composite (hardened profile)
        levels.append(cll.ExactMatchLevel(f"{field}__phonetic_pc").configure(
            label_for_charts="similar-sounding name, same postcode"))
    own, other = (("name__given_shared", "name__surname_shared") if field == "given_name"
                  else ("name__surname_shared", "name__given_shared"))
    if own in cols and other in cols:
        # Given and family name recorded the other way round (shared name key makes them comparable). Both
        # must cross-match: one cross-match alone is a common coincidence (Ali Khan / Khan Ahmed) and would
        # fire in both name comparisons at once.
        levels.append(cll.CustomLevel(f"{own}_l = {other}_r AND {other}_l = {own}_r",
                                      label_for_charts="matches the other name (order swapped)"))
    alias = f"{field}__alias"
    if alias in cols and field in opts.alias_levels:
        # A nickname and the formal name it stands for (Bill / William): the alias list holds the exact
        # tokens of the formal names, so one side's exact token is found in the other's list.
        levels.append(TokenInListLevel(alias, exact, NICKNAME_LABEL))
    if opts.use_name_parts and own in cols and "name__parts" in cols:
        # A former / preferred surname or a middle name used as the first name. A part that is only the
        # other side's *other* name does not count (see TokenInListLevel).
        levels.append(TokenInListLevel("name__parts", own, "found among the other side's name parts",
                                       unless_equal_to=other if other in cols else None))
    if f"{field}__del1" in cols and field in opts.deletion_levels:
        levels.append(_overlap(f"{field}__del1"))
    if f"{field}__bloom" in cols:
        levels.extend(_dice(f"{field}__bloom", t) for t in sorted(opts.bloom_dice_thresholds, reverse=True))
    if f"{field}__pcbloom" in cols:
        # Postcode-salted filters (hardened profile): similar name, same postcode, at each Dice cut-off as the
        # date-salted filters. A one-letter typo often falls below the top cut-off; with the top level only, a
        # misspelt name at one address with the date missing or wrong scored as a disagreement (messy set:
        # the commonest true pairs lost against the unhardened profile). Priced given the postcode
        # (postcode_filter_given_postcode, u_given_postcode_from_unlikely_pairs), the lower level no longer
        # turns relatives with similar names into matches, as it did when it was first tried unconditionally.
        levels.extend(_dice(f"{field}__pcbloom", t).configure(label_for_charts=bloom_pc_label(t))
                      for t in sorted(opts.bloom_dice_thresholds, reverse=True))
    if f"{field}__alias_pc" in cols and alias in cols and field in opts.alias_levels:
        # A nickname and its formal name at the same postcode (hardened profile: the date-salted nickname level
        # needs the same date). After the filter levels, which take the same or a similar name. Priced given the
        # postcode from the date-salted nickname level (nickname_postcode_params), as the filter levels are.
        levels.append(ListOverlapLevel(f"{field}__alias_pc", NICKNAME_PC_LABEL))
    for enc in ("phonetic", "initial"):
        if f"{field}__{enc}" in cols:
            levels.append(cll.ExactMatchLevel(f"{field}__{enc}").configure(label_for_charts=f"{enc} match"))
    levels.append(cll.ElseLevel())
    return cl.CustomComparison(comparison_levels=levels, output_column_name=field)


def _full_name_agreement(cols: set[str], config: LinkConfig | None = None) -> list[Any]:
    """The full-name composites' agreement levels (empty without them), then the unsalted full-name token."""
    out: list[Any] = []
    if not set(FULL_NAME_COMPOSITES) & cols:
        return out
    if "full_name__near_dob" in cols:
        out.append(ListOverlapLevel("full_name__near_dob", FULL_NEAR_DOB_LABEL))
    if "full_name__exact_pc" in cols:
        out.append(cll.ExactMatchLevel("full_name__exact_pc").configure(label_for_charts=FULL_PC_LABEL))
    if "full_name__near_pc" in cols:  # after the exact postcode: fires only where the postcode has one typo
        out.append(ListOverlapLevel("full_name__near_pc", FULL_NEAR_PC_LABEL))
    if "name__full" in cols:
        # Last: the same full name with no date or postcode in common (or missing), adjusted for how many
        # people hold it (full_name_person_tf), so a common full name weighs little.
        tf = config is None or bool({"given_name", "surname"} & set(config.comparisons.term_frequency_adjustments))
        out.append(cll.ExactMatchLevel("name__full", term_frequency_adjustments=tf).configure(
            label_for_charts=FULL_UNSALTED_LABEL))
    return out


def _same_date_swap_sql(cols: set[str]) -> str | None:
    """Given and family name recorded the other way round (both cross-match through the shared name key), with
    the same date of birth.

    The order-free full-name composites agree for such a pair, so the per-name comparisons would leave it to the
    full-name comparison, which is neutral where the dates agree: a same-date swap weighed nothing in any name
    comparison (FEBRL4: 6 of the 58 true pairs the privacy-first profile lost). The per-name order-swapped levels
    count it instead, as in profiles without the composites. A swap with another date stays with the full-name
    comparison, whose levels price a name at one address given the postcode (relatives at one address with
    swapped names: Mohammed Hussain and his son Hussain Mohammed).

    "Same date" is the two date-tolerant full-name lists being equal (same full name and same date give the same
    list; any other date gives other tokens): a date column here would take the name comparisons out of the EM
    session blocked on the date of birth (Splink leaves out every comparison reading a column of the session's
    blocking rule), and that session trains them."""
    if not {"name__given_shared", "name__surname_shared", "full_name__near_dob"} <= cols:
        return None
    return ("name__given_shared_l = name__surname_shared_r AND name__surname_shared_l = name__given_shared_r "
            "AND full_name__near_dob_l = full_name__near_dob_r")


def _full_name_comparison(cols: set[str], config: LinkConfig | None = None) -> cl.CustomComparison | None:
    """Full-name composites (hardened profile, ``composite_name: full``): one comparison, not a level in both
    the given-name and the surname comparison, so one agreement counts once.

    They matter where the date of birth differs (date one error apart, or the same postcode): where the dates
    agree the date-salted exact name tokens already compare the names, so that pair is neutral here.
    """
    if not set(FULL_NAME_COMPOSITES) & cols:
        return None
    present = [c for c in (*FULL_NAME_COMPOSITES, "name__full") if c in cols]
    sides = [" AND ".join(f"{c}_{side} IS NULL" for c in present) for side in ("l", "r")]
    null_sql = f"({sides[0]}) OR ({sides[1]})"
    if "dob__exact" in cols:
        null_sql += " OR (dob__exact_l = dob__exact_r)"
    levels: list[Any] = [cll.CustomLevel(null_sql).configure(
        is_null_level=True, label_for_charts="full name composites missing, or date of birth agrees")]
    levels += _full_name_agreement(cols, config)
    levels.append(cll.ElseLevel())
    return cl.CustomComparison(comparison_levels=levels, output_column_name="full_name")


FULL_NEAR_DOB_LABEL = "same full name, date of birth one error apart"
FULL_PC_LABEL = "same full name, same postcode"
FULL_NEAR_PC_LABEL = "same full name, postcode one typo apart"
FULL_UNSALTED_LABEL = "same full name (no date or postcode in common)"
FULL_TYPO_LABEL = "full name within one edit (no date or postcode in common)"


def _dob_comparison(cols: set[str], config: LinkConfig | None = None) -> cl.CustomComparison | None:
    if "dob__exact" not in cols:
        return None
    digits = "dob__del1" in cols and (config is None or "dob" in config.comparisons.deletion_levels)
    if digits:
        # A non-calendar date has no exact token but still has its digit neighbourhood: missing only when
        # both are.
        null: Any = cll.CustomLevel("(dob__exact_l IS NULL AND dob__del1_l IS NULL) OR "
                                    "(dob__exact_r IS NULL AND dob__del1_r IS NULL)").configure(
                                        is_null_level=True, label_for_charts="dob missing")
    else:
        null = cll.NullLevel("dob__exact")
    levels: list[Any] = [null, cll.ExactMatchLevel("dob__exact")]
    if "dob__swap" in cols:
        levels.append(cll.CustomLevel("dob__swap_l = dob__exact_r OR dob__exact_l = dob__swap_r",
                                      label_for_charts="day and month swapped"))
    if digits:
        levels.append(ListOverlapLevel("dob__del1", "one digit apart (digit neighbourhood)"))  # per SQL dialect
    for enc, label in (("ym", "same year and month"), ("md", "same month and day"), ("year", "same year")):
        if f"dob__{enc}" in cols:
            levels.append(cll.ExactMatchLevel(f"dob__{enc}").configure(label_for_charts=label))
    levels.append(cll.ElseLevel())
    return cl.CustomComparison(comparison_levels=levels, output_column_name="dob")


def _postcode_comparison(cols: set[str], config: LinkConfig) -> cl.CustomComparison | None:
    if "postcode__exact" not in cols:
        return None
    tf = "postcode" in config.comparisons.term_frequency_adjustments
    levels: list[Any] = [cll.NullLevel("postcode__exact"),
                         cll.ExactMatchLevel("postcode__exact", term_frequency_adjustments=tf)]
    if "postcode__del1" in cols and "postcode" in config.comparisons.deletion_levels:
        levels.append(_overlap("postcode__del1"))
    for enc in ("sector", "district"):
        if f"postcode__{enc}" in cols:
            levels.append(cll.ExactMatchLevel(f"postcode__{enc}").configure(label_for_charts=f"same {enc}"))
    levels.append(cll.ElseLevel())
    return cl.CustomComparison(comparison_levels=levels, output_column_name="postcode")


def _exact_comparison(field: str, cols: set[str]) -> cl.CustomComparison | None:
    col = f"{field}__exact"
    if col not in cols:
        return None
    return cl.CustomComparison(comparison_levels=[cll.NullLevel(col), cll.ExactMatchLevel(col), cll.ElseLevel()],
                               output_column_name=field)


def build_comparisons(cols: set[str], config: LinkConfig) -> list[cl.CustomComparison]:
    out = []
    for field in config.comparisons.fields:
        if field in ("given_name", "surname"):
            comp = _name_comparison(field, cols, config)
        elif field == "dob":
            comp = _dob_comparison(cols, config)
        elif field == "postcode":
            comp = _postcode_comparison(cols, config)
        else:
            comp = _exact_comparison(field, cols)
        if comp is not None:
            out.append(comp)
    if {"given_name", "surname"} & set(config.comparisons.fields):
        full = _full_name_comparison(cols, config)
        if full is not None:
            out.append(full)
        typo = _full_name_typo_comparison(cols)
        if typo is not None:
            out.append(typo)
    return out


# Each rule pairs records agreeing on a few tokens; together they should catch nearly every true match.
# The first rules pair a name or date with a second key, and names with a third, so their pairs stay
# near-linear at a full population's density (1M synthetic people, ~28 per postcode as in LLR: ~1-3
# pairs per identity row each). The wide rules after them recover records with several errors (FEBRL4
# recall 0.9758 with them, 0.9684 without) but grow with the square of the population (full name alone:
# 14 pairs per identity row at 100k people, 177 at 1M), so each runs only while its estimated pairs stay
# within `blocking_budget_pairs_per_identity` (see plan_blocking).
DEFAULT_BLOCKING: list[BlockingRule] = [
    ["given_name__exact", "dob__exact"],
    ["given_name__exact_pc", "surname__exact_pc"],             # hardened profile: same name and postcode
    ["surname__exact_pc"],                                     # hardened: one name misspelt, same postcode,
    ["given_name__exact_pc"],                                  # date of birth wrong or missing
    ["full_name__exact_pc"],                                   # hardened, composite_name full: same full name
    ["full_name__near_dob"],                                   # and postcode, or date one error apart
    ["full_name__near_pc"],                                    # or postcode one typo apart
    ["surname__near_dob"],                                     # hardened: name exact, date one error apart
    ["given_name__near_dob"],                                  # (the lists share a token), other name misspelt
    ["surname__exact", "dob__exact"],
    ["dob__exact", "postcode__exact"],
    ["given_name__exact", "postcode__exact"],
    ["surname__exact", "postcode__exact"],
    ["given_name__exact", "surname__exact", "dob__ym"],        # day of birth wrong, moved house
    ["given_name__exact", "surname__exact", "dob__md"],        # year of birth wrong, moved house
    ["dob__exact", "given_name__initial", "surname__initial"],  # both names misspelt
    ["dob__exact", "given_name__initial", "postcode__district"],  # surname changed, first name misspelt
    ["dob__exact", "surname__initial", "postcode__district"],     # nickname or other first name
    ["postcode__exact", "given_name__initial", "surname__initial"],
    ["postcode__exact", "dob__ym"],
    ["given_name__phonetic", "surname__phonetic", "dob__ym"],
    "l.name__given_shared = r.name__surname_shared AND l.dob__exact = r.dob__exact",
    "l.name__given_shared = r.name__surname_shared AND l.postcode__exact = r.postcode__exact",
    "l.dob__swap = r.dob__exact AND l.surname__exact = r.surname__exact",
    ["upn__exact"],
    ["nhs_number__exact"],
    # wide: within the budget only
    ["given_name__exact", "surname__exact"],
    ["name__full"],                                            # hardened profile: the full-name token
    ["full_name__del1"],                                       # ...or the full name within one edit
    ["given_name__exact", "surname__exact", "dob__year"],
    ["dob__exact", "given_name__initial"],
    ["dob__exact", "surname__initial"],
    ["postcode__exact", "given_name__initial"],
    ["postcode__exact", "surname__initial"],
    ["postcode__exact", "dob__year"],
    ["given_name__phonetic", "surname__phonetic", "dob__year"],
    # fuzzy pairs of keys: records with an error or a gap in every field agree exactly on none of them (on
    # the messy profile 16% of true pairs); within the budget only
    ["given_name__phonetic", "surname__phonetic"],
    ["surname__phonetic", "dob__year"],
    ["given_name__phonetic", "dob__year"],
    ["surname__phonetic", "postcode__sector"],
    ["given_name__phonetic", "postcode__sector"],
    ["given_name__initial", "surname__initial", "dob__year"],
    ["given_name__initial", "surname__initial", "postcode__sector"],
    ["dob__ym", "postcode__district"],
    ["dob__md", "postcode__district"],
    ["dob__md", "given_name__initial", "surname__initial"],
    ["dob__ym", "given_name__initial", "surname__initial"],
    # one DOB digit mistyped (any digit: the date's one-deletion tokens, exploded) and a name misspelt or
    # missing: on the messy profile most never-compared true pairs with enough evidence to link (bench/
    # bench_blocking.py --diagnose) agree on these and on no exact key; within the budget only
    ["dob__del1", "given_name__initial", "surname__initial"],
    ["dob__del1", "surname__initial"],
    ["dob__del1", "given_name__initial"],
    ["given_name__del1", "surname__del1"],                     # both names one edit off, DOB and postcode not
    # single fields (what plain Splink users block on for small files): within the budget only
    ["dob__exact"],
    ["postcode__exact"],
    ["surname__exact"],
    ["given_name__exact"],
]


# A token-list column in an equality rule means "the two lists share a token": the rule is run by exploding
# the lists (one row per token), never by a nested-loop list comparison (linkage.contracts.names).
is_token_list = is_token_list_column


def exploded_rule_rows_sql(source_sql: str, rule: list[str]) -> str:
    """One row per combination of the rule's keys, list columns exploded one at a time as Splink's join
    does (two lists give every pair of their tokens, not the tokens side by side); no null key survives."""
    quoted = [ident(c) for c in rule]
    not_null = " AND ".join(f"{q} IS NOT NULL" for q in quoted)
    sql = f"SELECT {', '.join(quoted)} FROM {source_sql} WHERE {not_null}"
    for col in (c for c in rule if is_token_list(c)):
        select = ", ".join(f"unnest({ident(c)}) AS {ident(c)}" if c == col else ident(c) for c in rule)
        sql = f"SELECT {select} FROM ({sql})"
    return f"SELECT * FROM ({sql}) WHERE {not_null}"


def _rule_columns(rule: BlockingRule) -> set[str]:
    if isinstance(rule, list):
        return set(rule)
    import re

    return set(re.findall(r"\b[lr]\.([A-Za-z0-9_]+)", rule))


def usable_rules(rules: list[BlockingRule], cols: set[str]) -> list[BlockingRule]:
    """Rules whose columns all exist (a rule on an absent encoding is skipped, not an error)."""
    return [r for r in rules if _rule_columns(r) <= cols]


def estimate_rule_pairs(con: duckdb.DuckDBPyConnection, source_sql: str, rule: BlockingRule) -> int | None:
    """Identity-row pairs sharing all of an equality rule's keys (n(n-1)/2 per key value): an upper bound
    on what the rule adds, from one GROUP BY. None for SQL rules, which cannot be counted this way."""
    if not isinstance(rule, list):
        return None
    # A token-list column is exploded as the join does: a pair sharing k tokens is counted k times, which is
    # the join's real cost (Splink de-duplicates the pairs after it).
    keys = ", ".join(ident(c) for c in rule)
    n = con.execute(f"SELECT sum(n * (n - 1) // 2) FROM (SELECT count(*)::HUGEINT AS n FROM "
                    f"({exploded_rule_rows_sql(source_sql, rule)}) GROUP BY {keys})").fetchall()[0][0]
    return int(n or 0)


def plan_blocking(con: duckdb.DuckDBPyConnection, source_sql: str, cols: set[str],
                  config: LinkConfig) -> tuple[list[BlockingRule], list[dict[str, Any]]]:
    """The prediction rules to run, and per usable rule its estimated pairs and whether it runs.

    A rule whose estimate exceeds ``blocking_budget_pairs_per_identity`` x identity rows is skipped: at
    a large population's density such a rule mostly pairs strangers who share a common name, costs more
    than all the other rules together, and the tight rules already cover its likely matches.
    """
    rules = usable_rules(config.blocking_rules or DEFAULT_BLOCKING, cols)
    budget = config.blocking_budget_pairs_per_identity
    if budget is None:
        return rules, [{"rule": rule_label(r), "estimated_pairs": None, "used": True} for r in rules]
    n_rows = con.execute(f"SELECT count(*) FROM {source_sql}").fetchall()[0][0]
    chosen, plan = [], []
    for rule in rules:
        est = estimate_rule_pairs(con, source_sql, rule)
        used = est is None or est <= max(budget * max(n_rows, 1), config.blocking_budget_min_pairs)
        plan.append({"rule": rule_label(rule), "estimated_pairs": est, "used": used})
        if used:
            chosen.append(rule)
    return chosen, plan


def plan_blocking_on_files(token_paths: list[Path], cols: set[str],
                           config: LinkConfig) -> tuple[list[BlockingRule], list[dict[str, Any]]]:
    """plan_blocking over the extracts' token files, so both backends choose the same rules."""
    files = ", ".join("'" + str(p).replace("'", "''") + "'" for p in token_paths)
    with duckdb.connect() as con:
        return plan_blocking(con, f"read_parquet([{files}], union_by_name = true)", cols, config)


def rule_label(rule: BlockingRule) -> str:
    return " + ".join(rule) if isinstance(rule, list) else rule


def to_splink_rule(rule: BlockingRule, extra_sql: str = "") -> Any:
    if isinstance(rule, list):
        sql = " AND ".join(f"l.{c} = r.{c}" for c in rule)
        lists = [c for c in rule if is_token_list(c)]
        if lists:  # Splink explodes these columns (one row per token) before the equality join
            return CustomRule(f"({sql}){extra_sql}", arrays_to_explode=lists)
    else:
        sql = rule
    return f"({sql}){extra_sql}" if extra_sql else (block_on(*rule) if isinstance(rule, list) else sql)


def build_settings(cols: set[str], config: LinkConfig, link_type: str, pair_filter_sql: str,
                   rules: list[BlockingRule] | None = None) -> SettingsCreator:
    """Splink settings; ``rules`` are the prediction rules chosen by plan_blocking (default: all usable)."""
    comparisons = build_comparisons(cols, config)
    if rules is None:
        rules = usable_rules(config.blocking_rules or DEFAULT_BLOCKING, cols)
    return SettingsCreator(
        link_type=link_type,
        unique_id_column_name="identity_id",
        comparisons=comparisons,
        blocking_rules_to_generate_predictions=[to_splink_rule(r, pair_filter_sql) for r in rules],
        additional_columns_to_retain=["record_id"],
        retain_matching_columns=False,
        retain_intermediate_calculation_columns=True,  # gamma/bf columns feed the waterfall chart and QA
    )


def train(linker: Linker, cols: set[str], config: LinkConfig) -> dict[str, Any]:
    """Prior, u by random sampling (fixed seed), m by EM over several rules; fix untrained levels."""
    t = config.training
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        timings[name] = round(time.perf_counter() - clock, 3)
        clock = time.perf_counter()

    prior_rules = [to_splink_rule(r) for r in usable_rules(t.prior_rules, cols)]
    if prior_rules:
        linker.training.estimate_probability_two_random_records_match(prior_rules, recall=t.prior_recall)
    lap("prior")
    linker.training.estimate_u_using_random_sampling(
        max_pairs=t.u_max_pairs, seed=t.seed, min_count_per_level=t.u_min_count_per_level,
        num_chunks=t.u_num_chunks)
    lap("u_random_sampling")
    if t.m_from_trusted_identifier and t.m_from_trusted_identifier in cols:
        linker.training.estimate_m_from_label_column(t.m_from_trusted_identifier)
        lap("m_from_trusted_identifier")
    em_rules = usable_rules(t.em_rules, cols)
    for i, rule in enumerate(em_rules):
        kwargs = {"max_pairs": t.em_max_pairs} if t.em_max_pairs else {}
        _em_session(linker, rule, kwargs)
        lap(f"em_{i + 1}")
    composite = composite_em_rules(cols)
    pc_labels = tuple(bloom_pc_label(threshold) for threshold in config.comparisons.bloom_dice_thresholds)
    for j, rule in enumerate(composite):
        kwargs = {"max_pairs": t.em_max_pairs} if t.em_max_pairs else {}
        kept = _snapshot_m(linker)
        _em_session(linker, rule, kwargs)
        if rule in POSTCODE_FILTER_RULES:
            _restore_m(linker, kept, keep_new=pc_labels)
        elif rule in COMPOSITE_ONLY_RULES:
            _restore_m(linker, kept, keep_new=COMPOSITE_LEVEL_LABELS + pc_labels)
        lap(f"em_composite_{j + 1}")
    em_rules = em_rules + composite
    postcode_filter_u(linker)
    near_postcode_params(linker)  # before the exact-postcode level is priced given the postcode
    # u given the postcode where the data allow it (it needs no sampled u: at 50,000 people the 1M-pair sample
    # can miss these levels, and the quotients below then skipped m as well); the quotient elsewhere
    given = u_given_postcode_from_unlikely_pairs(linker)
    postcode_filter_given_postcode(linker, given)
    nickname_postcode_params(linker, given)
    full_name_postcode_given_postcode(linker, given)
    unsalted = {"tf": full_name_person_tf(linker), "m": full_name_unsalted_m(linker)}
    typo = full_name_typo_params(linker)
    fixed = fix_untrained_levels(linker, config)
    out = {"em_rules": [str(r) for r in em_rules], "untrained_levels_fixed": fixed, "timings_seconds": timings}
    if any(unsalted.values()):
        out["unsalted_full_name"] = unsalted
    if typo:
        out["full_name_one_edit"] = typo
    return out


# Composite (hardened) name levels -- name agreeing with a date one error apart, or at the same postcode --
# fire only where the dates of birth differ, so an EM session blocked on the date or on the (date-salted)
# names never sees them and leaves them neutral. One more session blocked on the postcode alone trains
# them; it runs only when the extracts carry composite name tokens (unhardened models are unchanged).
COMPOSITE_NAME_COLUMNS = ("given_name__near_dob", "surname__near_dob", "given_name__exact_pc", "surname__exact_pc",
                          "name__full", "given_name__phonetic_pc", "surname__phonetic_pc", "given_name__pcbloom",
                          "surname__pcbloom", *FULL_NAME_COMPOSITES)
# The first is the hardened analogue of the default names + postcode session: with date-composite names that
# session blocks on the date as well, so the date-of-birth levels never see a disagreeing match and stay
# neutral (no penalty for another date: synthetic precision 0.68); name + postcode composites block without
# the date. In the second, only the composite levels keep what it learns: a postcode block also holds
# households (same surname, other date of birth), which EM would otherwise take for matches everywhere.
COMPOSITE_EM_RULES: list[BlockingRule] = [["given_name__exact_pc", "surname__exact_pc"], ["full_name__exact_pc"],
                                          ["postcode__exact", "dob__year"]]
COMPOSITE_ONLY_RULES: list[BlockingRule] = [["postcode__exact", "dob__year"]]
COMPOSITE_LEVEL_LABELS = ("same name, date of birth one error apart", "same name, same postcode", "same full name",
                          FULL_NEAR_DOB_LABEL, FULL_PC_LABEL,
                          "similar-sounding name, same postcode")


def _em_session(linker: Linker, rule: BlockingRule, kwargs: dict[str, Any]) -> bool:
    """One EM session; False (with a warning) when Splink refuses its result even with fewer iterations.

    Splink rejects a session in which EM drives a level's m below 1e-300 (seen on the messy set with
    date-composite name-part tokens: no match in a date block has a name part the other lacks, so that m
    halves towards 0 at every iteration). Splink's session removes the comparisons it blocks on from the
    linker's own settings before it trains and puts them back only on success, so after a refusal the
    settings are restored (without that, the refused date-of-birth session left the messy model with no
    date-of-birth comparison at all: F1 0.23), then the session is retried with fewer iterations, where that
    m stays representable (the neutral-m fix-up and the m floor handle it afterwards).
    """
    settings = linker._settings_obj
    saved = settings.core_model_settings.copy()
    training = settings.training_settings  # a frozen dataclass: replaced, then put back
    full = training.max_iterations
    for iterations in dict.fromkeys((full, min(full, 10), min(full, 4))):  # each size once
        settings.training_settings = dataclasses.replace(training, max_iterations=iterations)
        try:
            linker.training.estimate_parameters_using_expectation_maximisation(to_splink_rule(rule), **kwargs)
        except ValueError as exc:
            if "m_probability" not in str(exc):
                raise
            settings.core_model_settings = saved.copy()
            continue
        finally:
            settings.training_settings = training
        if iterations != full:
            log.warning("EM session on %s ran %d iterations (Splink refused an m of 0 after more)",
                        rule_label(rule), iterations)
        return True
    log.warning("EM session on %s skipped (Splink refused an m of 0)", rule_label(rule))
    return False


def _snapshot_m(linker: Linker) -> dict[tuple[str, str], tuple[Any, int]]:
    """Each level's raw m and how many trained m values Splink holds for it (it takes their median)."""
    return {(c.output_column_name, lvl.label_for_charts): (lvl._m_probability, len(lvl._trained_m_probabilities))
            for c in linker._settings_obj.comparisons for lvl in c.comparison_levels if not lvl.is_null_level}


def _restore_m(linker: Linker, kept: dict[tuple[str, str], tuple[Any, int]], keep_new: tuple[str, ...]) -> None:
    """Undo an EM session's m for every level but ``keep_new`` (labels)."""
    for c in linker._settings_obj.comparisons:
        for lvl in c.comparison_levels:
            key = (c.output_column_name, lvl.label_for_charts)
            if key in kept and lvl.label_for_charts not in keep_new:
                lvl._m_probability = kept[key][0]
                del lvl._trained_m_probabilities[kept[key][1]:]


def composite_em_rules(cols: set[str]) -> list[BlockingRule]:
    """The extra EM sessions composite name tokens need (none for other encodings)."""
    if not set(COMPOSITE_NAME_COLUMNS) & cols:
        return []
    # With full-name composites the postcode-salted filters also catch an exact surname at one address
    # (households), which a session blocked on the postcode alone takes for matches (synthetic 10k precision
    # 0.65): they are then trained in the postcode + year session only.
    full = bool(set(FULL_NAME_COMPOSITES) & cols)
    extra = POSTCODE_FILTER_RULES if {"given_name__pcbloom", "surname__pcbloom"} & cols and not full else []
    return usable_rules(COMPOSITE_EM_RULES + extra, cols)


# Postcode-salted filters fire where a name is misspelt at the same postcode and no stronger level does, which
# the sessions above (blocked on a date or on exact composites) almost never show. A session blocked on the
# postcode alone, of which only those levels keep their m, trains them (records without a date of birth are
# in it, unlike the postcode + year block).
POSTCODE_FILTER_RULES: list[BlockingRule] = [["postcode__exact"]]


def _trained_exact_level(comparisons: dict[str, Any], name: str, *, m: bool = False, u: bool = False) -> Any:
    """Comparison ``name``'s level "Exact match on <name>__exact" if training set each asked-for parameter (``m``,
    ``u``) to a positive value; else None (no such comparison or level, or not trained)."""
    comp = comparisons.get(name)
    label = f"Exact match on {name}__exact"
    level = next((lvl for lvl in comp.comparison_levels if lvl.label_for_charts == label), None) if comp else None
    if level is None:
        return None
    for wanted, trained, value in ((m, level._m_is_trained, level.m_probability),
                                   (u, level._u_is_trained, level.u_probability)):
        if wanted and not (trained and isinstance(value, float) and value > 0):
            return None
    return level


def postcode_filter_u(linker: Linker) -> list[str]:
    """u of each postcode-salted filter level that random sampling did not observe (a similar name at the same
    postcode is too rare among random pairs), as if name similarity and address were independent among
    non-matches: P(similar name) x u(exact postcode).

    P(similar name) is not observed directly: the other filter level at the same Dice is salted with the
    date of birth (``postcode_layout`` requires ``salt: dob``; filters of two dates share no positions), so
    its u is P(similar name and same date). Dividing by u(exact date of birth) takes the date out; without
    that the level's u was too small by 1/P(same date) (~15 bits too strong: relatives of similar names at
    one address scored as matches). The top level also takes the exact name (as its m does,
    postcode_filter_given_postcode), so its P(similar name) adds the date-salted exact level's u."""
    comparisons = {c.output_column_name: c for c in linker._settings_obj.comparisons}
    pc_exact = _trained_exact_level(comparisons, "postcode", u=True)
    dob_exact = _trained_exact_level(comparisons, "dob", u=True)
    done = []
    for field in ("given_name", "surname"):
        comp = comparisons.get(field)
        if comp is None or pc_exact is None or dob_exact is None:
            continue
        by_label = {lvl.label_for_charts: lvl for lvl in comp.comparison_levels}
        pc_labels = [label for label in by_label if label.startswith(BLOOM_PC_PREFIX)]
        for label in pc_labels:
            lvl = by_label[label]
            if lvl._u_is_trained:
                continue
            threshold = label[label.rindex(">= ") + 3:-1]
            twins = [by_label.get(f"Bloom Dice >= {threshold}")]
            if label == pc_labels[0]:
                twins.append(by_label.get(f"Exact match on {field}__exact"))
            if all(t is not None and t._u_is_trained for t in twins):
                date_and_name = sum(float(t.u_probability) for t in twins)
                similar_name = min(1.0, date_and_name / float(dob_exact.u_probability))
                lvl.u_probability = similar_name * float(pc_exact.u_probability)
                done.append(f"{field}: {label}")
    return done


def postcode_filter_given_postcode(linker: Linker, u_given: dict[str, float] | None = None) -> list[str]:
    """m and u of each postcode-salted filter level ("similar name, same postcode") given that the postcode
    agrees: m = P(similar name | match), u = P(similar name | non-match at the same postcode).

    The level fires only where the postcode agrees and the date-salted levels before it do not (the dates
    differ), and the postcode and date comparisons already price those two facts; the level must add only the
    name's evidence. With u unconditional (about P(same postcode) x P(similar name)) the address counted twice,
    and the name as if co-residents shared names by chance: in the 10,000-person demo a parent and child
    (same surname and address, other given name and date) scored about +9 bits on the surname, +12 on the
    postcode, and made 1,600 of its 3,150 false pair edges (precision 0.81). Among non-matches at one postcode
    the share with a similar name is the level's sampled u over that of the exact postcode (households show in
    it). EM's m (a session blocked on the postcode and the year, where most matches share the whole date and
    land in the levels above) is replaced by the share of matches with a similar name, the date-salted exact and
    filter levels' m over m(exact date), as postcode_filter_u takes the date out of u."""
    comparisons = {c.output_column_name: c for c in linker._settings_obj.comparisons}
    pc_exact = _trained_exact_level(comparisons, "postcode", m=True, u=True)
    dob_exact = _trained_exact_level(comparisons, "dob", m=True, u=True)
    done: list[str] = []
    if pc_exact is None or dob_exact is None:
        return done
    for field in ("given_name", "surname"):
        comp = comparisons.get(field)
        if comp is None:
            continue
        by_label = {lvl.label_for_charts: lvl for lvl in comp.comparison_levels}
        pc_labels = [label for label in by_label if label.startswith(BLOOM_PC_PREFIX)]
        for label, lvl in by_label.items():
            known = f"{field}: {label}" in (u_given or {})  # u already given the postcode
            if not label.startswith(BLOOM_PC_PREFIX):
                continue
            if not (known or lvl._u_is_trained):
                if lvl._m_is_trained:
                    # EM saw the level, random sampling and the unlikely pairs did not (a small extract): no u
                    # to price it with. Neutral, not Splink's placeholder u of 1e-6 (~+14 bits on a name at
                    # one address, which fix_untrained_levels leaves alone once m is trained).
                    lvl.u_probability = lvl.m_probability
                continue
            threshold = label[label.rindex(">= ") + 3:-1]
            # The top filter level takes every pair with the name the same or above its cut-off; a lower one
            # only those between its cut-off and the next (levels are tried in order), as the date-salted
            # filter level of the same cut-off does.
            top = label == pc_labels[0]
            twins = [by_label.get(f"Bloom Dice >= {threshold}")]
            if top:
                twins.append(by_label.get(f"Exact match on {field}__exact"))
            if all(t is not None and t._m_is_trained for t in twins):
                similar_m = sum(float(t.m_probability) for t in twins) / float(dob_exact.m_probability)
                lvl.m_probability = min(1.0, similar_m)
            # Given the postcode whether or not m could be set: left unconditional, u counts the address a
            # second time on top of the postcode comparison's own weight.
            if not known:
                lvl.u_probability = min(1.0, float(lvl.u_probability) / float(pc_exact.u_probability))
            done.append(f"{field}: {label}")
    return done


def nickname_postcode_params(linker: Linker, u_given: dict[str, float] | None = None) -> list[str]:
    """m and u of "nickname of the other name, same postcode" (``given_name__alias_pc``) given that the postcode
    agrees, as postcode_filter_given_postcode prices the filter levels: m = P(nickname | match), the date-salted
    nickname level's m over m(exact date); u = P(nickname | non-match at the same postcode), counted among unlikely
    pairs at one postcode where there are enough (``u_given``), else the sampled u over u(exact postcode), else
    the date-salted level's u over u(exact date). No EM session sees the level with its own evidence: it fires
    only where the dates differ or one is missing, and the sessions blocked on the postcode are dominated by
    households."""
    comparisons = {c.output_column_name: c for c in linker._settings_obj.comparisons}
    pc_exact = _trained_exact_level(comparisons, "postcode", u=True)
    dob_exact = _trained_exact_level(comparisons, "dob", m=True, u=True)
    done: list[str] = []
    for field in ("given_name", "surname"):
        comp = comparisons.get(field)
        by_label = {lvl.label_for_charts: lvl for lvl in comp.comparison_levels} if comp else {}
        lvl, twin = by_label.get(NICKNAME_PC_LABEL), by_label.get(NICKNAME_LABEL)
        if lvl is None:
            continue
        key = f"{field}: {NICKNAME_PC_LABEL}"
        priced = pc_exact is not None and dob_exact is not None and twin is not None and twin._m_is_trained
        if priced and u_given and key in u_given:
            pass  # set by u_given_postcode_from_unlikely_pairs
        elif priced and lvl._u_is_trained:
            lvl.u_probability = min(1.0, float(lvl.u_probability) / float(pc_exact.u_probability))
        elif priced and twin._u_is_trained:
            lvl.u_probability = min(1.0, float(twin.u_probability) / float(dob_exact.u_probability))
        else:
            # Nothing to price it by. An EM session blocked on the date can still have trained its m from a
            # few pairs, and fix_untrained_levels leaves a level with a trained m alone: neutral, not Splink's
            # placeholder u of 1e-6 (about +12 bits for a nickname at one address).
            if lvl._m_is_trained and not lvl._u_is_trained:
                lvl.u_probability = lvl.m_probability
            continue
        lvl.m_probability = min(1.0, float(twin.m_probability) / float(dob_exact.m_probability))
        done.append(key)
    return done


def near_postcode_params(linker: Linker) -> bool:
    """m and u of "same full name, postcode one typo apart": m = P(same full name | match)
    (full_name_m_from_exact_levels),
    u = the sampled u of "same full name, same postcode" (or the level's own, where EM and sampling saw it).

    No EM session can train it: it fires only where the postcode and the date both differ, which no session
    blocked on an equal postcode shows, and Splink trains on plain joins only (the list would need exploding).
    The name evidence is the same as at an equal postcode; the postcode comparison prices the typo (its "one
    edit apart" level instead of its exact level). Deriving it instead from u(exact) x u(one edit) / u(exact
    postcode) gave ~5 bits on FEBRL3, below the pairs it exists for (random sampling overstates the u of such
    rare levels: its pairs include duplicates)."""
    comparisons = {c.output_column_name: c for c in linker._settings_obj.comparisons}
    full = comparisons.get("full_name")
    if full is None:
        return False
    by_label = {lvl.label_for_charts: lvl for lvl in full.comparison_levels}
    near, same = by_label.get(FULL_NEAR_PC_LABEL), by_label.get(FULL_PC_LABEL)
    if near is None or same is None:
        return False
    share = full_name_m_from_exact_levels(comparisons)
    if near._m_is_trained and near._u_is_trained and share is not None:
        # An EM session saw it: its m is then the share of all matches that reach it through a postcode typo
        # and a date more than one error off, far below the name evidence. Its own sampled u stays.
        near.m_probability = share
        return True
    if near._m_is_trained or not (same._m_is_trained and same._u_is_trained):
        return False
    # m: P(same full name | match), as full_name_postcode_given_postcode prices the exact-postcode level later.
    # Copying that level's m from here copied EM's (FEBRL3 0.06 against 0.40: 12 bits instead of 14.7; 32 of
    # the 155 true pairs the profile lost against the unhardened one had the same full name, a postcode one typo
    # apart and another date). u: its sampled u, before that level is priced given the postcode (neighbours one
    # typo apart are not a household).
    near.m_probability = share if share is not None else float(same.m_probability)
    near.u_probability = float(same.u_probability)
    return True


def full_name_postcode_given_postcode(linker: Linker, u_given: dict[str, float] | None = None) -> bool:
    """m and u of "same full name, same postcode" given that the postcode agrees and the date differs:
    u = its sampled u / u(exact postcode), m = P(same full name | match).

    As for the postcode-salted filters (postcode_filter_given_postcode): the postcode comparison prices the
    address and the date comparison the other date, so this level must add only the name's evidence. With u
    unconditional a parent and child of one full name at one address scored about +12 bits here and +11.7 on
    the postcode (122 of the demo's 222 false pairs). EM's m is the share of date-differing matches that land
    here (same name, same postcode, and a date more than one error off, which the date comparison already
    prices: FEBRL3 0.06 against ~0.57 of matches with the same full name); m is instead the share of matches
    with each name the same (the date-salted exact levels' m over m(exact date)), names taken as independent.
    Runs after near_postcode_params, so "postcode one typo apart" keeps its values: there the postcode
    comparison prices a typo, not a shared address, and neighbours one typo apart are not a household.
    ``u_given``: levels whose u u_given_postcode_from_unlikely_pairs set (only m changes there)."""
    comparisons = {c.output_column_name: c for c in linker._settings_obj.comparisons}
    full, postcode = comparisons.get("full_name"), comparisons.get("postcode")
    if full is None or postcode is None:
        return False
    same = next((lvl for lvl in full.comparison_levels if lvl.label_for_charts == FULL_PC_LABEL), None)
    pc_exact = _trained_exact_level(comparisons, "postcode", u=True)
    if same is None or pc_exact is None:
        return False
    if f"full_name: {FULL_PC_LABEL}" not in (u_given or {}):  # else u is already given the postcode
        if not same._u_is_trained:
            return False
        same.u_probability = min(1.0, float(same.u_probability) / float(pc_exact.u_probability))
    names_m = full_name_m_from_exact_levels(comparisons)
    if names_m is not None:
        same.m_probability = names_m
    return True


def full_name_m_from_exact_levels(comparisons: dict[str, Any]) -> float | None:
    """P(same full name | match) from the date-salted exact levels: each name's m over m(exact date) (the share
    of matches with that name the same), the names taken as independent; None unless all three are trained."""
    exact = [_trained_exact_level(comparisons, f, m=True) for f in ("given_name", "surname", "dob")]
    if any(lvl is None for lvl in exact):
        return None
    given, surname, dob = (float(lvl.m_probability) for lvl in exact)
    return min(1.0, given / dob) * min(1.0, surname / dob)


def _unsalted_full_name_level(linker: Linker) -> Any:
    """The full-name comparison's level "same full name (no date or postcode in common)", or None."""
    full = next((c for c in linker._settings_obj.comparisons if c.output_column_name == "full_name"), None)
    return next((lvl for lvl in full.comparison_levels if lvl.label_for_charts == FULL_UNSALTED_LABEL),
                None) if full else None


#: Bounds of the Good-Turing estimate of how many other people hold a full name held by one person only.
SINGLETON_OTHERS_BOUNDS = (0.01, 1.0)


def full_name_person_tf(linker: Linker, leave_one_out: bool = True) -> dict[str, float] | None:
    """Term frequencies of the unsalted full name (``name__full``) counted over people, not records, registered
    with Splink in place of its own table; the level's u becomes the chance that two different people share a
    full name (the sum of the squared frequencies). Returns what it counted, or None (no such level, or the
    level is not term-frequency adjusted, or no exact date token to tell people apart).

    Splink's table counts records, so a rare name held by one person with three records looks three times as
    common as one held by a person with one: the level priced as common exactly the duplicates it is there to
    find (messy set: 74% of the pairs reaching it were matches, priced at ~8%). u is about non-matches, pairs of
    different people, so the frequency to use is the share of people holding the name. A person is a full name
    with an exact date token (same name and same date of birth: one person; twins of one full name are rare,
    and a date typo counts one person twice, which makes the name look a little commoner, the cautious side).
    Records without a date add no one to a name that has dated records: most are another record of someone
    already counted, and counting each as a person would bring back the duplicates (a fifth of the messy set's
    dates are missing); a name held only by undated records counts each of them as a person (nothing tells
    its holders apart: counting them as one priced thirty undated John Smiths as a unique name, enough to merge
    two of them on the name alone).

    ``leave_one_out``: the frequency is that of the *other* holders, (people - 1) / all people: the pair's own
    person is one of the name's holders whether or not the pair is a match, and a non-match needs a second one
    (counting the person itself priced a full name held by one person as if another held it: on the messy set
    the pairs at this level of a name of one person were 85% matches, priced at ~20%). For a name of one person
    that would be zero: Good-Turing's estimate of its other holders, 2 x (names of two people) / (names of one
    person), bounded by SINGLETON_OTHERS_BOUNDS, instead. u is then the level's mean over people."""
    level = _unsalted_full_name_level(linker)
    concat_cols = {c.strip('"`') for c in _concat_columns(linker)}
    if level is None or not level._has_tf_adjustments or not {"name__full", "dob__exact"} <= concat_cols:
        return None
    from splink.internals.pipeline import CTEPipeline
    from splink.internals.vertically_concatenate import enqueue_df_concat

    dialect = "spark" if linker._sql_dialect_str == "spark" else "duckdb"
    name, dob = ident("name__full", dialect), ident("dob__exact", dialect)
    tf_name = ident("tf_name__full", dialect)
    pipeline = CTEPipeline()
    pipeline = enqueue_df_concat(linker, pipeline)
    pipeline.enqueue_sql(f"SELECT {name}, CASE WHEN count({dob}) = 0 THEN count(*) ELSE count(DISTINCT {dob}) END "
                         f"AS people FROM __splink__df_concat "
                         f"WHERE {name} IS NOT NULL GROUP BY {name}", "__splink__full_name_people")
    if leave_one_out:
        low, high = SINGLETON_OTHERS_BOUNDS
        pipeline.enqueue_sql(
            f"SELECT sum(people) AS total, least(greatest(2.0 * sum(CASE WHEN people = 2 THEN 1 ELSE 0 END) / "
            f"greatest(sum(CASE WHEN people = 1 THEN 1 ELSE 0 END), 1), {low}), {high}) AS singleton_others "
            f"FROM __splink__full_name_people", "__splink__full_name_people_totals")
        pipeline.enqueue_sql(
            f"SELECT {name}, cast(people AS DOUBLE) / t.total AS share, CASE WHEN people > 1 THEN people - 1 "
            f"ELSE t.singleton_others END / t.total AS {tf_name} "
            f"FROM __splink__full_name_people CROSS JOIN __splink__full_name_people_totals AS t",
            "__splink__df_tf_name__full_people")
    else:
        pipeline.enqueue_sql(f"SELECT {name}, cast(people AS DOUBLE) / sum(people) OVER () AS share, "
                             f"cast(people AS DOUBLE) / sum(people) OVER () AS {tf_name} "
                             f"FROM __splink__full_name_people", "__splink__df_tf_name__full_people")
    lookup = linker._db_api.sql_pipeline_to_splink_dataframe(pipeline)
    stats = CTEPipeline([lookup])
    stats.enqueue_sql(f"SELECT count(*) AS names, sum(share * {tf_name}) AS u, max({tf_name}) AS top "
                      f"FROM {lookup.templated_name}", "__splink__full_name_people_stats")
    frame = linker._db_api.sql_pipeline_to_splink_dataframe(stats)
    row = frame.as_record_list()[0]
    frame.drop_table_from_database_and_remove_from_cache()
    if not row["names"]:
        lookup.drop_table_from_database_and_remove_from_cache()
        return None
    linker.table_management.register_term_frequency_lookup(lookup, "name__full")
    u = float(row["u"])
    level.u_probability = u
    out = {"names": int(row["names"]), "u": u, "commonest_share": float(row["top"])}
    log.info("unsalted full name: term frequencies over people %s", out)
    return out


#: Pairs sharing the exact date and postcode tokens below this count give no m (the exact levels' estimate).
MIN_SAME_DATE_POSTCODE_PAIRS = 200


def _each_pair_once(q: dict[str, str], concat_cols: set[str]) -> str:
    """The condition that keeps each unordered pair of a self-join of the concatenated table once: left before
    right in (source_dataset, identity_id) order, over those of the two columns the table has. ``q`` maps both
    names to quoted identifiers (the caller's quoting)."""
    uid = [c for c in ("source_dataset", "identity_id") if c in concat_cols]
    return " OR ".join(
        "(" + " AND ".join([*(f"l.{q[p]} = r.{q[p]}" for p in uid[:i]), f"l.{q[c]} < r.{q[c]}"]) + ")"
        for i, c in enumerate(uid))


def _counted_pair_conditions(q: dict[str, str], concat_cols: set[str], present: list[str]) -> list[str]:
    """WHERE conditions of the pairs the after-EM m counts read (full_name_unsalted_m, full_name_typo_params):
    each unordered pair once, both records holding ``present``, not one record's own identity rows, sex not
    recorded differently. ``q`` maps column names to quoted identifiers."""
    order = _each_pair_once(q, concat_cols)
    where = [f"({order})", *(f"{side}.{q[c]} IS NOT NULL" for c in present for side in ("l", "r"))]
    if "record_id" in concat_cols:
        same_source = (f"l.{q['source_dataset']} = r.{q['source_dataset']} AND "
                       if "source_dataset" in concat_cols else "")
        where.append(f"NOT ({same_source}l.{q['record_id']} = r.{q['record_id']})")
    if "sex__exact" in concat_cols:
        where.append(f"(l.{q['sex__exact']} IS NULL OR r.{q['sex__exact']} IS NULL "
                     f"OR l.{q['sex__exact']} = r.{q['sex__exact']})")
    return where


def full_name_unsalted_m(linker: Linker, min_pairs: int = MIN_SAME_DATE_POSTCODE_PAIRS) -> dict[str, float] | None:
    """m of "same full name (no date or postcode in common)": P(same full name | match), counted among pairs
    the linkage unit can be nearly sure of without the name, those with the same exact date token and the same
    exact postcode token (both present), and sex not recorded differently.

    No EM session trains this level well (it fires where date and postcode both differ or are missing, which
    no session blocked on them shows; an EM session drove its m to ~0 on the messy set); this count needs no
    independence assumption between the names, which the date-salted exact levels' estimate (each name's m over
    m(exact date)) makes. Pairs of one record's own identity rows (alias names)
    are left out. Non-matches among these pairs are mostly twins at one address (same date, same postcode,
    other given name); leaving out pairs whose sex differs drops half of them, the rest pull m down a little
    (the cautious side). Set even where an EM session trained it. With fewer than ``min_pairs`` such pairs, the
    exact levels' estimate (full_name_m_from_exact_levels) instead. Returns {"pairs", "agree", "m"} or None.
    Leaves m alone (None) while u is not priced (no person-count table and random sampling never saw the level):
    an m marks the level trained, and fix_untrained_levels would then leave Splink's placeholder u of 1e-6 (about
    +18 bits) in place."""
    level = _unsalted_full_name_level(linker)
    concat_cols = {c.strip('"`') for c in _concat_columns(linker)}
    if level is None or not level._u_is_trained or not {"name__full", "dob__exact", "postcode__exact"} <= concat_cols:
        return None
    from splink.internals.pipeline import CTEPipeline
    from splink.internals.vertically_concatenate import enqueue_df_concat

    dialect = "spark" if linker._sql_dialect_str == "spark" else "duckdb"
    q = {c: ident(c, dialect) for c in ("name__full", "dob__exact", "postcode__exact", "sex__exact", "record_id",
                                          "source_dataset", "identity_id")}
    where = _counted_pair_conditions(q, concat_cols, ["name__full"])
    pipeline = CTEPipeline()
    pipeline = enqueue_df_concat(linker, pipeline)
    pipeline.enqueue_sql(
        f"SELECT count(*) AS pairs, sum(CASE WHEN l.{q['name__full']} = r.{q['name__full']} THEN 1 ELSE 0 END) "
        f"AS agree FROM __splink__df_concat AS l JOIN __splink__df_concat AS r "
        f"ON l.{q['dob__exact']} = r.{q['dob__exact']} AND l.{q['postcode__exact']} = r.{q['postcode__exact']} "
        f"WHERE {' AND '.join(where)}", "__splink__same_date_postcode_names")
    frame = linker._db_api.sql_pipeline_to_splink_dataframe(pipeline)
    row = frame.as_record_list()[0]
    frame.drop_table_from_database_and_remove_from_cache()
    pairs, agree = int(row["pairs"] or 0), int(row["agree"] or 0)
    if pairs >= min_pairs and agree > 0:
        m = agree / pairs
    else:
        comparisons = {c.output_column_name: c for c in linker._settings_obj.comparisons}
        fallback = full_name_m_from_exact_levels(comparisons)
        if fallback is None:
            return None
        m = fallback
    level.m_probability = m
    out = {"pairs": pairs, "agree": agree, "m": m}
    log.info("unsalted full name: m from pairs with the same date and postcode %s", out)
    return out


#: Pairs at one postcode below this count give no u (the levels keep the sampled u's quotient).
MIN_UNLIKELY_PAIRS = 1000


def u_given_postcode_from_unlikely_pairs(linker: Linker, min_pairs: int = MIN_UNLIKELY_PAIRS) -> dict[str, float]:
    """u of each level priced given the postcode ("similar name, same postcode", "same full name, same postcode")
    counted among pairs at one postcode that are unlikely to be the same person: both dates of birth present and
    differing in the year and in the month and day (one typo or a day/month swap changes one of them, not both).

    The sampled u over u(exact postcode) estimates the same quantity, but random pairs at one postcode are often
    the same person where the data hold many records per person (messy set: the given-name filter's u 0.11
    against 0.0008 of non-matches in the clear data), which made the level too weak. Matches with a wholly
    wrong date remain among these pairs, and where few strangers share a postcode (FEBRL) they are most of those
    that agree: their expected count at each level is taken out, from the pairs at one postcode with the same
    date (nearly all matches), compared as if their dates differed (the date-salted tokens of one side blanked),
    times m(date wholly different) / m(exact date). u is the level's share of the pairs whose comparison is
    not null, as Splink's own u. Needs the date's exact, year and month-day tokens and a trained date
    comparison; without them, or with fewer than ``min_pairs`` such pairs, the levels keep the quotient."""
    settings = linker._settings_obj
    comparisons = {c.output_column_name: c for c in settings.comparisons}
    targets: dict[str, list[Any]] = {}
    for name, comp in comparisons.items():
        lvls = [lvl for lvl in comp.comparison_levels if lvl.label_for_charts.startswith(BLOOM_PC_PREFIX)
                or lvl.label_for_charts in (FULL_PC_LABEL, NICKNAME_PC_LABEL)]
        if lvls:
            targets[name] = lvls
    dialect = "spark" if linker._sql_dialect_str == "spark" else "duckdb"
    concat_cols = {c.strip('"`') for c in _concat_columns(linker)}
    dob = comparisons.get("dob")
    by_label = {lvl.label_for_charts: lvl for lvl in dob.comparison_levels} if dob else {}
    dob_exact, dob_else = by_label.get("Exact match on dob__exact"), by_label.get("All other comparisons")
    if (not targets or not {"postcode__exact", "dob__exact", "dob__year", "dob__md"} <= concat_cols
            or dob_exact is None or dob_else is None or not dob_exact._m_is_trained or not dob_else._m_is_trained
            or float(dob_exact.m_probability) <= 0):
        return {}
    wrong_date_share = float(dob_else.m_probability) / float(dob_exact.m_probability)
    from splink.internals.pipeline import CTEPipeline
    from splink.internals.vertically_concatenate import enqueue_df_concat

    order = _each_pair_once({c: ident(c, dialect) for c in ("source_dataset", "identity_id")}, concat_cols)
    # Term-frequency columns are not in the concatenated table (and no case statement reads them).
    columns = [c for c in settings._columns_to_select_for_blocking if '"tf_' not in c and "`tf_" not in c]
    cases = [comparisons[n]._case_statement for n in targets]
    pc, year, md, exact = (ident(c, dialect) for c in ("postcode__exact", "dob__year", "dob__md", "dob__exact"))
    join = (f"FROM __splink__df_concat AS l JOIN __splink__df_concat AS r ON l.{pc} = r.{pc} "
            f"WHERE ({order}) AND ")
    pipeline = CTEPipeline()
    pipeline = enqueue_df_concat(linker, pipeline)
    pipeline.enqueue_sql(f"SELECT {', '.join([*columns, *cases])} {join}l.{year} <> r.{year} AND l.{md} <> r.{md}",
                         "__splink__unlikely_pairs_cv")
    same_date = ", ".join([*(_blank_if_date_salted(c, dialect) for c in columns), *cases])
    pipeline.enqueue_sql(f"SELECT {same_date} {join}l.{exact} = r.{exact}", "__splink__same_date_pairs_cv")
    counts = " UNION ALL ".join(
        f"SELECT '{kind}' AS kind, '{n}' AS comparison, {comparisons[n]._gamma_column_name} AS gamma, count(*) AS n "
        f"FROM {table} GROUP BY {comparisons[n]._gamma_column_name}"
        for n in targets for kind, table in (("unlikely", "__splink__unlikely_pairs_cv"),
                                             ("same_date", "__splink__same_date_pairs_cv")))
    pipeline.enqueue_sql(counts, "__splink__unlikely_pairs_counts")
    frame = linker._db_api.sql_pipeline_to_splink_dataframe(pipeline)
    rows = frame.as_record_list()
    frame.drop_table_from_database_and_remove_from_cache()
    done: dict[str, float] = {}
    for name, lvls in targets.items():
        unlikely = {int(r["gamma"]): int(r["n"]) for r in rows if r["comparison"] == name and r["kind"] == "unlikely"}
        same = {int(r["gamma"]): int(r["n"]) for r in rows if r["comparison"] == name and r["kind"] == "same_date"}
        total = sum(n for g, n in unlikely.items() if g != -1)
        if total < min_pairs:
            continue
        matches = {g: n * wrong_date_share for g, n in same.items() if g != -1}
        non_matches = max(total - sum(matches.values()), total / 2)
        for lvl in lvls:
            g = lvl.comparison_vector_value
            # Half a pair when none is left: a level never seen among them is strong, not infinite.
            u = max(unlikely.get(g, 0) - matches.get(g, 0.0), 0.5) / non_matches
            lvl.u_probability = u
            done[f"{name}: {lvl.label_for_charts}"] = u
    if done:
        log.info("u given the postcode from unlikely pairs at one postcode: %s", done)
    return done


#: Token columns that do not depend on the date of birth (postcode-salted, or the postcode's own).
DATE_FREE_MARKERS = ("postcode__", "_pc", "pcbloom")


def _blank_if_date_salted(select: str, dialect: Dialect = "duckdb") -> str:
    """A right-hand column of a same-date pair compared as if the dates differed: a date-salted token (or the
    date's own) becomes NULL, which no agreement level matches; postcode-salted and postcode tokens stay."""
    if not select.startswith(('"r".', "`r`.", "r.")):
        return select
    if " AS " not in select:  # every right-hand column Splink selects is aliased: fail loudly if that changes
        raise ValueError(f"unexpected right-hand column select without an alias: {select}")
    expr, alias = (part.strip() for part in select.rsplit(" AS ", 1))
    alias = alias.strip('"`')
    column = alias[:-2] if alias.endswith("_r") else alias
    if column in ("identity_id", "source_dataset", "record_id") or any(m in column for m in DATE_FREE_MARKERS):
        return select
    # A NULL of the column's own type: Spark refuses an untyped NULL where a list is compared (arrays_overlap)
    return f"CASE WHEN FALSE THEN {expr} END AS {ident(alias, dialect)}"


def _concat_columns(linker: Linker) -> list[str]:
    from splink.internals.vertically_concatenate import concat_table_column_names

    return [str(getattr(c, "name", c)) for c in concat_table_column_names(linker)]


def fix_untrained_levels(linker: Linker, config: LinkConfig) -> list[str]:
    """Give every level EM never observed a safe m, instead of Splink's default (see splink-notes Gotcha 6)."""
    fixed = []
    floor = config.training.m_floor
    for comparison in linker._settings_obj.comparisons:
        for level in comparison.comparison_levels:
            if level.is_null_level or level._m_is_trained:
                continue
            u = level.u_probability if level._u_is_trained else None
            if config.training.unobserved_level_m == "neutral" and u is not None:
                level.m_probability = u
            else:
                level.m_probability = config.training.unobserved_fixed_m
                if u is None:
                    level.u_probability = config.training.unobserved_fixed_m
            fixed.append(f"{comparison.output_column_name}: {level.label_for_charts}")
    # Round parameters so parallel float sums cannot change the last bits, and so a rerun is identical.
    for comparison in linker._settings_obj.comparisons:
        for level in comparison.comparison_levels:
            if level.is_null_level:
                continue
            # EM can drive m to ~0 (no disagreeing match seen), which makes one disagreement a veto of 20+
            # bits; a floor keeps every single field overridable by the rest of the evidence.
            # Never above u: a floor must not turn a rare level into positive evidence.
            u = level.u_probability if level._u_is_trained else None
            level_floor = min(floor, u) if isinstance(u, float) else floor
            if isinstance(level.m_probability, float) and level.m_probability < level_floor:
                level.m_probability = level_floor
            for attr in ("m_probability", "u_probability"):
                value = getattr(level, attr)
                if isinstance(value, float) and value > 0:
                    setattr(level, attr, float(f"{value:.9g}"))
    prior = linker._settings_obj._probability_two_random_records_match
    if isinstance(prior, float) and math.isfinite(prior):
        linker._settings_obj._probability_two_random_records_match = float(f"{prior:.9g}")
    return fixed


def full_name_typo_params(linker: Linker, min_pairs: int = MIN_SAME_DATE_POSTCODE_PAIRS) -> dict[str, float] | None:
    """m and u of "full name within one edit (no date or postcode in common)" (``full_name__del1``), set after
    EM, which never sees the level (it fires only where date and postcode both fail). Returns what it counted,
    or None (no such level or columns, or too few pairs to count m from).

    m = P(full names one edit apart, not the same | match), counted as full_name_unsalted_m counts its m: among
    pairs with the same exact date and postcode tokens (sex not recorded differently, a record's own identity
    rows left out), the share whose deletion lists overlap and whose full-name tokens differ.
    u = the chance that two different people hold full names one edit apart (and not the same), from the data:
    people per full name as full_name_person_tf counts them (distinct exact date tokens; undated records each
    one where a name has no dated record), summed over pairs of different names sharing a deletion token,
    p_x p_y over all pairs of people. A typo'd record of someone counts as a person of the misspelt name, so
    matches raise u a little (the cautious side)."""
    full = next((c for c in linker._settings_obj.comparisons if c.output_column_name == FULL_TYPO_COMPARISON), None)
    level = next((lvl for lvl in full.comparison_levels if lvl.label_for_charts == FULL_TYPO_LABEL),
                 None) if full else None
    concat_cols = {c.strip('"`') for c in _concat_columns(linker)}
    needed = {"full_name__del1", "name__full", "dob__exact", "postcode__exact"}
    if level is None or not needed <= concat_cols:
        return None
    from splink.internals.pipeline import CTEPipeline
    from splink.internals.vertically_concatenate import enqueue_df_concat

    dialect = "spark" if linker._sql_dialect_str == "spark" else "duckdb"
    q = {c: ident(c, dialect) for c in ("full_name__del1", "name__full", "dob__exact", "postcode__exact",
                                          "sex__exact", "record_id", "source_dataset", "identity_id")}
    overlap = "list_has_any" if dialect == "duckdb" else "arrays_overlap"
    explode = "unnest" if dialect == "duckdb" else "explode"
    where = _counted_pair_conditions(q, concat_cols, ["name__full", "full_name__del1"])
    name, dob, lst = q["name__full"], q["dob__exact"], q["full_name__del1"]
    pipeline = CTEPipeline()
    pipeline = enqueue_df_concat(linker, pipeline)
    pipeline.enqueue_sql(
        f"SELECT count(*) AS pairs, sum(CASE WHEN l.{name} <> r.{name} AND {overlap}(l.{lst}, r.{lst}) THEN 1 "
        f"ELSE 0 END) AS agree FROM __splink__df_concat AS l JOIN __splink__df_concat AS r "
        f"ON l.{dob} = r.{dob} AND l.{q['postcode__exact']} = r.{q['postcode__exact']} "
        f"WHERE {' AND '.join(where)}", "__splink__same_date_postcode_typos")
    frame = linker._db_api.sql_pipeline_to_splink_dataframe(pipeline)
    m_row = frame.as_record_list()[0]
    frame.drop_table_from_database_and_remove_from_cache()
    pairs, agree = int(m_row["pairs"] or 0), int(m_row["agree"] or 0)
    if pairs < min_pairs or agree == 0:
        return None
    pipeline = CTEPipeline()
    pipeline = enqueue_df_concat(linker, pipeline)
    pipeline.enqueue_sql(f"SELECT {name} AS n, CASE WHEN count({dob}) = 0 THEN count(*) ELSE count(DISTINCT {dob}) "
                         f"END AS people FROM __splink__df_concat WHERE {name} IS NOT NULL AND {lst} IS NOT NULL "
                         f"GROUP BY {name}", "__splink__typo_people")
    pipeline.enqueue_sql(f"SELECT DISTINCT n, t FROM (SELECT {name} AS n, {explode}({lst}) AS t "
                         f"FROM __splink__df_concat WHERE {name} IS NOT NULL AND {lst} IS NOT NULL)",
                         "__splink__typo_tokens")
    pipeline.enqueue_sql("SELECT DISTINCT a.n AS x, b.n AS y FROM __splink__typo_tokens AS a "
                         "JOIN __splink__typo_tokens AS b ON a.t = b.t AND a.n < b.n", "__splink__typo_neighbours")
    pipeline.enqueue_sql(
        "SELECT (SELECT sum(cast(px.people AS DOUBLE) * py.people) FROM __splink__typo_neighbours AS e "
        "JOIN __splink__typo_people AS px ON e.x = px.n JOIN __splink__typo_people AS py ON e.y = py.n) "
        "AS neighbour_pairs, (SELECT sum(cast(people AS DOUBLE)) FROM __splink__typo_people) AS people",
        "__splink__typo_u")
    frame = linker._db_api.sql_pipeline_to_splink_dataframe(pipeline)
    u_row = frame.as_record_list()[0]
    frame.drop_table_from_database_and_remove_from_cache()
    people = float(u_row["people"] or 0.0)
    if people < 2:
        return None
    # Half a pair when none is seen: a level never seen among strangers is strong, not infinite.
    u = max(float(u_row["neighbour_pairs"] or 0.0), 0.5) / (people * (people - 1) / 2)
    m = agree / pairs
    level.u_probability = min(u, 1.0)
    level.m_probability = m
    out = {"pairs": pairs, "agree": agree, "m": m, "people": people,
           "neighbour_pairs": float(u_row["neighbour_pairs"] or 0.0), "u": float(level.u_probability)}
    log.info("full name within one edit: m from pairs with the same date and postcode, u from the data %s", out)
    return out


FULL_TYPO_COMPARISON = "full_name_typo"


def _full_name_typo_comparison(cols: set[str]) -> cl.CustomComparison | None:
    """"Full name within one edit (no date or postcode in common)" (``full_name__del1``), in a comparison of its
    own: neutral everywhere else.

    Not a level of the full-name comparison: to stay out of pairs whose date or postcode agrees (there the salted
    name tokens and postcode filters carry the names, and at one address near names are common: siblings) the
    level reads the exact date and postcode tokens, and Splink leaves a comparison out of every EM session blocked
    on a column it reads: the full-name comparison, trained only in the postcode + year session, would lose its
    near-date level. This one is priced after EM (full_name_typo_params); the same full name (``name__full``) and
    the same full name at the same postcode are left to their own levels."""
    if "full_name__del1" not in cols or not set(FULL_NAME_COMPOSITES) & cols:
        return None
    unless = [c for c in ("name__full", "dob__exact", "postcode__exact", "full_name__exact_pc") if c in cols]
    typo = ListOverlapUnlessLevel("full_name__del1", FULL_TYPO_LABEL, unless)
    levels: list[Any] = [OutsideLevel(typo, "full names not one edit apart, or a date or postcode in common"),
                         typo, cll.ElseLevel()]
    return cl.CustomComparison(comparison_levels=levels, output_column_name=FULL_TYPO_COMPARISON)


def _typo_cover(cols: set[str], config: LinkConfig) -> list[Any]:
    """For the name comparisons' covered-elsewhere level: the full names one edit apart with no date or postcode in
    common, so a pair at the full_name_typo comparison's level is neutral in the name comparisons (counted once)
    instead of "all other" in both (messy 10k: -2.7 and -2.6 bits at the median true pair).

    A name comparison cannot read the date or postcode tokens (Splink would leave it out of the EM sessions blocked
    on them), so they are read through the names: with full names one edit apart, one name is the same, and its
    date-salted exact token agrees where the dates do, its postcode-salted filter where the postcodes do."""
    if "full_name__del1" not in cols or not set(FULL_NAME_COMPOSITES) & cols:
        return []
    unless = [c for c in ("name__full", "given_name__exact", "surname__exact") if c in cols]
    t = max(config.comparisons.bloom_dice_thresholds)
    same_postcode = [_dice(f"{f}__pcbloom", t) for f in ("given_name", "surname") if f"{f}__pcbloom" in cols]
    return [ListOverlapUnlessLevel("full_name__del1", FULL_TYPO_LABEL, unless, same_postcode)]
