"""The whole path partner → VRN → researcher on synthetic data, and a privacy scan of every hand-over."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from linkage.demo import run_demo

PEOPLE = 1500


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("demo") / "run"
    return out, run_demo(out, people=PEOPLE, seed=11, quiet=True)


def _texts(folder: Path) -> dict[Path, str]:
    """Every file as text; Parquet decoded; the inlined chart library dropped (it is code, not data)."""
    texts = {}
    for path in folder.rglob("*"):
        if not path.is_file():
            continue
        if path.suffix == ".parquet":
            texts[path] = pq.read_table(path).to_pandas().to_csv()
        else:
            text = path.read_bytes().decode("utf-8", errors="replace")
            texts[path] = re.sub(r"<script>(?:(?!</script>).){20000,}?</script>", "", text, flags=re.S)
    return texts


def test_demo_runs_every_stage_and_links_accurately(demo):
    out, summary = demo
    for path in ("vrn/link/crosswalk.parquet", "vrn/link/report.html", "vrn/link/manifest.json",
                 "researcher/cohort/report.html", "researcher/cohort/manifest.json", "vrn/evaluation.json"):
        assert (out / path).is_file(), path
    for source in ("police", "education", "social_care"):
        counts = summary["encoded"][source]
        assert counts["rows_read"] == counts["rows_accepted"] + counts["rows_rejected"] > 0
    assert summary["evaluation"]["precision"] > 0.9
    assert summary["evaluation"]["recall"] > 0.8


def test_no_clear_identifier_leaves_the_partner_side(demo):
    out, _ = demo
    raw = out / "partners" / "raw"
    values: set[str] = set()
    for source, cols in (("police", ["forename", "surname", "date_of_birth", "postcode", "nominal_id"]),
                         ("education", ["forename", "surname", "dob", "postcode", "upn"]),
                         ("social_care", ["forename", "surname", "dob", "postcode", "nhs_number", "child_id"])):
        frame = pd.read_csv(raw / f"{source}.csv", dtype=str, keep_default_na=False, usecols=cols)
        for col in cols:
            values.update(v for v in frame[col].unique() if len(v) >= 6 and v.upper() != "NFA")
    values -= {"Wilson", "WILSON"}  # also the name of the confidence interval the cohort tables report
    assert len(values) > 500
    # Payloads legitimately carry event dates, which can coincide with someone's date of birth.
    dates = {v for v in values if re.fullmatch(r"[0-9/\-]+", v)}
    for stage in ("encoded", "vrn", "researcher"):
        for path, text in _texts(out / stage).items():
            # Compare whole words and adjacent word pairs ("LE2 1AB"): one set look-up per word.
            words = re.findall(r"[a-z0-9'/\-]+", text.lower())
            present = set(words) | {f"{a} {b}" for a, b in zip(words, words[1:], strict=False)}
            candidates = values - dates if path.name == "payload.parquet" else values
            leaked = [v for v in candidates if v.lower() in present]
            assert not leaked, f"{path} contains clear identifiers, e.g. {leaked[:3]}"


def test_researcher_outputs_carry_no_hashes(demo):
    out, _ = demo
    for path, text in _texts(out / "researcher").items():
        assert not re.search(r"\b[0-9a-f]{32}\b", text), path
