"""The attack suite: each attack recovers most names from a deliberately weak encoding on a fixed key and
fails against the defence meant for it; the encoder's new hardening does what it claims."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from linkage.audit.attacks import (
    bloom_cluster_attack,
    cluster_filters,
    conditioned_frequency_attack,
    deletion_list_size,
    row_order_attack,
)
from linkage.audit.bloom_attack import bloom_attack
from linkage.audit.frequency import transformed_reference
from linkage.audit.suite import risk_of
from linkage.config import PartnerConfig
from linkage.encode.bloom import BloomEncoder, dice
from linkage.encode.identifiers import IdentifierEncoder

KEY = bytes(range(32))  # fixed: the attacks' tie-breaks, and so the rates, are the same on every run
NAMES = ["smith", "jones", "taylor", "brown", "williams", "wilson", "johnson", "davies", "patel", "wright",
         "walker", "thompson", "robinson", "white", "hughes", "edwards", "green", "hall", "wood", "harris"]


def token(value: str) -> str:
    return hashlib.blake2b(value.encode(), key=KEY, digest_size=16).hexdigest()


def population(n: int, seed: int) -> pd.DataFrame:
    """People whose surname frequencies differ by birth year (Zipf-like, shifted per year); year sizes differ."""
    rng = np.random.default_rng(seed)
    rows = []
    for year in range(2000, 2006):
        shift = year - 2000
        weights = 1.0 / (1 + (np.arange(len(NAMES)) + shift) % len(NAMES)) ** 1.2
        names = rng.choice(NAMES, size=n * (4 + shift) // 39, p=weights / weights.sum())
        rows += [{"surname": s, "year": str(year), "sex": "F" if i % 2 else "M", "district": "LE1"}
                 for i, s in enumerate(names)]
    return pd.DataFrame(rows)


def as_records(people: pd.DataFrame, salted: bool) -> pd.DataFrame:
    """What the linkage unit holds: keyed tokens only (composite with the year when ``salted``)."""
    return pd.DataFrame({
        "surname__exact": [token(s + ("|" + y if salted else "")) for s, y in zip(people.surname, people.year,
                                                                                  strict=True)],
        "dob__year": [token("year" + y) for y in people.year],
        "sex__exact": [token("sex" + x) for x in people.sex],
        "postcode__district": [token("d" + d) for d in people.district]})


def reidentified(records: pd.DataFrame, column: str, guesses: dict, truth: pd.Series) -> float:
    return float((records[column].map(guesses) == truth).mean())


@pytest.fixture(scope="module")
def people() -> pd.DataFrame:
    return population(6000, 1)


def test_conditioned_alignment_reads_year_composite_tokens(people):
    weak = as_records(people, salted=True)   # the previous "hardened" idea: name + year of birth
    ident = lambda v: v  # noqa: E731
    plain = conditioned_frequency_attack(weak, "surname__exact", people, "surname", ident, ())
    by_year = conditioned_frequency_attack(weak, "surname__exact", people, "surname", ident, ("dob__year",))
    assert reidentified(weak, "surname__exact", by_year, people.surname) > 0.8   # most names recovered
    assert reidentified(weak, "surname__exact", plain, people.surname) < 0.5     # the old attack: far less
    # An independent population of the same kind (the realistic reference) still recovers most.
    other = population(6000, 2)
    realistic = conditioned_frequency_attack(weak, "surname__exact", other, "surname", ident, ("dob__year",))
    assert reidentified(weak, "surname__exact", realistic, people.surname) > 0.5


def test_composite_with_the_whole_date_leaves_no_frequency_to_align(people):
    rng = np.random.default_rng(3)
    days = [f"{rng.integers(1, 13):02d}{rng.integers(1, 29):02d}" for _ in range(len(people))]
    records = as_records(people, salted=False)
    records["surname__exact"] = [token(f"{s}|{y}{d}") for s, y, d in zip(people.surname, people.year, days,
                                                                          strict=True)]
    for cond in ((), ("dob__year",), ("dob__year", "sex__exact")):
        guesses = conditioned_frequency_attack(records, "surname__exact", people, "surname", lambda v: v, cond)
        assert reidentified(records, "surname__exact", guesses, people.surname) < 0.05


def test_list_size_splits_frequency_ties():
    # Two names, equally common: frequency alone cannot tell them apart; their list sizes can.
    people = pd.DataFrame({"surname": ["lee"] * 50 + ["robinson"] * 50, "year": "2000", "sex": "M",
                           "district": "LE1"})
    records = as_records(people, salted=False)
    records["surname__del1"] = [["x"] * deletion_list_size(s) for s in people.surname]  # what the column shows
    sized = conditioned_frequency_attack(records, "surname__exact", people, "surname", lambda v: v, (),
                                         size_column="surname__del1")
    assert reidentified(records, "surname__exact", sized, people.surname) == 1.0


def blip_filters(people: pd.DataFrame, rate: float, salt_with_date: bool = False) -> list[bytes]:
    enc = BloomEncoder(KEY, "p", "surname", 512, 15, 2, blip=rate)
    return [enc.encode(s, salt=f"{y}{i % 300}" if salt_with_date else None, context=str(i))
            for i, (s, y) in enumerate(zip(people.surname, people.year, strict=True))]


def test_similarity_clustering_defeats_blip(people):
    sample = people.iloc[::3].reset_index(drop=True)
    filters = blip_filters(sample, 0.02)
    records = as_records(sample, salted=False).assign(surname__bloom=filters)
    # Same name, other person: still close; other names: far apart.
    assert dice(filters[0], next(f for f, s in zip(filters[1:], sample.surname[1:], strict=True)
                                 if s == sample.surname[0])) > 0.8
    reference = transformed_reference({"surname": sample.surname.value_counts().to_dict()}, "surname", "exact")
    exact_repeats = bloom_attack(pd.Series(filters), reference, 2, 15)
    assert reidentified(records, "surname__bloom", exact_repeats, sample.surname) < 0.1  # BLIP stops the old attack
    clustered = bloom_cluster_attack(records, "surname__bloom", sample, "surname", 2, 15, structured=True)
    assert reidentified(records, "surname__bloom", clustered, sample.surname) > 0.7     # clustering does not
    # Salting with (nearly) the whole date of birth: no two filters of one name share positions any more.
    salted = as_records(sample, salted=False).assign(surname__bloom=blip_filters(sample, 0.02, True))
    guesses = bloom_cluster_attack(salted, "surname__bloom", sample, "surname", 2, 15, structured=True)
    assert reidentified(salted, "surname__bloom", guesses, sample.surname) < 0.1


def test_cluster_filters_groups_near_duplicates():
    enc = BloomEncoder(KEY, "p", "surname", 512, 15, 2, blip=0.03)
    filters = [enc.encode(n, context=str(i)) for n in ("smith", "jones", "brown") for i in range(20)]
    labels = cluster_filters(filters)
    assert len(set(labels)) == 3 and len(set(labels[:20])) == 1


def test_row_order_attack_reads_sorted_extracts_and_chance_otherwise(people):
    sorted_names = people.surname.sort_values().reset_index(drop=True)
    hit = row_order_attack(sorted_names, people.surname)
    assert hit["share"] > 0.8 and hit["share"] > 5 * hit["chance"]
    shuffled = people.surname.sample(frac=1, random_state=4).reset_index(drop=True)
    miss = row_order_attack(shuffled, people.surname)
    assert abs(miss["share"] - miss["chance"]) < 0.03
    row = {"records_with_value": len(people), "records_reidentified_share": miss["share"],
           "chance_share": miss["chance"], "initials_share": miss["initial_share"],
           "initials_chance": miss["initial_chance"]}
    assert risk_of(row) == 0.0
    assert risk_of({**row, "records_reidentified_share": hit["share"], "initials_share": hit["initial_share"]}) > 0.5


# --- encoder hardening ---------------------------------------------------------------------------------

def encoder(**encodings) -> IdentifierEncoder:
    cfg = PartnerConfig.model_validate({
        "project_id": "p", "source": "s", "local_id": "id",
        "identifiers": {"given_name": {"column": "g"}, "surname": {"column": "s"},
                        "date_of_birth": {"column": "d"}, "sex": {"column": "x"}, "postcode": {"column": "pc"}},
        "encodings": encodings})
    return IdentifierEncoder(cfg, KEY)


def clean(rows: list[tuple]) -> dict[str, pa.Array]:
    cols = list(zip(*rows, strict=True))
    return {"given": pa.array(cols[0]), "surname": pa.array(cols[1]), "dob": pa.array(cols[2]),
            "dob_digits": pa.array(cols[2]),
            "sex": pa.array(["F"] * len(rows)), "pc_full": pa.array(["LE1 1AA"] * len(rows)),
            "pc_sector": pa.array(["LE1 1"] * len(rows)), "pc_district": pa.array(["LE1"] * len(rows))}


ROWS = [("amy", "patel", "20050101"), ("amy", "patel", "20050101"), ("amy", "patel", "20050607"),
        ("bo", "li", "20050101")]


def test_date_of_birth_composites_agree_only_on_the_same_date():
    enc = encoder(name_variants=["exact", "del1"], name_token_salt="dob", pad_token_lists=24,
                  bloom={"salt": "dob", "balanced": True})
    out = enc.encode(clean(ROWS))
    surname = out["surname__exact"].to_pylist()
    assert surname[0] == surname[1] != surname[2]
    blooms = out["surname__bloom"].to_pylist()
    assert blooms[0] == blooms[1] and dice(blooms[0], blooms[2]) < 0.8
    assert enc.columns["surname__exact"]["encoding"] == "exact+dob"
    assert enc.columns["surname__bloom"]["encoding"] == "bloom+balanced+salt-dob"
    # Padded deletion lists: one size whatever the name's length; same name and date, same list.
    sizes = {len(v) for v in out["surname__del1"].to_pylist()}
    assert sizes == {24}
    assert out["surname__del1"].to_pylist()[0] == out["surname__del1"].to_pylist()[1]
    assert not set(out["surname__del1"].to_pylist()[0]) & set(out["surname__del1"].to_pylist()[3])


def test_shuffled_rows_do_not_follow_input_order(tmp_path):
    from linkage.encode import encode_extract

    cfg = PartnerConfig.model_validate({
        "project_id": "p", "source": "s", "local_id": "id",
        "identifiers": {"given_name": {"column": "g"}, "surname": {"column": "s"}},
        "encodings": {"shuffle_rows": True, "bloom": None}})
    names = sorted(NAMES)
    rows = [f"{i},ann,{n}" for i, n in enumerate(names)]
    for label, order in (("sorted", rows), ("reversed", rows[::-1])):
        (tmp_path / f"{label}.csv").write_text("id,g,s\n" + "\n".join(order) + "\n")
        encode_extract(cfg, KEY, tmp_path / f"{label}.csv", tmp_path / label, quiet=True)
    one = pd.read_parquet(tmp_path / "sorted" / "tokens.parquet")
    other = pd.read_parquet(tmp_path / "reversed" / "tokens.parquet")
    assert one["surname__exact"].tolist() == other["surname__exact"].tolist()  # order independent of the input
    plain = cfg.model_copy(update={"encodings": cfg.encodings.model_copy(update={"shuffle_rows": False})})
    encode_extract(plain, KEY, tmp_path / "sorted.csv", tmp_path / "plain", quiet=True)
    in_order = pd.read_parquet(tmp_path / "plain" / "tokens.parquet")["surname__exact"].tolist()
    assert in_order != one["surname__exact"].tolist() and sorted(in_order) == sorted(one["surname__exact"])


def test_suite_pools_partners_and_scores_each(people):
    from linkage.audit.suite import ALL_PARTNERS, Part, run_suite, strongest

    records = as_records(people, salted=True)
    truth = {"surname__exact": dict(zip(records["surname__exact"], people.surname, strict=True))}
    columns = {c: {"field": c.split("__")[0], "encoding": "exact+dob_year", "type": "token"}
               for c in records.columns}
    halves = [records.iloc[::2].reset_index(drop=True), records.iloc[1::2].reset_index(drop=True)]
    parts = [Part(name, half, columns, {}, truth) for name, half in zip(("police", "education"), halves,
                                                                         strict=True)]
    rows = run_suite(parts, people)
    best = strongest(rows)
    assert set(best) == {"police", "education", ALL_PARTNERS}
    assert all(best[p]["records_reidentified_share"] > 0.8 for p in best)  # the conditioned attack, pooled
    assert "dob year" in best[ALL_PARTNERS]["attack"]


def test_name_postcode_composite_survives_a_date_of_birth_error():
    enc = encoder(name_variants=["exact"], name_token_salt="dob", name_postcode_tokens=True)
    rows = [("amy", "patel", "20050101"), ("amy", "patel", "20050110"), ("amy", "patel", None)]
    frame = clean(rows)
    frame["pc_full"] = pa.array(["LE1 1AA", "LE1 1AA", None])
    out = enc.encode(frame)
    assert out["surname__exact"][0] != out["surname__exact"][1]            # date composites: the error splits them
    assert out["surname__exact_pc"][0] == out["surname__exact_pc"][1]      # the postcode composite still agrees
    assert out["surname__exact_pc"][2].as_py() is None
    assert enc.columns["given_name__exact_pc"]["encoding"] == "exact_pc+postcode"


def test_date_tolerant_salts_share_one_salt_across_one_error():
    from linkage.encode.matchkeys import SALT_COUNT, dob_tolerant_salts

    base = set(dob_tolerant_salts("20050317"))
    assert len(base) <= SALT_COUNT
    for other in ("20050318",   # one digit mistyped
                  "20051703",   # day and month swapped
                  "20050371",   # two adjacent digits swapped
                  "20040317",   # year off by one
                  "20060317"):
        assert base & set(dob_tolerant_salts(other)), other
    assert set(dob_tolerant_salts("19890317")) & set(dob_tolerant_salts("19900317"))  # across a decade
    for unrelated in ("20050529", "19950317", "19980420"):
        assert not base & set(dob_tolerant_salts(unrelated)), unrelated
    assert dob_tolerant_salts("2005031") == [] and dob_tolerant_salts("") == []


def test_date_tolerant_name_tokens_agree_across_a_date_error_and_have_one_size():
    enc = encoder(name_variants=["exact"], name_token_salt="dob", name_dob_tolerant_tokens=True)
    rows = [("amy", "patel", "20050101"), ("amy", "patel", "20050110"), ("amy", "patel", "20051006"),
            ("amy", "jones", "20050101"), ("amy", "li", "20050101"), ("amy", "patel", None)]
    out = enc.encode(clean(rows))
    near = out["surname__near_dob"].to_pylist()
    assert out["surname__exact"][0] != out["surname__exact"][1]           # whole-date composites split them
    assert set(near[0]) & set(near[1])                                    # one swapped digit pair: still agree
    assert not set(near[0]) & set(near[2]) and not set(near[0]) & set(near[3])
    assert {len(v) for v in near if v is not None} == {11}                # the size says nothing
    assert near[5] is None
    assert enc.columns["given_name__near_dob"] == {"field": "given_name", "encoding": "near_dob",
                                                   "type": "token_list"}


def list_records(people: pd.DataFrame, salt: pd.Series) -> pd.DataFrame:
    """Token-list composites of the surname with each of several salts per person (three per list)."""
    records = as_records(people, salted=False)
    records["surname__near_dob"] = [[token(f"{s}|{x}|{k}") for k in range(3)] for s, x in zip(people.surname, salt,
                                                                                             strict=True)]
    return records


def test_list_alignment_reads_coarse_composites_and_not_date_composites(people):
    from linkage.audit.attacks import list_frequency_attack

    weak = list_records(people, people.year)                      # weakened: salted with the year only
    guesses = list_frequency_attack(weak, "surname__near_dob", people, "surname", ("dob__year",))
    assert float((guesses == people.surname).mean()) > 0.8
    rng = np.random.default_rng(4)
    dates = people.year + pd.Series([f"{rng.integers(1, 13):02d}{rng.integers(1, 29):02d}"
                                     for _ in range(len(people))], index=people.index)
    strong = list_records(people, dates)                          # salted with the whole date (~ date window)
    for cond in ((), ("dob__year",), ("dob__year", "sex__exact")):
        guesses = list_frequency_attack(strong, "surname__near_dob", people, "surname", cond)
        assert float((guesses == people.surname).mean()) < 0.05


def test_suite_attacks_token_lists_and_scores_records(people):
    from linkage.audit.suite import Part, run_suite

    records = list_records(people, people.year)
    truth = {"surname__near_dob": {t: s for ts, s in zip(records["surname__near_dob"], people.surname, strict=True)
                                   for t in ts}}
    columns = {c: {"field": c.split("__")[0], "encoding": "x", "type": "token"} for c in records.columns}
    columns["surname__near_dob"] = {"field": "surname", "encoding": "near_dob", "type": "token_list"}
    rows = run_suite([Part("police", records, columns, {}, truth)], people)
    listed = [r for r in rows if r["column"] == "surname__near_dob"]
    assert listed and max(r["records_reidentified_share"] for r in listed) > 0.8


def test_a_missing_date_leaves_no_salted_name_behind(people):
    # Weakened (the old behaviour): a name "salted" with an empty date is the plain name; the attack on
    # the records without a date reads it like an unsalted column.
    weak = as_records(people, salted=False)
    guesses = conditioned_frequency_attack(weak, "surname__exact", people, "surname", lambda v: v, ("dob__year",))
    assert reidentified(weak, "surname__exact", guesses, people.surname) > 0.8
    enc = encoder(name_variants=["exact"], name_token_salt="dob", name_postcode_tokens=True,
                  bloom={"salt": "dob", "balanced": True})
    out = enc.encode(clean([("amy", "patel", "20050101"), ("amy", "patel", None)]))
    for col in ("surname__exact", "given_name__exact", "surname__bloom"):
        assert out[col][0].as_py() is not None and out[col][1].as_py() is None, col
    assert out["surname__exact_pc"][1].as_py() is not None  # the postcode composite still carries the name


def test_full_name_token_and_its_attack(people):
    from linkage.audit.suite import Part, run_suite

    enc = encoder(name_variants=["exact"], name_token_salt="dob", full_name_tokens=True)
    out = enc.encode(clean([("amy", "patel", "20050101"), ("amy", "patel", "19990101"), ("amy", "li", None)]))
    full = out["name__full"].to_pylist()
    assert full[0] == full[1] != full[2] and None not in full  # not composite with the date
    # A weak full-name column (few distinct full names) falls to the suite's alignment on field full_name.
    frame = people.assign(full_name="ann " + people.surname)
    records = as_records(frame, salted=False).rename(columns={"surname__exact": "name__full"})
    truth = {"name__full": dict(zip(records["name__full"], frame.full_name, strict=True))}
    columns = {c: {"field": c.split("__")[0], "encoding": "x", "type": "token"} for c in records.columns}
    columns["name__full"] = {"field": "name", "encoding": "full", "type": "token"}
    rows = run_suite([Part("police", records, columns, {}, truth)], frame)
    assert max(r["records_reidentified_share"] for r in rows if r["column"] == "name__full") > 0.8


def test_phonetic_postcode_composite_agrees_on_a_misspelling_at_one_address():
    enc = encoder(name_variants=["exact"], name_token_salt="dob", phonetic_postcode_tokens=True)
    frame = clean([("amy", "smith", "20050101"), ("amy", "smyth", "19990909"), ("amy", "smith", "20050101")])
    frame["pc_full"] = pa.array(["LE1 1AA", "LE1 1AA", "LE2 2BB"])
    out = enc.encode(frame)["surname__phonetic_pc"].to_pylist()
    assert out[0] == out[1] != out[2]


def test_shipped_profile_has_no_weak_setting_and_an_unsalted_name_is_named():
    from pathlib import Path

    import linkage
    from linkage.config import load_partner_config
    from linkage.encode.hardening import weak_encoding_reasons

    cfg = load_partner_config(Path(linkage.__file__).parent / "configs" / "partners" / "police.yaml")
    assert cfg.encodings.name_dob_tolerant_tokens and cfg.encodings.name_postcode_tokens
    assert cfg.encodings.full_name_tokens  # the full name alone: measured by the suite, part of the profile
    assert weak_encoding_reasons(cfg) == []
    plain = cfg.model_copy(update={"encodings": cfg.encodings.model_copy(update={"name_token_salt": None})})
    assert any("not composite with the date of birth" in r for r in weak_encoding_reasons(plain))


def test_list_size_of_unpadded_lists_splits_ties():
    from linkage.audit.attacks import list_frequency_attack

    # Two names, equally common, whose alias lists differ in length (what an unpadded alias column shows).
    people = pd.DataFrame({"surname": ["bill"] * 30 + ["zed"] * 30, "year": "2000", "sex": "M", "district": "LE1"})
    records = as_records(people, salted=False)
    sizes = {"bill": 3, "zed": 1}
    records["surname__alias"] = [[token(f"{s}{i}") for i in range(sizes[s])] for s in people.surname]
    blind = list_frequency_attack(records, "surname__alias", people, "surname", ())
    sized = list_frequency_attack(records, "surname__alias", people, "surname", (), list_size=sizes.__getitem__)
    assert float((sized == people.surname).mean()) == 1.0
    assert float((blind == people.surname).mean()) < 1.0


def dated_people(n: int, seed: int) -> pd.DataFrame:
    """People with Zipf-like surnames and a random date of birth in six years."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / (1 + np.arange(len(NAMES))) ** 1.1
    frame = pd.DataFrame({"surname": rng.choice(NAMES, size=n, p=weights / weights.sum()),
                          "year": rng.integers(2000, 2006, size=n).astype(str),
                          "month": [f"{m:02d}" for m in rng.integers(1, 13, size=n)],
                          "day": [f"{d:02d}" for d in rng.integers(1, 29, size=n)]})
    frame["sex"], frame["district"] = np.where(np.arange(n) % 2, "F", "M"), "LE1"
    return frame


