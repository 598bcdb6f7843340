"""End-to-end checks of `build_cohort` on a small hand-built linked dataset.

Every expected number below was worked out by hand from the records in ``write_fixture`` (see the
comments there): index offence choice, strict before-index windows, denominators, sub-groups, prior
offences and prior victimisation.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from linkage.cohort import build_cohort
from linkage.errors import LinkageConfigError, LinkageInputError

REPO = Path(__file__).resolve().parents[1]


def rid(name: str) -> str:
    """A 32-hex record id, shaped like the encoder's (so the byte scan has something to find)."""
    return hashlib.md5(name.encode()).hexdigest()


GBH20 = "Wounding or inflicting grievous bodily harm (s20)"
ABH = "Assault occasioning actual bodily harm (s47)"

P1_AREA = {"ethnicity": "A1", "npa": "Central Leicester"}
P2_AREA = {"ethnicity": "W1", "npa": "Charnwood"}
P3_AREA = {"ethnicity": "B1", "npa": "Charnwood"}
P4_AREA = {"ethnicity": "W1", "npa": "Central Leicester"}
P7_AREA = {"ethnicity": "M1", "npa": "Hinckley & Blaby"}

# (record, crime_ref, ho_class, description, committed_from, role, flags/extra)
POLICE = [
    # P1: index = murder 2020-06-15 (most recent qualifying); earlier s20 GBH and drug offence are priors.
    ("rA1", "LC-20200615-00001", "1", "Murder", "2020-06-15 10:00", "SUSPECT", P1_AREA),
    ("rA1", "LC-20200615-00001", "1", "Murder", "2020-06-15 10:00", "VICTIM", {}),  # mutual fight: index crime
    ("rA1", "LC-20180301-00002", "8N", GBH20, "2018-03-01 12:00", "OFFENDER", {}),
    ("rA2", "LC-20170505-00003", "92A", "Possession with intent to supply", "2017-05-05 09:00", "SUSPECT", {}),
    ("rA2", "LC-20160101-00004", "8N", ABH, "2016-01-01 23:00", "VICTIM", {"da_flag": "Y"}),
    ("rA1", "LC-20200615-00005", "8N", ABH, "2020-06-15 08:00", "VICTIM", {}),  # index day: not prior
    ("rA1", "LC-20210101-00006", "8L", "Harassment", "2021-01-01 10:00", "SUSPECT", {}),  # after index
    # P2: index = attempted murder 2021-09-10; co-offended with P3 in 2019; DA witness the day before.
    ("rB", "LC-20210910-00011", "2", "Attempted murder", "2021-09-10 20:00", "OFFENDER", P2_AREA),
    ("rB", "LC-20190101-00012", "8N", ABH, "2019-01-01 01:00", "SUSPECT", {}),
    ("rB", "LC-20210909-00013", "8N", ABH, "2021-09-09 22:00", "WITNESS", {"da_flag": "Y"}),
    ("rB", "LC-20210910-00014", "3B", "Threats to kill", "2021-09-10 06:00", "WITNESS", {"da_flag": "Y"}),
    # P3: index = GBH with intent 2022-02-02; co-suspect on P2's 2019 crime; missing 2010; CSE victim 2015.
    ("rC", "LC-20220202-00021", "5D", "Wounding with intent (s18)", "2022-02-02 15:00", "SUSPECT", P3_AREA),
    ("rC", "LC-20190101-00012", "8N", ABH, "2019-01-01 01:00", "SUSPECT", {}),
    ("rC", "MP-20100505-00022", None, None, "2010-05-05 18:00", "MISSING_PERSON", {}),
    ("rC", "LC-20150707-00023", "17A", "Sexual assault", "2015-07-07 16:00", "VICTIM", {"cse_flag": "Y"}),
    # P4 (two nominal records): index = s20 GBH 2019-11-11; a later ABH in 8N must not be taken as GBH.
    ("rD1", "LC-20191111-00031", "8N", GBH20, "2019-11-11 11:00", "OFFENDER", P4_AREA),
    ("rD1", "LC-20230101-00032", "8N", ABH, "2023-01-01 11:00", "SUSPECT", {}),
    ("rD1", "LC-20150101-00033", "34B", "Robbery of personal property", "2015-01-01 11:00", "SUSPECT", {}),
    ("rD2", "LC-20150101-00033", "34B", "Robbery of personal property", "2015-01-01 11:00", "SUSPECT", {}),
    ("rD2", "LC-20170101-00034", "92C", "Possession of controlled drug", "2017-01-01 11:00", "SUSPECT", {}),
    ("rD2", "LC-20180101-00035", "8L", "Harassment", "2018-01-01 11:00", "OFFENDER", {}),
    # P5: ABH only (not in cohort). P6: murder victim only (not in cohort).
    ("rE", "LC-20200101-00041", "8N", ABH, "2020-01-01 11:00", "SUSPECT", {"ethnicity": "W2"}),
    ("rF", "LC-20200101-00051", "1", "Murder", "2020-01-01 11:00", "VICTIM", {"ethnicity": "W1"}),
    # P7: index = GBH with intent 2020-03-03; education records around the index day.
    ("rG", "LC-20200303-00061", "5D", "Wounding with intent (s18)", "2020-03-03 13:00", "SUSPECT", P7_AREA),
]
EDUCATION = [
    # (record, record_type, event_date, nc_year, sen_primary_need, fsm, possible, missed, ap, excl_cat, excl_reason)
    ("eA", "CENSUS", "2012-01-19", "9", "ASD", 1, 300, 40, 0, None, None),   # FSM, ASD, 13% absence
    ("eA", "EXCLUSION", "2013-02-01", "10", None, None, None, None, None, "SUSP", "DA"),
    ("eC", "CENSUS", "2014-10-02", "10", "SEMH", 0, 300, 10, 0, None, None),  # SEMH -> mental health
    ("eC", "NEET", "2019-06-01", None, None, None, None, None, None, None, None),
    ("eE", "CENSUS", "2012-01-19", "8", "MLD", 1, 300, 100, 1, None, None),  # P5, outside the cohort
    ("eG", "CENSUS", "2020-03-02", "11", "MLD", 0, 300, 0, 0, None, None),   # day before index: counts
    ("eG", "CENSUS", "2020-03-03", "11", None, 1, 300, 0, 0, None, None),    # index day: FSM not counted
    ("eG", "EXCLUSION", "2020-03-04", "11", None, None, None, None, None, "PERM", "PA"),  # after index
]
SOCIAL = [
    # (record, record_type, start_date, primary_need, assessment_factors, cp_category, legal_status)
    ("cB", "ASSESSMENT", "2015-03-01", None, "3B;4A;13A", None, None),
    ("cB", "CLA_EPISODE", "2016-01-01", None, None, None, "J1"),    # youth-justice only: not nurturing
    ("cB", "CLA_EPISODE", "2021-09-10", None, None, None, "C2"),    # index day: not counted
    ("cB", "CIN_EPISODE", "2014-01-01", "N4", None, None, None),    # family conflict
    ("cC", "CP_PLAN", "2012-01-01", None, None, "NEG", None),       # ACE + lack of nurturing
    ("cC", "CIN_EPISODE", "2013-01-01", "N7", None, None, None),    # economic stress
]
CROSSWALK = {"P1": ["police:rA1", "police:rA2", "education:eA"], "P2": ["police:rB", "social_care:cB"],
             "P3": ["police:rC", "education:eC", "social_care:cC"], "P4": ["police:rD1", "police:rD2"],
             "P5": ["police:rE", "education:eE"], "P6": ["police:rF"], "P7": ["police:rG", "education:eG"]}


