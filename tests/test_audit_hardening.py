"""Hardening options of the encoder: off by default, deterministic, and doing what they claim; plus the
attack building blocks (reference file, Bloom cryptanalysis, uniqueness) on hand-made data."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from linkage.audit.bloom_attack import bloom_attack
from linkage.audit.frequency import align, load_reference, transformed_reference
from linkage.audit.uniqueness import uniqueness
from linkage.config import PartnerConfig
from linkage.encode.bloom import BloomEncoder, dice
from linkage.encode.identifiers import IdentifierEncoder
from linkage.errors import LinkageInputError


def encoder(key: bytes, **encodings) -> IdentifierEncoder:
    cfg = PartnerConfig.model_validate({
        "project_id": "p", "source": "s", "local_id": "id",
        "identifiers": {"given_name": {"column": "g"}, "surname": {"column": "s"},
                        "date_of_birth": {"column": "d"}, "sex": {"column": "x"}, "postcode": {"column": "pc"}},
        "encodings": encodings})
    return IdentifierEncoder(cfg, key)


def clean_frame(rows: list[tuple]) -> dict[str, pa.Array]:
    cols = list(zip(*rows, strict=True))
    return {"given": pa.array(cols[0]), "surname": pa.array(cols[1]), "dob": pa.array(cols[2]),
            "dob_digits": pa.array(cols[2]),
            "sex": pa.array(cols[3]), "pc_full": pa.array(cols[4]),
            "pc_sector": pa.array([v and v[:-2] for v in cols[4]]),
            "pc_district": pa.array([v and v.split(" ")[0] for v in cols[4]])}


ROWS = [("amy", "patel", "20050101", "F", "LE1 1AA"), ("amy", "patel", "20050607", "F", "LE2 2BB"),
        ("amy", "patel", "20060101", "F", "LE1 1AA"), ("ben", "smith", None, "M", None)]


def test_explicit_defaults_change_nothing(key):
    plain = encoder(key).encode(clean_frame(ROWS))
    defaults = {"salt": None, "xor_fold": False, "balanced": False, "blip": 0.0}
    explicit = encoder(key, name_token_salt=None, bloom=defaults).encode(clean_frame(ROWS))
    assert plain.keys() == explicit.keys()
    assert all(plain[c].equals(explicit[c]) for c in plain)


def test_composite_tokens_agree_only_within_a_birth_year(key):
    out = encoder(key, name_token_salt="dob_year").encode(clean_frame(ROWS))
    surname = out["surname__exact"].to_pylist()
    assert surname[0] == surname[1] != surname[2]          # same year agrees, next year does not
    plain = encoder(key).encode(clean_frame(ROWS))["surname__exact"].to_pylist()
    assert surname[0] != plain[0]
    assert surname[3] is None                              # no year: no token (an unsalted name would leak)
    enc = encoder(key, name_token_salt="dob_year")
    assert enc.columns["surname__exact"]["encoding"] == "exact+dob_year"


def test_bloom_salt_blip_balance_fold(key):
    rows = clean_frame(ROWS)
    salted = encoder(key, bloom={"salt": "dob_year"}).encode(rows)["surname__bloom"].to_pylist()
    assert salted[0] == salted[1] and dice(salted[0], salted[2]) < 0.5
    blip = encoder(key, bloom={"blip": 0.1}).encode(rows)["surname__bloom"].to_pylist()
    assert blip == encoder(key, bloom={"blip": 0.1}).encode(rows)["surname__bloom"].to_pylist()  # keyed, repeatable
    assert blip[0] != blip[1]                              # same name, other person: other flips
    plain = encoder(key).encode(rows)["surname__bloom"].to_pylist()
    flipped = (int.from_bytes(blip[0], "big") ^ int.from_bytes(plain[0], "big")).bit_count()
    assert 20 < flipped < 90                               # about 10% of 512 bits
    balanced = encoder(key, bloom={"balanced": True}).encode(rows)["surname__bloom"].to_pylist()
    assert {len(b) for b in balanced if b} == {128}
    assert {int.from_bytes(b, "big").bit_count() for b in balanced if b} == {512}
    folded = encoder(key, bloom={"xor_fold": True})
    assert folded.arrow_types()["surname__bloom"] == pa.binary(32)
    assert folded.columns["surname__bloom"]["encoding"] == "bloom+fold"


def test_balanced_permutation_is_keyed(key):
    a = BloomEncoder(key, "p", "surname", 512, 15, 2, balanced=True).encode("patel")
    b = BloomEncoder(bytes(32), "p", "surname", 512, 15, 2, balanced=True).encode("patel")
    assert a != b and BloomEncoder(key, "p", "surname", 512, 15, 2, balanced=True).encode("patel") == a


def zipf_reference(n: int = 150) -> Counter:
    names = sorted(transformed_reference(load_reference(), "surname", "exact"),
                   key=lambda v: -transformed_reference(load_reference(), "surname", "exact")[v])[:n]
    return Counter({name: 1000.0 / (i + 1) for i, name in enumerate(names)})


def sample(reference: Counter, n: int, seed: int) -> list[str]:
    names, weights = zip(*reference.items(), strict=True)
    p = np.array(weights) / sum(weights)
    return list(np.random.default_rng(seed).choice(names, size=n, p=p))


def test_bloom_attack_reads_plain_filters_but_not_salted_ones():
    # Fixed key: the share decoded depends on frequency ties broken by filter bytes (0.4-0.76 over keys).
    key = bytes(range(32))
    ref = zipf_reference()
    people = sample(ref, 3000, seed=3)
    plain = BloomEncoder(key, "p", "surname", 512, 15, 2)
    filters = pd.Series([plain.encode(v) for v in people])
    truth = dict(zip(filters, people, strict=True))
    guesses = bloom_attack(filters, ref, ngram=2, hashes=15)
    right = {f for f, g in guesses.items() if truth[f] == g}
    assert filters.isin(right).mean() > 0.35
    years = np.random.default_rng(4).integers(1990, 2010, size=len(people))
    salted = pd.Series([plain.encode(v, salt=str(y)) for v, y in zip(people, years, strict=True)])
    truth = dict(zip(salted, people, strict=True))
    guesses = bloom_attack(salted, ref, ngram=2, hashes=15)
    assert salted.isin({f for f, g in guesses.items() if truth[f] == g}).mean() < 0.1


def test_align_pairs_ranks():
    assert align(Counter({"t1": 9, "t2": 5, "t3": 1}), Counter({"smith": 90, "jones": 40})) == \
        {"t1": "smith", "t2": "jones"}


def test_reference_file_errors(tmp_path):
    bad = tmp_path / "ref.csv"
    bad.write_text("field,value,weight\nsurname,Smith,lots\n")
    with pytest.raises(LinkageInputError, match="row 2.*weight"):
        load_reference(bad)
    with pytest.raises(LinkageInputError, match="not found"):
        load_reference(tmp_path / "missing.csv")
    shipped = load_reference()
    assert len(shipped["surname"]) > 150 and len(shipped["given_name"]) > 150


def test_uniqueness_counts():
    frame = pd.DataFrame({"dob__year": ["a", "a", "a", "b", "c"], "sex__exact": ["m"] * 5,
                          "postcode__district": ["x"] * 5, "surname__exact": ["s1", "s1", "s2", "s2", None]})
    by_name = {u["combination"]: u for u in uniqueness(frame)}
    u = by_name["year of birth + sex + postcode district"]
    assert u["unique_share"] == 0.4 and u["k_below_5_share"] == 1.0 and u["median_k"] == 3.0
    assert by_name["surname + year of birth"]["unique_share"] == 0.6
    assert "date of birth + sex + postcode district" not in by_name
