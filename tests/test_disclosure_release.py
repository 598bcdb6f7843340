"""A whole release under default disclosure control, on a generated linked dataset.

Checks the files a researcher receives, byte by byte: no count of 1-4, no cell recoverable from the
margins printed beside it, no 32-hex id, person id, exact date or postcode anywhere, and k-anonymity
of the person-level table.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from linkage.cohort import build_cohort
from linkage.cohort.config import load_cohort_config
from linkage.cohort.risk_factors import factor_sources
from linkage.cohort.tables import TableBuilder

REPO = Path(__file__).resolve().parents[1]
NPAS = ["Central Leicester", "East Leicester", "West Leicester", "Charnwood", "Hinckley & Blaby"]
ETHNIC = ["W1", "W1", "W1", "W2", "A1", "A2", "B1", "M1", "O1"]
HEX32 = re.compile(rb"(?<![0-9a-f])[0-9a-f]{32}(?![0-9a-f])")
POSTCODE = re.compile(rb"\b[A-Z]{1,2}[0-9][A-Z0-9]? ?[0-9][A-Z]{2}\b")
ISO_DATE = re.compile(rb"\b(19|20)\d\d-[01]\d-[0-3]\d\b")
COUNT_COLUMNS = {"people", "linked", "people_with_factor", "denominator", "previously_victimised"}


def rid(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()[:32]


def _date(rng: random.Random, lo: int = 2008, hi: int = 2023) -> dt.date:
    return dt.date(lo, 1, 1) + dt.timedelta(days=rng.randrange((hi - lo + 1) * 365))


def generate(root: Path, n_people: int = 160, seed: int = 7) -> tuple[Path, list[Path], set[dt.date]]:
    rng = random.Random(seed)
    pol, edu, sc, cw, dates = [], [], [], [], set()
    crime = iter(range(10_000, 99_999))
    for i in range(n_people):
        pid = f"person-{i:06d}"
        prec = rid(f"police-{i}")
        cw.append((pid, "police", prec))
        eth, npa = rng.choice(ETHNIC), rng.choice(NPAS)

        def police(cls, desc, role, day, prec=prec, eth=eth, npa=npa, **flags):
            dates.add(day)
            pol.append({"record_id": prec, "ethnicity": eth, "crime_ref": f"LC-{next(crime)}",
                        "ho_class": cls, "offence_description": desc,
                        "committed_from": dt.datetime.combine(day, dt.time(rng.randrange(24))),
                        "role": role, "da_flag": flags.get("da", "N"), "gang_flag": flags.get("gang", "N"),
                        "cse_flag": "N", "cce_flag": "N", "npa": npa, "markers": flags.get("markers")})

        if rng.random() < 0.6:  # a high-harm offence
            cls, desc = rng.choice([("1", "Murder"), ("2", "Attempted murder"), ("5D", "Wounding with intent"),
                                    ("8N", "Wounding or inflicting grievous bodily harm (s20)")])
            police(cls, desc, rng.choice(["SUSPECT", "OFFENDER"]), _date(rng, 2019, 2023))
        for _ in range(rng.randint(0, 15)):
            cls, desc = rng.choice([("8N", "Assault occasioning actual bodily harm (s47)"), ("34B", "Robbery"),
                                    ("92A", "Supply"), ("8L", "Harassment")])
            police(cls, desc, rng.choice(["SUSPECT", "OFFENDER", "VICTIM", "WITNESS"]), _date(rng),
                   da=rng.choice("YNN"), gang=rng.choice("YNNNN"), markers=rng.choice([None, "MH", "DRUGS"]))
        if rng.random() < 0.75:
            erec = rid(f"edu-{i}")
            cw.append((pid, "education", erec))
            for _ in range(rng.randint(1, 5)):
                day = _date(rng, 2008, 2020)
                dates.add(day)
                kind = rng.choice(["CENSUS", "CENSUS", "EXCLUSION", "NEET"])
                edu.append({"record_id": erec, "record_type": kind,
                            "event_date": day, "nc_year": str(rng.randint(5, 11)),
                            "sen_primary_need": rng.choice([None, None, "SEMH", "ASD", "MLD"]),
                            "fsm_eligible": rng.choice([0, 1]), "sessions_possible": 300,
                            "sessions_missed": rng.choice([0, 10, 40]), "ap_placement": rng.choice([0, 0, 1]),
                            "exclusion_category": rng.choice(["SUSP", "PERM"]),
                            "exclusion_reason": rng.choice(["PA", "DA"])})
        if rng.random() < 0.4:
            crec = rid(f"csc-{i}")
            cw.append((pid, "social_care", crec))
            for _ in range(rng.randint(1, 4)):
                day = _date(rng, 2008, 2020)
                dates.add(day)
                kind = rng.choice(["ASSESSMENT", "CP_PLAN", "CLA_EPISODE", "CIN_EPISODE"])
                sc.append({"record_id": crec, "record_type": kind,
                           "start_date": day, "primary_need": rng.choice(["N1", "N4", "N7", "N8"]),
                           "assessment_factors": ";".join(rng.sample(["1A", "2A", "3B", "4A", "13A", "16A", "24A"], 2)),
                           "cp_category": rng.choice(["NEG", "PHY", "EMO"]), "legal_status": rng.choice(["C2", "J1"]),
                           "substance_misuse": rng.choice([0, 1])})
    dirs = []
    for source, rows in (("police", pol), ("education", edu), ("social_care", sc)):
        d = root / source
        d.mkdir()
        df = pd.DataFrame(rows)
        df.insert(1, "row_number", np.arange(2, len(df) + 2))
        pq.write_table(pa.Table.from_pandas(df, preserve_index=False), d / "payload.parquet")
        (d / "manifest.json").write_text(json.dumps({"source": source}))
        dirs.append(d)
    link = root / "link"
    link.mkdir()
    pd.DataFrame(cw, columns=["person_id", "source", "record_id"]).to_parquet(link / "crosswalk.parquet")
    (link / "manifest.json").write_text("{}")
    return link, dirs, dates


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    root = tmp_path_factory.mktemp("release")
    link, dirs, dates = generate(root)
    cfg = yaml.safe_load((REPO / "configs/cohorts/high_harm.yaml").read_text())
    cfg["offences"], cfg["risk_factors"] = str(REPO / "configs/offences.yaml"), str(REPO / "configs/risk_factors.yaml")
    cfg["person_level"]["enabled"] = True
    cfg_path = root / "cohort.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    result = build_cohort(cfg_path, link, dirs, root / "out", quiet=True, keep_persons=True)
    crosswalk = pd.read_parquet(link / "crosswalk.parquet")
    return result, root / "out", dates, crosswalk, cfg_path


def _csv(out: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(out / f"{name}.csv", dtype=str, keep_default_na=False)


def test_no_released_count_is_small_and_all_are_rounded(release):
    _, out, *_ = release
    for path in out.glob("*.csv"):
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
        for col in COUNT_COLUMNS & set(df.columns):
            for v in df[col]:
                if v in ("c", "z"):
                    continue
                assert int(v) % 5 == 0 and not 1 <= int(v) <= 4, (path.name, col, v)
    summary = _csv(out, "cohort_summary")
    assert (summary["people"] != "c").any()


def _check_partition(values: list[str], total: str, where: str) -> None:
    """If the total shows, no single part may be the only withheld one."""
    if total != "c":
        assert sum(v == "c" for v in values) != 1, where


def test_no_withheld_cell_can_be_recovered_from_printed_margins(release):
    result, out, *_ = release
    groups = ["all", *result["subgroups"]]
    people = _csv(out, "cohort_summary").set_index("group")["people"]
    for name in ("factor_count_distribution", "prior_offence_distribution"):
        dist = _csv(out, name)
        for g in groups:
            _check_partition(list(dist.loc[dist["group"] == g, "people"]), people[g], f"{name}/{g}")
        for band, part in dist.groupby("band"):
            by = part.set_index("group")["people"]
            _check_partition([by[g] for g in result["subgroups"]], by["all"], f"{name}/{band}")
    prev = _csv(out, "factor_prevalence")
    for factor, part in prev[prev["status"] == "ok"].groupby("factor"):
        by = part.set_index("group")["people_with_factor"]
        _check_partition([by[g] for g in result["subgroups"]], by["all"], f"prevalence/{factor}")
    _check_partition([people[g] for g in result["subgroups"]], people["all"], "people")
    cov = _csv(out, "linkage_coverage")
    chars = _csv(out, "coverage_by_characteristic")
    for src, part in cov.groupby("source"):
        by = part.set_index("group")["linked"]
        _check_partition([by[g] for g in result["subgroups"]], by["all"], f"coverage/{src}")
        for dim, cpart in chars[chars["source"] == src].groupby("characteristic"):
            _check_partition(list(cpart["linked"]), by["all"], f"{dim}/{src}")
            _check_partition(list(cpart["people"]), people["all"], f"{dim}/people")


def test_registry_leaves_no_small_cell_solvable(release):
    from tests.test_disclosure import assert_protected

    result, *_, cfg_path = release
    loaded = load_cohort_config(cfg_path)
    persons = result["persons"].copy()
    builder = TableBuilder(persons, loaded.cohort, loaded.risk_factors, ["education", "police", "social_care"],
                           factor_sources(loaded.risk_factors))
    builder.build()
    assert any(1 <= v <= 4 for v in builder.reg.values.values())  # the test data does have small cells
    assert_protected(builder.reg)


def _texts(out: Path) -> dict[str, bytes]:
    texts = {}
    for path in sorted(out.iterdir()):
        texts[path.name] = path.read_bytes()
        if path.suffix == ".parquet":  # compressed pages could hide a string from a raw scan
            texts[path.name + " (decoded)"] = pd.read_parquet(path).to_csv(index=False).encode()
    return texts


def test_byte_scan_finds_no_id_hash_exact_date_or_postcode(release):
    _, out, dates, crosswalk, _ = release
    texts = _texts(out)
    assert any(name.endswith("(decoded)") for name in texts)
    ids = {s.encode() for s in set(crosswalk["record_id"]) | set(crosswalk["person_id"])}
    date_strings = {fmt.encode() for d in dates
                    for fmt in (d.isoformat(), d.strftime("%d/%m/%Y"), d.strftime("%Y%m%d"))}
    for name, data in texts.items():
        for needle in ids:
            assert needle not in data, (name, "id")
        for needle in date_strings:
            assert needle not in data, (name, "date")
        if name == "report.html":  # the inlined chart library is not data (its colour codes look like
            # postcodes); drop it but keep every chart's data script
            data = re.sub(rb"<script>(?:(?!vegaEmbed\().)*?</script>", b"", data, flags=re.S)
            assert data.count(b"vegaEmbed(") >= 3
        assert not HEX32.search(data), name
        assert not POSTCODE.search(data), name
        if name != "manifest.json":  # the manifest's own creation time is the only date it may hold
            assert not ISO_DATE.search(data), name


def test_person_level_table_is_k_anonymous_with_random_ids(release):
    result, out, *_ = release
    person = _csv(out, "person_level")
    qis = ["subgroup", "age_band", "ethnic_group", "index_quarter", "area"]
    assert len(person) > 0
    assert person.groupby(qis).size().min() >= 5
    assert person["research_id"].is_unique
    assert not person["research_id"].isin(result["persons"]["person_id"]).any()
    assert not (set(person.columns) & {"person_id", "record_id", "index_day", "index_crime_ref", "age"})


def test_manifest_records_inputs_and_disclosure_log(release):
    _, out, *_ = release
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(manifest["inputs"]["sha256"]) >= 7
    rules = {e["rule"] for e in manifest["disclosure"]["log"]}
    assert {"primary_small_count", "secondary_complementary", "rounded_to_nearest_5"} <= rules
    assert set(manifest["outputs"]) >= {"report.html", "factor_prevalence.csv", "factor_prevalence.parquet"}
    logged_tables = {e["table"] for e in manifest["disclosure"]["log"]}
    for path in out.glob("*.csv"):  # every table showing a withheld cell says why in the log
        if (pd.read_csv(path, dtype=str, keep_default_na=False) == "c").any().any():
            assert path.stem in logged_tables, path.name
    summary = _csv(out, "cohort_summary").set_index("group")
    for g, row in summary.iterrows():  # a released mean implies at least 10 contributors
        if row["mean_factors"] != "c":
            assert row["people"] != "c" and int(row["people"]) >= 10, g


def test_output_checker_pack_is_in_the_release_but_per_cell_intervals_are_not(release):
    _, out, *_ = release
    pack = (out / "output_checker.md").read_text()
    for needle in ("## Tables", "factor_prevalence", "## Rules applied", "suppress_max | 9", "## Intruder check",
                   "| verdict | pass |"):
        assert needle in pack, needle
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["disclosure"]["intruder"]["verdict"] == "pass"
    assert manifest["release_register"].startswith("not used")  # this fixture release has no register
    for path in out.iterdir():  # which withheld cells are small must not reach the researcher
        assert b"feasible_low" not in path.read_bytes(), path.name
