"""linkage link on small synthetic extracts encoded in the test with a fresh key."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from linkage.cli import app
from linkage.encode import encode_extract
from linkage.errors import LinkageConfigError, LinkageInputError, ManifestMismatchError
from linkage.io import sha256_file
from linkage.keys import generate_key, write_key_file
from linkage.link import link_extracts
from linkage.link.config import LinkConfig
from linkage.synth import generate_extracts

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("police", "education", "social_care")
PEOPLE = 300


def fast_config(**updates) -> LinkConfig:
    cfg = LinkConfig()
    cfg.training.u_max_pairs = 2e5
    for name, value in updates.items():
        setattr(cfg, name, value)
    return cfg


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    base = tmp_path_factory.mktemp("link")
    generate_extracts(PEOPLE, 11, base / "raw", quiet=True)
    key = generate_key()
    write_key_file(base / "key", key)
    dirs = []
    for source in SOURCES:
        out = base / f"enc_{source}"
        encode_extract(ROOT / "configs" / "partners" / f"{source}.yaml", key, base / "raw" / f"{source}.csv", out,
                       quiet=True)
        dirs.append(out)
    link_dir = base / "link1"
    manifest = link_extracts(dirs, link_dir, fast_config(), quiet=True)
    return {"base": base, "key": key, "dirs": dirs, "link": link_dir, "manifest": manifest}


def _copy_extracts(world: dict, dest: Path) -> list[Path]:
    copies = []
    for d in world["dirs"]:
        target = dest / d.name
        shutil.copytree(d, target)
        copies.append(target)
    return copies


def test_crosswalk_has_one_row_per_record_and_no_scores(world):
    crosswalk = pd.read_parquet(world["link"] / "crosswalk.parquet")
    assert list(crosswalk.columns) == ["person_id", "source", "record_id"]
    assert crosswalk.record_id.is_unique
    expected = sum(json.loads((d / "manifest.json").read_text())["counts"]["records"] for d in world["dirs"])
    assert len(crosswalk) == expected
    # Linking happened across sources: some persons hold records from two or more sources.
    assert (crosswalk.groupby("person_id").source.nunique() >= 2).sum() > PEOPLE // 10
    for name in ("pairs.parquet", "model.json", "report.html", "manifest.json"):
        assert (world["link"] / name).is_file()


def test_one_to_one_sources_never_share_a_person(world):
    crosswalk = pd.read_parquet(world["link"] / "crosswalk.parquet")
    for source in ("education", "social_care"):  # their manifests promise one person per id
        per_person = crosswalk[crosswalk.source == source].groupby("person_id").size()
        assert per_person.max() == 1


def test_identical_inputs_give_identical_crosswalks(world, tmp_path):
    link_extracts(world["dirs"], tmp_path / "again", fast_config(), quiet=True)
    first = world["link"] / "crosswalk.parquet"
    second = tmp_path / "again" / "crosswalk.parquet"
    pd.testing.assert_frame_equal(pd.read_parquet(first), pd.read_parquet(second))
    assert sha256_file(first) == sha256_file(second)


def test_manifest_records_inputs_counts_and_timings(world):
    m = json.loads((world["link"] / "manifest.json").read_text())
    assert m["kcv"] == json.loads((world["dirs"][0] / "manifest.json").read_text())["kcv"]
    assert [i["source"] for i in m["inputs"]] == list(SOURCES)
    assert m["inputs"][0]["files"]["tokens.parquet"] == sha256_file(world["dirs"][0] / "tokens.parquet")
    assert m["link_type"] == "link_and_dedupe" and m["deduplicated_sources"] == ["police"]
    assert m["counts"]["pairs_scored"] >= m["counts"]["pairs_at_threshold"] > 0
    assert {"check extracts", "train model", "score pairs", "cluster into persons"} <= set(m["timings_seconds"])
    assert m["config"]["training"]["seed"] == 42
    # Every usable rule is listed with its estimate; at this size none is over the pair budget.
    assert len(m["blocking"]) > 10 and all(p["used"] for p in m["blocking"])
    assert any(p["rule"] == "given_name__exact + surname__exact" and p["estimated_pairs"] > 0 for p in m["blocking"])


def test_report_holds_the_charts_and_no_identifiers(world):
    html = (world["link"] / "report.html").read_text()
    assert html.count("data-kind='vega-lite'") >= 7  # weights, m/u, histogram, waterfall, sizes, rates, unlinked
    for caption in ("Match weights per level", "m and u parameters", "Match-weight histogram", "Waterfall",
                    "Persons by number of records", "in a person of one record", "Timings", "Blocking rules",
                    "Chain guards", "clustering threshold"):
        assert caption in html
    # what the chain-guard section says about flagged persons: test_chain_guard_flags_clusters_with_two_upns
    crosswalk = pd.read_parquet(world["link"] / "crosswalk.parquet")
    tokens = pd.read_parquet(world["dirs"][0] / "tokens.parquet")
    for value in list(crosswalk.record_id[:50]) + list(tokens.surname__exact.dropna()[:50]):
        assert value not in html


def test_mismatched_key_is_refused_naming_the_extract(world, tmp_path):
    other_key = generate_key()
    odd = tmp_path / "enc_police_other_key"
    encode_extract(ROOT / "configs" / "partners" / "police.yaml", other_key, world["base"] / "raw" / "police.csv",
                   odd, quiet=True)
    with pytest.raises(ManifestMismatchError, match="key check value") as exc:
        link_extracts([world["dirs"][1], odd], tmp_path / "out", fast_config(), quiet=True)
    assert str(odd) in str(exc.value)
    assert not (tmp_path / "out").exists()


def test_mismatched_project_is_refused(world, tmp_path):
    a, b = _copy_extracts(world, tmp_path)[:2]
    manifest = json.loads((b / "manifest.json").read_text())
    manifest["project_id"] = "another-project"
    (b / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ManifestMismatchError, match="project id"):
        link_extracts([a, b], tmp_path / "out", fast_config(), quiet=True)


def test_truncated_parquet_is_refused(world, tmp_path):
    copies = _copy_extracts(world, tmp_path)
    tokens = copies[0] / "tokens.parquet"
    data = tokens.read_bytes()
    tokens.write_bytes(data[: len(data) // 2])
    with pytest.raises(ManifestMismatchError, match=r"tokens\.parquet: SHA-256 does not match"):
        link_extracts(copies, tmp_path / "out", fast_config(), quiet=True)


def test_tampered_parquet_is_refused(world, tmp_path):
    copies = _copy_extracts(world, tmp_path)
    tokens = copies[1] / "tokens.parquet"
    data = bytearray(tokens.read_bytes())
    data[len(data) // 3] ^= 0xFF
    tokens.write_bytes(bytes(data))
    with pytest.raises(ManifestMismatchError, match="truncated, corrupted or changed"):
        link_extracts(copies, tmp_path / "out", fast_config(), quiet=True)


def test_truncated_parquet_with_forged_checksum_is_still_refused(world, tmp_path):
    copies = _copy_extracts(world, tmp_path)
    tokens = copies[0] / "tokens.parquet"
    tokens.write_bytes(tokens.read_bytes()[:200])
    manifest = json.loads((copies[0] / "manifest.json").read_text())
    manifest["files"]["tokens.parquet"] = sha256_file(tokens)
    (copies[0] / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(LinkageInputError, match="not a readable Parquet file"):
        link_extracts(copies, tmp_path / "out", fast_config(), quiet=True)


def test_cli_refusal_is_one_line_with_exit_code(world, tmp_path):
    copies = _copy_extracts(world, tmp_path)
    (copies[2] / "tokens.parquet").write_bytes(b"PAR1 not really")
    result = CliRunner().invoke(app, ["link", *map(str, copies), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip() and not line.startswith("[")]  # no phases
    assert len(lines) == 1 and lines[0].startswith("error:") and "tokens.parquet" in lines[0]
    assert "Traceback" not in result.output


def test_chain_guard_flags_clusters_with_two_upns(world, tmp_path):
    cfg = fast_config()
    cfg.clustering.method = "connected_components"
    cfg.clustering.threshold_match_probability = 0.02  # deliberately loose: chains form
    cfg.clustering.max_cluster_size = 3
    m = link_extracts(world["dirs"], tmp_path / "loose", cfg, quiet=True)
    guards = m["chain_guards"]
    assert guards["trusted_identifiers_checked"] == ["upn__exact", "nhs_number__exact"]
    assert guards["clusters_with_conflicting_identifiers"] > 0
    assert guards["clusters_over_size_limit"] > 0
    assert m["counts"]["largest_cluster"] > 3
    # Who should be flagged, worked out here from the crosswalk and the tokens, not from the job's tables.
    crosswalk = pd.read_parquet(tmp_path / "loose" / "crosswalk.parquet")
    sizes = crosswalk.groupby("person_id").size()
    oversized = set(sizes[sizes > 3].index)
    trusted = ["upn__exact", "nhs_number__exact"]
    tokens = pd.concat([pd.read_parquet(d / "tokens.parquet").reindex(columns=["record_id", *trusted])
                        for d in world["dirs"]])
    distinct = crosswalk.merge(tokens, on="record_id").groupby("person_id")[trusted].nunique()
    conflict = set(distinct[(distinct > 1).any(axis=1)].index)
    flagged = oversized | conflict
    assert (guards["clusters_with_conflicting_identifiers"], guards["clusters_over_size_limit"]) == (
        len(conflict), len(oversized))
    # The report's chain-guard section counts them and lists them, most likely false merge first.
    html = (tmp_path / "loose" / "report.html").read_text()
    assert (f"{len(conflict):,} persons hold two different trusted identifiers (upn__exact, nhs_number__exact); "
            f"{len(oversized):,} persons exceed 3 records.") in html
    assert f"of the {len(flagged):,} flagged persons" in html
    assert "No person was flagged." not in html
    listed = set(re.findall(r"P[0-9a-f]{20}", html))
    assert listed <= flagged and len(listed) == min(50, len(flagged))


def test_duckdb_spills_into_a_private_folder_that_is_removed(world, tmp_path, monkeypatch):
    """Under a tight memory limit DuckDB spills; the files must not land in the working directory
    (DuckDB's own default, '.tmp') nor outlive the run: they hold token columns."""
    from linkage.link.run import duckdb_session

    parent, cwd = tmp_path / "spill-parent", tmp_path / "cwd"
    parent.mkdir()
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    cfg = fast_config(duckdb_memory_limit="1GB", duckdb_temp_directory=str(parent))
    with duckdb_session(cfg) as con:
        spill = Path(con.execute("SELECT current_setting('temp_directory')").fetchone()[0])
        assert spill.parent == parent and spill.is_dir()
        assert con.execute("SELECT current_setting('memory_limit')").fetchone()[0].startswith("953")  # 1GB = 953.6 MiB
    assert not spill.exists()

    link_extracts(world["dirs"], tmp_path / "out", cfg, quiet=True)
    assert (tmp_path / "out" / "crosswalk.parquet").is_file()
    assert list(parent.iterdir()) == [] and list(cwd.iterdir()) == []


def test_out_of_memory_is_one_line_naming_the_setting(world, tmp_path):
    cfg_path = tmp_path / "link.yaml"
    cfg_path.write_text("duckdb_memory_limit: 20MB\ntraining: {u_max_pairs: 200000}\n")
    result = CliRunner().invoke(app, ["link", "--config", str(cfg_path), *map(str, world["dirs"]),
                                      "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert lines[-1].startswith("error: DuckDB ran out of memory; raise duckdb_memory_limit")
    assert "Traceback" not in result.output and not (tmp_path / "out").exists()


def test_scoring_in_slices_gives_the_same_pairs_and_persons(world, tmp_path):
    """score_chunks splits prediction by right-hand record: every candidate pair falls in exactly one slice."""
    sliced = link_extracts(world["dirs"], tmp_path / "sliced", fast_config(score_chunks=3), quiet=True)
    assert sliced["counts"]["score_chunks"] == 3 and world["manifest"]["counts"]["score_chunks"] == 1
    assert sliced["counts"]["pairs_scored"] == world["manifest"]["counts"]["pairs_scored"]
    cols = ["identity_id_l", "identity_id_r", "match_probability"]
    whole = pd.read_parquet(world["link"] / "pairs.parquet", columns=cols)
    parts = pd.read_parquet(tmp_path / "sliced" / "pairs.parquet", columns=cols)
    pd.testing.assert_frame_equal(whole, parts)
    assert sha256_file(tmp_path / "sliced" / "crosswalk.parquet") == sha256_file(world["link"] / "crosswalk.parquet")


def test_missing_spill_folder_is_a_config_error(world, tmp_path):
    with pytest.raises(LinkageConfigError, match="duckdb_temp_directory is not an existing folder"):
        link_extracts(world["dirs"], tmp_path / "out", fast_config(duckdb_temp_directory=str(tmp_path / "nope")),
                      quiet=True)
    assert not (tmp_path / "out").exists()


def test_a_blocking_rule_column_outside_the_column_grammar_is_a_config_error(tmp_path):
    """List-rule columns reach SQL unquoted by Splink's block_on: only contract-grammar names are accepted."""
    from linkage.link.config import load_link_config

    cfg = tmp_path / "linkage.yaml"
    cfg.write_text('blocking_rules:\n  - ["dob__exact", "surname__exact) OR (1=1"]\n', encoding="utf-8")
    with pytest.raises(LinkageConfigError) as exc:
        load_link_config(cfg)
    assert "blocking_rules" in str(exc.value) and "\n" not in str(exc.value)
    cfg.write_text('blocking_rules:\n  - ["dob__exact", "surname__exact"]\n', encoding="utf-8")
    assert load_link_config(cfg).blocking_rules == [["dob__exact", "surname__exact"]]


def test_a_token_list_column_in_a_training_rule_is_a_config_error_not_a_crash_mid_link(tmp_path):
    """Splink refuses exploded rules in EM and prior estimation; refuse them when the config is read."""
    from linkage.link.config import load_link_config

    cfg = tmp_path / "linkage.yaml"
    cfg.write_text('training:\n  em_rules:\n    - ["dob__del1", "surname__exact"]\n', encoding="utf-8")
    with pytest.raises(LinkageConfigError) as exc:
        load_link_config(cfg)
    assert "em_rules" in str(exc.value) and "token-list" in str(exc.value) and "\n" not in str(exc.value)