def _write_extract(root: Path, source: str, table: pa.Table) -> Path:
    d = root / source
    d.mkdir()
    pq.write_table(table, d / "payload.parquet")
    (d / "manifest.json").write_text(json.dumps({"source": source}))
    return d


def _day(s: str | None) -> dt.date | None:
    return dt.date.fromisoformat(s) if s else None


def write_fixture(root: Path) -> tuple[Path, list[Path]]:
    flag_cols = ["da_flag", "knife_flag", "alcohol_flag", "gang_flag", "cse_flag", "cce_flag"]
    police = {c: [] for c in ["record_id", "row_number", "ethnicity", "crime_ref", "ho_class",
                              "offence_description", "committed_from", "role", *flag_cols,
                              "location_type", "npa", "markers"]}
    for i, (rec, ref, cls, desc, when, role, extra) in enumerate(POLICE, start=2):
        police["record_id"].append(rid(rec))
        police["row_number"].append(i)
        police["ethnicity"].append(extra.get("ethnicity", "W1"))
        police["crime_ref"].append(ref)
        police["ho_class"].append(cls)
        police["offence_description"].append(desc)
        police["committed_from"].append(dt.datetime.strptime(when, "%Y-%m-%d %H:%M"))
        police["role"].append(role)
        for f in flag_cols:
            police[f].append(extra.get(f, "N"))
        police["location_type"].append("PUBLIC")
        police["npa"].append(extra.get("npa", "South Leicester"))
        police["markers"].append(None)
    ptypes = {"row_number": pa.int64(), "committed_from": pa.timestamp("us")}
    police_t = pa.table({k: pa.array(v, type=ptypes.get(k, pa.string())) for k, v in police.items()})
    edu_cols = ["record_type", "event_date", "nc_year", "sen_primary_need", "fsm_eligible",
                "sessions_possible", "sessions_missed", "ap_placement", "exclusion_category", "exclusion_reason"]
    edu = {"record_id": [rid(r[0]) for r in EDUCATION], "row_number": list(range(2, len(EDUCATION) + 2))}
    for j, col in enumerate(edu_cols, start=1):
        edu[col] = [_day(r[j]) if col == "event_date" else r[j] for r in EDUCATION]
    etypes = {"row_number": pa.int64(), "event_date": pa.date32(), "fsm_eligible": pa.int64(),
              "sessions_possible": pa.int64(), "sessions_missed": pa.int64(), "ap_placement": pa.int64()}
    edu_t = pa.table({k: pa.array(v, type=etypes.get(k, pa.string())) for k, v in edu.items()})
    sc_cols = ["record_type", "start_date", "primary_need", "assessment_factors", "cp_category", "legal_status"]
    sc = {"record_id": [rid(r[0]) for r in SOCIAL], "row_number": list(range(2, len(SOCIAL) + 2))}
    for j, col in enumerate(sc_cols, start=1):
        sc[col] = [_day(r[j]) if col == "start_date" else r[j] for r in SOCIAL]
    sc["substance_misuse"] = [0] * len(SOCIAL)
    stypes = {"row_number": pa.int64(), "start_date": pa.date32(), "substance_misuse": pa.int64()}
    sc_t = pa.table({k: pa.array(v, type=stypes.get(k, pa.string())) for k, v in sc.items()})
    dirs = [_write_extract(root, "police", police_t), _write_extract(root, "education", edu_t),
            _write_extract(root, "social_care", sc_t)]
    link = root / "link"
    link.mkdir()
    rows = [(p, r.split(":")[0], rid(r.split(":")[1])) for p, recs in CROSSWALK.items() for r in recs]
    pd.DataFrame(rows, columns=["person_id", "source", "record_id"]).to_parquet(link / "crosswalk.parquet")
    (link / "manifest.json").write_text("{}")
    return link, dirs