def test_token_graph_chains_date_tolerant_composites_into_names():
    from linkage.audit.attacks import list_frequency_attack, token_graph_attack

    people = dated_people(4000, 3)
    records = as_records(people, salted=False).drop(columns="surname__exact")
    s, y, m, d = people.surname, people.year, people.month, people.day
    records["surname__exact"] = [token(f"{a}|{b}{c}{e}") for a, b, c, e in zip(s, y, m, d, strict=True)]
    # Weakened tolerant list: the name with day and month (any year), year and month (any day), year and
    # day (any month). Each token is rare (a few people), but chained they join everyone of one name.
    records["surname__near_dob"] = [[token(f"{a}|md{c}{e}"), token(f"{a}|ym{b}{c}"), token(f"{a}|yd{b}{e}")]
                                    for a, b, c, e in zip(s, y, m, d, strict=True)]
    graph = token_graph_attack(records, ["surname__exact", "surname__near_dob"], people, "surname")
    assert float((graph == people.surname).mean()) > 0.7  # the rarest names stay in fragments
    # The per-token list attack reads each token's small count on its own and mostly fails.
    per_token = list_frequency_attack(records, "surname__near_dob", people, "surname", ())
    assert float((per_token == people.surname).mean()) < 0.3
    # The defence it needs: composites that link only the same date (one person) leave no chains.
    records["surname__near_dob"] = [[token(f"{a}|md{b}{c}{e}")] for a, b, c, e in zip(s, y, m, d, strict=True)]
    graph = token_graph_attack(records, ["surname__exact", "surname__near_dob"], people, "surname")
    assert float((graph == people.surname).mean()) < 0.05


