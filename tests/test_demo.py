"""The whole path partners → linkage unit → analysis → researcher on synthetic data, and a privacy scan of
every hand-over: no clear identifier leaves the partners, no attribute value reaches the linkage unit."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from linkage import keys
from linkage.contracts.attribute_package import read_attribute_package
from linkage.demo import ROLES, SOURCES

# The demo run itself is conftest's session fixture ``demo`` (1,500 people, fixed key), shared with test_browser:
# every test here only reads its output.


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
    for path in ("linkage-unit/link/crosswalk.parquet", "linkage-unit/link/report.html",
                 "linkage-unit/link/manifest.json", "analysis/crosswalk/crosswalk.parquet",
                 "researcher/cohort/report.html", "researcher/cohort/manifest.json",
                 "synthetic-only/evaluation.json"):
        assert (out / path).is_file(), path
    for source in ("police", "education", "social_care"):
        counts = summary["encoded"][source]
        assert counts["rows_read"] == counts["rows_accepted"] + counts["rows_rejected"] > 0
    assert summary["evaluation"]["precision"] > 0.9
    assert summary["evaluation"]["recall"] > 0.8


def test_every_partner_extract_passed_the_release_gate_with_the_shipped_configs(demo):
    # The demo encodes with the shipped configs through the gate `linkage hash` runs and links with the gate
    # `linkage link` applies; a shipped profile the audit beats would have stopped it (ReleaseAuditFailed).
    out, summary = demo
    assert set(summary["release_audits"]) == set(SOURCES)
    for source in SOURCES:
        audit = summary["release_audits"][source]
        assert audit["status"] == "passed" and audit["risk"] <= audit["max_risk"] == 0.1, source
        manifest = json.loads((out / "linkage-unit" / "identifiers" / source / "manifest.json").read_text())
        assert manifest["release_audit"]["status"] == "passed"


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
    for stage in ("linkage-unit", "analysis", "researcher"):
        for path, text in _texts(out / stage).items():
            # Compare whole words and adjacent word pairs ("LE2 1AB"): one set look-up per word.
            words = re.findall(r"[a-z0-9'/\-]+", text.lower())
            present = set(words) | {f"{a} {b}" for a, b in zip(words, words[1:], strict=False)}
            candidates = values - dates if path.parent.parent.name == "attributes" else values
            leaked = [v for v in candidates if v.lower() in present]
            assert not leaked, f"{path} contains clear identifiers, e.g. {leaked[:3]}"


def test_researcher_outputs_carry_no_hashes(demo):
    out, _ = demo
    for path, text in _texts(out / "researcher").items():
        assert not re.search(r"\b[0-9a-f]{32}\b", text), path


def test_each_role_holds_only_its_own_files(demo):
    out, summary = demo
    held = summary["holdings"]
    assert set(held) == set(ROLES)
    # Keys: the project key only at the partners, the analysis private key only in analysis, the
    # release key only at the linkage unit.
    assert "project.key" in held["partners"] and "analysis.pub" in held["partners"]
    assert "analysis.key" in held["analysis"] and "release.key" in held["linkage-unit"]
    for role in ("linkage-unit", "analysis", "researcher"):
        assert "project.key" not in held[role]
    assert not any(f.endswith("analysis.key") for r in ("partners", "linkage-unit", "researcher") for f in held[r])
    # The linkage unit's identifier packages hold exactly tokens, rejects and manifest.
    for source in SOURCES:
        assert sorted(p.name for p in (out / "linkage-unit" / "identifiers" / source).iterdir()) == [
            "manifest.json", "rejected.csv", "tokens.parquet"]
    assert not any("payload" in f or "attributes" in f for f in held["linkage-unit"])
    # The analysis environment never receives tokens, nor the linkage unit's internal person ids.
    assert not any(f.endswith("tokens.parquet") for f in held["analysis"])
    internal = set(pq.read_table(out / "linkage-unit/link/crosswalk.parquet").column("person_id").to_pylist())
    released = set(pq.read_table(out / "analysis/crosswalk/crosswalk.parquet").column("person_id").to_pylist())
    assert internal and released and internal.isdisjoint(released) and len(internal) == len(released)


def _payload_values(out: Path) -> set[str]:
    """Every distinct value (6+ characters) of the raw extracts' payload columns, shipped or not."""
    from linkage.config import load_partner_config
    from linkage.resources import configs_dir

    values: set[str] = set()
    for source in SOURCES:
        cfg = load_partner_config(configs_dir() / "partners" / f"{source}.yaml")
        cols = [p.column for p in cfg.payload]
        frame = pd.read_csv(out / "partners" / "raw" / f"{source}.csv", dtype=str, keep_default_na=False,
                            usecols=cols)
        for col in cols:
            # Values that can point at a person or an event: with a digit or several words (references,
            # timestamps, dates, descriptions, areas). Single code words (SUSPECT, MISSING) are also
            # ordinary words of any report, so they prove nothing either way.
            values.update(v for v in frame[col].unique()
                          if len(v) >= 6 and (re.search(r"[0-9]", v) or re.search(r"[a-z]\W+[a-z]", v, re.I)))
    return values


