"""Attribute packages: sealed to the analysis key, minimised at the partner, refused when they are not
the linked extract's, sealed to another key, or altered in any way; per-release crosswalk pseudonyms."""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import stat
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from linkage import encrypt, keys
from linkage.cli import app
from linkage.cohort.inputs import read_inputs
from linkage.config import PartnerConfig
from linkage.contracts.attribute_package import read_attribute_package
from linkage.encode import encode_extract
from linkage.errors import KeyFileError, LinkageConfigError, LinkageInputError, ManifestMismatchError
from linkage.io import sha256_file
from linkage.link.pseudonyms import export_crosswalk

HEADER = ["nominal_id", "forename", "surname", "date_of_birth", "postcode", "crime_ref", "committed_from", "role",
          "note"]
ROWS = [
    ["N1", "Mohammed", "Patel", "09/04/2001", "LE2 1AB", "LC-20190501-0001", "2019-05-01 14:07", "SUSPECT",
     "seen near bus stop"],
    ["N1", "Mohammed", "Patel", "09/04/2001", "LE2 1AB", "LC-20190601-0002", "2019-06-01 23:59", "VICTIM",
     "caller was neighbour"],
    ["N2", "Zoe", "Obrien", "15/06/2003", "LE11 3TU", "LC-20190501-0001", "2019-05-01 14:07", "SUSPECT",
     "fled on bicycle"],
    ["N3", "Jack", "Smyth", "01/01/1990", "LE3 9ZZ", "LC-20200302-0003", "2020-03-02 10:00", "WITNESS",
     "statement taken later"],
]


def config(**overrides) -> PartnerConfig:
    data = {
        "project_id": "test-project", "source": "police", "local_id": "nominal_id",
        "identifiers": {"given_name": {"column": "forename"}, "surname": {"column": "surname"},
                        "date_of_birth": {"column": "date_of_birth", "formats": ["%d/%m/%Y"]},
                        "postcode": {"column": "postcode"}},
        "payload": [{"column": "crime_ref", "generalise": "pseudonym"},
                    {"column": "committed_from", "type": "datetime", "generalise": "day"},
                    {"column": "role"},
                    {"column": "note", "generalise": "drop"}],
    }
    data.update(overrides)
    return PartnerConfig.model_validate(data)


def write_raw(path: Path, rows=ROWS) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(rows)
    return path


def encode(tmp: Path, key: bytes, public, name: str = "police", cfg: PartnerConfig | None = None,
           rows=ROWS) -> dict:
    raw = write_raw(tmp / f"{name}.csv", rows)
    return encode_extract(cfg or config(), key, raw, tmp / name, quiet=True, today=dt.date(2025, 1, 1),
                          analysis_public_key=public, attributes_out=tmp / f"{name}-attributes")


def fake_link(tmp: Path, identifier_dirs: list[Path], name: str = "link") -> Path:
    """A link folder as `linkage link` writes it (manifest inputs by checksum; crosswalk of every record)."""
    link = tmp / name
    link.mkdir()
    inputs, rows = [], []
    for d in identifier_dirs:
        m = json.loads((d / "manifest.json").read_text())
        inputs.append({"path": str(d), "source": m["source"], "files": m["files"]})
        for i, rid in enumerate(sorted(set(pq.read_table(d / "tokens.parquet").column("record_id").to_pylist()))):
            rows.append({"person_id": f"internal-{i}", "source": m["source"], "record_id": rid})
    pq.write_table(pa.Table.from_pylist(rows), link / "crosswalk.parquet")
    first = json.loads((identifier_dirs[0] / "manifest.json").read_text())
    (link / "manifest.json").write_text(json.dumps({"kind": "link", "tool_version": "test",
                                                    "project_id": first["project_id"], "kcv": first["kcv"],
                                                    "inputs": inputs}))
    return link


@pytest.fixture
def sealed(tmp_path, key, analysis_private):
    manifest = encode(tmp_path, key, analysis_private.public_key())
    return tmp_path, manifest, fake_link(tmp_path, [tmp_path / "police"])


def one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