def test_vectorised_bloom_decoding_gives_the_same_names_as_filter_by_filter():
    from linkage.audit.bloom_attack import decode, decode_all, ngrams

    rng = np.random.default_rng(5)
    n_bits = 256
    names = NAMES + ["smyth", "jonas", "hughs", "wods"]
    grams = sorted({g for n in names for g in ngrams(n, 2)})
    positions = {g: int(sum(1 << int(b) for b in rng.choice(n_bits, 6, replace=False))) for g in grams}
    candidates = {n: sorted(ngrams(n, 2)) for n in names}
    filters = []
    for name in rng.choice(names, 300):
        bits = 0
        for g in ngrams(str(name), 2):
            bits |= positions[g]
        filters.append(bits ^ (1 << int(rng.integers(n_bits))) if rng.random() < 0.3 else bits)  # some noise
    one_by_one = {f: d for f in filters if (d := decode(f, positions, candidates)) is not None}
    assert len(set(one_by_one.values())) > len(names) // 2  # most names decode from their clean filter
    assert decode_all(filters, positions, candidates, n_bits, chunk=64) == one_by_one


GIVEN = [a + b for a in ("al", "be", "ca", "da", "el", "fi", "go", "ha", "is", "jo")
         for b in ("na", "ro", "mi", "th", "ly", "en", "ra", "ck", "ve", "so")]


