"""The profile passes the same release checks as cohort releases (issue 17): the integer-programming
intruder over every table with the public area code lists, the code-list check, earlier releases."""

from __future__ import annotations

import pandas as pd
import pytest

from linkage.cohort.offences import OffenceClassifier
from linkage.cohort.tables import WITHHELD
from linkage.errors import LinkageInputError
from linkage.profile.config import load_profile_config
from linkage.profile.figures import occurrences
from linkage.profile.release import ProfileRelease
from linkage.profile.tables import build_profile_tables

AREAS = [("Leicester", "East Leicester", 300), ("Charnwood", "Charnwood", 10),
         ("Hinckley and Bosworth", "Hinckley & Blaby", 10), ("Blaby", "Hinckley & Blaby", 2)]
DEN = pd.DataFrame({"district": ["Leicester", "Charnwood", "Hinckley and Bosworth", "Blaby"],
                    "la": ["Leicester", "Leicestershire", "Leicestershire", "Leicestershire"],
                    "population": [30000, 18000, 11000, 10000]})


@pytest.fixture(scope="module")
def loaded():
    return load_profile_config(None)


def _police(areas=AREAS) -> pd.DataFrame:
    rows = []
    for district, npa, n in areas:
        for i in range(n):
            ref = f"{district[:3]}-{npa[:3]}-{i}"
            rows.append({"crime_ref": ref, "committed_from": pd.Timestamp("2023-07-03 12:00"), "role": "SUSPECT",
                         "ho_class": "8N", "offence_description": "Assault occasioning actual bodily harm",
                         "location_type": "DWELLING", "district": district, "npa": npa, "age_at_occurrence": 30,
                         "person_sex": "M", "da_flag": "N", "knife_flag": "N", "alcohol_flag": "N",
                         "gang_flag": "N", "victim_relationship": "STRANGER", "person_id": f"p-{ref}"})
    return pd.DataFrame(rows)


class _NoIntruderRepair(ProfileRelease):
    """The weakened release: the area code lists are not registered and the intruder does not repair."""

    def check(self, repair=None):
        return super().check(repair=False)


def _build(loaded, rel, police=None):
    police = _police() if police is None else police
    cfg = loaded.profile
    occ = occurrences(police, OffenceClassifier(loaded.offences, police["ho_class"], police["offence_description"]),
                      cfg)
    return build_profile_tables(occ, police, cfg, DEN, rel)


def _areas(rel):
    return {(r["level"], r["area"]): r["occurrences"] for r in rel.tables["sv_by_area"]}


def test_npa_differencing_recovers_a_small_district_without_the_code_lists(loaded):
    """Blaby (2 occurrences) is withheld, shielded by withholding Charnwood. But the Charnwood NPA covers
    exactly the Charnwood district, and the Hinckley & Blaby NPA exactly two districts: the NPA rows give
    Charnwood back, and Blaby = NPA(Hinckley & Blaby) - district(Hinckley and Bosworth)."""
    weak = _NoIntruderRepair(loaded.profile.disclosure)
    weak.register_code_list_relations = False
    a = _areas(_build(loaded, weak))
    assert a[("district", "Blaby")] is WITHHELD and a[("district", "Charnwood")] is WITHHELD
    assert a[("npa", "Charnwood")] == 10                  # the withheld district, read off the NPA row
    # the attack by hand: each released 10 means 10-12 (10 is the smallest count shown), so Blaby is 0-2
    hb_lo, npa_hi = 10, a[("npa", "Hinckley & Blaby")] + 2
    assert npa_hi - hb_lo <= 2 and a[("district", "Hinckley and Bosworth")] == 10
    # ... and the intruder finds it too
    assert not weak.intruder.passed
    blaby = [t for t in weak.intruder.failures if "'Blaby'" in t.cell]
    assert blaby and blaby[0].width < 5 and blaby[0].truth == 2


def test_the_real_release_registers_the_code_lists_and_passes_the_intruder(loaded):
    rel = _build(loaded, ProfileRelease(loaded.profile.disclosure))
    assert rel.intruder is not None and rel.intruder.passed
    a = _areas(rel)
    assert a[("district", "Blaby")] is WITHHELD
    # Blaby can no longer be read as NPA minus district, nor Charnwood off its NPA row
    assert WITHHELD in (a[("npa", "Hinckley & Blaby")], a[("district", "Hinckley and Bosworth")])
    assert WITHHELD in (a[("npa", "Charnwood")], a[("district", "Charnwood")])
    blaby = [t for t in rel.intruder.targets if "'district', 'Blaby'" in t.cell and t.kind == "withheld"]
    assert blaby and blaby[0].width >= 5


def test_the_intruder_alone_repairs_a_release_that_forgot_the_code_lists(loaded):
    """Even when the nesting is not registered for protection, the intruder knows it and the repair rounds
    withhold what its attack leans on."""
    rel = ProfileRelease(loaded.profile.disclosure)
    rel.register_code_list_relations = False
    rel = _build(loaded, rel)
    assert rel.intruder.passed
    assert any(e["rule"] == "secondary_intruder" for e in rel.log.entries)


def test_an_area_outside_the_code_lists_refuses_the_release(loaded):
    police = _police([("Leicester", "East Leicester", 30), ("Leicester", "Mr J Smith, 1 High St", 12)])
    with pytest.raises(LinkageInputError, match="code lists") as e:
        _build(loaded, ProfileRelease(loaded.profile.disclosure), police)
    assert "Smith" not in str(e.value)


def test_earlier_profile_releases_are_differenced_through_the_register(loaded, tmp_path):
    """A second profile whose occurrences differ from the first's by 3 would give those 3 away by
    subtraction (their district, hour, flags ...): refused. The same data again passes the joint attack."""
    from linkage.cohort.intruder import ReleaseRefused
    from linkage.cohort.register import ReleaseRegister

    path = tmp_path / "register.json"
    first = _build(loaded, ProfileRelease(loaded.profile.disclosure))
    reg = ReleaseRegister.open(path)
    first.check_earlier(reg, "sv_profile")            # nothing earlier: nothing to check
    reg.record_cells("r1", "sv_profile", first.populations, first.cells(), first.relations(),
                     loaded.profile.disclosure)
    reg = ReleaseRegister.open(path)                   # read back from disk
    again = _build(loaded, ProfileRelease(loaded.profile.disclosure))
    again.check_earlier(reg, "sv_profile")             # the same occurrences: the joint attack finds nothing
    later = _build(loaded, ProfileRelease(loaded.profile.disclosure),
                   _police([*AREAS, ("Leicester", "West Leicester", 3)]))
    with pytest.raises(ReleaseRefused, match=r"population .occurrences\|(period|current_year). differs .* by 1-9"):
        later.check_earlier(reg, "sv_profile")
    assert reg.cell_releases("another_profile") == []
