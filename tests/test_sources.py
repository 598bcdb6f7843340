"""`linkage hash --input <database URL>`: chunks from a real PostgreSQL server, same tokens as the CSV run.

The server tests run when ``LINKAGE_TEST_POSTGRES_URL`` names a reachable PostgreSQL database without a
password (``.ci/run`` starts Debian's ``postgresql`` on a private socket and sets it); otherwise they skip.
"""

from __future__ import annotations

import hashlib
import os
import re

import pytest
from typer.testing import CliRunner

from linkage.cli import app
from linkage.encode.sources import DatabaseSource, is_database_url, open_input
from linkage.errors import LinkageInputError
from linkage.synth import generate_extracts

runner = CliRunner()
URL = os.environ.get("LINKAGE_TEST_POSTGRES_URL")


def test_database_urls_are_told_from_paths_and_passwords_in_urls_are_refused():
    assert is_database_url("postgresql+psycopg://vrn@db.example/police")
    assert is_database_url("mssql+pyodbc://reader@server/extracts")
    assert not is_database_url("extracts/police.csv") and not is_database_url("C:\\data\\police.csv")
    with pytest.raises(LinkageInputError) as err:
        DatabaseSource("postgresql://vrn:hunter2@db.example/police", table="nominals")
    assert "hunter2" not in str(err.value) and "LINKAGE_DB_PASSWORD" in str(err.value)
    with pytest.raises(LinkageInputError, match="exactly one of --table or --query"):
        open_input("postgresql://vrn@db.example/police")
    with pytest.raises(LinkageInputError, match="only to a database URL"):
        open_input("police.csv", table="nominals")


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    if not URL:
        pytest.skip("LINKAGE_TEST_POSTGRES_URL not set (no PostgreSQL server)")
    sa = pytest.importorskip("sqlalchemy")
    pytest.importorskip("psycopg")
    engine = sa.create_engine(URL)
    try:
        engine.connect().close()
    except sa.exc.OperationalError:
        pytest.skip("PostgreSQL server not reachable")
    raw = tmp_path_factory.mktemp("pg") / "raw"
    generate_extracts(400, 21, raw, quiet=True)
    csv_path = raw / "police.csv"
    header = csv_path.read_text(encoding="utf-8").splitlines()[0].split(",")
    columns = ", ".join(f'"{c}" text' for c in header)
    raw_conn = engine.raw_connection()
    try:
        cur = raw_conn.cursor()
        cur.execute("DROP TABLE IF EXISTS test_police")
        cur.execute(f"CREATE TABLE test_police (line serial, {columns})")
        names = ", ".join(f'"{c}"' for c in header)
        with cur.copy(f"COPY test_police ({names}) FROM STDIN WITH (FORMAT csv, HEADER true)") as copy:
            copy.write(csv_path.read_bytes())
        raw_conn.commit()
    finally:
        raw_conn.close()
    yield raw
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE IF EXISTS test_police"))
    engine.dispose()


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.postgres
def test_tokens_from_a_postgres_query_are_byte_identical_to_the_csv_run(loaded, tmp_path):
    key = tmp_path / "k.key"
    assert runner.invoke(app, ["keygen", "--out", str(key)]).exit_code == 0
    base = ["hash", "--config", "police", "--key", str(key), "--quiet", "--no-audit"]  # the audit reads files only
    csv_run = runner.invoke(app, base + ["--input", str(loaded / "police.csv"), "--out", str(tmp_path / "csv")])
    assert csv_run.exit_code == 0, csv_run.output
    # A table has no row order; the query orders by the load order so row numbers match the file's too.
    db_run = runner.invoke(app, base + ["--input", URL, "--query", "SELECT * FROM test_police ORDER BY line",
                                        "--out", str(tmp_path / "db")])
    assert db_run.exit_code == 0, db_run.output
    for name in ("tokens.parquet", "rejected.csv"):  # the payload travels in the (sealed) attribute package
        assert _sha(tmp_path / "csv" / name) == _sha(tmp_path / "db" / name), name
    table_run = runner.invoke(app, base + ["--input", URL, "--table", "test_police", "--out", str(tmp_path / "t")])
    assert table_run.exit_code == 0, table_run.output
    counts = [re.search(r"read (\d+) rows, accepted (\d+)", r.output).groups() for r in (csv_run, table_run)]
    assert counts[0] == counts[1]


@pytest.mark.postgres
def test_database_errors_are_one_line_without_the_password(loaded, tmp_path, monkeypatch):
    monkeypatch.setenv("LINKAGE_DB_PASSWORD", "s3cret-never-shown")
    key = tmp_path / "k.key"
    runner.invoke(app, ["keygen", "--out", str(key)])
    missing_column = runner.invoke(app, ["hash", "--config", "police", "--key", str(key), "--input", URL,
                                         "--query", "SELECT line FROM test_police", "--out", str(tmp_path / "x"),
                                         "--quiet"])
    assert missing_column.exit_code != 0
    assert "s3cret" not in missing_column.output
    assert [line for line in missing_column.output.splitlines() if line.startswith("error:")] == [
        f"error: field 'nominal_id': {DatabaseSource(URL, table='x')}: column not found in the query result"]
    wrong_db = URL.rsplit("/", 1)[0] + "/no_such_database" + ("?" + URL.split("?", 1)[1] if "?" in URL else "")
    failed = runner.invoke(app, ["hash", "--config", "police", "--key", str(key), "--input", wrong_db,
                                 "--table", "test_police", "--out", str(tmp_path / "y"), "--quiet"])
    assert failed.exit_code != 0 and "s3cret" not in failed.output
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