def test_full_name_composites_defeat_the_token_sharing_graph():
    from linkage.audit.attacks import token_graph_attack

    rng = np.random.default_rng(11)
    n = 6000
    s_weights = 1.0 / (1 + np.arange(len(NAMES))) ** 1.1
    g_weights = 1.0 / (1 + np.arange(len(GIVEN))) ** 0.5
    people = pd.DataFrame({"given_name": rng.choice(GIVEN, size=n, p=g_weights / g_weights.sum()),
                           "surname": rng.choice(NAMES, size=n, p=s_weights / s_weights.sum())})
    people["full_name"] = people.given_name + " " + people.surname
    dates = [f"{y}{m:02d}{d:02d}" for y, m, d in zip(rng.integers(2000, 2006, size=n), rng.integers(1, 13, size=n),
                                                     rng.integers(1, 29, size=n), strict=True)]
    frame = clean(list(zip(people.given_name, people.surname, dates, strict=True)))
    frame["pc_full"] = pa.array([f"LE{k // 100} {k % 100}AA" for k in rng.integers(0, 2000, size=n)])

    def encoded(composite_name: str) -> pd.DataFrame:
        enc = encoder(name_variants=["exact"], name_token_salt="dob", name_dob_tolerant_tokens=True,
                      name_postcode_tokens=True, composite_name=composite_name)
        return pd.DataFrame({c: a.to_pylist() for c, a in enc.encode(dict(frame)).items()})

    # Weakened (per name, the old hardened profile): the lists of one surname chain into one component per
    # surname, whose size gives the surname away.
    each = encoded("each")
    assert "full_name__near_dob" not in each.columns
    graph = token_graph_attack(each, ["surname__exact", "surname__near_dob", "surname__exact_pc"], people, "surname")
    assert float((graph == people.surname).mean()) > 0.7
    # Built on the full name: a composite links only people of one full name, far too few to chain.
    full = encoded("full")
    assert "surname__near_dob" not in full.columns and "surname__exact_pc" not in full.columns
    graph = token_graph_attack(full, ["full_name__near_dob", "full_name__exact_pc"], people, "full_name")
    assert float((graph == people.full_name).mean()) < 0.1
    graph = token_graph_attack(full, ["surname__exact"], people, "surname")
    assert float((graph == people.surname).mean()) < 0.1
    # ...and the full-name composites still agree for one person whose date of birth has one digit mistyped
    one = encoder(name_variants=["exact"], name_token_salt="dob", name_dob_tolerant_tokens=True,
                  name_postcode_tokens=True, composite_name="full").encode(
        clean([("amy", "patel", "20050101"), ("amy", "patel", "20050107"), ("amy", "li", "20050101")]))
    near = one["full_name__near_dob"].to_pylist()
    assert set(near[0]) & set(near[1]) and not set(near[0]) & set(near[2])


