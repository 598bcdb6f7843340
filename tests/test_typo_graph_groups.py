"""The deletion-graph attack within co-released groups (year of birth, sex, district): names tied overall but each
concentrated in one year are found within the year and not without it; names spread evenly over the years are not
found either way; and the suite runs and labels the grouped variants."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

from linkage.audit.suite import Part, run_suite
from linkage.audit.typo_graph import compact_lists, compact_one, deletion_graph_attacks, list_key
from linkage.encode.identifiers import FULL_NAME_TYPO_COUNT, full_name_typo_tokens
from linkage.encode.tokens import Tokeniser

KEY = bytes(range(32))
GIVEN = ["amy", "ben", "cara", "dev", "ella", "finn", "gita", "hugo", "isla", "jack", "kira", "liam"]
SURNAME = ["patel", "smith", "jones", "khan", "brown", "taylor", "wilson", "davies", "evans", "ahmed", "okafor",
           "nowak"]
NAMES = [" ".join(sorted((g, s))) for g, s in zip(GIVEN, SURNAME, strict=True)]  # twelve names, none one edit apart
YEARS = list(range(1980, 1980 + len(NAMES)))
FILLER = ["rhys ward", "rhys wards"]  # one edit apart (another colour), their counts make the year totals differ


def population(peaked: bool) -> pd.DataFrame:
    """Every name held by the same number of people overall (a tie: frequency alone cannot tell them apart).

    ``peaked``: name j is held by 20 people born in year j and one in each other year; otherwise by 3 in every
    year. Filler names add y + 1 people to year y so that the year tokens' frequencies give their years."""
    rows: list[tuple[str, int]] = []
    for j, name in enumerate(NAMES):
        for y, year in enumerate(YEARS):
            rows += [(name, year)] * ((20 if y == j else 1) if peaked else 3)
    for y, year in enumerate(YEARS):
        rows += [(FILLER[y % 2], year)] * (y + 1)
    frame = pd.DataFrame(rows, columns=["full_name", "year"])
    return frame.sample(frac=1.0, random_state=5).reset_index(drop=True)  # no file order to lean on


def encoded(people: pd.DataFrame) -> pd.DataFrame:
    """The padded (shipped) deletion lists and a keyed year token per record, as the linkage unit holds them."""
    tok = Tokeniser(KEY, "t", "full_name", "del1")
    year_tok = Tokeniser(KEY, "t", "dob", "year")
    lists = [full_name_typo_tokens(v.replace(" ", "\x1f"), tok, FULL_NAME_TYPO_COUNT) for v in people.full_name]
    return pd.DataFrame({"full_name__del1": compact_lists(pa.array(lists, pa.list_(pa.string()))),
                         "dob__year": [year_tok.token(str(y)) for y in people.year]})


def shares(people: pd.DataFrame) -> dict:
    records = encoded(people)
    assert {len(v) for v in records["full_name__del1"]} == {FULL_NAME_TYPO_COUNT}  # padded: the size tells nothing
    guesses = deletion_graph_attacks(records, "full_name__del1", people, rounds=(0, 2),
                                     condition_sets=((), ("dob__year",)))
    return {k: float((g == people.full_name).mean()) for k, g in guesses.items()}


def test_names_tied_overall_are_found_within_their_year():
    found = shares(population(peaked=True))
    for rounds in (0, 2):
        # overall every name is held by 31 people: alignment is a lottery among twelve (fillers aside)
        assert found[(rounds, (), False)] < 0.35
        # within each year one name stands out (20 of 33 records, with the filler)
        assert found[(rounds, ("dob__year",), False)] > 0.6
        assert found[(rounds, ("dob__year",), False)] > found[(rounds, (), False)] + 0.3
        # and its records in the other years follow it when a list's records vote
        assert found[(rounds, ("dob__year",), True)] > found[(rounds, ("dob__year",), False)] + 0.1


def test_names_spread_evenly_over_years_are_not_found_within_them_either():
    people = population(peaked=False)
    found = shares(people)
    filler = float(people.full_name.isin(FILLER).mean())  # the two filler names are told apart by their counts
    for rounds in (0, 2):
        assert found[(rounds, ("dob__year",), False)] < filler + 0.2
        assert found[(rounds, ("dob__year",), True)] < filler + 0.2
        assert found[(rounds, (), False)] < filler + 0.2


def test_suite_runs_and_labels_the_grouped_graph_attack():
    people = population(peaked=True)
    records = encoded(people)
    tok = Tokeniser(KEY, "t", "full_name", "del1")
    truth = {"full_name__del1": {
        str(list_key(compact_one(full_name_typo_tokens(v.replace(" ", "\x1f"), tok, FULL_NAME_TYPO_COUNT)))): v
        for v in set(people.full_name)}}
    columns = {"full_name__del1": {"field": "full_name", "encoding": "del1", "type": "token_list"},
               "dob__year": {"field": "dob", "encoding": "year", "type": "token"}}
    rows = run_suite([Part("police", records, columns, {}, truth)], people)
    graph = {r["attack"]: r["records_reidentified_share"] for r in rows if r["column"] == "full_name__del1"
             and r["attack"].startswith("deletion-graph")}
    assert graph["deletion-graph matching (2 refinement rounds) | dob year"] > 0.6
    assert graph["deletion-graph matching (2 refinement rounds)"] < 0.35
    assert graph["deletion-graph matching (2 refinement rounds) | dob year, one guess per list"] > 0.85
    # the grouping's own share is reported beside the grouped rows (the gate still counts the whole share)
    grouped = [r for r in rows if r["attack"].startswith("deletion-graph") and "|" in r["attack"]]
    assert grouped and all(0.0 <= r["grouping_baseline_share"] <= 1.0 for r in grouped)
