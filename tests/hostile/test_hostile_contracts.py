"""A hostile partner's identifier package: SQL in names, edited KCV, paths in file lists, bad sources.

Each is refused by the contract layer (``linkage.contracts``) before any SQL is built: ``link`` exits
non-zero with one line naming the manifest, writes nothing, and the file the injected SQL would have
written does not exist. The "weakened" tests switch the naming grammar off and show the same package
then passes the contract: the grammar is what stops it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from linkage.contracts import identifier_package, read_identifier_package
from linkage.errors import LinkageInputError, ManifestMismatchError
from linkage.link.checks import check_extracts

from .conftest import assert_nothing_written, assert_refused, config_dict, encode, people, rewrite_manifest, run_cli


def _column_injection(folder: Path, evil_file: Path) -> None:
    """Rename a token column to SQL that would copy data to a file of the attacker's choice."""
    evil = (f"dob__exact, 1, 16))::UBIGINT AS zz FROM read_parquet('x'); COPY (SELECT 1) TO '{evil_file}'; --")
    table = pq.read_table(folder / "tokens.parquet")
    table = table.rename_columns([evil if c == "dob__exact" else c for c in table.column_names])
    pq.write_table(table, folder / "tokens.parquet")

    def change(m: dict) -> None:
        m["encodings"]["columns"][evil] = m["encodings"]["columns"].pop("dob__exact")
    rewrite_manifest(folder, change)


def _source_injection(folder: Path, evil_file: Path) -> None:
    def change(m: dict) -> None:
        m["source"] = (f"x' as source_dataset, * from tok_1) select 1 as count; COPY (SELECT 1) TO "
                       f"'{evil_file}'; --")
    rewrite_manifest(folder, change)


@pytest.mark.parametrize("attack", [_column_injection, _source_injection])
def test_sql_injection_in_a_manifest_is_refused_before_any_sql(tmp_path, two_extracts, attack):
    police, health = two_extracts
    evil_file = tmp_path / "stolen.csv"
    attack(police, evil_file)
    result = run_cli("link", str(police), str(health), "--out", str(tmp_path / "link"), "--quiet")
    line = assert_refused(result, names=str(police / "manifest.json"))
    assert "COPY" not in line and "stolen" not in line  # the hostile text is not echoed either
    assert not evil_file.exists()
    assert_nothing_written(tmp_path, "link")


def test_weakened_grammar_lets_the_column_injection_through_the_contract(tmp_path, two_extracts, monkeypatch):
    police, _ = two_extracts
    _column_injection(police, tmp_path / "stolen.csv")
    with pytest.raises(LinkageInputError, match="naming"):
        read_identifier_package(police)
    # Switch the grammar off: the same package now validates, so the grammar is what refused it.
    monkeypatch.setattr(identifier_package, "is_valid_column", lambda name: True)
    package = read_identifier_package(police)
    assert any("COPY" in c for c in package.columns)


def test_quote_in_a_source_name_is_refused_not_crashing(tmp_path, two_extracts):
    police, health = two_extracts
    rewrite_manifest(police, lambda m: m.update(source="po'lice"))
    result = run_cli("link", str(police), str(health), "--out", str(tmp_path / "link"), "--quiet")
    assert_refused(result, names="field 'source'")
    assert_nothing_written(tmp_path, "link")


@pytest.mark.parametrize("source", ["po'lice", "", "../../etc/evil", "a b", "x;--", "é"])
def test_hash_source_override_obeys_the_config_pattern(tmp_path, key_file, source):
    from .conftest import write_config, write_csv

    raw = write_csv(tmp_path / "in.csv", people(20))
    cfg = write_config(tmp_path / "p.yaml", config_dict())
    result = run_cli("hash", "--config", str(cfg), "--key", str(key_file), "--input", str(raw),
                     "--out", str(tmp_path / "enc"), "--source", source, "--quiet")
    assert_refused(result, names="--source")
    assert_nothing_written(tmp_path, "enc")
    assert not (tmp_path.parent / "etc").exists()