def test_graph_attack_reads_every_column_that_links_one_name():
    from linkage.audit.suite import graph_columns

    enc = encoder(name_variants=["exact"], name_token_salt="dob", name_dob_tolerant_tokens=True,
                  name_postcode_tokens=True, composite_name="full",
                  bloom={"salt": "dob", "balanced": True, "postcode_layout": True})
    # equal salted filters (no BLIP) hold one name with one date / postcode: they link like composite tokens
    assert set(graph_columns(enc.columns, "surname")) == {"surname__exact", "surname__bloom", "surname__pcbloom"}
    assert set(graph_columns(enc.columns, "full_name")) == {"full_name__near_dob", "full_name__exact_pc"}
    blip = encoder(name_variants=["exact"], bloom={"salt": "dob", "blip": 0.02})
    assert graph_columns(blip.columns, "surname") == ["surname__exact"]


def nickname_encoder(**encodings) -> IdentifierEncoder:
    """An encoder of given name, surname, date and postcode with nickname lists (``encodings`` added or replaced)."""
    cfg = PartnerConfig.model_validate({
        "project_id": "p", "source": "s", "local_id": "id",
        "identifiers": {"given_name": {"column": "given"}, "surname": {"column": "surname"},
                        "date_of_birth": {"column": "dob", "formats": ["%Y-%m-%d"]},
                        "postcode": {"column": "postcode", "format": "uk"}},
        "encodings": {"name_variants": ["exact", "alias"], "bloom": None, "shared_name_tokens": False, **encodings}})
    return IdentifierEncoder(cfg, KEY)


