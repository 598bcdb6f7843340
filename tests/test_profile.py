"""The SNA profile's figure definitions on small hand-built police data (issue 17)."""

from __future__ import annotations

import pandas as pd
import pytest

from linkage.cohort.config import DisclosureSettings
from linkage.cohort.offences import OffenceClassifier
from linkage.cohort.tables import WITHHELD
from linkage.profile import profile_from_frames
from linkage.profile.config import TimeWindow, load_profile_config
from linkage.profile.figures import in_window, occurrences


def _row(ref, when, role="SUSPECT", ho="8N", desc="Assault occasioning actual bodily harm", loc="DWELLING",
         district="Leicester", npa="East Leicester", age=30, sex="M", da="N", knife="N", person=None):
    return {"crime_ref": ref, "committed_from": pd.Timestamp(when), "role": role, "ho_class": ho,
            "offence_description": desc, "location_type": loc, "district": district, "npa": npa,
            "age_at_occurrence": age, "person_sex": sex, "da_flag": da, "knife_flag": knife,
            "alcohol_flag": "N", "gang_flag": "N", "victim_relationship": "STRANGER",
            "person_id": person or f"{ref}-{role}"}


@pytest.fixture(scope="module")
def loaded():
    return load_profile_config(None)


def _occ(rows, loaded):
    police = pd.DataFrame(rows)
    cls = OffenceClassifier(loaded.offences, police["ho_class"], police["offence_description"])
    return occurrences(police, cls, loaded.profile).set_index("crime_ref")


def test_time_windows_wrap_midnight_and_exclude_their_end_hour():
    hours = pd.Series(range(24))
    nte = hours[in_window(hours, TimeWindow(start_hour=22, end_hour=5))].tolist()
    assert nte == [0, 1, 2, 3, 4, 22, 23]
    assert hours[in_window(hours, TimeWindow(start_hour=15, end_hour=16))].tolist() == [15]


def test_nte_boundaries_and_location(loaded):
    rows = [_row("A", "2023-06-03 21:59", loc="PUBLIC"), _row("B", "2023-06-03 22:00", loc="PUBLIC"),
            _row("C", "2023-06-04 04:59", loc="HOSPITALITY"), _row("D", "2023-06-04 05:00", loc="PUBLIC"),
            _row("E", "2023-06-03 23:30", loc="DWELLING")]
    occ = _occ(rows, loaded)
    assert occ["nte"].to_dict() == {"A": False, "B": True, "C": True, "D": False, "E": False}
    assert occ["public"].to_dict() == {"A": True, "B": True, "C": False, "D": True, "E": False}


def test_after_school_needs_the_hour_and_an_under_18(loaded):
    rows = [_row("A", "2023-06-05 14:59", age=14), _row("B", "2023-06-05 15:00", age=14),
            _row("C", "2023-06-05 15:59", age=30), _row("C", "2023-06-05 15:59", role="VICTIM", age=17),
            _row("D", "2023-06-05 16:00", age=14), _row("E", "2023-06-05 15:30", age=18),
            _row("F", "2023-06-05 15:10", age=12, role="WITNESS")]
    occ = _occ(rows, loaded)
    assert occ["after_school"].to_dict() == {"A": False, "B": True, "C": True, "D": False, "E": False, "F": False}


def test_only_serious_violence_counts_and_flags_follow_the_taxonomy(loaded):
    rows = [_row("A", "2023-05-01 10:00", ho="105A", desc="Common assault"),   # not in the SV definition
            _row("B", "2023-05-01 10:00", da="Y"), _row("C", "2023-05-01 10:00", knife="Y", loc="PUBLIC"),
            _row("D", "2023-05-01 10:00", ho="19C", desc="Rape of a female aged 16 and over")]
    occ = _occ(rows, loaded)
    assert sorted(occ.index) == ["B", "C", "D"]
    assert occ["flag_domestic"].tolist() == [True, False, False]
    assert occ["flag_knife"].tolist() == [False, True, False]
    assert occ["flag_public_place"].tolist() == [False, True, False]
    assert occ["flag_sexual"].tolist() == [False, False, True]
    assert occ.loc["D", "offence_group"] == "sexual_offences"


