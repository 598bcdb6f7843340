"""Synthetic extracts: layouts read by the shipped partner configs, truth, determinism, code lists."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from linkage.cli import app
from linkage.config import load_partner_config
from linkage.errors import LinkageConfigError
from linkage.synth import generate_extracts, load_params
from linkage.synth.geography import areas
from linkage.synth.ids import nhs_check_digit, upn_check_letter

REPO = Path(__file__).resolve().parents[1]
SOURCES = {"police": "nominal_id", "education": "upn", "social_care": "child_id"}
POSTCODE = re.compile(r"^[A-Z]{1,2}[0-9][0-9A-Z]? [0-9][ABD-HJLNP-UW-Z]{2}$")
N_PEOPLE = 4000


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("synth") / "extracts"
    summary = generate_extracts(N_PEOPLE, 11, out, quiet=True)
    frames = {name: pd.read_csv(out / f"{name}.csv", dtype=str, keep_default_na=False)
              for name in (*SOURCES, "truth", "people")}
    return {"dir": out, "summary": summary, **frames}


@pytest.mark.parametrize("source", list(SOURCES))
def test_every_mapped_column_present_and_dates_parse_with_config_formats(data, source):
    cfg = load_partner_config(REPO / "configs" / "partners" / f"{source}.yaml")
    df = data[source]
    assert len(df) > 100
    mapped = {cfg.local_id} | {c for cols in cfg.identifiers.columns().values() for c in cols}
    mapped |= {p.column for p in cfg.payload}
    assert mapped <= set(df.columns), mapped - set(df.columns)
    date_specs = [(cfg.identifiers.date_of_birth.column, cfg.identifiers.date_of_birth.formats)]
    date_specs += [(p.column, p.formats) for p in cfg.payload if p.type in ("date", "datetime")]
    for column, formats in date_specs:
        values = df.loc[df[column] != "", column].unique()
        assert len(values) > 0
        for value in values:
            assert any(_parses(value, f) for f in formats), (column, value)
    for p in cfg.payload:
        if p.required:
            assert (df[p.column] != "").all(), p.column
        if p.type == "int":
            filled = df.loc[df[p.column] != "", p.column]
            assert filled.str.fullmatch(r"\d+").all(), p.column
    dob = cfg.identifiers.date_of_birth
    parsed = pd.to_datetime(df.loc[df[dob.column] != "", dob.column], format=dob.formats[0])
    assert (parsed.dt.date >= dob.min).all()


def _parses(value: str, fmt: str) -> bool:
    try:
        dt.datetime.strptime(value, fmt)
    except ValueError:
        return False
    return True


def test_code_lists_follow_the_data_contract(data):
    pol, edu, csc = data["police"], data["education"], data["social_care"]
    assert set(pol["role"]) == {"VICTIM", "SUSPECT", "OFFENDER", "WITNESS", "MISSING_PERSON"}
    assert set(pol["gender"]) <= {"M", "F", "U"}
    for flag in ("da_flag", "knife_flag", "alcohol_flag", "gang_flag", "cse_flag", "cce_flag"):
        assert set(pol[flag]) == {"Y", "N"}, flag
    assert set(pol["location_type"]) <= {"DWELLING", "PUBLIC", "HOSPITALITY", "EDUCATION", "OTHER"}
    assert pol["nominal_id"].str.fullmatch(r"N\d{7}").all()
    missing = pol["role"] == "MISSING_PERSON"
    assert pol.loc[missing, "crime_ref"].str.fullmatch(r"MP-\d{8}-\d{5}").all()
    assert pol.loc[~missing, "crime_ref"].str.fullmatch(r"LC-\d{8}-\d{5}").all()
    assert (pol.loc[missing, "ho_class"] == "").all() and (pol.loc[~missing, "ho_class"] != "").all()
    # the date in a crime reference is the committed date
    assert (pol["crime_ref"].str[3:11] == pol["committed_from"].str[:10].str.replace("-", "")).all()
    assert set(pol["ethnicity"]) - {""} <= {"W1", "W2", "W3", "W9", "M1", "M2", "M3", "M9", "A1", "A2", "A3", "A4",
                                            "A9", "B1", "B2", "B9", "O1", "O9"}
    assert set(edu["record_type"]) == {"CENSUS", "EXCLUSION", "NEET"}
    assert set(edu["sex"]) == {"M", "F"}
    assert set(edu["sen_provision"]) - {""} == {"E", "K", "N"}
    assert set(edu["exclusion_category"]) - {""} <= {"SUSP", "PERM"}
    assert set(edu["nc_year"]) - {""} <= {"R", *map(str, range(1, 15))}
    census = edu[edu["record_type"] == "CENSUS"]
    assert (census["sessions_missed"].astype(int) <= census["sessions_possible"].astype(int)).all()
    assert set(csc["record_type"]) == {"CIN_EPISODE", "ASSESSMENT", "CP_PLAN", "CLA_EPISODE", "MISSING"}
    assert set(csc["sex"]) <= {"0", "1", "2"}
    assert set(csc["cp_category"]) - {""} <= {"NEG", "PHY", "SAB", "EMO", "MUL"}
    assert csc.loc[csc["record_type"] == "CIN_EPISODE", "primary_need"].str.fullmatch(r"N\d").all()
    factors = csc.loc[csc["record_type"] == "ASSESSMENT", "assessment_factors"]
    assert factors.str.fullmatch(r"\d{1,2}[A-F]?(;\d{1,2}[A-F]?)*").all()
    assert csc["child_id"].str.fullmatch(r"LA\d{6}").all()


def test_postcodes_are_valid_llr_postcodes_or_documented_defects(data):
    districts = {s.split()[0] for s in areas().sector}
    for source in SOURCES:
        pcs = data[source]["postcode"]
        real = pcs[(pcs != "") & (pcs != "NFA")]
        assert real.str.match(POSTCODE).all(), source
        assert set(real.str.split().str[0]) <= districts
    assert "NFA" in set(data["police"]["postcode"])
    assert "NFA" not in set(data["education"]["postcode"]) | set(data["social_care"]["postcode"])


def test_truth_maps_every_record_and_the_population_is_exactly_n(data):
    truth = data["truth"]
    assert not truth.duplicated(["source", "local_id"]).any()
    for source, id_col in SOURCES.items():
        ids = set(data[source][id_col])
        assert ids == set(truth.loc[truth["source"] == source, "local_id"])
    assert truth["person_id"].nunique() == N_PEOPLE == len(data["people"])
    assert set(truth["person_id"]) == set(data["people"]["person_id"])


def test_identifiers_are_valid_and_copied_between_partners(data):
    edu, csc, truth = data["education"], data["social_care"], data["truth"]
    upns = edu["upn"].unique()
    assert all(upn_check_letter(u[1:]) == u[0] for u in upns)
    temporary = [u for u in upns if u[-1].isalpha()]
    assert temporary and len(temporary) < 0.05 * len(upns)
    nhs = csc.loc[csc["nhs_number"] != "", "nhs_number"].unique()
    assert all(nhs_check_digit(n[:9]) == int(n[9]) for n in nhs)
    # social care copies the child's UPN, sometimes with a typo
    person_of = dict(zip(truth["source"] + ":" + truth["local_id"], truth["person_id"], strict=True))
    carried = csc[csc["upn"] != ""].drop_duplicates("child_id")
    same = [person_of.get(f"education:{u}") == person_of[f"social_care:{c}"]
            for u, c in zip(carried["upn"], carried["child_id"], strict=True)]
    share = sum(same) / len(same)
    assert 0.85 < share < 0.99


def test_same_seed_gives_identical_files_and_other_seed_differs(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    generate_extracts(300, 5, a, quiet=True)
    generate_extracts(300, 5, b, quiet=True)
    generate_extracts(300, 6, c, quiet=True)
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir())
    assert {"police.csv", "education.csv", "social_care.csv", "truth.csv", "manifest.json"} <= set(names)
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert (a / "police.csv").read_bytes() != (c / "police.csv").read_bytes()


def test_relationship_level_events_exist(data):
    pol, people, truth = data["police"], data["people"], data["truth"]
    t = truth[truth["source"] == "police"].set_index("local_id")["person_id"]
    pol = pol.assign(person_id=pol["nominal_id"].map(t))
    info = people.set_index("person_id")
    pol = pol.join(info[["is_child", "household_id"]], on="person_id")
    da = pol[pol["da_flag"] == "Y"]
    by_crime = da.groupby("crime_ref")
    adult_suspect = by_crime.apply(lambda g: ((g["is_child"] == "0") & g["role"].isin(["SUSPECT", "OFFENDER"])).any())
    child_present = by_crime.apply(lambda g: ((g["is_child"] == "1") & g["role"].isin(["VICTIM", "WITNESS"])).any())
    same_home = by_crime["household_id"].nunique() == 1
    assert (adult_suspect & child_present & same_home).sum() >= 20
    # co-offending: two or more suspects on one crime
    suspects = pol[pol["role"].isin(["SUSPECT", "OFFENDER"])].groupby("crime_ref")["person_id"].nunique()
    assert (suspects >= 2).sum() >= 10
    # parental factors on the child's assessment
    csc = data["social_care"]
    assert csc["assessment_factors"].str.contains(r"(?:^|;)3B").sum() >= 10
    assert csc["assessment_factors"].str.contains(r"(?:^|;)2B").sum() >= 5


def test_people_move_house_and_records_follow_them(data):
    census = data["education"]
    census = census[(census["record_type"] == "CENSUS") & (census["postcode"] != "")]
    homes = census.groupby("upn")["postcode"].nunique()
    moved = (homes >= 2).mean()
    assert 0.2 < moved < 0.8, moved   # moves, plus a few stale postcodes


def test_adopted_children_have_two_child_ids_in_truth(tmp_path):
    out = tmp_path / "x"
    generate_extracts(6000, 2, out, quiet=True)
    people = pd.read_csv(out / "people.csv", dtype=str, keep_default_na=False)
    truth = pd.read_csv(out / "truth.csv", dtype=str, keep_default_na=False)
    adopted = set(people.loc[people["adopted"] == "1", "person_id"])
    assert adopted
    ids = truth[truth["source"] == "social_care"].groupby("person_id")["local_id"].nunique()
    assert (ids.reindex(list(adopted)) >= 2).all()


def test_cli_writes_extracts_and_refuses_an_existing_folder(tmp_path):
    runner = CliRunner()
    out = tmp_path / "cli"
    result = runner.invoke(app, ["synth", "--people", "150", "--seed", "1", "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "150 people" in result.output
    assert len(pd.read_csv(out / "truth.csv")["person_id"].unique()) == 150
    again = runner.invoke(app, ["synth", "--people", "150", "--seed", "1", "--out", str(out), "--quiet"])
    assert again.exit_code == 2


def test_params_yaml_is_validated(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text("police:\n  name_swap: 0.1\nrisk_shift: 0.5\n")
    params = load_params(good)
    assert params.police.name_swap == 0.1 and params.police.forename_variant == 0.12
    bad = tmp_path / "bad.yaml"
    bad.write_text("police:\n  name_swap: 1.5\n")
    with pytest.raises(LinkageConfigError, match="name_swap"):
        load_params(bad)
    with pytest.raises(LinkageConfigError):
        generate_extracts(10, 1, tmp_path / "o", quiet=True, not_a_field=1)