def _encode_people(encoder: IdentifierEncoder, rows: list[tuple[str, str | None, str | None]]) -> dict[str, list]:
    table = pa.table({"given": [g for g, _, _ in rows], "surname": ["smith"] * len(rows),
                      "dob": [d or "" for _, d, _ in rows], "postcode": [p or "" for _, _, p in rows]})
    clean, _ = encoder.clean(table)
    return {name: column.to_pylist() for name, column in encoder.encode(clean).items()}


def test_salted_nickname_lists_compare_with_the_formal_name_on_the_same_date_and_have_one_size():
    from linkage.encode.evidence import name_aliases
    from linkage.encode.identifiers import ALIAS_COUNT

    rows = [("bill", "1980-01-01", None), ("william", "1980-01-01", None), ("william", "1990-05-05", None),
            ("zoe", "1980-01-01", None), ("chris", "1980-01-01", None), ("bill", None, None)]
    out = _encode_people(nickname_encoder(name_token_salt="dob"), rows)
    lists, exact = out["given_name__alias"], out["given_name__exact"]
    # the link's "nickname of the other name" level: the formal name's date-salted exact token is in the list
    assert exact[1] in lists[0] and exact[0] in lists[1]
    assert exact[2] not in lists[0]       # salted like the exact token: another date, other tokens
    assert exact[3] not in lists[0]
    # one size for a formal name, a nickname of four, and a nickname of 19 formal names: the size no longer
    # tells whether the name is a nickname, nor of how many names
    assert {len(v) for v in lists[:5]} == {ALIAS_COUNT}
    assert lists[5] is None and exact[5] is None    # no date, no salted name
    # none is trimmed: the name with most forms keeps them all, its own token and Christopher's among them
    # (a keyed subset of 12 lost Christopher at 37% of dates and postcodes)
    assert len(name_aliases("chris")) <= ALIAS_COUNT
    chris = _encode_people(nickname_encoder(name_token_salt="dob"),
                           [("chris", "1980-01-01", None), ("christopher", "1980-01-01", None)])
    assert {chris["given_name__exact"][0], chris["given_name__exact"][1]} <= set(chris["given_name__alias"][0])


