"""Statistical properties of the synthetic extracts: observed error rates match the parameters, the
ethnic and area mix looks like LLR, and a high-harm cohort with the intended profile emerges."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from linkage.synth import generate_extracts
from linkage.synth.calibration import high_harm_profile, is_index_offence
from linkage.synth.geography import areas
from linkage.synth.params import SynthParams

N_PEOPLE = 8000
PARAMS = SynthParams()


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("synthstats") / "extracts"
    generate_extracts(N_PEOPLE, 23, out, quiet=True)
    frames = {n: pd.read_csv(out / f"{n}.csv", dtype=str, keep_default_na=False)
              for n in ("police", "education", "social_care", "truth", "people")}
    truth = frames["truth"]
    people = frames["people"].set_index("person_id")
    for source, id_col in (("police", "nominal_id"), ("education", "upn"), ("social_care", "child_id")):
        t = truth[truth["source"] == source].set_index("local_id")["person_id"]
        df = frames[source]
        df["person_id"] = df[id_col].map(t)
        frames[source] = df.merge(people, left_on="person_id", right_index=True, how="left",
                                  suffixes=("", "_true"))
    return {"dir": out, **frames}


def _true_surname(df: pd.DataFrame, event_date: pd.Series) -> pd.Series:
    changed = (df["surname_change_date"] != "") & (df["surname_change_date"] <= event_date)
    return df["surname_true"].where(~changed, df["surname_changed_to"])


def _kinds(fn: pd.Series, sn: pd.Series, true_fn: pd.Series, true_sn: pd.Series) -> dict[str, pd.Series]:
    return {"name_swap": (fn == true_sn) & (sn == true_fn) & (fn != sn),
            "forename_variant": (fn != true_fn) & (sn == true_sn),
            "surname_change": (fn == true_fn) & (sn != true_sn)}


def _assert_rate(observed: pd.Series, expected: float, label: str) -> None:
    n = len(observed)
    rate = observed.mean()
    tolerance = 4 * np.sqrt(expected * (1 - expected) / n) + 0.004
    assert abs(rate - expected) <= tolerance, f"{label}: observed {rate:.4f}, expected {expected:.4f} (n={n})"


@pytest.mark.parametrize("source", ["police", "education", "social_care"])
def test_name_error_rates_match_parameters_and_rise_for_minority_ethnic_people(data, source):
    df = data[source]
    rates = getattr(PARAMS, source)
    if source == "police":
        df = df[df["police_alias"] == "0"]          # alias rows are a separate, documented mechanism
        when = df["committed_from"].str[:10]
    else:
        id_col = "upn" if source == "education" else "child_id"
        date_col = "event_date" if source == "education" else "start_date"
        when = df[date_col] if source == "education" else pd.to_datetime(
            df[date_col], format="%d/%m/%Y").dt.strftime("%Y-%m-%d")
        df = df.assign(when=when).sort_values([id_col, "when"]).drop_duplicates(id_col)  # one unit per local id
        when = df["when"]
    true_sn = _true_surname(df, when)
    kinds = _kinds(df["forename"], df["surname"], df["forename_true"], true_sn)
    white_british = df["ethnicity_true"] == "W1"
    for name, hit in kinds.items():
        base = getattr(rates, name)
        _assert_rate(hit[white_british], base, f"{source} {name} White British")
        _assert_rate(hit[~white_british], base * PARAMS.minority_name_error_multiplier, f"{source} {name} minority")


def test_police_dob_errors_missing_values_and_postcode_defects(data):
    pol = data["police"]
    plain = pol[pol["police_alias"] == "0"]
    recorded = plain.loc[plain["date_of_birth"] != ""]
    true_dob = pd.to_datetime(recorded["dob"]).dt.strftime("%d/%m/%Y")
    _assert_rate(recorded["date_of_birth"] != true_dob, PARAMS.police.dob_error, "police dob error")
    _assert_rate(plain["date_of_birth"] == "", PARAMS.police.missing_dob, "police missing dob")
    _assert_rate(pol["gender"] == "U", PARAMS.police.missing_sex, "police gender U")
    mix = PARAMS.postcode_defect_mix
    share = (mix.missing + mix.nfa) / (mix.missing + mix.nfa + mix.stale)
    _assert_rate(pol["postcode"].isin(["", "NFA"]), PARAMS.police.postcode_defect * share, "police postcode")
    edu = data["education"]
    _assert_rate(edu["postcode"] == "", PARAMS.education.postcode_defect * share, "education postcode")
    # a day/month swap is one of the kinds of wrong date
    swapped = recorded["date_of_birth"] == (recorded["dob"].str[5:7] + "/" + recorded["dob"].str[8:10] + "/"
                                            + recorded["dob"].str[:4])
    assert (swapped & (recorded["date_of_birth"] != true_dob)).sum() >= 3
    csc = data["social_care"]
    fifteenth = csc[(csc["dob"] != "") & (csc["dob"].str[:2] == "15")]
    assert len(fifteenth) > 0


def test_duplicate_local_ids_match_parameters(data):
    pol = data["police"][data["police"]["adopted"] == "0"]
    per_person = pol.groupby("person_id").agg(rows=("nominal_id", "size"), ids=("nominal_id", "nunique"))
    _assert_rate(per_person.loc[per_person["rows"] >= 2, "ids"] >= 2, PARAMS.police.duplicate_id, "dup nominal")
    edu = data["education"]
    census = edu[(edu["record_type"] == "CENSUS") & (edu["adopted"] == "0")]
    per_pupil = census.groupby("person_id").agg(rows=("upn", "size"),
                                                temp=("upn", lambda u: u.str[-1].str.isalpha().any()))
    _assert_rate(per_pupil.loc[per_pupil["rows"] >= 2, "temp"], PARAMS.education.duplicate_id, "temporary UPN")
    csc = data["social_care"][data["social_care"]["adopted"] == "0"]
    per_child = csc.groupby("person_id").agg(rows=("child_id", "size"), ids=("child_id", "nunique"))
    _assert_rate(per_child.loc[per_child["rows"] >= 2, "ids"] >= 2, PARAMS.social_care.duplicate_id, "dup child id")
    # police aliases: rows of one nominal under a different forename and surname
    aliased = data["police"][data["police"]["police_alias"] == "1"]
    names = aliased.groupby("nominal_id")["forename"].nunique()
    assert (names >= 2).sum() >= 10


def test_ethnicity_and_area_mix_look_like_llr(data):
    edu = data["education"]
    first = edu[edu["record_type"] == "CENSUS"].sort_values("event_date").drop_duplicates("upn")
    first = first[first["postcode"] != ""]
    table = areas()
    la_of = dict(zip(table.sector, table.la, strict=True))
    la = first["postcode"].str[:-2].map(la_of)
    minority = first["ethnicity"] != "WBRI"
    city, county = minority[la == "Leicester"].mean(), minority[la == "Leicestershire"].mean()
    assert 0.45 <= city <= 0.8, city
    assert county <= 0.3, county
    assert (la == "Rutland").sum() > 0
    people = data["people"]
    groups = people["ethnicity"].str[0].value_counts(normalize=True)
    assert 0.5 <= groups["W"] <= 0.8 and groups["A"] >= 0.12 and groups["B"] >= 0.02
    top = people["surname"].value_counts().index
    assert "Patel" in top[:3] and "Smith" in top[:3]
    assert {"Singh", "Kaur", "Khan", "Begum"} & set(top[:40])
    assert people["surname"].str.contains("-").any()
    assert (people["middle_names"].isin(["Singh", "Kaur"])).any()


def test_high_harm_cohort_emerges_with_the_published_profile(data):
    profile = high_harm_profile(data["dir"])
    assert 0.004 * N_PEOPLE <= profile["n"] <= 0.02 * N_PEOPLE, profile["n"]
    assert 8 <= profile["mean_prior_offences"] <= 18, profile
    assert 3.5 <= profile["mean_factors"] <= 7, profile
    assert profile["share_prior_victim"] >= 0.5, profile


def test_risk_factors_raise_the_chance_of_serious_violence(data):
    pol, csc, people = data["police"], data["social_care"], data["people"]
    high_harm = set(pol.loc[is_index_offence(pol), "person_id"])
    children = people[people["is_child"] == "1"]["person_id"]
    known_to_csc = children.isin(set(csc["person_id"]))
    rate = children.isin(high_harm)
    assert rate[known_to_csc].mean() > 2 * rate[~known_to_csc].mean()


def test_gbh_is_identifiable_from_class_and_description(data):
    pol = data["police"]
    s18 = pol[pol["ho_class"] == "5D"]
    assert len(s18) and s18["offence_description"].str.contains("grievous bodily harm with intent").all()
    n8 = pol[pol["ho_class"] == "8N"]
    gbh = n8["offence_description"].str.contains("grievous bodily harm")
    assert gbh.any() and (~gbh).any()
    assert n8.loc[~gbh, "offence_description"].str.contains("actual bodily harm").all()