def write_config(root: Path, exact: bool, **overrides) -> Path:
    base = yaml.safe_load((REPO / "configs/cohorts/high_harm.yaml").read_text())
    base["offences"] = str(REPO / "configs/offences.yaml")
    base["risk_factors"] = str(REPO / "configs/risk_factors.yaml")
    if exact:  # switch disclosure control off so the tables can be checked against hand-worked values
        base["disclosure"] = {"suppress_min": 1, "suppress_max": 0, "rounding_base": 1,
                              "stat_min_contributors": 1, "k_anonymity": 2,
                              "risk_accepted": {"accepted_by": "test suite",
                                                "reason": "hand-worked fixture, never released"}}
        base["person_level"] = {"enabled": False}
    base.update(overrides)
    path = root / f"cohort-{len(list(root.glob('cohort-*.yaml')))}.yaml"
    path.write_text(yaml.safe_dump(base))
    return path


@pytest.fixture(scope="module")
def exact_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("cohort_exact")
    link, dirs = write_fixture(root)
    result = build_cohort(write_config(root, exact=True), link, dirs, root / "out", quiet=True, keep_persons=True)
    return result, root / "out"


def _table(out: Path, name: str) -> pd.DataFrame:
    return pd.read_parquet(out / f"{name}.parquet")