_WORD = re.compile(r"[a-z0-9'/\-:.]+")


def _readable_text(path: Path) -> str:
    """The file's bytes as text, plus each Parquet string column's values (its pages are compressed)."""
    text = path.read_bytes().decode("latin-1")
    if path.suffix == ".parquet":
        table = pq.read_table(path)
        for name in table.column_names:
            if "string" in str(table.schema.field(name).type):
                text += "\n" + "\n".join(map(str, table.column(name).to_pylist()))
    return text


def _found(values: set[str], texts: dict[Path, str]) -> list[tuple[str, str]]:
    """(file, value) for each value whose words occur in the file as consecutive words."""
    wanted = {" ".join(_WORD.findall(v.lower())): v for v in values}
    wanted.pop("", None)
    hits = []
    for path, text in texts.items():
        words = _WORD.findall(text.lower())
        present, joined = set(words), None
        for phrase, value in wanted.items():
            parts = phrase.split(" ")
            if not all(p in present for p in parts):
                continue
            if len(parts) > 1:
                joined = joined if joined is not None else f" {' '.join(words)} "
                if f" {phrase} " not in joined:
                    continue
            hits.append((str(path), value))
    return hits


def test_nothing_the_linkage_unit_reads_holds_an_attribute_value(demo):
    out, _ = demo
    values = _payload_values(out)
    assert len(values) > 1000  # crime references, timestamps, dates, offence descriptions, areas
    # Everything `link` read (the identifier packages) and everything it wrote.
    read_by_link = {p: _readable_text(p) for p in (out / "linkage-unit").rglob("*") if p.is_file()}
    leaked = _found(values, read_by_link)
    assert not leaked, leaked[:3]
    # The sealed attribute packages the linkage unit relays: no value readable in their bytes either.
    for source in SOURCES:
        folder = out / "analysis" / "attributes" / source
        assert not _found(values, {p: _readable_text(p) for p in folder.iterdir()})
    # Positive control: the same scan finds the values once the analysis key opens a package.
    private = keys.read_analysis_private_key(out / "analysis" / "analysis.key")
    opened = read_attribute_package(out / "analysis" / "attributes" / "police", private).table
    assert _found(values, {Path("opened"): opened.to_pandas().to_csv()})


def test_payload_is_minimised_as_configured(demo):
    out, _ = demo
    private = keys.read_analysis_private_key(out / "analysis" / "analysis.key")
    police = read_attribute_package(out / "analysis" / "attributes" / "police", private).table
    raw = pd.read_csv(out / "partners" / "raw" / "police.csv", dtype=str, keep_default_na=False)
    assert not {"forename", "surname", "date_of_birth", "postcode"} & set(police.column_names)  # no identifier
    times = pd.Series(police.column("committed_from").to_pylist()).dropna()
    assert len(times) > 0 and (pd.to_datetime(times).dt.minute == 0).all()  # the hour, never the minute
    refs = set(police.column("crime_ref").to_pylist())
    assert refs.isdisjoint(set(raw["crime_ref"]))  # keyed pseudonyms, not the references
    # ...yet equal references stay equal: as many distinct pseudonyms as distinct accepted references.
    assert len(refs) == raw["crime_ref"].nunique()