def test_package_opens_with_the_private_key_and_holds_only_minimised_columns(sealed, analysis_private):
    tmp, manifest, link = sealed
    inputs = read_inputs(link, [tmp / "police-attributes"], analysis_private)
    police = inputs.payloads["police"]
    assert len(police) == len(ROWS)
    assert list(police.columns) == ["record_id", "row_number", "crime_ref", "committed_from", "role", "person_id"]
    assert {str(d)[:10] for d in police["committed_from"]} == {"2019-05-01", "2019-06-01", "2020-03-02"}
    assert not any(":" in str(d) and not str(d).endswith("00:00:00") for d in police["committed_from"])
    refs = police["crime_ref"].tolist()
    assert not set(refs) & {r[5] for r in ROWS}  # keyed pseudonyms, no date inside
    assert refs[0] == refs[2] != refs[1]  # the shared crime stays shared (co-offending still works)
    # The attribute package manifest shares the extract id with the identifier package.
    attr = json.loads((tmp / "police-attributes" / "manifest.json").read_text())
    assert attr["extract_id"] == manifest["extract_id"] and len(attr["extract_id"]) == 32
    assert set(attr["columns"]) == {"crime_ref", "committed_from", "role"}


def test_no_payload_value_in_the_identifier_package_or_the_ciphertext(sealed):
    tmp, _, _ = sealed
    values = {r[i] for r in ROWS for i in (5, 6, 8)} | {"SUSPECT", "WITNESS", "2019-05-01"}
    for folder in (tmp / "police", tmp / "police-attributes"):
        for path in folder.iterdir():
            blob = path.read_bytes()
            if path.suffix == ".parquet":
                blob += pq.read_table(path).to_pandas().to_csv().encode()
            assert not [v for v in values if v.encode() in blob], path


def test_refuses_a_package_sealed_to_another_key(sealed, analysis_private):
    tmp, _, link = sealed
    other = keys.generate_analysis_keypair()
    with pytest.raises(ManifestMismatchError) as exc:
        read_inputs(link, [tmp / "police-attributes"], other)
    message = one_line(exc)
    assert keys.public_key_fingerprint(analysis_private) in message
    assert keys.public_key_fingerprint(other) in message


def test_refuses_the_wrong_key_even_when_the_manifest_claims_it(sealed):
    """A relabelled manifest (fingerprint rewritten to the opener's) still cannot open the sealed key."""
    tmp, _, link = sealed
    other = keys.generate_analysis_keypair()
    path = tmp / "police-attributes" / "manifest.json"
    m = json.loads(path.read_text())
    m["recipient_fingerprint"] = keys.public_key_fingerprint(other)
    path.write_text(json.dumps(m))
    with pytest.raises(ManifestMismatchError, match="differs from the manifest|encrypted to analysis key"):
        read_inputs(link, [tmp / "police-attributes"], other)


def test_refuses_a_package_from_an_extract_the_link_does_not_name(sealed, key, analysis_private):
    tmp, _, _ = sealed
    later = tmp / "later"
    later.mkdir()
    # A second extract of the same source (one row more), linked instead of the first.
    encode(later, key, analysis_private.public_key(), rows=[*ROWS, ["N4", "Amy", "Jones", "02/02/2002",
                                                                    "LE1 1AA", "LC-5", "2021-01-01 10:00",
                                                                    "VICTIM", "no further action"]])
    link = fake_link(tmp, [later / "police"], name="link-of-later")
    with pytest.raises(ManifestMismatchError) as exc:
        read_inputs(link, [tmp / "police-attributes"], analysis_private)
    assert "is not the 'police' extract" in one_line(exc)
    # ...and a source the link never saw.
    other = tmp / "other"
    other.mkdir()
    encode(other, key, analysis_private.public_key(), cfg=config(source="health"))
    with pytest.raises(ManifestMismatchError, match="source 'health' is not among the extracts"):
        read_inputs(link, [other / "police-attributes"], analysis_private)