def test_index_offence_subgroup_and_police_history(exact_run):
    persons = exact_run[0]["persons"].set_index("person_id")
    assert sorted(persons.index) == ["P1", "P2", "P3", "P4", "P7"]
    assert persons.loc["P1", "index_crime_ref"] == "LC-20200615-00001"
    assert persons.loc["P4", "index_crime_ref"] == "LC-20191111-00031"  # later 8N ABH is not GBH
    assert persons["subgroup"].to_dict() == {"P1": "murder_attempt", "P2": "murder_attempt", "P3": "gbh",
                                             "P4": "gbh", "P7": "gbh"}
    assert persons["prior_offences"].to_dict() == {"P1": 2, "P2": 1, "P3": 1, "P4": 3, "P7": 0}
    assert persons["prior_victimisations"].to_dict() == {"P1": 1, "P2": 0, "P3": 1, "P4": 0, "P7": 0}
    # Age is estimated from school years (no DOB reaches the VRN); P2 and P4 have no education record.
    assert persons["age"].astype("Float64").fillna(-1).to_dict() == {"P1": 21, "P2": -1, "P3": 21, "P4": -1, "P7": 15}


def test_factor_flags_respect_strict_window(exact_run):
    persons = exact_run[0]["persons"].set_index("person_id")
    expected = {
        "P1": {"previous_victim", "substance_use", "exposure_to_violence", "low_income",
               "neurodevelopmental_needs", "low_educational_achievement"},
        "P2": {"delinquent_peers", "witnessing_violence", "exposure_to_violence", "mental_health",
               "gang_involvement", "family_conflict"},
        "P3": {"missing_episodes", "exploitation", "previous_victim", "mental_health", "unemployment",
               "adverse_childhood_experiences", "delinquent_peers", "lack_of_nurturing", "economic_stress"},
        "P4": {"substance_use"},
        "P7": {"neurodevelopmental_needs"},
    }
    flag_cols = [c for c in persons.columns if c.startswith("rf_")]
    for pid, factors in expected.items():
        got = {c[3:] for c in flag_cols if persons.loc[pid, c]}
        assert got == factors, pid
    assert persons["n_factors"].to_dict() == {"P1": 6, "P2": 6, "P3": 9, "P4": 1, "P7": 1}
    assert persons["n_individual"].to_dict() == {"P1": 5, "P2": 2, "P3": 6, "P4": 1, "P7": 1}
    assert persons["n_close_relationships"].to_dict() == {"P1": 1, "P2": 4, "P3": 3, "P4": 0, "P7": 0}
    assert "rf_brain_injury" not in persons  # "no data": never a column of zeros


def test_prevalence_denominators_and_percentages(exact_run):
    prev = _table(exact_run[1], "factor_prevalence")
    allg = prev[prev["group"] == "all"].set_index("factor")
    expected = {  # factor: (n, denominator)
        "previous_victim": (2, 5), "witnessing_violence": (1, 5), "adverse_childhood_experiences": (1, 2),
        "low_income": (1, 3), "unemployment": (1, 3), "low_educational_achievement": (1, 3),
        "neurodevelopmental_needs": (2, 4), "mental_health": (2, 5), "substance_use": (2, 5),
        "missing_episodes": (1, 5), "exploitation": (1, 5), "exposure_to_violence": (2, 5),
        "family_conflict": (1, 5), "lack_of_nurturing": (1, 2), "gang_involvement": (1, 5),
        "delinquent_peers": (2, 5), "economic_stress": (1, 2),
    }
    for factor, (n, den) in expected.items():
        row = allg.loc[factor]
        assert (row["people_with_factor"], row["denominator"]) == (n, den), factor
        assert row["pct"] == round(100 * n / den, 1), factor
        assert row["ci_low"] < row["pct"] < row["ci_high"], factor
    for factor in ("brain_injury", "low_self_esteem", "social_isolation"):
        assert allg.loc[factor, "status"] == "no data"
        assert pd.isna(allg.loc[factor, "pct"])
    assert allg.loc["deprivation", "status"] == "area attribute"
    gbh = prev[prev["group"] == "gbh"].set_index("factor")
    neuro = gbh.loc["neurodevelopmental_needs"]
    assert (neuro["people_with_factor"], neuro["denominator"]) == (1, 2)
    csv = pd.read_csv(exact_run[1] / "factor_prevalence.csv")
    assert (csv.loc[csv["factor"] == "brain_injury", "pct"] == "z").all()


