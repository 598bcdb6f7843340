"""End to end on synthetic data: four partners hashed and linked, then the profile and both cohorts
through the demo hook (linkage.profile.demo_hook), with a scan that no identifier reaches a release."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from linkage.profile.demo_hook import run_needs_assessment

SOURCES = ("police", "education", "social_care", "health")


@pytest.fixture(scope="module")
def run(demo, tmp_path_factory):
    """The profile and both cohorts, built into a folder of their own from conftest's demo run (four partners
    hashed through the release gate with an analysis key, linked by the linkage unit; shared with test_demo and
    test_browser, which saves this file its own 1,500-person encode and link). The demo's raw partner folder is
    linked in, so the profile reads the same population denominators as in the demo."""
    demo_dir, _ = demo
    out = tmp_path_factory.mktemp("na")
    (out / "partners").mkdir()
    (out / "partners" / "raw").symlink_to(demo_dir / "partners" / "raw", target_is_directory=True)
    attributes = [demo_dir / "analysis" / "attributes" / s for s in SOURCES]
    return out, run_needs_assessment(out, demo_dir / "linkage-unit" / "link", attributes,
                                     analysis_key=demo_dir / "analysis" / "analysis.key")


def test_profile_and_both_cohorts_are_released(run):
    out, result = run
    for folder in ("profile", "cohort_high_harm", "cohort_knife_u25"):
        assert (out / "researcher" / folder / "report.html").is_file()
        assert (out / "researcher" / folder / "manifest.json").is_file()
    tables = set(result["profile"]["tables"])
    assert {"sv_by_area", "flag_shares", "nte_deep_dive", "after_school_deep_dive", "knife_u25_deep_dive",
            "age_sex_rates", "year_on_year", "ae_assault_attendances", "area_ranking"} <= tables
    assert result["knife_u25"]["people_rounded"] > 0


def test_released_counts_are_rounded_or_withheld_and_carry_no_identifiers(run):
    out, _ = run
    raw = out / "partners" / "raw"
    people = pd.read_csv(raw / "people.csv", dtype=str, keep_default_na=False)
    police = pd.read_csv(raw / "police.csv", dtype=str, keep_default_na=False)
    surnames = {s for s in people["surname"] if len(s) >= 6}
    refs = set(police["crime_ref"])
    for path in (out / "researcher" / "profile").glob("*.csv"):
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
        text = df.to_csv()
        assert not (surnames & set(re.findall(r"[A-Za-z\-']+", text))), path.name
        assert not any(r in text for r in list(refs)[:2000]), path.name
        for col in ("occurrences", "count", "people_involved", "young_people_with"):
            if col in df:
                vals = [v for v in df[col] if v not in ("c", "z", "")]
                assert all(int(float(v)) % 5 == 0 for v in vals), (path.name, col)