def _bulk(loaded, n_city=300, n_rut=40, n_da=120, n_nte=30):
    rows = []
    for i in range(n_city):
        rows.append(_row(f"L{i}", "2023-07-01 12:00", da="Y" if i < n_da else "N"))
        rows.append(_row(f"L{i}", "2023-07-01 12:00", role="VICTIM", sex="F", age=25))
    for i in range(n_rut):
        rows.append(_row(f"R{i}", "2023-08-01 23:00" if i < n_nte else "2023-08-01 12:00", loc="PUBLIC",
                         district="Rutland", npa="Melton & Rutland"))
    rows.append(_row("OLD", "2022-06-01 12:00"))   # previous year, outside the period
    return pd.DataFrame(rows)


def test_rates_shares_and_year_on_year_come_from_released_counts(loaded):
    police = _bulk(loaded)
    den = pd.DataFrame({"district": ["Leicester", "Rutland"], "la": ["Leicester", "Rutland"],
                        "population": [30000, 8000]})
    t = profile_from_frames(loaded, police, None, den).tables
    by_area = {(r["level"], r["area"]): r for r in t["sv_by_area"]}
    assert by_area[("district", "Leicester")]["occurrences"] == 300
    assert by_area[("district", "Leicester")]["rate_per_1000"] == 10.0       # 300 / 30,000 x 1,000
    assert by_area[("district", "Rutland")]["rate_per_1000"] == 5.0          # 40 / 8,000
    assert by_area[("LLR", "Leicester, Leicestershire and Rutland")]["rate_per_1000"] == round(340 / 38, 1)
    assert by_area[("npa", "Melton & Rutland")]["population"] is None        # no NPA denominator: 'z'
    flags = {r["measure"]: r for r in t["flag_shares"]}
    assert flags["domestic"]["pct"] == round(100 * 120 / 340, 1)
    assert flags["public_place"]["pct"] == round(100 * 40 / 340, 1)
    assert flags["nte_of_public"]["pct"] == 75.0                             # 30 of 40 public at 23:00
    assert flags["domestic"]["ci_low"] < flags["domestic"]["pct"] < flags["domestic"]["ci_high"]
    yoy = {r["measure"]: r for r in t["year_on_year"]}["all serious violence"]
    assert yoy["previous_year"] is WITHHELD and yoy["change_pct"] is WITHHELD   # one occurrence: withheld
    victims = [r for r in t["age_sex_rates"] if r["role"] == "victim"]
    assert [(r["age_band"], r["sex"], r["people_involved"]) for r in victims] == [("25-34", "F", 300)]


def test_small_counts_are_withheld_and_not_recoverable_from_totals(loaded):
    police = _bulk(loaded, n_rut=3, n_nte=0)
    den = pd.DataFrame({"district": ["Leicester", "Rutland"], "la": ["Leicester", "Rutland"],
                        "population": [30000, 8000]})
    rel = profile_from_frames(loaded, police, None, den)
    by_area = {(r["level"], r["area"]): r for r in rel.tables["sv_by_area"]}
    assert by_area[("district", "Rutland")]["occurrences"] is WITHHELD
    assert by_area[("district", "Rutland")]["rate_per_1000"] is WITHHELD
    # total = Leicester + Rutland: Leicester (or the total) must be withheld too, or Rutland follows
    assert WITHHELD in (by_area[("district", "Leicester")]["occurrences"],
                        by_area[("LLR", "Leicester, Leicestershire and Rutland")]["occurrences"])
    assert all(isinstance(v, int) and v % 5 == 0 for r in rel.tables["offence_groups"]
               for v in [r["occurrences"]] if v is not WITHHELD)