def test_padded_nickname_lists_give_the_list_size_attack_nothing():
    from linkage.audit.attacks import list_frequency_attack
    from linkage.audit.suite import alias_count

    # Two given names, equally common, one a nickname of four names: an unpadded list's size tells them apart.
    people = pd.DataFrame({"given_name": ["bill"] * 30 + ["zoe"] * 30})
    rows = [(g, "1980-01-01", None) for g in people.given_name]

    def recovered(encoder: IdentifierEncoder, sized: bool = True) -> float:
        records = pd.DataFrame({"given_name__alias": _encode_people(encoder, rows)["given_name__alias"]})
        guesses = list_frequency_attack(records, "given_name__alias", people, "given_name", (),
                                        list_size=alias_count if sized else None)
        return float((guesses == people.given_name).mean())

    unpadded, padded = nickname_encoder(), nickname_encoder(name_token_salt="dob")
    assert recovered(unpadded) == 1.0 > recovered(unpadded, sized=False)   # unsalted, unpadded (accuracy profile)
    # salted and padded: one size for both, so the size adds nothing (the tie stays a coin toss)
    assert recovered(padded) == recovered(padded, sized=False) < 1.0


def test_list_attack_on_one_size_lists_does_not_split_the_reference_by_size():
    from linkage.audit.attacks import list_frequency_attack

    # Padded lists (one size, ALIAS_COUNT) of two unequally common names: the attacker aligns them with the whole
    # reference, not only with names whose own list would have that many tokens (there are none).
    people = pd.DataFrame({"surname": ["bill"] * 40 + ["zed"] * 20, "year": "2000", "sex": "M", "district": "LE1"})
    records = as_records(people, salted=False)
    records["surname__alias"] = [[token(f"{s}{i}") for i in range(12)] for s in people.surname]
    sized = list_frequency_attack(records, "surname__alias", people, "surname", (), list_size={"bill": 5, "zed": 1}.get)
    assert float((sized == people.surname).mean()) == 1.0


