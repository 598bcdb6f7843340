"""A careless partner's extract: the partner step never loses a population silently.

Wrong date formats, native Excel/Parquet dates, placeholders, names in other scripts, invisible and
look-alike characters, names that are not names, early years: each is either read correctly or fails the
run with one line naming the file, the field, the share, the reason and the fix, writing nothing.
"""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from linkage.config import PartnerConfig
from linkage.encode import encode_extract

from .conftest import (
    assert_nothing_written,
    assert_refused,
    config_dict,
    encode,
    people,
    run_cli,
    write_config,
    write_csv,
)


def _hash(tmp_path, key_file, rows, **overrides):
    raw = write_csv(tmp_path / "in.csv", rows)
    cfg = write_config(tmp_path / "p.yaml", config_dict(**overrides))
    return run_cli("hash", "--config", str(cfg), "--key", str(key_file), "--input", str(raw),
                   "--out", str(tmp_path / "enc"), "--quiet", "--no-audit")  # row accounting, not the audit


def test_iso_dates_under_a_day_first_config_fail_with_the_fix(tmp_path, key_file):
    rows = people(100)
    for row in rows[3:]:  # 97% of dates written YYYY-MM-DD
        row[3] = dt.datetime.strptime(row[3], "%d/%m/%Y").strftime("%Y-%m-%d")
    line = assert_refused(_hash(tmp_path, key_file, rows), names="field 'dob'")
    assert "in.csv" in line and "97.0%" in line and "YYYY-MM-DD" in line and "'%Y-%m-%d'" in line
    assert_nothing_written(tmp_path, "enc")
    # Weakened (no limit): the same extract "succeeds" with 97% of the population gone, as it used to.
    assert _hash(tmp_path, key_file, rows, max_rejected_share=1.0).exit_code == 0


def test_rejections_under_the_limit_pass_and_are_counted(tmp_path, key_file):
    rows = people(100)
    for row in rows[:4]:
        row[3] = "31/02/2001"  # 4% impossible dates: under the 5% default
    result = _hash(tmp_path, key_file, rows)
    assert result.exit_code == 0, result.output
    counts = json.loads((tmp_path / "enc" / "manifest.json").read_text())["counts"]
    assert counts["rows_rejected"] == 4
    assert counts["rejected_by_reason"] == {"dob: impossible date (day or month out of range)": 4}


def test_every_row_rejected_is_always_an_error(tmp_path, key_file):
    rows = people(30)
    for row in rows:
        row[3] = "not a date"
    line = assert_refused(_hash(tmp_path, key_file, rows, max_rejected_share=1.0), names="every row was rejected")
    assert "field 'dob'" in line
    assert_nothing_written(tmp_path, "enc")


def test_native_excel_dates_are_read_whatever_the_formats(tmp_path, key):
    import openpyxl

    rows = people(30)
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["person_ref", "forename", "surname", "dob", "sex", "postcode", "event"])
    for row in rows:
        sheet.append([*row[:3], dt.datetime.strptime(row[3], "%d/%m/%Y"), *row[4:]])  # a real date cell
    book.save(tmp_path / "in.xlsx")
    cfg = PartnerConfig.model_validate(config_dict(input={"format": "xlsx"}))
    m = encode_extract(cfg, key, tmp_path / "in.xlsx", tmp_path / "x", quiet=True, today=dt.date(2025, 1, 1))
    text = encode(tmp_path, key, "text", rows)  # the same people typed as DD/MM/YYYY text
    assert m["counts"]["rows_rejected"] == 0
    xlsx_dob = pq.read_table(tmp_path / "x" / "tokens.parquet", columns=["dob__exact"]).column(0).to_pylist()
    csv_dob = pq.read_table(text / "tokens.parquet", columns=["dob__exact"]).column(0).to_pylist()
    assert sorted(xlsx_dob) == sorted(csv_dob)


def test_native_parquet_date_column_is_read(tmp_path, key):
    rows = people(30)
    frame = pd.DataFrame(rows, columns=["person_ref", "forename", "surname", "dob", "sex", "postcode", "event"])
    frame["dob"] = pd.to_datetime(frame["dob"], format="%d/%m/%Y").dt.date
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), tmp_path / "in.parquet")
    assert pa.types.is_date(pq.read_schema(tmp_path / "in.parquet").field("dob").type)
    cfg = PartnerConfig.model_validate(config_dict(input={"format": "parquet"}))
    m = encode_extract(cfg, key, tmp_path / "in.parquet", tmp_path / "x", quiet=True, today=dt.date(2025, 1, 1))
    assert m["counts"]["rows_rejected"] == 0 and m["counts"]["rows_accepted"] == 30


