"""linkage hash: encodings, privacy of the output, determinism, and every bad-input case."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from linkage import keys
from linkage.cli import app
from linkage.config import PartnerConfig, load_partner_config
from linkage.encode import encode_extract, read_manifest
from linkage.encode.bloom import dice
from linkage.errors import LinkageConfigError, LinkageInputError, ManifestMismatchError, OutputError

HEADER = ["nominal_id", "forename", "surname", "date_of_birth", "gender", "postcode", "crime_ref",
          "committed_from", "role"]
ROWS = [
    ["N0000001", "Mohammed", "Patel", "09/04/2001", "M", "LE2 1AB", "LC-1", "2019-05-01 14:00", "SUSPECT"],
    ["N0000001", "Mohammed", "Patel", "09/04/2001", "M", "LE2 1AB", "LC-2", "2019-06-01 14:00", "VICTIM"],
    ["N0000001", "Mo", "Patel-Shah", "04/09/2001", "M", "LE2 1AB", "LC-3", "2019-07-01 14:00", "SUSPECT"],
    ["N0000002", "Zoë", "O'Brien", "15/06/2003", "F", "le11 3tu", "LC-4", "2020-01-02 03:04", "WITNESS"],
    ["N0000003", "Gurpreet", "Kaur", "31/02/2004", "F", "LE5 6PQ", "LC-5", "2020-02-02 10:00", "VICTIM"],
    ["N0000004", "Jack", "Smyth", "01/01/1850", "M", "LE3 9ZZ", "LC-6", "2020-03-02 10:00", "VICTIM"],
    ["N0000005", "Amelia", "Jones", "12/12/2005", "F", "NOT A PC", "LC-7", "2020-04-02 10:00", "VICTIM"],
    ["", "Lily", "Evans", "12/12/2005", "F", "LE1 1AA", "LC-8", "2020-04-02 10:00", "VICTIM"],
    ["N0000006", "Oliver", "Smith", "01/01/1900", "M", "NFA", "LC-9", "2021-04-02 10:00", "OFFENDER"],
]
CLEAR_VALUES = ["Mohammed", "Patel", "Shah", "Gurpreet", "Kaur", "Zoë", "O'Brien", "Jack", "Smyth", "Amelia",
                "Jones", "Oliver", "Smith", "Evans", "Lily", "09/04/2001", "20010409", "LE2 1AB", "LE21AB",
                "LE11 3TU", "LE5 6PQ", "N0000001", "N0000002", "mohammed", "patel", "smith", "obrien", "gurpreet"]


def police_config(**overrides) -> PartnerConfig:
    data = {
        "project_id": "test-project", "source": "police", "local_id": "nominal_id",
        "identifiers": {
            "given_name": {"column": "forename"}, "surname": {"column": "surname"},
            "date_of_birth": {"column": "date_of_birth", "formats": ["%d/%m/%Y"], "min": "1900-01-01"},
            "sex": {"column": "gender"}, "postcode": {"column": "postcode"},
        },
        "payload": [{"column": "crime_ref", "required": True},
                    {"column": "committed_from", "type": "datetime", "formats": ["%Y-%m-%d %H:%M"]},
                    {"column": "role"}],
        "encodings": {"postcode_variants": ["exact", "sector", "district", "del1"]},
        # The fixture rejects 4 of 9 rows on purpose; the loss limits are tested in tests/hostile/.
        "max_rejected_share": 1.0, "max_blanked_share": 1.0,
    }
    data.update(overrides)
    return PartnerConfig.model_validate(data)


def write_csv(path: Path, rows=ROWS, header=HEADER, delimiter=",", encoding="utf-8") -> Path:
    with open(path, "w", newline="", encoding=encoding) as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture
def raw(tmp_path) -> Path:
    return write_csv(tmp_path / "police.csv")


def encode(raw: Path, key: bytes, out: Path, cfg: PartnerConfig | None = None, **kw) -> dict:
    return encode_extract(cfg or police_config(), key, raw, out, quiet=True, workers=1,
                          today=dt.date(2025, 1, 1), **kw)


def open_payload(folder: Path, private) -> pd.DataFrame:
    from linkage.contracts.attribute_package import read_attribute_package

    return read_attribute_package(folder, private).table.to_pandas()


def test_counts_rejects_and_identities(raw, key, tmp_path, analysis_private):
    manifest = encode(raw, key, tmp_path / "out", analysis_public_key=analysis_private.public_key())
    c = manifest["counts"]
    assert c["rows_read"] == len(ROWS) == c["rows_accepted"] + c["rows_rejected"]
    rejected = pd.read_csv(tmp_path / "out" / "rejected.csv")
    rejected = rejected[rejected["action"] == "rejected"]
    assert len(rejected) == c["rows_rejected"] == 4
    by_row = dict(zip(rejected["row_number"], rejected["field"], strict=True))
    assert by_row == {5: "date_of_birth", 6: "date_of_birth", 7: "postcode", 8: "nominal_id"}
    assert c["placeholder_dobs"] == 1
    tokens = pd.read_parquet(tmp_path / "out" / "tokens.parquet")
    # N0000001 has two distinct identifier sets (an alias row); the repeated row adds nothing.
    assert c["records"] == 3 and c["identities"] == 4 == len(tokens)
    assert tokens["identity_id"].is_unique
    assert (tokens["identity_id"].str.rsplit("-", n=1).str[0] == tokens["record_id"]).all()
    assert tokens.groupby("record_id").size().sort_values().tolist() == [1, 1, 2]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["manifest.json", "rejected.csv", "tokens.parquet"]
    payload = open_payload(tmp_path / "out-attributes", analysis_private)
    assert len(payload) == c["rows_accepted"]
    assert set(payload.columns) == {"record_id", "row_number", "crime_ref", "committed_from", "role"}
    assert str(payload["committed_from"].dtype).startswith("datetime64")


def test_no_clear_identifier_in_any_output_byte(raw, key, tmp_path):
    out = tmp_path / "out"
    encode(raw, key, out)
    blobs = []
    for file in out.iterdir():
        blobs.append(file.read_bytes())
        if file.suffix == ".parquet":  # compressed on disk: scan the decoded values too
            blobs.append(pq.read_table(file).to_pandas().to_csv().encode())
    for value in CLEAR_VALUES:
        needle = value.encode()
        assert all(needle not in blob and needle.lower() not in blob.lower() for blob in blobs), value


def test_two_keys_give_disjoint_tokens(raw, tmp_path):
    k1, k2 = keys.generate_key(), keys.generate_key()
    t1 = pd.read_parquet(encode(raw, k1, tmp_path / "a") and tmp_path / "a" / "tokens.parquet")
    t2 = pd.read_parquet(encode(raw, k2, tmp_path / "b") and tmp_path / "b" / "tokens.parquet")

    def values(frame):
        out = set()
        for col in frame.columns:
            for v in frame[col].dropna():
                out.update(v if hasattr(v, "__len__") and not isinstance(v, (str, bytes)) else [v])
        return out

    assert values(t1).isdisjoint(values(t2))


def test_same_key_and_input_are_byte_identical(raw, key, tmp_path, analysis_private):
    encode(raw, key, tmp_path / "a", analysis_public_key=analysis_private.public_key())
    encode(raw, key, tmp_path / "b", analysis_public_key=analysis_private.public_key())
    for name in ("tokens.parquet", "rejected.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    # The ciphertext differs (fresh ephemeral key per package); the sealed plaintext does not.
    manifests = [json.loads((tmp_path / f"{x}-attributes" / "manifest.json").read_text()) for x in "ab"]
    assert manifests[0]["plaintext_sha256"] == manifests[1]["plaintext_sha256"]
    assert manifests[0]["files"] != manifests[1]["files"]


def test_parallel_workers_give_the_same_output(tmp_path, key):
    rows = [[f"N{i:07d}", ["Ann", "Bob", "Cai"][i % 3], ["Patel", "Smith"][i % 2], "09/04/2001", "M",
             "LE2 1AB", f"LC-{i}", "2019-05-01 14:00", "VICTIM"] for i in range(3000)]
    raw = write_csv(tmp_path / "many.csv", rows)
    cfg = police_config(chunk_rows=1000)
    public = keys.generate_analysis_keypair().public_key()
    encode_extract(cfg, key, raw, tmp_path / "one", quiet=True, workers=1, analysis_public_key=public)
    encode_extract(cfg, key, raw, tmp_path / "two", quiet=True, workers=2, analysis_public_key=public)
    assert (tmp_path / "one" / "tokens.parquet").read_bytes() == (tmp_path / "two" / "tokens.parquet").read_bytes()
    sealed = [json.loads((tmp_path / f"{x}-attributes" / "manifest.json").read_text()) for x in ("one", "two")]
    assert sealed[0]["plaintext_sha256"] == sealed[1]["plaintext_sha256"]


def test_fuzzy_encodings_survive_typos(tmp_path, key):
    rows = [["A1", "Jonathan", "Smith", "09/04/2001", "M", "LE2 1AB", "c", "2019-05-01 14:00", "V"],
            ["A2", "Jonathon", "Smyth", "04/09/2001", "M", "LE2 1AD", "c", "2019-05-01 14:00", "V"],
            ["A3", "Priya", "Mistry", "11/11/1999", "F", "LE5 6PQ", "c", "2019-05-01 14:00", "V"]]
    encode(write_csv(tmp_path / "t.csv", rows), key, tmp_path / "out")
    t = pd.read_parquet(tmp_path / "out" / "tokens.parquet").set_index("record_id")
    a, b, c = (t.loc[keys.record_id(key, "test-project", "police", i)] for i in ("A1", "A2", "A3"))
    assert a["surname__exact"] != b["surname__exact"]
    assert set(a["surname__del1"]) & set(b["surname__del1"])
    assert not set(a["surname__del1"]) & set(c["surname__del1"])
    assert dice(a["given_name__bloom"], b["given_name__bloom"]) > 0.7 > dice(a["given_name__bloom"],
                                                                             c["given_name__bloom"])
    assert a["surname__phonetic"] == b["surname__phonetic"]
    assert a["dob__swap"] == b["dob__exact"] and a["dob__year"] == b["dob__year"]
    assert a["postcode__sector"] == b["postcode__sector"] and a["postcode__exact"] != b["postcode__exact"]
    assert set(a["postcode__del1"]) & set(b["postcode__del1"])
    assert len(a["given_name__bloom"]) == 64


def test_name_swap_and_multipart_surnames_share_name_tokens(tmp_path, key):
    rows = [["A1", "Singh", "Harpreet", "01/02/2000", "M", "", "c", "", "V"],
            ["A2", "Harpreet", "Singh", "01/02/2000", "M", "", "c", "", "V"],
            ["A3", "Amy", "Smith-Jones", "01/02/2000", "F", "", "c", "", "V"],
            ["A4", "Amy", "Smithjones", "01/02/2000", "F", "", "c", "", "V"]]
    encode(write_csv(tmp_path / "t.csv", rows), key, tmp_path / "out")
    t = pd.read_parquet(tmp_path / "out" / "tokens.parquet").set_index("record_id")
    r = {i: t.loc[keys.record_id(key, "test-project", "police", i)] for i in ("A1", "A2", "A3", "A4")}
    assert r["A1"]["name__given_shared"] == r["A2"]["name__surname_shared"]
    assert r["A3"]["surname__exact"] == r["A4"]["surname__exact"]
    assert set(r["A3"]["name__parts"]) >= set(r["A4"]["name__parts"])


def test_manifest_is_valid_and_checksums_verify(raw, key, tmp_path):
    encode(raw, key, tmp_path / "out")
    manifest = read_manifest(tmp_path / "out")
    assert manifest.kcv == keys.key_check_value(key)
    assert manifest.source == "police" and manifest.project_id == "test-project"
    assert "surname__bloom" in manifest.encodings.columns
    tokens = tmp_path / "out" / "tokens.parquet"
    tokens.write_bytes(tokens.read_bytes()[:-100])
    with pytest.raises(ManifestMismatchError, match="checksum"):
        read_manifest(tmp_path / "out")


def test_source_override(raw, key, tmp_path):
    m = encode(raw, key, tmp_path / "out", source="police_b")
    assert m["source"] == "police_b"


def test_bom_prefixed_utf8_is_read(tmp_path, key):
    raw = write_csv(tmp_path / "bom.csv", encoding="utf-8-sig")
    assert encode(raw, key, tmp_path / "out")["counts"]["rows_read"] == len(ROWS)


def test_windows_1252_needs_the_encoding_setting(tmp_path, key):
    raw = write_csv(tmp_path / "w.csv", encoding="cp1252")
    with pytest.raises(LinkageInputError, match="cp1252"):
        encode(raw, key, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    cfg = police_config(input={"encoding": "cp1252"})
    assert encode(raw, key, tmp_path / "out2", cfg)["counts"]["rows_read"] == len(ROWS)


def test_parquet_and_excel_inputs(tmp_path, key, raw):
    frame = pd.read_csv(raw, dtype=str, keep_default_na=False)
    frame.to_parquet(tmp_path / "p.parquet")
    frame.to_excel(tmp_path / "x.xlsx", index=False)
    expected = encode(raw, key, tmp_path / "csv")["counts"]
    for name, fmt in (("p.parquet", "parquet"), ("x.xlsx", "xlsx")):
        got = encode(tmp_path / name, key, tmp_path / fmt, police_config(input={"format": fmt}))["counts"]
        assert got == expected
        assert (tmp_path / fmt / "tokens.parquet").read_bytes() == (tmp_path / "csv" / "tokens.parquet").read_bytes()


@pytest.mark.parametrize("case, message", [
    ("missing", "not found"),
    ("empty", "empty"),
    ("semicolon", "wrong delimiter"),
    ("no_column", "absent"),
    ("ragged", "number of fields"),
    ("header_only", "no data rows"),
])
def test_file_level_errors(tmp_path, key, case, message):
    path = tmp_path / "in.csv"
    if case == "empty":
        path.write_bytes(b"")
    elif case == "semicolon":
        write_csv(path, delimiter=";")
    elif case == "no_column":
        write_csv(path, [r[:-1] for r in ROWS], HEADER[:-1])
    elif case == "ragged":
        path.write_text(",".join(HEADER) + "\n" + ",".join(ROWS[0]) + "\n" + ",".join(ROWS[1] + ["x", "y"]) + "\n")
    elif case == "header_only":
        write_csv(path, [])
    with pytest.raises(LinkageInputError, match=message) as info:
        encode(path, key, tmp_path / "out")
    assert str(path) in str(info.value)
    assert not (tmp_path / "out").exists()
    assert not list(tmp_path.glob(".out.partial-*"))


def test_ragged_row_error_names_the_row_not_its_content(tmp_path, key):
    path = tmp_path / "in.csv"
    path.write_text(",".join(HEADER) + "\n" + ",".join(ROWS[0]) + "\n" + ",".join(ROWS[1] + ["x"]) + "\n")
    with pytest.raises(LinkageInputError) as info:
        encode(path, key, tmp_path / "out")
    assert "row 2" in str(info.value) and "Mohammed" not in str(info.value)


def test_duplicate_local_ids_rejected_when_unique_declared(tmp_path, key, raw):
    m = encode(raw, key, tmp_path / "out", police_config(unique_local_id=True))
    assert m["counts"]["rejected_by_reason"]["nominal_id: duplicate local id (config declares one row per id)"] == 2


def test_blank_instead_of_reject(tmp_path, key, raw):
    cfg = police_config()
    cfg.identifiers.postcode.on_invalid = "blank"
    m = encode(raw, key, tmp_path / "out", cfg)
    # NFA (a missing marker) is blanked too, and counted under its own reason.
    assert m["counts"]["blanked_by_reason"] == {"postcode: malformed UK postcode": 1,
                                                "postcode: placeholder for unknown": 1}
    assert m["counts"]["rows_rejected"] == 3


def test_output_folder_must_be_new_or_empty(raw, key, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("x")
    with pytest.raises(OutputError, match="not empty"):
        encode(raw, key, out)
    assert sorted(p.name for p in out.iterdir()) == ["old.txt"]


def test_payload_column_cannot_be_an_identifier():
    with pytest.raises(ValueError, match="also a mapped identifier"):
        police_config(payload=[{"column": "surname"}])


def test_shipped_partner_configs_validate():
    root = Path(__file__).resolve().parents[1] / "configs" / "partners"
    names = sorted(p.stem for p in root.glob("*.yaml"))
    assert names == ["education", "febrl", "health", "messy", "police", "social_care"]
    for name in names:
        cfg = load_partner_config(root / f"{name}.yaml")
        assert cfg.source == name


def test_bad_config_is_one_line(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("project_id: p\nsource: s\nlocal_id: id\nidentifiers: {surname: {colum: x}}\n")
    with pytest.raises(LinkageConfigError) as info:
        load_partner_config(path)
    assert "\n" not in str(info.value) and "identifiers.surname" in str(info.value)


# --- the CLI: one line, non-zero exit, no traceback --------------------------------------------------

def _config_file(tmp_path) -> Path:
    path = tmp_path / "police.yaml"
    path.write_text(json.dumps(police_config().model_dump(mode="json")))  # JSON is valid YAML
    return path


def test_cli_keygen_keycheck_hash(tmp_path, raw):
    runner = CliRunner()
    key_path = tmp_path / "k.key"
    result = runner.invoke(app, ["keygen", "--out", str(key_path)])
    assert result.exit_code == 0
    kcv = keys.key_check_value(keys.read_key_file(key_path))
    assert kcv in result.output
    assert runner.invoke(app, ["keycheck", str(key_path)]).output.strip() == kcv
    result = runner.invoke(app, ["hash", "--config", str(_config_file(tmp_path)), "--key", str(key_path),
                                 "--input", str(raw), "--out", str(tmp_path / "enc"), "--quiet", "--no-audit"])
    assert result.exit_code == 0, result.output
    assert "read 9 rows, accepted 5, rejected 4" in result.output


@pytest.mark.parametrize("problem", ["short_key", "existing_out", "missing_input", "bad_config"])
def test_cli_errors_are_one_line_without_traceback(tmp_path, raw, key_file, problem):
    args = {"--config": str(_config_file(tmp_path)), "--key": str(key_file), "--input": str(raw),
            "--out": str(tmp_path / "enc")}
    if problem == "short_key":
        short = tmp_path / "short.key"
        short.write_text("linkage-key-v1\n" + "ab" * 8 + "\n")
        args["--key"] = str(short)
    elif problem == "existing_out":
        (tmp_path / "enc").mkdir()
        (tmp_path / "enc" / "x").write_text("x")
    elif problem == "missing_input":
        args["--input"] = str(tmp_path / "nope.csv")
    elif problem == "bad_config":
        bad = tmp_path / "bad.yaml"
        bad.write_text("source: [unclosed\n")
        args["--config"] = str(bad)
    result = CliRunner().invoke(app, ["hash", *[x for kv in args.items() for x in kv], "--quiet"])
    assert result.exit_code != 0
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert "Traceback" not in result.output


def test_cli_error_messages_never_carry_values(tmp_path, key_file):
    rows = [["N1", "Uniquename", "Surnamex", "31/02/2010", "M", "LE2 1AB", "c", "bad date", "V"],
            ["N2", "Amy", "Jones", "01/02/2010", "F", "LE2 1AB", "c", "", "V"]]  # one good row: not 100% rejected
    raw = write_csv(tmp_path / "in.csv", rows)
    result = CliRunner().invoke(app, ["hash", "--config", str(_config_file(tmp_path)), "--key", str(key_file),
                                      "--input", str(raw), "--out", str(tmp_path / "enc"), "--quiet", "--no-audit"])
    assert result.exit_code == 0
    text = result.output + (tmp_path / "enc" / "rejected.csv").read_text()
    assert "Uniquename" not in text and "31/02/2010" not in text and "bad date" not in text
    assert list(csv.reader(io.StringIO((tmp_path / "enc" / "rejected.csv").read_text())))[1][:2] == ["1",
                                                                                                    "date_of_birth"]


def test_arrow_memo_computes_each_value_once_and_keeps_rows_in_place(monkeypatch):
    import pyarrow as pa

    from linkage.encode import identifiers
    from linkage.encode.identifiers import ArrowMemo

    calls: list[str] = []

    def shout(v: str) -> str:
        calls.append(v)
        return v.upper()

    memo = ArrowMemo(shout, pa.string())
    assert memo.apply(pa.array(["a", "b", None, "a"])).to_pylist() == ["A", "B", None, "A"]
    assert memo.apply(pa.chunked_array([["c", "a"], ["d", None, "c"]])).to_pylist() == ["C", "A", "D", None, "C"]
    assert calls == ["a", "b", "c", "d"]  # a seen in the first chunk is not recomputed

    monkeypatch.setattr(identifiers, "_CACHE_LIMIT", 0)  # full memo: still right, just recomputed
    full = ArrowMemo(lambda v: [v, v.upper()], pa.list_(pa.string()))  # list-valued, as token lists are
    assert full.apply(pa.array(["x", "y", "x"])).to_pylist() == [["x", "X"], ["y", "Y"], ["x", "X"]]
    assert full.apply(pa.array(["y", None, "z"])).to_pylist() == [["y", "Y"], None, ["z", "Z"]]
    assert len(full.keys) == 0


def test_keyed_shuffle_in_buckets_equals_a_full_sort_and_keeps_every_row(tmp_path):
    """The bucketed rewrite (bounded memory) gives the same rows in the same order as sorting in memory."""
    import random

    import pyarrow as pa
    import pyarrow.parquet as pq

    from linkage.encode.hardening import keyed_shuffle

    rng = random.Random(7)
    n = 5_000
    ids = [f"{rng.getrandbits(64):016x}-{rng.randrange(3)}" for _ in range(n)]
    table = pa.table({
        "record_id": [i.split("-")[0] for i in ids],
        "identity_id": ids,
        "dob__del1": [[f"t{rng.randrange(50)}" for _ in range(rng.randrange(4))] for _ in range(n)],
        "given_name__bloom": pa.array([rng.randbytes(64) for _ in range(n)], pa.binary(64)),
    })
    path = tmp_path / "tokens.parquet"
    pq.write_table(table, path)
    keyed_shuffle(path, {"compression": "zstd"}, batch_rows=700)  # many batches, every bucket spans several
    got = pq.read_table(path)
    assert got.schema == table.schema
    assert got.equals(table.sort_by([("identity_id", "ascending")]))
    assert not (tmp_path / ".shuffle").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["tokens.parquet"]
