"""The Spark backend: dialect-aware levels, one-line failures without Spark, session handling.

Tests that need pyspark and Java are marked ``spark`` (run with ``pytest -m spark``); the cross-backend
link tests are in ``tests/test_link_backends.py``. The rest are fast and need neither.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from linkage.errors import LinkageConfigError
from linkage.link.config import LinkConfig, SparkBackendSettings
from linkage.link.levels import BloomDiceLevel, bind_bloom_sizes, bloom_levels
from linkage.link.model import build_settings

REPO = Path(__file__).resolve().parents[1]

# Columns of the unhardened partner configs (the union the linker sees; the shipped full-name composite
# levels are rendered further down).
TOKEN_COLS = {"given_name__exact", "given_name__phonetic", "given_name__initial", "given_name__del1",
              "given_name__bloom", "surname__exact", "surname__phonetic", "surname__initial", "surname__del1",
              "surname__bloom", "name__parts", "name__given_shared", "name__surname_shared", "dob__exact",
              "dob__swap", "dob__ym", "dob__year", "dob__md", "sex__exact", "postcode__exact",
              "postcode__sector", "postcode__district", "upn__exact"}


def _level_sql(n_bytes: int, dialect: str) -> list[str]:
    every_level = LinkConfig.model_validate({"comparisons": {"deletion_levels": ["given_name", "surname", "postcode"]}})
    settings = build_settings(TOKEN_COLS, every_level, "link_and_dedupe", " AND l.record_id <> r.record_id")
    bind_bloom_sizes(settings.comparisons, {"given_name__bloom": n_bytes, "surname__bloom": n_bytes})
    return [lvl.get_comparison_level(dialect).sql_condition
            for c in settings.comparisons for lvl in c.create_comparison_levels()]


@pytest.mark.parametrize(("n_bytes", "words"), [(32, 4), (64, 8), (128, 16)])  # folded, default, balanced
def test_every_level_renders_in_spark_sql_sized_from_the_manifest(n_bytes: int, words: int) -> None:
    spark_sql = _level_sql(n_bytes, "spark")
    dice = [s for s in spark_sql if "bit_count" in s]
    assert len(dice) == 4  # two thresholds x two names
    for s in dice:  # one bit_count per 64-bit word and side pair; denominators guarded against zero
        assert s.count("bit_count(") == words and "nullif(" in s
    assert not any("list_" in s or "::" in s for s in spark_sql), "a DuckDB-only construct reached Spark SQL"
    assert any("arrays_overlap(" in s for s in spark_sql) and any("array_contains(" in s for s in spark_sql)
    duck_sql = _level_sql(n_bytes, "duckdb")
    assert all(s.count("bit_count(") == 1 for s in duck_sql if "bit_count" in s)  # BIT: length-free
    assert any("list_has_any(" in s for s in duck_sql)


def test_unsized_bloom_level_is_refused_on_spark() -> None:
    level = BloomDiceLevel("given_name__bloom", 0.8)
    with pytest.raises(LinkageConfigError, match="no declared length"):
        level.get_comparison_level("spark")
    settings = build_settings(TOKEN_COLS, LinkConfig(), "link_only", "")
    with pytest.raises(LinkageConfigError, match="surname__bloom"):
        bind_bloom_sizes(settings.comparisons, {"given_name__bloom": 64})
    assert len(bloom_levels(settings.comparisons)) == 4


def test_a_backend_without_model_sql_is_refused() -> None:
    with pytest.raises(LinkageConfigError, match="no SQL for backend 'sqlite'"):
        BloomDiceLevel("given_name__bloom", 0.8, 64).get_comparison_level("sqlite")


def test_missing_pyspark_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from linkage.link.backends.spark import SparkUnavailableError, check_spark_available

    monkeypatch.setitem(sys.modules, "pyspark", None)  # makes `import pyspark` raise ImportError
    with pytest.raises(SparkUnavailableError, match=r"pip install 'linkage\[spark\]'") as info:
        check_spark_available()
    assert "\n" not in str(info.value)


@pytest.mark.spark  # needs pyspark installed, which CI does only for the spark run
def test_missing_java_is_one_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pytest.importorskip("pyspark")
    from linkage.link.backends.spark import SparkUnavailableError, check_spark_available

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


def test_backend_is_config_data_and_flags_only_override(tmp_path: Path) -> None:
    from linkage.link.config import load_link_config
    from linkage.link.job import resolve_backend

    path = tmp_path / "link.yaml"
    path.write_text("backend: {kind: spark, master: 'local[1]', driver_memory: 4g, shuffle_partitions: 8, "
                    "conf: {spark.executor.cores: '2'}}\n")
    cfg = load_link_config(path)
    assert isinstance(cfg.backend, SparkBackendSettings) and cfg.backend.shuffle_partitions == 8
    assert resolve_backend(cfg) == cfg.backend  # no flag: the config decides
    over = resolve_backend(cfg, "spark", spark_master="local[2]", spark_conf=["spark.x=1"])
    assert over.master == "local[2]" and over.conf == {"spark.executor.cores": "2", "spark.x": "1"}
    assert over.driver_memory == "4g"  # not given as a flag: kept
    assert resolve_backend(cfg, "duckdb").kind == "duckdb"
    path.write_text("backend: {kind: spark, driver_memory: lots}\n")
    with pytest.raises(LinkageConfigError):
        load_link_config(path)
    path.write_text("backend: {kind: duckdb, master: 'local[2]'}\n")  # a Spark key on DuckDB: refused
    with pytest.raises(LinkageConfigError):
        load_link_config(path)


def test_small_box_defaults() -> None:
    pytest.importorskip("splink")
    from linkage.link.backends.spark import session_settings

    conf = session_settings(SparkBackendSettings(), "local[2]", REPO)
    assert conf["spark.sql.shuffle.partitions"] == "4"
    memory = conf["spark.driver.memory"]
    assert memory.endswith("g") and int(memory[:-1]) <= 10  # leaves room for the single-node steps
    conf = session_settings(SparkBackendSettings(conf={"spark.driver.memory": "3g"}), "spark://h:7077", REPO)
    assert conf["spark.driver.memory"] == "3g" and "spark.sql.shuffle.partitions" not in conf


def test_duckdb_path_never_imports_pyspark() -> None:
    code = ("import sys, linkage.link.run, linkage.link.job, linkage.cli; "
            "sys.exit(1 if any(m.split('.')[0] in ('pyspark', 'py4j') for m in sys.modules) else 0)")
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO).returncode == 0


@pytest.mark.spark
def test_an_active_session_is_reused_and_left_running() -> None:
    pytest.importorskip("pyspark")
    from linkage.link.backends.spark import spark_session

    keep = SparkBackendSettings(master="local[1]", release_jvm=False)
    with spark_session(keep) as outer:
        with spark_session(SparkBackendSettings(master="local[2]")) as inner:
            assert inner is outer
        assert outer.sql("SELECT bit_count(CAST(-1 AS BIGINT)) AS n").collect()[0].n == 64


@pytest.mark.spark
def test_release_jvm_ends_the_local_jvm_and_a_later_session_starts_a_new_one() -> None:
    """The 1M-person run was OOM-killed while a stopped session's 16 GB JVM stayed resident."""
    pytest.importorskip("pyspark")
    from pyspark import SparkContext

    from linkage.link.backends.spark import spark_session

    with spark_session(SparkBackendSettings(master="local[1]", release_jvm=True)) as spark:
        proc = SparkContext._gateway.proc  # the JVM pyspark started for this session
        assert spark.range(3).count() == 3
    assert proc.poll() is not None, "JVM still running after the session ended"
    with spark_session(SparkBackendSettings(master="local[1]", release_jvm=False)) as spark:
        assert spark.range(5).count() == 5


def test_full_name_composite_levels_render_in_spark_sql() -> None:
    # composite_name: full -- the neutral name levels embed the list overlap, which must follow the dialect
    cols = TOKEN_COLS | {"full_name__near_dob", "full_name__exact_pc"}
    settings = build_settings(cols, LinkConfig(), "link_and_dedupe", " AND l.record_id <> r.record_id")
    bind_bloom_sizes(settings.comparisons, {"given_name__bloom": 64, "surname__bloom": 64})
    for dialect, overlap in (("spark", "arrays_overlap("), ("duckdb", "list_has_any(")):
        sql = [lvl.get_comparison_level(dialect).sql_condition
               for c in settings.comparisons for lvl in c.create_comparison_levels()]
        covered = [s for s in sql if "full_name__near_dob" in s]
        assert len(covered) == 4  # given-name and surname neutral levels, the full-name null and overlap levels
        assert all(overlap in s for s in covered if "dob__exact_l =" not in s)
        if dialect == "spark":
            assert not any("list_" in s or "::" in s for s in sql)