def test_list_attack_keeps_the_split_when_unpadded_lists_happen_to_share_one_size():
    from linkage.audit.attacks import list_frequency_attack

    # Unpadded one-token lists (an extract whose names have no nicknames) of the two names without nicknames:
    # the attacker keeps only the reference names whose own list has one token, so the commoner reference name
    # with nicknames ("bill", five forms) cannot take the commonest list.
    people = pd.DataFrame({"surname": ["bill"] * 50 + ["ann"] * 40 + ["zed"] * 20, "year": "2000", "sex": "M",
                           "district": "LE1"})
    extract = people[people.surname != "bill"].reset_index(drop=True)
    records = as_records(extract, salted=False)
    records["surname__alias"] = [[token(s)] for s in extract.surname]
    sizes = {"bill": 5, "ann": 1, "zed": 1}.get
    guessed = list_frequency_attack(records, "surname__alias", people, "surname", (), list_size=sizes)
    assert float((guessed == extract.surname).mean()) == 1.0
    unsplit = list_frequency_attack(records, "surname__alias", people, "surname", (), list_size=None)
    assert float((unsplit == extract.surname).mean()) < 1.0  # the whole reference puts bill first: wrong


def test_nickname_postcode_tokens_agree_at_one_address_only():
    from linkage.encode.identifiers import ALIAS_COUNT

    rows = [("bill", None, "LE1 1AA"), ("william", "1990-05-05", "LE1 1AA"), ("william", None, "LE2 2BB"),
            ("zoe", None, "LE1 1AA"), ("bill", "1980-01-01", None)]
    out = _encode_people(nickname_encoder(name_token_salt="dob", name_postcode_alias_tokens=True), rows)
    lists = out["given_name__alias_pc"]
    assert set(lists[0]) & set(lists[1])              # nickname and formal name, same postcode, date missing/other
    assert not set(lists[0]) & set(lists[2])          # another postcode
    assert not set(lists[0]) & set(lists[3])          # another name
    assert {len(v) for v in lists[:4]} == {ALIAS_COUNT} and lists[4] is None
    from linkage.contracts.names import is_token_list_column

    assert is_token_list_column("given_name__alias_pc")  # a blocking rule on it would be exploded, as for __alias