def test_listed_file_outside_the_folder_is_refused(tmp_path, two_extracts):
    police, health = two_extracts
    manifest = json.loads((police / "manifest.json").read_text())
    manifest["files"]["../../secret.txt"] = "0" * 64
    (police / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(LinkageInputError, match="bare file name"):
        check_extracts([police, health])


def test_undeclared_parquet_column_is_refused(tmp_path, two_extracts):
    police, health = two_extracts
    table = pq.read_table(police / "tokens.parquet")
    pq.write_table(table.append_column("given_name", table.column("record_id")), police / "tokens.parquet")
    rewrite_manifest(police, lambda m: None)
    with pytest.raises(LinkageInputError, match="not declared in the manifest"):
        check_extracts([police, health])


def test_edited_kcv_is_caught_by_the_tokens_themselves(tmp_path, key):
    from linkage.keys import generate_key

    rows = people(80)
    police = encode(tmp_path, key, "police", rows)
    other = encode(tmp_path, generate_key(), "health", rows[:50])  # another key…
    kcv = json.loads((police / "manifest.json").read_text())["kcv"]
    rewrite_manifest(other, lambda m: m.update(kcv=kcv))  # …with the KCV edited to match
    result = run_cli("link", str(police), str(other), "--out", str(tmp_path / "link"), "--quiet")
    line = assert_refused(result, names=str(other))
    assert "another key" in line
    assert_nothing_written(tmp_path, "link")


def test_edited_kcv_probe_would_miss_it_if_weakened(tmp_path, key, monkeypatch):
    from linkage.contracts import crosscheck
    from linkage.keys import generate_key

    rows = people(80)
    police = encode(tmp_path, key, "police", rows)
    other = encode(tmp_path, generate_key(), "health", rows[:50])
    kcv = json.loads((police / "manifest.json").read_text())["kcv"]
    rewrite_manifest(other, lambda m: m.update(kcv=kcv))
    with pytest.raises(ManifestMismatchError):
        check_extracts([police, other])
    monkeypatch.setattr(crosscheck, "KEY_PROBE_COLUMNS", ())  # without the probe the edit goes unnoticed
    assert len(check_extracts([police, other])) == 2


def test_honest_extracts_with_one_key_pass_the_probe(two_extracts):
    assert [e.source for e in check_extracts(list(two_extracts))] == ["police", "health"]


def test_identifier_as_payload_config_is_refused(tmp_path, key_file):
    from .conftest import write_config, write_csv

    raw = write_csv(tmp_path / "in.csv", people(20))
    for payload in ({"column": "person_ref"}, {"column": "date_of_birth"}, {"column": "Post Code"},
                    {"column": "NHS_Number"}, {"column": "dob"}):
        cfg = write_config(tmp_path / "p.yaml", config_dict(payload=[payload]))
        result = run_cli("hash", "--config", str(cfg), "--key", str(key_file), "--input", str(raw),
                         "--out", str(tmp_path / "enc"), "--quiet")
        line = assert_refused(result, names="payload")
        assert "identifier" in line or "local id" in line
        assert_nothing_written(tmp_path, "enc")


def test_empty_package_is_refused_before_training(tmp_path, two_extracts):
    import pyarrow as pa

    police, health = two_extracts
    table = pq.read_table(police / "tokens.parquet")
    pq.write_table(pa.Table.from_batches([], schema=table.schema), police / "tokens.parquet")

    def empty(m: dict) -> None:
        m["counts"].update(identities=0, records=0)
    rewrite_manifest(police, empty)
    result = run_cli("link", str(police), str(health), "--out", str(tmp_path / "link"), "--quiet")
    assert_refused(result, names="field 'counts.identities'")
    assert_nothing_written(tmp_path, "link")


def test_hostile_key_is_not_echoed_in_the_error(tmp_path, two_extracts):
    police, health = two_extracts

    def change(m: dict) -> None:
        m["encodings"]["columns"]["a' OR 1=1--"] = {"field": "BAD FIELD", "encoding": "exact", "type": "token"}
    rewrite_manifest(police, change)
    result = run_cli("link", str(police), str(health), "--out", str(tmp_path / "link"), "--quiet")
    line = assert_refused(result, names=str(police / "manifest.json"))
    assert "OR 1=1" not in line and "BAD FIELD" not in line
