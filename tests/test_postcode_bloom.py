"""Postcode-salted Bloom filters (``bloom.postcode_layout``): the encoder emits them, the link model compares
them, and the audit suite attacks them within the groups co-released postcode tokens form; the attack
recovers most names from a deliberately weak variant (salted by district) and little from the real one."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from linkage.audit.attacks import bloom_cluster_attack
from linkage.audit.suite import risk_of
from linkage.config import PartnerConfig
from linkage.encode.bloom import BloomEncoder, dice
from linkage.encode.identifiers import IdentifierEncoder

KEY = bytes(range(32))  # fixed: the attacks' tie-breaks, and so the rates, are the same on every run
NAMES = ["smith", "jones", "taylor", "brown", "williams", "wilson", "johnson", "davies", "patel", "wright",
         "walker", "thompson", "robinson", "white", "hughes", "edwards", "green", "hall", "wood", "harris"]


def _token(value: str) -> str:
    return hashlib.blake2b(value.encode(), key=KEY, digest_size=16).hexdigest()


def _people(seed: int = 1, per_district: int = 600) -> pd.DataFrame:
    """Surname frequencies that differ by district (Zipf-like, shifted per district); 30 postcodes each."""
    rng = np.random.default_rng(seed)
    rows = []
    for d in range(6):
        weights = 1.0 / (1 + (np.arange(len(NAMES)) + 3 * d) % len(NAMES)) ** 1.2
        names = rng.choice(NAMES, size=per_district + 40 * d, p=weights / weights.sum())
        for i, s in enumerate(names):
            postcode = f"LE{d} {i % 3}A{rng.integers(0, 10)}"
            rows.append({"surname": s, "year": "2000", "sex": "M", "district": f"LE{d}",
                         "sector": postcode[:-2], "postcode": postcode})
    return pd.DataFrame(rows)


def _records(people: pd.DataFrame, salt: str) -> pd.DataFrame:
    """What the linkage unit holds: balanced filters salted with ``salt`` (a population column) and tokens."""
    enc = BloomEncoder(KEY, "p", "surname", 512, 15, 2, balanced=True)
    return pd.DataFrame({
        "surname__pcbloom": [enc.encode(s, salt=f"pc\x1f{v}") for s, v in zip(people.surname, people[salt],
                                                                                strict=True)],
        "postcode__district": [_token("d" + v) for v in people.district],
        "postcode__sector": [_token("s" + v) for v in people.sector],
        "postcode__exact": [_token("p" + v) for v in people.postcode]})


def _share(records: pd.DataFrame, guesses: dict, truth: pd.Series) -> float:
    return float((records["surname__pcbloom"].map(guesses) == truth).mean())


def _encoder(**bloom) -> IdentifierEncoder:
    cfg = PartnerConfig.model_validate({
        "project_id": "p", "source": "s", "local_id": "id",
        "identifiers": {"given_name": {"column": "g"}, "surname": {"column": "s"},
                        "date_of_birth": {"column": "d"}, "postcode": {"column": "pc"}},
        "encodings": {"name_variants": ["exact"], "name_token_salt": "dob",
                      "bloom": {"salt": "dob", "balanced": True, **bloom}}})
    return IdentifierEncoder(cfg, KEY)


def test_encoder_emits_postcode_salted_filters_only_when_asked():
    assert "surname__pcbloom" not in _encoder().columns
    enc = _encoder(postcode_layout=True)
    assert enc.columns["surname__pcbloom"] == {"field": "surname", "encoding": "bloom+balanced+salt-postcode",
                                                "type": "bloom"}
    rows = [("amy", "smith", "20050101", "LE1 1AA"), ("amy", "smyth", "19990909", "LE1 1AA"),
            ("amy", "smith", None, "LE2 2BB"), ("amy", "smith", "20050101", None)]
    cols = list(zip(*rows, strict=True))
    frame = {"given": pa.array(cols[0]), "surname": pa.array(cols[1]), "dob": pa.array(cols[2]),
             "dob_digits": pa.array(cols[2]), "pc_full": pa.array(cols[3]),
             "pc_sector": pa.array([p and p[:-2] for p in cols[3]]), "pc_district": pa.array([p and p[:3]
                                                                                           for p in cols[3]])}
    out = enc.encode(frame)["surname__pcbloom"].to_pylist()
    # Misspelt, other date of birth, same postcode: similar (the link's top Dice level is 0.8). Same name, no
    # date, other postcode: no more alike than two unrelated balanced filters (about 0.75: the complements).
    assert dice(out[0], out[1]) >= 0.8
    assert out[2] is not None and dice(out[0], out[2]) < 0.8
    assert out[3] is None                           # no postcode, no postcode-salted filter (never the plain name)
    date_salted = enc.encode(frame)["surname__bloom"].to_pylist()
    assert date_salted[0] != out[0] and date_salted[2] is None


def test_postcode_group_attack_reads_a_district_salt_and_not_a_postcode_salt():
    people = _people()
    weak = _records(people, "district")   # deliberately weak: one salt per district
    guesses = bloom_cluster_attack(weak, "surname__pcbloom", people, "surname", 2, 15, structured=False,
                                   conditions=("postcode__district",))
    assert _share(weak, guesses, people.surname) > 0.7
    strong = _records(people, "postcode")  # the shipped layout: salted with the full postcode
    for cond, min_group in ((("postcode__district",), 20), (("postcode__sector",), 2), (("postcode__exact",), 2)):
        guesses = bloom_cluster_attack(strong, "surname__pcbloom", people, "surname", 2, 15, structured=False,
                                       conditions=cond, min_group=min_group)
        assert _share(strong, guesses, people.surname) < 0.3, cond


def test_suite_attacks_postcode_salted_filters_within_postcode_groups():
    from linkage.audit.suite import Part, run_suite

    people = _people()
    records = _records(people, "district")
    truth = {"surname__pcbloom": dict(zip(records["surname__pcbloom"], people.surname, strict=True))}
    columns = {c: {"field": c.split("__")[0], "encoding": "exact", "type": "token"} for c in records.columns}
    columns["surname__pcbloom"] = {"field": "surname", "encoding": "bloom+balanced+salt-postcode", "type": "bloom"}
    rows = [r for r in run_suite([Part("police", records, columns, {"ngram": 2, "hashes": 15}, truth)], people)
            if r["column"] == "surname__pcbloom"]
    attacks = {r["attack"] for r in rows}
    assert {"similarity clustering + pattern mining | postcode district",
            "similarity clustering + pattern mining | postcode"} <= attacks
    assert max(r["records_reidentified_share"] for r in rows) > 0.7
    # The grouping alone guesses part of it; the gate counts only the rest, and that still exposes the weak salt.
    grouped = [r for r in rows if "|" in r["attack"]]
    assert grouped and all(r["excess_share"] <= r["records_reidentified_share"] for r in grouped)
    assert max(risk_of(r) for r in grouped) > 0.3  # three times the release threshold


def test_the_gate_counts_a_group_attack_above_what_the_grouping_alone_gives():
    from linkage.audit.attacks import group_baseline_guesses

    # Postcode k holds k + 2 people: one surname twice, the others once (distinct group sizes, so the attacker's
    # frequency alignment of the postcode tokens is right). Knowing who lives where, guessing each postcode's
    # commonest name gets the repeated name's two records right, whatever the filters say.
    rows = []
    for k in range(12):
        names = [NAMES[k]] * 2 + [NAMES[(k + j) % len(NAMES)] + str(j) for j in range(1, k + 1)]
        rows += [{"surname": n, "year": "2000", "sex": "M", "district": "LE1", "sector": f"LE1 {k}",
                  "postcode": f"LE1 {k}AA"} for n in names]
    people = pd.DataFrame(rows)
    records = _records(people, "postcode")
    guesses = group_baseline_guesses(records, "surname__pcbloom", people, "surname", ("postcode__exact",), 2)
    assert _share(records, guesses, people.surname) == pytest.approx(24 / len(people))
    # The gate counts, record by record, what an attack names beyond that: a record the baseline names and the
    # attack misses does not cancel one the attack names and the baseline misses.
    assert risk_of({"records_reidentified_share": 0.10, "baseline_share": 0.22, "excess_share": 0.04}) == 0.04
    assert risk_of({"records_reidentified_share": 0.30}) == 0.30  # other attacks: the share itself


def test_balanced_filters_get_the_balanced_equivalent_of_each_dice_threshold():
    import duckdb
    from splink.internals.dialects import SplinkDialect

    from linkage.link.levels import BloomDiceLevel

    enc = BloomEncoder(KEY, "p", "surname", 512, 15, 2, balanced=True)
    plain = BloomEncoder(KEY, "p", "surname", 1024, 15, 2)   # same stored length, not balanced
    pairs = {"similar": ("dooley", "doolqey"), "unrelated": ("dooley", "hoffman")}

    def passes(encoder: BloomEncoder, threshold: float, bound: bool) -> dict[str, bool]:
        level = BloomDiceLevel("s__bloom", threshold, 128 if bound else None)
        sql = level.create_sql(SplinkDialect.from_string("duckdb"))
        out = {}
        for kind, (a, b) in pairs.items():
            fa, fb = encoder.encode(a), encoder.encode(b)
            assert fa is not None and fb is not None
            bits = ["'" + "".join(f"{x:08b}" for x in f) + "'::BIT" for f in (fa, fb)]
            row = (f"SELECT {bits[0]} AS s__bloom_l, {bits[1]} AS s__bloom_r, "
                   f"bit_count({bits[0]}) AS s__bloom_pc_l, bit_count({bits[1]}) AS s__bloom_pc_r")
            out[kind] = bool(duckdb.sql(f"SELECT {sql} FROM ({row})").fetchall()[0][0])
        return out

    # Unbound (the old SQL): a balanced filter of an unrelated name passes the 0.6 level (Dice about 0.65).
    assert passes(enc, 0.6, bound=False)["unrelated"]
    for threshold in (0.8, 0.6):
        assert passes(enc, threshold, bound=True) == {"similar": True, "unrelated": False}, threshold
        assert passes(plain, threshold, bound=True) == {"similar": True, "unrelated": False}, threshold


def test_postcode_layout_needs_date_salted_filters():
    # the link model prices the postcode-salted level from the date-salted one (link.model.postcode_filter_u)
    import pytest
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="postcode_layout needs salt: dob"):
        _encoder(postcode_layout=True, salt=None)