def test_summary_means_medians_subgroups_and_coverage(exact_run):
    assert json.loads(json.dumps(exact_run[0]["summary"]))[0]["mean_factors"] == 4.6  # JSON-ready summary
    summary = _table(exact_run[1], "cohort_summary").set_index("group")
    assert summary.loc["all", "people"] == 5
    assert summary.loc["all", "mean_factors"] == 4.6 and summary.loc["all", "median_factors"] == 6
    assert summary.loc["murder_attempt", "mean_factors"] == 6.0
    assert summary.loc["gbh", "mean_factors"] == round(11 / 3, 1) and summary.loc["gbh", "median_factors"] == 1
    assert summary.loc["all", "mean_prior_offences"] == 1.4
    assert summary.loc["all", "mean_individual_factors"] == 3.0
    assert summary.loc["all", "previously_victimised"] == 2 and summary.loc["all", "pct_previously_victimised"] == 40.0
    cov = _table(exact_run[1], "linkage_coverage").set_index(["group", "source"])
    assert cov.loc[("all", "education"), "linked"] == 3 and cov.loc[("all", "social_care"), "linked"] == 2
    assert cov.loc[("murder_attempt", "social_care"), "pct_linked"] == 50.0
    dist = _table(exact_run[1], "factor_count_distribution")
    alld = dist[dist["group"] == "all"].set_index("band")["people"].to_dict()
    assert alld == {"0": 0, "1-2": 2, "3-4": 0, "5-6": 2, "7-9": 1, "10+": 0}


def test_date_window_moves_the_index_offence(tmp_path):
    link, dirs = write_fixture(tmp_path)
    cfg = write_config(tmp_path, exact=True, end="2019-12-31")
    result = build_cohort(cfg, link, dirs, tmp_path / "out", quiet=True, keep_persons=True)
    persons = result["persons"].set_index("person_id")
    # P1's murder (2020) is outside the window, so the 2018 s20 GBH becomes the index; P2, P3, P7 drop out.
    assert sorted(persons.index) == ["P1", "P4"]
    assert persons.loc["P1", "index_crime_ref"] == "LC-20180301-00002"
    assert persons.loc["P1", "subgroup"] == "gbh"
    assert persons.loc["P1", "prior_offences"] == 1 and persons.loc["P1", "prior_victimisations"] == 1
    assert persons.loc["P1", "rf_low_educational_achievement"]  # the 2013 suspension is still before
    assert persons.loc["P1", "rf_substance_use"]  # the 2017 drug offence precedes the 2018 index
    assert persons.loc["P1", "n_factors"] == 6


def test_age_filter_keeps_unknown_ages(tmp_path):
    link, dirs = write_fixture(tmp_path)
    cfg = write_config(tmp_path, exact=True, age={"min": 10, "max": 17})
    persons = build_cohort(cfg, link, dirs, tmp_path / "out", quiet=True, keep_persons=True)["persons"]
    assert sorted(persons["person_id"]) == ["P2", "P4", "P7"]  # P1 and P3 (21) are out; unknown ages stay


def test_errors_are_one_line_and_name_the_problem(tmp_path):
    link, dirs = write_fixture(tmp_path)
    with pytest.raises(LinkageInputError, match=r"bad/payload.parquet, field 'row_number'"):
        bad = tmp_path / "bad"
        bad.mkdir()
        (bad / "manifest.json").write_text(json.dumps({"source": "education"}))
        pq.write_table(pa.table({"record_id": ["x"]}), bad / "payload.parquet")
        build_cohort(write_config(tmp_path, exact=True), link, [dirs[0], bad], tmp_path / "o1", quiet=True)
    with pytest.raises(LinkageConfigError, match="unknown_group"):
        build_cohort(write_config(tmp_path, exact=True, qualifying_groups=["unknown_group"]), link, dirs,
                     tmp_path / "o2", quiet=True)
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o2").exists()