def test_weakened_release_without_secondary_suppression_leaks(loaded):
    """The attack (total minus the other parts) recovers a small cell when complements are switched off."""
    police = _bulk(loaded, n_rut=3, n_nte=0)
    den = pd.DataFrame({"district": ["Leicester", "Rutland"], "la": ["Leicester", "Rutland"],
                        "population": [30000, 8000]})
    weak = loaded.model_copy(deep=True)
    weak.profile.disclosure = DisclosureSettings(
        rounding_base=1, risk_accepted={"accepted_by": "the test suite", "reason": "prove the attack works"})
    from linkage.profile import release as rmod

    class NoSecondary(rmod.ProfileRelease):
        def protect(self):  # primary suppression only
            for k in self.reg.values:
                if k not in self.reg.hidden and self.reg.sensitive(k):
                    self.reg.withhold(k, "primary")
            self._protected = True

    from linkage.profile.figures import occurrences as occ_fn
    from linkage.profile.tables import build_profile_tables
    cls = OffenceClassifier(weak.offences, police["ho_class"], police["offence_description"])
    occ = occ_fn(police, cls, weak.profile)
    leaky = build_profile_tables(occ, police, weak.profile, den, NoSecondary(weak.profile.disclosure)).tables
    a = {(r["level"], r["area"]): r["occurrences"] for r in leaky["sv_by_area"]}
    assert a[("district", "Rutland")] is WITHHELD
    assert a[("LLR", "Leicester, Leicestershire and Rutland")] - a[("district", "Leicester")] == 3  # recovered
    safe = build_profile_tables(occ, police, weak.profile, den, rmod.ProfileRelease(weak.profile.disclosure)).tables
    b = {(r["level"], r["area"]): r["occurrences"] for r in safe["sv_by_area"]}
    assert WITHHELD in (b[("LLR", "Leicester, Leicestershire and Rutland")], b[("district", "Leicester")])


def test_cohort_index_filter_knife_under_25_and_stranger_subgroup():
    from pathlib import Path

    from linkage.cohort.config import load_cohort_config
    from linkage.cohort.selection import select_cohort

    loaded = load_cohort_config(Path(__file__).resolve().parents[1] / "configs" / "cohorts" / "knife_u25.yaml")
    rows = [
        # p1: knife ABH at 23 (qualifies), a later knife ABH at 25 (too old: not the index)
        _row("A", "2023-01-01 15:00", knife="Y", age=23, person="p1"),
        _row("B", "2024-01-01 15:00", knife="Y", age=25, person="p1"),
        # p2: a later ABH without the knife flag is ignored; the knife robbery is the index
        _row("C", "2023-02-01 15:00", knife="Y", age=17, ho="34B", desc="Robbery of personal property", person="p2"),
        _row("D", "2023-06-01 15:00", knife="N", age=17, person="p2"),
        # p3: knife but as a victim only; p4: knife, age not recorded -> cannot show "under 25"
        _row("E", "2023-03-01 15:00", knife="Y", age=16, role="VICTIM", person="p3"),
        _row("F", "2023-03-01 15:00", knife="Y", age=None, person="p4"),
    ]
    police = pd.DataFrame(rows)
    police.loc[police["crime_ref"] == "C", "victim_relationship"] = "ACQUAINTANCE"
    cls = OffenceClassifier(loaded.offences, police["ho_class"], police["offence_description"])
    out = select_cohort(police, loaded.cohort, cls).set_index("person_id")
    assert sorted(out.index) == ["p1", "p2"]
    assert out.loc["p1", "index_crime_ref"] == "A" and out.loc["p2", "index_crime_ref"] == "C"
    assert out.loc["p1", "subgroup"] == "stranger" and out.loc["p2", "subgroup"] == "other"


def test_a_number_shown_in_two_tables_is_withheld_in_both(loaded):
    """40 of 42 occurrences are NTE: "all but two" must not show in the flag table nor in the NTE deep dive."""
    police = _bulk(loaded, n_city=2, n_da=0, n_rut=40, n_nte=40)
    den = pd.DataFrame({"district": ["Leicester", "Rutland"], "la": ["Leicester", "Rutland"],
                        "population": [30000, 8000]})
    t = profile_from_frames(loaded, police, None, den).tables
    total = [r for r in t["sv_by_area"] if r["level"] == "LLR"][0]["occurrences"]
    nte_flag = {r["measure"]: r for r in t["flag_shares"]}["nte"]["occurrences"]
    nte_dd = [r for r in t["nte_deep_dive"] if r["dimension"] == "all"][0]["count"]
    assert total is not WITHHELD
    assert nte_flag is WITHHELD and nte_dd is WITHHELD
