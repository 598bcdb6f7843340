"""The full name's deletion neighbourhood (``full_name_typo_tokens``, column ``full_name__del1``): two records share
a token exactly when their full names are within one edit; the list is padded so its size does not give the name's
length; the link model compares it only where no date or postcode agrees and prices it from the data; and the
audit's graph-matching attack recovers most names from a deliberately weak (unpadded) version of it."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from pydantic import ValidationError
from splink.internals.dialects import SplinkDialect

from linkage.audit.suite import Part, first_identities, run_suite
from linkage.audit.typo_graph import compact_lists, compact_one, deletion_graph_attack, list_key
from linkage.config import Encodings, PartnerConfig
from linkage.contracts.names import is_token_list_column
from linkage.encode.identifiers import FULL_NAME_TYPO_COUNT, IdentifierEncoder, full_name_typo_tokens
from linkage.encode.tokens import Tokeniser
from linkage.link.config import LinkConfig
from linkage.link.model import (
    DEFAULT_BLOCKING,
    FULL_TYPO_COMPARISON,
    FULL_TYPO_LABEL,
    build_settings,
    full_name_typo_params,
)
from tests.toy_linker import linker_of

KEY = bytes(range(32))
PROFILE = dict(name_variants=["exact"], name_token_salt="dob", name_dob_tolerant_tokens=True,
               name_postcode_tokens=True, composite_name="full", dob_variants=["exact"], postcode_variants=["exact"],
               bloom=None, shared_name_tokens=False, full_name_tokens=True, full_name_typo_tokens=True)


def encoder(**encodings) -> IdentifierEncoder:
    cfg = PartnerConfig.model_validate({
        "project_id": "t", "source": "s", "local_id": "id",
        "identifiers": {"given_name": {"column": "g"}, "surname": {"column": "s"},
                        "date_of_birth": {"column": "d", "formats": ["%Y%m%d"]}, "postcode": {"column": "p"}},
        "encodings": encodings})
    return IdentifierEncoder(cfg, KEY)


def lists_of(names: list[tuple[str, str]]) -> list[list[str] | None]:
    frame = {"given": pa.array([g for g, _ in names]), "surname": pa.array([s for _, s in names]),
             "dob": pa.array([None] * len(names), pa.string()), "pc_full": pa.array([None] * len(names), pa.string())}
    return encoder(**PROFILE).encode(frame)["full_name__del1"].to_pylist()


def test_option_needs_the_full_name_token_and_full_name_composites():
    with pytest.raises(ValidationError, match="full_name_typo_tokens"):
        Encodings(full_name_typo_tokens=True, composite_name="full")
    with pytest.raises(ValidationError, match="full_name_typo_tokens"):
        Encodings(full_name_typo_tokens=True, full_name_tokens=True)
    assert not Encodings().full_name_typo_tokens  # off by default
    assert encoder(**PROFILE).columns["full_name__del1"]["type"] == "token_list"
    assert is_token_list_column("full_name__del1") and ["full_name__del1"] in DEFAULT_BLOCKING  # exploded


def test_names_one_edit_apart_share_a_token_and_the_size_is_fixed():
    names = [("amy", "patel"), ("amy", "patal"), ("amy", "ptel"), ("amy", "pattel"), ("amy", "aptel"),
             ("patel", "amy"), ("amy", "pitul"), ("bo", "li"), ("amy", None),
             ("maximilianus", "fotheringham-smythe")]
    out = lists_of(names)
    base = set(out[0])
    assert base & set(out[1]) and base & set(out[2]) and base & set(out[3])  # substitution, deletion, insertion
    assert base & set(out[4])                                                 # adjacent transposition
    assert out[5] == out[0]                                                   # order-free
    assert not base & set(out[6]) and not base & set(out[7])                  # two edits, another name
    assert out[8] is None                                                     # no surname, no list
    assert {len(v) for v in out if v is not None} == {FULL_NAME_TYPO_COUNT}   # "bo li" and a 30-letter name alike
    weak = full_name_typo_tokens("bo\x1fli", Tokeniser(KEY, "t", "full_name", "del1"), size=None)
    assert weak is not None and len(weak) == 6  # unpadded: the size gives the length away


def test_level_fires_only_without_a_date_or_postcode_in_common():
    cols = {"given_name__exact", "surname__exact", "dob__exact", "postcode__exact", "full_name__near_dob",
            "full_name__exact_pc", "name__full", "full_name__del1"}
    settings = build_settings(cols, LinkConfig(), "dedupe_only", "")
    comp = next(c for c in settings.comparisons if c.create_output_column_name() == FULL_TYPO_COMPARISON)
    null, typo = comp.create_comparison_levels()[:2]
    dialect = SplinkDialect.from_string("duckdb")
    a, b, c = lists_of([("amy", "patel"), ("amy", "patal"), ("amy", "jones")])
    cases = [  # (same name token, same date, same postcode, lists) -> level fires
        (False, False, False, (a, b), True), (False, True, False, (a, b), False), (False, False, True, (a, b), False),
        (True, False, False, (a, a), False), (False, False, False, (a, c), False), (False, None, None, (a, b), True),
        (False, False, False, (a, None), False)]
    for same_name, same_date, same_pc, (left, right), fires in cases:
        def pair(same: bool | None, col: str) -> dict:
            return {f"{col}_l": None if same is None else "x", f"{col}_r": None if same is None else
                    ("x" if same else "y")}
        row = {**pair(same_name, "name__full"), **pair(same_date, "dob__exact"), **pair(same_pc, "postcode__exact"),
               **pair(False, "full_name__exact_pc"), "full_name__del1_l": left, "full_name__del1_r": right}
        frame = pa.table({k: pa.array([v], pa.list_(pa.string()) if k.startswith("full_name__del1")
                                       else pa.string()) for k, v in row.items()})
        with duckdb.connect() as con:
            con.register("t", frame)
            got = con.execute(f"SELECT ({typo.create_sql(dialect)}) IS TRUE, ({null.create_sql(dialect)}) IS TRUE "
                              "FROM t").fetchall()[0]
        assert got == (fires, not fires), (same_name, same_date, same_pc, fires)
    assert typo.create_label_for_charts() == FULL_TYPO_LABEL


def test_parameters_from_the_data():
    tok = Tokeniser(KEY, "t", "full_name", "del1")
    people = [("amy\x1fpatel", "d1", "p1"), ("amy\x1fpatal", "d1", "p1"),   # a match with a typo: agrees
              ("amy\x1fpatel", "d2", "p2"), ("amy\x1fpatel", "d2", "p2"),   # a match, same name: does not
              ("bo\x1fli", "d3", "p3"), ("bo\x1fly", "d4", "p4"), ("cy\x1fwu", "d5", "p5")]
    df = pd.DataFrame({"identity_id": [f"r{i}" for i in range(len(people))],
                       "record_id": [f"r{i}" for i in range(len(people))],
                       "name__full": [n for n, _, _ in people], "dob__exact": [d for _, d, _ in people],
                       "postcode__exact": [p for _, _, p in people],
                       "full_name__del1": [full_name_typo_tokens(n, tok) for n, _, _ in people],
                       "full_name__exact_pc": [n + p for n, _, p in people]})
    cols = set(df.columns) - {"identity_id", "record_id"}
    linker = linker_of(df, cols)
    assert full_name_typo_params(linker, min_pairs=5) is None  # two such pairs: too few to count m from
    out = full_name_typo_params(linker, min_pairs=2)
    assert out is not None and (out["pairs"], out["agree"]) == (2, 1) and out["m"] == 0.5
    # people per name: amy patel 2 (dates d1, d2), amy patal 1, bo li 1, bo ly 1, cy wu 1 -> 6 people, 15 pairs;
    # names one edit apart: patel~patal (2 x 1), li~ly (1 x 1) -> 3 pairs of people
    assert out["people"] == 6 and out["u"] == pytest.approx(3 / 15)
    comp = next(c for c in linker._settings_obj.comparisons if c.output_column_name == FULL_TYPO_COMPARISON)
    level = next(lvl for lvl in comp.comparison_levels if lvl.label_for_charts == FULL_TYPO_LABEL)
    assert (level.m_probability, level.u_probability) == pytest.approx((0.5, 3 / 15))


def typo_population(seed: int = 3) -> pd.DataFrame:
    """Full names with Zipf-like counts and, for many, a misspelt variant held by one or two records."""
    rng = np.random.default_rng(seed)
    given = ["amy", "ben", "cara", "dev", "ella", "finn", "gita", "hugo", "isla", "jack", "kira", "liam"]
    surname = ["patel", "smith", "jones", "khan", "brown", "taylor", "wilson", "davies", "evans", "ahmed"]
    rows: list[str] = []
    bases = [f"{g} {s}" for g in given for s in surname]
    rng.shuffle(bases)
    for rank, name in enumerate(bases[:80]):
        rows += [name] * max(1, int(30 / (1 + rank) ** 0.8))
        if rank % 2 == 0:  # a typo variant: one letter of the surname dropped or changed
            g, s = name.split(" ")
            i = int(rng.integers(0, len(s)))
            s2 = s[:i] + ("" if rank % 4 else "z") + s[i + 1:]
            rows += [f"{g} {s2}"] * int(rng.integers(1, 3))
    return pd.DataFrame({"full_name": [" ".join(sorted(v.split(" "))) for v in rows]})


def weak_records(people: pd.DataFrame, padded: bool) -> pd.DataFrame:
    tok = Tokeniser(KEY, "t", "full_name", "del1")
    lists = [full_name_typo_tokens(v.replace(" ", "\x1f"), tok, FULL_NAME_TYPO_COUNT if padded else None)
             for v in people.full_name]
    return pd.DataFrame({"full_name__del1": compact_lists(pa.array(lists, pa.list_(pa.string())))})


def test_graph_matching_recovers_most_names_from_unpadded_lists():
    people = typo_population()
    weak = weak_records(people, padded=False)
    guesses = deletion_graph_attack(weak, "full_name__del1", people, rounds=2)
    assert float((guesses == people.full_name).mean()) > 0.5
    # The same names padded: the size no longer splits them, the attack reads structure and counts only
    padded = weak_records(people, padded=True)
    assert {len(v) for v in padded["full_name__del1"]} == {FULL_NAME_TYPO_COUNT}
    blind = deletion_graph_attack(padded, "full_name__del1", people, rounds=0)
    sized = deletion_graph_attack(weak, "full_name__del1", people, rounds=0)
    assert float((blind == people.full_name).mean()) < float((sized == people.full_name).mean())


def test_suite_attacks_the_column_and_scores_whole_lists(tmp_path):
    people = typo_population()
    weak = weak_records(people, padded=False)
    tok = Tokeniser(KEY, "t", "full_name", "del1")
    truth = {"full_name__del1": {str(list_key(compact_one(full_name_typo_tokens(v.replace(" ", "\x1f"), tok,
                                                                                None) or []))): v
                                 for v in people.full_name}}
    columns = {"full_name__del1": {"field": "full_name", "encoding": "del1", "type": "token_list"}}
    rows = run_suite([Part("police", weak, columns, {}, truth)], people)
    graph = [r for r in rows if r["column"] == "full_name__del1" and r["attack"].startswith("deletion-graph")]
    freq = [r for r in rows if r["column"] == "full_name__del1" and r["attack"].startswith("frequency")]
    assert graph and freq and max(r["records_reidentified_share"] for r in graph) > 0.5
    # the loader keeps such lists as 64-bit integers, one row per record
    lists = pa.array([full_name_typo_tokens("amy\x1fpatel", tok), None], pa.list_(pa.string()))
    path = tmp_path / "tokens.parquet"
    pa.parquet.write_table(pa.table({"record_id": ["a", "b"], "full_name__del1": lists}), path)
    frame = first_identities(path, columns)
    assert isinstance(frame["full_name__del1"][0], np.ndarray) and frame["full_name__del1"][1] is None
    assert list_key(frame["full_name__del1"][0]) == list_key(compact_one(lists[0].as_py()))


def test_name_comparisons_are_neutral_at_the_level_and_read_date_and_postcode_through_the_names():
    from linkage.link.levels import bind_bloom_sizes, bloom_levels

    cols = {"given_name__exact", "surname__exact", "dob__exact", "postcode__exact", "full_name__near_dob",
            "full_name__exact_pc", "name__full", "full_name__del1", "given_name__pcbloom", "surname__pcbloom",
            "given_name__pcbloom_pc", "surname__pcbloom_pc"}
    settings = build_settings(cols, LinkConfig(), "dedupe_only", "")
    given = next(c for c in settings.comparisons if c.create_output_column_name() == "given_name")
    dialect = SplinkDialect.from_string("duckdb")
    covered = given.create_comparison_levels()[0]
    # The name comparisons never read the date or postcode tokens (Splink would drop them from those EM sessions).
    nested = bloom_levels(settings.comparisons)
    bind_bloom_sizes(settings.comparisons, {c: 64 for c in cols if c.endswith("pcbloom")})
    sql = covered.create_sql(dialect)
    assert "full_name__del1" in sql and "dob__exact" not in sql and "postcode__exact" not in sql
    assert "surname__pcbloom" in sql and all(lvl.n_bytes == 64 for lvl in nested)  # nested Dice levels are bound

