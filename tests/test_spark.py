"""The Spark backend gives the same persons and parameters as DuckDB; it fails in one line without Spark.

The cross-backend test needs pyspark and Java and takes a few minutes, so it is marked ``spark`` (run it
with ``pytest -m spark``). The translation and error tests are fast and need neither; they run by default.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from linkage import keys
from linkage.errors import LinkageConfigError
from linkage.link.config import LinkConfig
from linkage.link.evaluate import co_clustered_pairs
from linkage.link.model import build_settings

REPO = Path(__file__).resolve().parents[1]
PARTNERS = REPO / "configs" / "partners"
SOURCES = ("police", "education", "social_care")

# Columns of the shipped partner configs (the union the linker sees), with Bloom filters of 512 bits.
TOKEN_COLS = {"given_name__exact", "given_name__phonetic", "given_name__initial", "given_name__del1",
              "given_name__bloom", "surname__exact", "surname__phonetic", "surname__initial", "surname__del1",
              "surname__bloom", "name__parts", "name__given_shared", "name__surname_shared", "dob__exact",
              "dob__swap", "dob__ym", "dob__year", "dob__md", "sex__exact", "postcode__exact",
              "postcode__sector", "postcode__district", "upn__exact"}
BLOOM_BYTES = {"given_name__bloom": 64, "surname__bloom": 64}


# --- fast: no Spark needed -----------------------------------------------------------------------------

def test_every_model_level_translates_to_spark_sql() -> None:
    from splink.internals.comparison_level_library import CustomLevel

    from linkage.link.spark import spark_settings

    every_level = LinkConfig.model_validate({"comparisons": {"deletion_levels": ["given_name", "surname", "postcode"]}})
    settings = build_settings(TOKEN_COLS, every_level, "link_and_dedupe", " AND l.record_id <> r.record_id")
    before = [lvl.sql_condition for c in settings.comparisons for lvl in c._comparison_levels
              if isinstance(lvl, CustomLevel)]
    assert any("bit_count" in s for s in before) and any("list_has_any" in s for s in before)
    spark_settings(settings, BLOOM_BYTES)
    after = [lvl.sql_condition for c in settings.comparisons for lvl in c._comparison_levels
             if isinstance(lvl, CustomLevel)]
    dice = [s for s in after if "bit_count" in s]
    assert dice, "Dice levels vanished"
    for s in dice:  # 512 bits = eight 64-bit words per side, denominators guarded against zero
        assert s.count("bit_count(") == 8 and "nullif(" in s
    assert not any("list_" in s or "::" in s for s in after)
    assert any("arrays_overlap(" in s for s in after)


def test_untranslatable_sql_fails_loudly() -> None:
    from linkage.link.spark import to_spark_condition

    with pytest.raises(LinkageConfigError, match="no Spark translation"):
        to_spark_condition("list_intersect(a_l, a_r) = []", BLOOM_BYTES)
    with pytest.raises(LinkageConfigError, match="not a Bloom column"):
        to_spark_condition("bit_count(dob__exact_l & dob__exact_r) > 3", BLOOM_BYTES)


def test_missing_pyspark_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from linkage.link.spark import SparkUnavailableError, check_spark_available

    monkeypatch.setitem(sys.modules, "pyspark", None)  # makes `import pyspark` raise ImportError
    with pytest.raises(SparkUnavailableError, match=r"pip install 'linkage\[spark\]'") as info:
        check_spark_available()
    assert "\n" not in str(info.value)


@pytest.mark.spark  # needs pyspark installed, which CI does only for the spark run
def test_missing_java_is_one_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pytest.importorskip("pyspark")
    from linkage.link.spark import SparkUnavailableError, check_spark_available

    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no java anywhere
    with pytest.raises(SparkUnavailableError, match="Java runtime"):
        check_spark_available()


def test_cli_without_pyspark_says_how_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from linkage.cli import app

    monkeypatch.setitem(sys.modules, "pyspark", None)
    result = CliRunner().invoke(app, ["link", str(tmp_path / "enc"), "--out", str(tmp_path / "out"),
                                      "--backend", "spark"])
    assert result.exit_code == 2
    assert "pip install 'linkage[spark]'" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "out").exists()


@pytest.mark.spark  # needs pyspark installed, which CI does only for the spark run
def test_cli_rejects_malformed_spark_conf(tmp_path: Path) -> None:
    pytest.importorskip("pyspark")
    from typer.testing import CliRunner

    from linkage.cli import app

    result = CliRunner().invoke(app, ["link", str(tmp_path / "enc"), "--out", str(tmp_path / "out"),
                                      "--backend", "spark", "--spark-conf", "executor.memory"])
    assert result.exit_code == 2 and "KEY=VALUE" in result.output


def test_unknown_backend_is_refused(tmp_path: Path) -> None:
    from linkage.link import link_extracts

    with pytest.raises(LinkageConfigError, match="flink"):
        link_extracts([tmp_path], tmp_path / "out", backend="flink")


def test_duckdb_path_never_imports_pyspark() -> None:
    code = ("import sys, linkage.link.run, linkage.cli; "
            "sys.exit(1 if any(m.split('.')[0] in ('pyspark', 'py4j') for m in sys.modules) else 0)")
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO).returncode == 0


# --- slow: the same job on DuckDB and on local Spark ------------------------------------------------------

@pytest.fixture(scope="module")
def encoded(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    from linkage.encode import encode_extract
    from linkage.synth import generate_extracts

    root = tmp_path_factory.mktemp("spark_vs_duckdb")
    generate_extracts(200, 11, root / "raw", quiet=True)
    key = keys.generate_key()
    dirs = []
    for source in SOURCES:
        encode_extract(PARTNERS / f"{source}.yaml", key, root / "raw" / f"{source}.csv", root / source,
                       quiet=True, workers=1)
        dirs.append(root / source)
    return dirs


def _parameters(link_dir: Path) -> dict[tuple[str, str], tuple[float, float]]:
    model = json.loads((link_dir / "model.json").read_text())
    out = {}
    for comparison in model["comparisons"]:
        for level in comparison["comparison_levels"]:
            if level.get("is_null_level"):
                continue
            out[(comparison["output_column_name"], level["label_for_charts"])] = (
                level["m_probability"], level["u_probability"])
    return out


@pytest.mark.spark
def test_spark_and_duckdb_agree(encoded: list[Path], tmp_path: Path) -> None:
    pytest.importorskip("pyspark")
    from linkage.link import link_extracts

    duck = link_extracts(encoded, tmp_path / "duck", quiet=True)
    spark = link_extracts(encoded, tmp_path / "spark", backend="spark", spark_master="local[2]", quiet=True)

    for name in ("crosswalk.parquet", "pairs.parquet", "model.json", "report.html", "manifest.json"):
        assert (tmp_path / "spark" / name).is_file(), name
    assert spark["backend"] == "spark" and spark["versions"]["spark_master"].startswith("local")
    assert not list((tmp_path / "spark").glob(".spark*")), "staging folder left in the output"
    assert spark["counts"]["records"] == duck["counts"]["records"]
    assert spark["counts"]["identities"] == duck["counts"]["identities"]

    # Same partition into persons. EM sees the same blocked pairs on both backends and u comes from the
    # whole random sample (training.u_min_count_per_level: null), which at this size is every pair, so the
    # models agree (measured: identical to 9 digits). Splink's early-stopping probe, used before, drew u
    # from ~1% of the right-hand records and moved u(sex) by 0.06 between backends. A pair whose
    # probability sits at the threshold could still flip: allow 1% of co-clustered pairs (measured: none).
    a, b = co_clustered_pairs(tmp_path / "duck"), co_clustered_pairs(tmp_path / "spark")
    assert len(a) > 50, "fixture too small to compare partitions"
    assert len(a ^ b) <= max(2, 0.01 * len(a)), f"{len(a ^ b)} co-clustered pairs differ of {len(a)}"
    assert abs(spark["counts"]["persons"] - duck["counts"]["persons"]) <= max(1, 0.01 * duck["counts"]["persons"])

    # Same trained parameters: m within 0.01, u within 0.005 (measured: identical), prior within 1%
    # relative (same deterministic rules on both).
    pd_, ps = _parameters(tmp_path / "duck"), _parameters(tmp_path / "spark")
    assert pd_.keys() == ps.keys()
    for level, (m_d, u_d) in pd_.items():
        m_s, u_s = ps[level]
        assert m_s == pytest.approx(m_d, abs=0.01), f"m of {level}"
        assert u_s == pytest.approx(u_d, abs=0.005), f"u of {level}"
    prior_d = json.loads((tmp_path / "duck" / "model.json").read_text())["probability_two_random_records_match"]
    prior_s = json.loads((tmp_path / "spark" / "model.json").read_text())["probability_two_random_records_match"]
    assert prior_s == pytest.approx(prior_d, rel=0.01)


@pytest.mark.spark
def test_an_active_session_is_reused_and_left_running() -> None:
    pytest.importorskip("pyspark")
    from linkage.link.spark import spark_session

    with spark_session("local[1]") as outer:
        with spark_session("local[2]") as inner:
            assert inner is outer
        assert outer.sql("SELECT bit_count(CAST(-1 AS BIGINT)) AS n").collect()[0].n == 64
