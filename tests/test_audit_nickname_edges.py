"""The attack on the cross-name edges of salted nickname lists: different but related names at one date or address
share their common forms, and the lists are public. It names most records where the salt groups are large (a weak
salt) and few where a salt holds one or two people; the suite runs it only on the nickname-list columns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from linkage.audit.nickname_edges import nickname_edge_attack, observed_edges, reference_overlaps
from linkage.encode.identifiers import IdentifierEncoder
from tests.test_audit_suite import nickname_encoder

# Nickname-related names (Bill / William / Robert / Bob, Peggy / Margaret, Tom / Thomas...) and two without nicknames.
GIVEN = ["william", "bill", "robert", "bob", "margaret", "peggy", "thomas", "tom", "james", "jim", "elizabeth", "liz",
         "beth", "chris", "christopher", "kate", "katherine", "zoe", "xavier"]


def encoder(**encodings) -> IdentifierEncoder:
    """Salted nickname lists, by the date and by the postcode."""
    return nickname_encoder(**{"name_token_salt": "dob", "name_postcode_alias_tokens": True, **encodings})


def people(n: int, dates: int, postcodes: int, seed: int = 3) -> pd.DataFrame:
    """Given names Zipf-weighted over GIVEN; each person on one of ``dates`` dates and ``postcodes`` postcodes."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, len(GIVEN) + 1)
    day = pd.Timestamp("1980-01-01") + pd.to_timedelta(rng.integers(0, dates, n), unit="D")
    return pd.DataFrame({"given_name": rng.choice(GIVEN, size=n, p=weights / weights.sum()),
                         "dob": day.strftime("%Y-%m-%d"),
                         "postcode": [f"LE{1 + k // 100} {k % 10}A{'ABDEFGHJLN'[k // 10 % 10]}"
                                      for k in rng.integers(0, postcodes, n)]})


def encoded(frame: pd.DataFrame) -> pd.DataFrame:
    enc = encoder()
    table = pa.table({"given": frame.given_name.tolist(), "surname": ["smith"] * len(frame),
                      "dob": frame.dob.tolist(), "postcode": frame.postcode.tolist()})
    clean, _ = enc.clean(table)
    out = enc.encode(clean)
    return pd.DataFrame({c: out[c].to_pylist() for c in ("given_name__alias", "given_name__alias_pc")})


def share(frame: pd.DataFrame, column: str) -> float:
    guesses = nickname_edge_attack(encoded(frame), column, frame, "given_name")
    return float((guesses == frame.given_name).mean())


def test_reference_overlaps_are_the_public_lists_shared_forms():
    a, b, c = reference_overlaps(["bill", "william", "robert", "zoe"])
    pairs = {(int(i), int(j)): int(k) for i, j, k in zip(a, b, c, strict=True)}
    assert pairs[(0, 1)] == pairs[(1, 0)] == 2   # bill and william share {bill, william}
    assert pairs[(1, 2)] == 2                    # william and robert share {bill, billy}
    assert not any(3 in p for p in pairs)        # zoe has no nickname


def test_edges_join_different_related_names_of_one_salt_only():
    frame = pd.DataFrame({"given_name": ["bill", "william", "william", "bill", "zoe"],
                          "dob": ["1980-01-01", "1980-01-01", "1990-05-05", "1980-01-01", "1980-01-01"],
                          "postcode": ["LE1 1AA"] * 5})
    codes, n_nodes, edges = observed_edges(encoded(frame)["given_name__alias"])
    assert codes[0] == codes[3] and n_nodes == 4       # the same name on one date: one list
    assert edges[["a", "b", "shared"]].values.tolist() == [[codes[0], codes[1], 2]]  # only Bill-William, 1980


@pytest.mark.parametrize("column, weak, realistic", [
    ("given_name__alias", dict(dates=4, postcodes=600), dict(dates=20000, postcodes=600)),
    ("given_name__alias_pc", dict(dates=20000, postcodes=4), dict(dates=20000, postcodes=2400)),
])
def test_edge_attack_names_most_records_of_large_salt_groups_and_few_of_small_ones(column, weak, realistic):
    # Four dates (or four addresses) for 1,200 people: every related name meets every other at each, so the
    # edges' counts and which lists meet name the lists. Dates over 55 years, or one person per two addresses:
    # few records meet a related name at all (here 11% at the addresses: nine in ten of these names are related,
    # far more than in a real population), and an edge's two names are a guess among the reference's pairs.
    strong = share(people(1200, **weak), column)
    weak_share = share(people(1200, **realistic), column)
    assert strong > 0.6
    assert weak_share < 0.1


def test_joint_naming_beats_per_list_guesses_in_large_groups():
    from linkage.audit import nickname_edges

    frame = people(1200, dates=4, postcodes=600)
    joint = share(frame, "given_name__alias")
    limit = nickname_edges.JOINT_MAX_NODES
    try:
        nickname_edges.JOINT_MAX_NODES = 0  # every component keeps its per-list guesses
        alone = share(frame, "given_name__alias")
    finally:
        nickname_edges.JOINT_MAX_NODES = limit
    assert joint > alone + 0.2


def test_suite_runs_the_edge_attack_on_nickname_lists_only_and_the_gate_counts_it():
    from linkage.audit.suite import Part, risk_of, run_suite, whole_list_keys

    frame = people(1200, dates=4, postcodes=600)
    records = encoded(frame)[["given_name__alias"]]
    truth = {"given_name__alias": dict(zip(whole_list_keys(records["given_name__alias"]), frame.given_name,
                                           strict=True))}
    columns = {"given_name__alias": {"field": "given_name", "encoding": "alias+dob", "type": "token_list"}}
    rows = run_suite([Part("police", records, columns, {}, truth)], frame)
    edge_rows = [r for r in rows if r["attack"].startswith("nickname-edge")]
    assert edge_rows and max(r["records_reidentified_share"] for r in edge_rows) > 0.6
    assert max(risk_of(r) for r in rows) == max(risk_of(r) for r in edge_rows)  # the gate's maximum is this attack
    # Without nickname lists the attack does not run (the shipped configs have none).
    exact = pd.DataFrame({"given_name__exact": [f"{g:0>32}"[-32:] for g in frame.given_name]})
    plain = {"given_name__exact": {"field": "given_name", "encoding": "exact", "type": "token"}}
    truth = {"given_name__exact": dict(zip(exact["given_name__exact"], frame.given_name, strict=True))}
    rows = run_suite([Part("police", exact, plain, {}, truth)], frame)
    assert rows and not [r for r in rows if r["attack"].startswith("nickname-edge")]