def test_refuses_a_package_whose_extract_id_differs_from_the_release(sealed, key, analysis_private):
    tmp, _, link = sealed
    release = export_crosswalk(link, keys.generate_key(), tmp / "release")
    assert release["inputs"][0]["extract_id"] == json.loads((tmp / "police" / "manifest.json").read_text())[
        "extract_id"]
    m = json.loads((tmp / "release" / "manifest.json").read_text())
    m["inputs"][0]["extract_id"] = "0" * 32
    (tmp / "release" / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(ManifestMismatchError, match="is not the 'police' extract"):
        read_inputs(tmp / "release", [tmp / "police-attributes"], analysis_private)


@pytest.mark.parametrize("field,value", [
    ("inputs", [{"source": "police'; DROP TABLE x; --", "extract_id": None, "tokens_sha256": None}]),
    ("inputs", [{"source": "police", "extract_id": None, "tokens_sha256": None, "path": "/srv/police"}]),
    ("kcv", "not-a-kcv"),
    ("inputs", []),
])
def test_a_crosswalk_release_manifest_is_validated_by_its_contract(sealed, analysis_private, field, value):
    tmp, _, link = sealed
    export_crosswalk(link, keys.generate_key(), tmp / "release")
    m = json.loads((tmp / "release" / "manifest.json").read_text())
    m[field] = value
    (tmp / "release" / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(LinkageInputError) as exc:
        read_inputs(tmp / "release", [tmp / "police-attributes"], analysis_private)
    line = one_line(exc)
    assert "manifest does not validate" in line and f"field '{field}" in line and "DROP" not in line


def test_refuses_a_different_project_key(sealed, analysis_private):
    tmp, _, _ = sealed
    other = tmp / "other-key"
    other.mkdir()
    encode(other, keys.generate_key(), analysis_private.public_key())
    link = fake_link(tmp, [tmp / "police"], name="link2")
    with pytest.raises(ManifestMismatchError, match="key check value"):
        read_inputs(link, [other / "police-attributes"], analysis_private)


def _flip_byte(path: Path, offset_from_end: int) -> None:
    data = bytearray(path.read_bytes())
    data[-offset_from_end] ^= 0x01
    os.chmod(path, 0o600)
    path.write_bytes(bytes(data))


def _refresh_checksum(folder: Path) -> None:
    """What an attacker who can edit files does: make the manifest's checksum match again."""
    m = json.loads((folder / "manifest.json").read_text())
    m["files"]["attributes.enc"] = sha256_file(folder / "attributes.enc")
    (folder / "manifest.json").write_text(json.dumps(m))


def test_refuses_tampered_ciphertext(sealed, analysis_private):
    tmp, _, link = sealed
    folder = tmp / "police-attributes"
    _flip_byte(folder / "attributes.enc", 40)
    with pytest.raises(ManifestMismatchError, match="SHA-256 does not match"):  # accidental damage
        read_inputs(link, [folder], analysis_private)
    _refresh_checksum(folder)
    with pytest.raises(ManifestMismatchError) as exc:  # deliberate: only authentication catches it
        read_inputs(link, [folder], analysis_private)
    assert "authentication failed" in one_line(exc)


def test_refuses_a_manifest_whose_checksum_or_row_count_was_altered(sealed, analysis_private):
    tmp, _, link = sealed
    path = tmp / "police-attributes" / "manifest.json"
    m = json.loads(path.read_text())
    m["counts"]["rows"] -= 1
    path.write_text(json.dumps(m))
    with pytest.raises(ManifestMismatchError, match="authentication failed"):
        read_inputs(link, [tmp / "police-attributes"], analysis_private)


def test_refuses_a_relabelled_header(sealed, analysis_private):
    tmp, _, link = sealed
    folder = tmp / "police-attributes"
    data = (folder / "attributes.enc").read_bytes()
    os.chmod(folder / "attributes.enc", 0o600)
    (folder / "attributes.enc").write_bytes(data.replace(b'"source":"police"', b'"source":"polics"', 1))
    _refresh_checksum(folder)
    with pytest.raises(ManifestMismatchError, match="header's source differs"):
        read_inputs(link, [folder], analysis_private)


def _truncate_last_chunk(folder: Path, chunk_bytes: int) -> None:
    path = folder / "attributes.enc"
    data = path.read_bytes()
    offset = encrypt.read_header(path)[3]
    n_chunks = -(-(len(data) - offset) // (chunk_bytes + encrypt.TAG_BYTES))
    assert n_chunks >= 3
    os.chmod(path, 0o600)
    path.write_bytes(data[:offset + (n_chunks - 1) * (chunk_bytes + encrypt.TAG_BYTES)])
    _refresh_checksum(folder)


def test_dropping_the_last_chunk_is_caught_and_would_not_be_without_the_last_flag(tmp_path, key, analysis_private,
                                                                                  monkeypatch):
    """The attack (truncate at a chunk boundary, fix the checksum) succeeds against a stream without the
    STREAM construction's last-chunk flag and fails against the real one."""
    monkeypatch.setattr(encrypt, "CHUNK_BYTES", 256)
    monkeypatch.setattr(encrypt.EncryptingWriter.__init__, "__defaults__", (256,))

    def attempt(folder: Path) -> bytes:
        m = json.loads((folder / "manifest.json").read_text())
        return encrypt.decrypt_file(folder / "attributes.enc", analysis_private, plaintext_sha256=m["plaintext_sha256"],
                                    rows=m["counts"]["rows"], tokens_sha256=m["identifier_package"]["tokens_sha256"])

    encode(tmp_path, key, analysis_private.public_key())
    folder = tmp_path / "police-attributes"
    _truncate_last_chunk(folder, 256)
    with pytest.raises(ManifestMismatchError, match="authentication failed at chunk"):
        attempt(folder)

    # Weakened: no last-chunk flag and no authenticated trailer. Every remaining chunk now authenticates;
    # only the belt-and-braces plaintext checksum after decryption still notices the missing data.
    weak = tmp_path / "weak"
    weak.mkdir()
    monkeypatch.setattr(encrypt, "_nonce", lambda counter, last: counter.to_bytes(12, "big"))
    monkeypatch.setattr(encrypt, "trailer_bytes", lambda *args: b"")
    encode(weak, key, analysis_private.public_key())
    _truncate_last_chunk(weak / "police-attributes", 256)
    with pytest.raises(ManifestMismatchError, match="plaintext checksum differs"):
        attempt(weak / "police-attributes")


def test_cli_cohort_refusal_is_one_line_and_non_zero(sealed, tmp_path):
    tmp, _, link = sealed
    wrong = tmp / "wrong.key"
    keys.write_analysis_keypair(wrong, tmp / "wrong.pub")
    result = CliRunner().invoke(app, ["cohort", str(tmp / "police-attributes"), "--config",
                                      str(Path(__file__).resolve().parents[1] / "configs/cohorts/high_harm.yaml"),
                                      "--link", str(link), "--out", str(tmp / "release-out"),
                                      "--analysis-key", str(wrong), "--quiet"])
    assert result.exit_code != 0
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "encrypted to analysis key" in lines[0]
    assert not (tmp / "release-out").exists()


def test_an_attribute_package_needs_the_private_key(sealed):
    tmp, _, link = sealed
    with pytest.raises(LinkageInputError, match="needs the analysis private key"):
        read_inputs(link, [tmp / "police-attributes"])


def test_no_public_key_means_no_attribute_package(tmp_path, key):
    raw = write_raw(tmp_path / "raw.csv")
    manifest = encode_extract(config(), key, raw, tmp_path / "ids", quiet=True)
    assert "attribute_package" not in manifest
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ids", "raw.csv"]


def test_keygen_analysis_writes_an_owner_only_private_key_and_prints_the_fingerprint(tmp_path):
    result = CliRunner().invoke(app, ["keygen", "--analysis", "--out", str(tmp_path / "a.key")])
    assert result.exit_code == 0, result.output
    private = keys.read_analysis_private_key(tmp_path / "a.key")
    assert keys.public_key_fingerprint(private) in result.output
    assert stat.S_IMODE((tmp_path / "a.key").stat().st_mode) == 0o400
    public = keys.read_analysis_public_key(tmp_path / "a.key.pub")
    assert keys.public_key_bytes(public) == keys.public_key_bytes(private)
    with pytest.raises(KeyFileError, match="already exists"):
        keys.write_analysis_keypair(tmp_path / "b.key", tmp_path / "a.key.pub")
    assert not (tmp_path / "b.key").exists()


def test_hash_refuses_a_public_key_the_partner_did_not_confirm(tmp_path, key, analysis_private):
    confirmed = keys.public_key_fingerprint(analysis_private)
    swapped = keys.generate_analysis_keypair().public_key()
    with pytest.raises(LinkageConfigError, match="confirms"):
        encode(tmp_path, key, swapped, cfg=config(analysis_key_fingerprint=confirmed))
    assert not (tmp_path / "police").exists()
    encode(tmp_path, key, analysis_private.public_key(), cfg=config(analysis_key_fingerprint=confirmed))


def test_cli_hash_writes_both_packages(tmp_path, key_file):
    keys.write_analysis_keypair(tmp_path / "a.key", tmp_path / "a.pub")
    cfg = tmp_path / "police.yaml"
    cfg.write_text(json.dumps(config().model_dump(mode="json")))
    result = CliRunner().invoke(app, ["hash", "--config", str(cfg), "--key", str(key_file), "--input",
                                      str(write_raw(tmp_path / "raw.csv")), "--out", str(tmp_path / "ids"),
                                      "--analysis-key", str(tmp_path / "a.pub"), "--quiet",
                                      "--no-audit"])  # a 3-row extract: the gate is tested in test_audit_gate
    assert result.exit_code == 0, result.output
    assert (tmp_path / "ids" / "tokens.parquet").is_file()
    package = read_attribute_package(tmp_path / "ids-attributes", keys.read_analysis_private_key(tmp_path / "a.key"))
    assert package.table.num_rows == len(ROWS)


def test_generalisation_must_fit_the_type():
    with pytest.raises(ValueError, match="does not apply"):
        config(payload=[{"column": "role", "generalise": "day"}])
    cfg = config(payload=[{"column": "committed_from", "type": "datetime", "generalise": "hour_band",
                           "band_hours": 6}])
    assert cfg.payload[0].shipped_type() == "datetime"


def test_hour_band_and_month(tmp_path, key, analysis_private):
    cfg = config(payload=[{"column": "committed_from", "type": "datetime", "generalise": "hour_band"},
                          {"column": "crime_ref", "generalise": "drop"}])
    encode(tmp_path, key, analysis_private.public_key(), cfg=cfg)
    table = read_attribute_package(tmp_path / "police-attributes", analysis_private).table
    assert table.column_names == ["record_id", "row_number", "committed_from"]
    assert [t.strftime("%Y-%m-%d %H:%M") for t in table.column("committed_from").to_pylist()] == [
        "2019-05-01 12:00", "2019-06-01 20:00", "2019-05-01 12:00", "2020-03-02 08:00"]


def test_release_ids_differ_per_release_and_keep_the_partition(sealed):
    tmp, _, link = sealed
    k1, k2 = keys.generate_key(), keys.generate_key()
    export_crosswalk(link, k1, tmp / "r1")
    export_crosswalk(link, k2, tmp / "r2")
    export_crosswalk(link, k1, tmp / "r1-again")
    internal = pq.read_table(link / "crosswalk.parquet").to_pandas()
    r1, r2, r1b = (pq.read_table(tmp / r / "crosswalk.parquet").to_pandas() for r in ("r1", "r2", "r1-again"))
    assert set(r1["person_id"]).isdisjoint(r2["person_id"])  # two releases cannot be joined on ids
    assert set(r1["person_id"]).isdisjoint(internal["person_id"])  # internal ids never leave
    assert r1.equals(r1b)  # the same release key gives the same ids

    def partition(frame):
        return sorted(sorted(g) for g in frame.groupby("person_id")["record_id"].apply(list))

    assert partition(r1) == partition(r2) == partition(internal)
    release = json.loads((tmp / "r1" / "manifest.json").read_text())
    assert release["kind"] == "crosswalk-release" and "path" not in release["inputs"][0]


def test_released_crosswalk_is_checked_against_its_manifest(sealed, analysis_private):
    tmp, _, link = sealed
    export_crosswalk(link, keys.generate_key(), tmp / "r1")
    assert read_inputs(tmp / "r1", [tmp / "police-attributes"], analysis_private).payloads["police"].shape[0] == 4
    table = pq.read_table(tmp / "r1" / "crosswalk.parquet")
    pq.write_table(table.slice(0, table.num_rows - 1), tmp / "r1" / "crosswalk.parquet")
    with pytest.raises(ManifestMismatchError, match="crosswalk changed"):
        read_inputs(tmp / "r1", [tmp / "police-attributes"], analysis_private)