def test_placeholders_are_missing_and_counted(tmp_path, key):
    rows = people(100)
    for row, value in zip(rows[:3], ["UNKNOWN", "n/a", "Not  Known"], strict=True):
        row[2] = value
    rows[3][1] = "NULL"
    folder = encode(tmp_path, key, "police", rows)
    counts = json.loads((folder / "manifest.json").read_text())["counts"]
    assert counts["blanked_by_reason"]["surname: placeholder for unknown"] == 3
    assert counts["blanked_by_reason"]["forename: placeholder for unknown"] == 1
    tokens = pq.read_table(folder / "tokens.parquet").to_pandas()
    assert tokens["surname__exact"].isna().sum() == 3  # missing, not a name called "unknown"


def _given_tokens(tmp_path, key, names):
    rows = people(len(names))
    for row, name in zip(rows, names, strict=True):
        row[1] = name
    folder = encode(tmp_path, key, f"t{abs(hash(tuple(names))) % 10**6}", rows, max_blanked_share=1.0)
    table = pq.read_table(folder / "tokens.parquet").to_pandas().sort_values("record_id")
    return table["given_name__exact"].tolist(), json.loads((folder / "manifest.json").read_text())["counts"]


def test_zero_width_and_lookalike_letters_fold_to_the_plain_name(tmp_path, key):
    plain, _ = _given_tokens(tmp_path, key, ["John", "John", "John"])
    hostile, _ = _given_tokens(tmp_path, key, ["Jo\u200bhn", "J\u043ehn", "\ufeffJOHN\u200d"])  # ZWSP, Cyrillic о
    assert hostile == plain


def test_other_scripts_are_transliterated_not_dropped(tmp_path, key):
    tokens, counts = _given_tokens(tmp_path, key, ["محمد", "Мария", "Ζωή"])
    assert not any(pd.isna(t) for t in tokens)
    assert counts["blanked_by_reason"] == {}


def test_names_that_are_not_names_are_blanked_with_reasons(tmp_path, key):
    tokens, counts = _given_tokens(tmp_path, key, ["Mr", "12345", "\U0001F600", "Amy"])
    assert sum(bool(pd.isna(t)) for t in tokens) == 3
    reasons = counts["blanked_by_reason"]
    assert reasons == {"forename: a title or suffix only, no name": 1, "forename: digits only, not a name": 1,
                       "forename: no letters (symbols, emoji or punctuation only)": 1}


def test_too_many_unusable_names_fail_the_run(tmp_path, key_file):
    rows = people(100)
    for row in rows[:10]:
        row[1] = "12345"
    line = assert_refused(_hash(tmp_path, key_file, rows), names="field 'forename'")
    assert "10.0%" in line and "digits only" in line and "max_blanked_share" in line
    assert_nothing_written(tmp_path, "enc")


def test_years_before_1000_are_zero_padded_not_crashing(tmp_path, key):
    rows = people(20)
    rows[0][3] = "05/06/0999"
    identifiers = config_dict()["identifiers"]
    identifiers["date_of_birth"]["min"] = "0900-01-01"
    folder = encode(tmp_path, key, "old", rows, identifiers=identifiers)
    counts = json.loads((folder / "manifest.json").read_text())["counts"]
    assert counts["rows_rejected"] == 0
    from linkage.encode.tokens import Tokeniser

    exact = Tokeniser(key, "hostile-test", "date_of_birth", "exact")
    tokens = set(pq.read_table(folder / "tokens.parquet", columns=["dob__exact"]).column(0).to_pylist())
    assert exact.token("09990605") in tokens


@pytest.mark.parametrize("payload_value", ["99999999999999999999", "-1e30"])
def test_huge_numbers_reject_one_row_not_the_extract(tmp_path, key, payload_value):
    rows = people(40)
    for i, row in enumerate(rows):
        row[6] = str(i)
    rows[0][6] = payload_value
    folder = encode(tmp_path, key, "big", rows, payload=[{"column": "event", "type": "int"}])
    counts = json.loads((folder / "manifest.json").read_text())["counts"]
    assert counts["rows_accepted"] == 39
    assert counts["rejected_by_reason"] == {"event: not a valid integer": 1}


def test_parquet_timestamps_and_early_years_become_the_native_form():
    from linkage.encode.reader import column_as_text

    dates = pa.array([dt.date(999, 6, 5), None, dt.date(2001, 2, 3)])
    stamps = pa.array([dt.datetime(2001, 2, 3, 4, 5, 6, 789)], pa.timestamp("us"))
    assert column_as_text(dates).to_pylist() == ["0999-06-05T00:00:00", None, "2001-02-03T00:00:00"]
    assert column_as_text(stamps).to_pylist() == ["2001-02-03T04:05:06"]