def test_offence_taxonomy_tells_gbh_from_abh_within_8n():
    from linkage.cohort.config import load_cohort_config
    from linkage.cohort.offences import OffenceClassifier

    loaded = load_cohort_config(REPO / "configs/cohorts/high_harm.yaml")
    ho = pd.Series(["8N", "8n", "08N", "8N", "5D", "1", "2", "92C", "4/1", None])
    desc = pd.Series([GBH20, "GBH s.20", ABH, "Assault with injury", "Wounding with intent", "Murder",
                      "Attempted murder", "Possession", "Manslaughter", None])
    cls = OffenceClassifier(loaded.offences, ho, desc)
    assert cls.mask("gbh_without_intent").tolist() == [True, True] + [False] * 8
    assert cls.mask("high_harm").tolist() == [True, True, False, False, True, True, True, False, False, False]
    assert cls.mask("serious_violence").tolist() == [True] * 7 + [False, True, False]
    assert cls.mask("drugs").tolist() == [False] * 7 + [True, False, False]
    assert cls.first_group(["murder_attempt", "gbh"]).fillna("-").tolist() == [
        "gbh", "gbh", "-", "-", "gbh", "murder_attempt", "murder_attempt", "-", "-", "-"]


def test_shipped_configs_load_and_register_schemas():
    from linkage.cohort.config import load_cohort_config
    from linkage.config import SCHEMA_MODELS

    loaded = load_cohort_config(REPO / "configs/cohorts/high_harm.yaml")
    domains = {f.domain for f in loaded.risk_factors.factors}
    assert domains == {"individual", "close_relationships", "community"}
    assert {"cohort-config", "offence-taxonomy", "risk-factor-catalogue"} <= set(SCHEMA_MODELS)
    no_data = [f.id for f in loaded.risk_factors.factors if not f.indicators and f.domain != "community"]
    assert set(no_data) == {"brain_injury", "low_self_esteem", "social_isolation"}


def test_indicator_naming_an_unknown_offence_group_is_a_config_error(tmp_path):
    catalogue = yaml.safe_load((REPO / "configs/risk_factors.yaml").read_text())
    catalogue["factors"][0]["indicators"][0]["when"].append(
        {"column": "ho_class", "op": "offence_group", "group": "no_such_group"})
    (tmp_path / "rf.yaml").write_text(yaml.safe_dump(catalogue))
    cfg = yaml.safe_load((REPO / "configs/cohorts/high_harm.yaml").read_text())
    cfg.update(offences=str(REPO / "configs/offences.yaml"), risk_factors=str(tmp_path / "rf.yaml"))
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    from linkage.cohort.config import load_cohort_config

    with pytest.raises(LinkageConfigError, match="no_such_group"):
        load_cohort_config(tmp_path / "c.yaml")


def test_uncovered_index_offences_form_an_other_subgroup(tmp_path):
    link, dirs = write_fixture(tmp_path)
    cfg = write_config(tmp_path, exact=True,
                       subgroups={"murder_attempt": {"label": "Murder", "offence_groups": ["murder_attempt"]}})
    result = build_cohort(cfg, link, dirs, tmp_path / "out", quiet=True, keep_persons=True)
    assert result["persons"].set_index("person_id")["subgroup"].to_dict() == {
        "P1": "murder_attempt", "P2": "murder_attempt", "P3": "other", "P4": "other", "P7": "other"}
    summary = pd.read_parquet(tmp_path / "out/cohort_summary.parquet").set_index("group")
    assert summary["people"].to_dict() == {"all": 5, "murder_attempt": 2, "other": 3}


def test_police_age_at_occurrence_is_preferred_to_school_years(tmp_path):
    link, dirs = write_fixture(tmp_path)
    police = pq.read_table(dirs[0] / "payload.parquet").to_pandas()
    police["age_at_occurrence"] = pd.array([17] * len(police), dtype="Int64")
    pq.write_table(pa.Table.from_pandas(police, preserve_index=False), dirs[0] / "payload.parquet")
    result = build_cohort(write_config(tmp_path, exact=True), link, dirs, tmp_path / "out", quiet=True,
                          keep_persons=True)
    persons = result["persons"]
    assert (persons["age"] == 17).all() and (persons["age_source"] == "police").all()
    assert (persons["age_band"] == "16-17").all()
