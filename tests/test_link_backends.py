"""The same link tests on every backend: DuckDB by default, Spark with ``pytest -m spark``.

Covers every stored Bloom layout the encoder can produce (plain 64 bytes, XOR-folded 32, balanced 128):
Dice computed by each backend's SQL equals Dice computed from the bytes, and the link, with the shipped
labels-free operating point, chooses the same prior and threshold and partitions the records the same
way on both backends.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from linkage import keys
from linkage.errors import LinkageInputError
from linkage.link.checks import Extract
from linkage.link.config import LinkConfig, SparkBackendSettings
from linkage.link.evaluate import co_clustered_pairs
from linkage.link.job import bloom_bytes, column_types, link_extracts, pair_filter
from linkage.link.levels import BloomDiceLevel
from linkage.link.sql import ident, string

REPO = Path(__file__).resolve().parents[1]
PARTNERS = REPO / "configs" / "partners"
SOURCES = ("police", "education", "social_care")
BACKENDS = ["duckdb", pytest.param("spark", marks=pytest.mark.spark)]
# Stored layouts: Bloom settings override -> bytes per stored filter (from 512 bits).
# The shipped configs' filters are balanced; the other layouts turn that off.
LAYOUTS = {"plain": ({"balanced": False}, 64), "folded": ({"xor_fold": True, "balanced": False}, 32),
           "balanced": ({"balanced": True}, 128)}
# one JVM for the whole test session; 2g is ample for the 200-person fixture (the 6g default is for real data)
SPARK = SparkBackendSettings(master="local[2]", release_jvm=False, driver_memory="2g")


def _config(backend: str) -> LinkConfig:
    cfg = LinkConfig()
    cfg.training.u_max_pairs = 2e5
    # The shipped operating point on both backends: prior re-estimated from the scores, 'auto' threshold,
    # one-to-one posteriors and the chain guard (one step of the job over the scored pairs).
    assert cfg.clustering.threshold_match_probability == "auto" and cfg.clustering.prior == "from_scores"
    if backend == "spark":
        pytest.importorskip("pyspark")
        cfg.backend = SPARK
    return cfg


# --- Dice per layout: the backend's SQL against the bytes -------------------------------------------------

def _bloom_extract(tmp: Path, layout: str, seed: int = 3) -> tuple[Extract, np.ndarray]:
    """A token file holding only Bloom filters of one layout: 20 base filters and a noisy copy of each."""
    override, n_bytes = LAYOUTS[layout]
    rng = np.random.default_rng(seed)
    base = (rng.random((20, n_bytes * 8)) < 0.3).astype(np.uint8)
    noisy = base ^ (rng.random(base.shape) < 0.05).astype(np.uint8)
    bits = np.vstack([base, noisy])
    data = [np.packbits(row).tobytes() for row in bits]
    folder = tmp / layout
    folder.mkdir()
    ids = [f"r{i:02d}" for i in range(len(data))]
    pq.write_table(pa.table({"record_id": ids, "identity_id": ids,
                             "given_name__bloom": pa.array(data, type=pa.binary(n_bytes))}),
                   folder / "tokens.parquet")
    manifest = {"source": "a", "encodings": {
        "columns": {"given_name__bloom": {"field": "given_name", "encoding": "bloom", "type": "bloom"}},
        "bloom": {"fields": ["given_name"], "bits": 512, "hashes": 15, "ngram": 2, **override}}}
    return Extract(folder, manifest), bits


def _expected_dice(bits: np.ndarray) -> np.ndarray:
    common = bits.astype(int) @ bits.T.astype(int)
    pop = bits.sum(axis=1)
    return 2 * common / (pop[:, None] + pop[None, :])


def _dice_on(backend: str, extract: Extract, n_bytes: int) -> np.ndarray:
    """Dice of every pair of filters, computed by the level's SQL on the backend, words sized n_bytes."""
    types = column_types([extract])
    level = BloomDiceLevel("given_name__bloom", 0.5, n_bytes)
    if backend == "duckdb":
        import duckdb

        from linkage.link.tables import load_tokens_duckdb

        con = duckdb.connect()
        load_tokens_duckdb(con, [extract], types)
        cols = ["given_name__bloom", "given_name__bloom_pc"]
        sides = ", ".join(f"{s}.{ident(c)} AS {ident(c + '_' + s)}" for c in cols for s in "lr")
        rows = con.execute(f"SELECT a, b, {level.dice_sql('duckdb')} FROM (SELECT l.record_id AS a, "
                           f"r.record_id AS b, {sides} FROM tok_0 l, tok_0 r) ORDER BY a, b").fetchall()
    else:
        from linkage.link.backends.spark import spark_session, token_frame

        with spark_session(SPARK) as spark:
            frame = token_frame(spark, extract, types, {"given_name__bloom": n_bytes})
            left = frame.select(*[frame[c].alias(f"{c}_l") for c in frame.columns])
            right = frame.select(*[frame[c].alias(f"{c}_r") for c in frame.columns])
            rows = [tuple(r) for r in left.crossJoin(right).selectExpr(
                "record_id_l", "record_id_r", level.dice_sql("spark")).orderBy("record_id_l", "record_id_r").collect()]
    n = int(len(rows) ** 0.5)
    return np.array([np.nan if r[2] is None else float(r[2]) for r in rows]).reshape(n, n)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_dice_equals_dice_of_the_bytes(backend: str, layout: str, tmp_path: Path) -> None:
    extract, bits = _bloom_extract(tmp_path, layout)
    sizes = bloom_bytes([extract], column_types([extract]))
    assert sizes == {"given_name__bloom": LAYOUTS[layout][1]}  # from the manifest's hardening options
    expected = _expected_dice(bits)
    got = _dice_on(backend, extract, sizes["given_name__bloom"])
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    assert (np.diag(got) == 1).all() and np.nanmax(got[np.triu_indices(40, 1)]) < 1


@pytest.mark.spark
@pytest.mark.parametrize("layout", ["folded", "balanced"])
def test_spark_dice_is_wrong_when_sized_as_plain_64_bytes(layout: str, tmp_path: Path) -> None:
    """The defect this replaces: Spark assumed 64 bytes for every layout. Sized that way, Dice is wrong."""
    pytest.importorskip("pyspark")
    extract, bits = _bloom_extract(tmp_path, layout)
    got = _dice_on("spark", extract, 64)
    expected = _expected_dice(bits)
    assert not np.allclose(np.nan_to_num(got, nan=-1), expected, atol=1e-6)


def test_declared_length_must_match_the_file(tmp_path: Path) -> None:
    extract, _ = _bloom_extract(tmp_path, "plain")
    lying = Extract(extract.path, {**extract.manifest, "encodings": {
        **extract.manifest["encodings"], "bloom": {**extract.manifest["encodings"]["bloom"], "xor_fold": True}}})
    with pytest.raises(LinkageInputError, match="64 bytes per filter but the manifest declares 32") as info:
        bloom_bytes([lying], column_types([lying]))
    assert "given_name__bloom" in str(info.value) and "tokens.parquet" in str(info.value)


# --- quoting: names and values from manifests reach SQL only quoted --------------------------------------

HOSTILE = ["o'brien", 'say "hi"', "back`tick", "back\\slash", "x'); DROP TABLE t; --", "naïve ünïcode"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_hostile_names_round_trip_through_sql(backend: str) -> None:
    if backend == "duckdb":
        import duckdb

        con = duckdb.connect()
        for value in HOSTILE:
            res = con.execute(f"SELECT {string(value)} AS {ident(value)}")
            assert res.fetchall() == [(value,)] and res.description[0][0] == value
        filt = pair_filter("link_and_dedupe", HOSTILE, "duckdb")
        con.execute("CREATE TABLE t AS SELECT 'a' AS record_id, 'x''); DROP TABLE t; --' AS source")
        n = con.execute(f"SELECT count(*) FROM t l, t r WHERE true {filt}").fetchall()[0][0]
        assert n == 0 and con.execute("SELECT count(*) FROM t").fetchall() == [(1,)]
    else:
        pytest.importorskip("pyspark")
        from linkage.link.backends.spark import spark_session

        with spark_session(SPARK) as spark:
            for value in HOSTILE:
                df = spark.sql(f"SELECT {string(value, 'spark')} AS {ident(value, 'spark')}")
                assert df.columns == [value] and df.collect()[0][0] == value
            filt = pair_filter("link_and_dedupe", HOSTILE, "spark")
            spark.createDataFrame([("a", "b", HOSTILE[4]), ("c", "d", HOSTILE[4])],
                                  ["record_id", "identity_id", "source"]).createOrReplaceTempView("t")
            assert spark.sql(f"SELECT count(*) AS n FROM t l, t r WHERE true {filt}").collect()[0].n == 2


# --- the whole link, per layout, on each backend -------------------------------------------------------

@pytest.fixture(scope="module")
def encoded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Path]]:
    """The 200-person synthetic extracts encoded once per Bloom layout with one fresh key."""
    from linkage.encode import encode_extract
    from linkage.synth import generate_extracts

    root = tmp_path_factory.mktemp("backends")
    generate_extracts(200, 11, root / "raw", quiet=True)
    key = keys.generate_key()
    out: dict[str, list[Path]] = {}
    for layout, (override, _) in LAYOUTS.items():
        dirs = []
        for source in SOURCES:
            cfg = yaml.safe_load((PARTNERS / f"{source}.yaml").read_text())
            cfg["encodings"]["bloom"].update(override)
            (root / layout).mkdir(exist_ok=True)
            cfg_path = root / layout / f"{source}.yaml"
            cfg_path.write_text(yaml.safe_dump(cfg))
            encode_extract(cfg_path, key, root / "raw" / f"{source}.csv", root / layout / source, quiet=True)
            dirs.append(root / layout / source)
        out[layout] = dirs
    return out


_DUCK_RUNS: dict[str, tuple[Path, dict[str, Any]]] = {}


def _duckdb_run(encoded: dict[str, list[Path]], layout: str, tmp: Path) -> tuple[Path, dict[str, Any]]:
    if layout not in _DUCK_RUNS or not _DUCK_RUNS[layout][0].exists():
        out = tmp / f"duck-{layout}"
        _DUCK_RUNS[layout] = (out, link_extracts(encoded[layout], out, _config("duckdb"), quiet=True))
    return _DUCK_RUNS[layout]


def _parameters(link_dir: Path) -> dict[tuple[str, str], tuple[float, float]]:
    model = json.loads((link_dir / "model.json").read_text())
    return {(c["output_column_name"], lvl["label_for_charts"]): (lvl["m_probability"], lvl["u_probability"])
            for c in model["comparisons"] for lvl in c["comparison_levels"] if not lvl.get("is_null_level")}


def _waterfall_against_pairs(html: str, pairs: pd.DataFrame) -> int:
    """Check each pair of the report's waterfall bar by bar against the weights the link scored it with
    (pairs.parquet: ``mw_<comparison>`` and ``mw_tf_adj_<comparison>``); returns the number of pairs checked."""
    decoder = json.JSONDecoder()
    values = None
    for embed in re.finditer(r"vegaEmbed\('#[^']*', ", html):
        spec, _ = decoder.raw_decode(html, embed.end())
        data = spec.get("data") if isinstance(spec.get("data"), dict) else {}
        rows = data.get("values") or next(iter((spec.get("datasets") or {}).values()), None)
        if rows and isinstance(rows[0], dict) and "record_number" in rows[0]:
            values = rows
    assert values is not None, "no waterfall in the report"
    checked = 0
    for _, bars in pd.DataFrame(values).groupby("record_number"):
        final = bars.loc[bars.column_name == "Final score", "log2_bayes_factor"].item()
        weights = {f"mw_tf_adj_{c[3:]}" if c.startswith("tf_") else f"mw_{c}": w
                   for c, w in zip(bars.column_name, bars.log2_bayes_factor, strict=True)
                   if c not in ("Prior", "Final score")}
        same = pairs[np.isclose(pairs.match_weight, final, rtol=0, atol=1e-9)]
        assert any(np.allclose([row[c] for c in weights], list(weights.values()), rtol=0, atol=1e-9)
                   for _, row in same.iterrows()), f"the waterfall's pair at weight {final:.3f} differs from the link's"
        checked += 1
    return checked


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_link_gives_the_same_persons_on_every_backend(backend: str, layout: str, encoded: dict[str, list[Path]],
                                                      tmp_path_factory: pytest.TempPathFactory) -> None:
    tmp = tmp_path_factory.mktemp(f"{backend}-{layout}")
    duck_dir, duck = _duckdb_run(encoded, layout, tmp_path_factory.getbasetemp())
    if backend == "duckdb":
        run_dir, run = duck_dir, duck
    else:
        run_dir = tmp / "link"
        run = link_extracts(encoded[layout], run_dir, _config(backend), quiet=True)
        assert run["versions"]["spark_master"].startswith("local")
    assert run["backend"] == backend
    # the shipped configs' date-salted filters and their postcode-salted second layout, all in this layout
    assert run["bloom_bytes"] == {c: LAYOUTS[layout][1] for c in ("given_name__bloom", "surname__bloom",
                                                                  "given_name__pcbloom", "surname__pcbloom")}
    for name in ("crosswalk.parquet", "pairs.parquet", "model.json", "report.html", "manifest.json",
                 "comparison_viewer.html"):  # the dashboards too, from the written pairs on every backend
        assert (run_dir / name).is_file(), name
    assert not [p.name for p in run_dir.iterdir() if p.name.startswith(".")], "staging left in the output"
    html = (run_dir / "report.html").read_text()
    # drawn from the written pairs
    for caption in ("Match-weight histogram", "Waterfall", "Persons by number of records"):
        assert caption in html
    # The waterfall shows the weights the link used, bar by bar, term-frequency adjustments included (the full
    # name's is priced over people by linkage.link.model.full_name_person_tf). On Spark the report's linker is
    # rebuilt in DuckDB from model.json (job.duckdb_report_linker) and registers no term-frequency table: it
    # needs none, as it recomputes only the levels and reads every weight from the engine's pairs.
    assert _waterfall_against_pairs(html, pd.read_parquet(run_dir / "pairs.parquet")) >= 5
    assert run["counts"]["records"] == duck["counts"]["records"]
    assert run["counts"]["identities"] == duck["counts"]["identities"]
    assert {"score pairs", "cluster into persons", "report"} <= {k.split(" (")[0] for k in run["timings_seconds"]}

    # Same operating point: the prior re-estimated from the scores and the threshold chosen by expected F1,
    # by the one step of the job that runs over the scored pairs whatever engine scored them.
    op, op_duck = run["operating_point"], duck["operating_point"]
    assert op["threshold_source"] == "expected F1" and op["prior"] != op["rule_prior"]
    assert op["prior"] == pytest.approx(op_duck["prior"], rel=1e-3)
    assert op["threshold"] == pytest.approx(op_duck["threshold"], abs=0.02)
    assert run["counts"]["pairs_scored"] == pytest.approx(duck["counts"]["pairs_scored"], rel=0.01)

    # Same partition: pair-level Jaccard of the co-clustered record pairs >= 0.99. u comes from the whole
    # random sample, which at this size is every pair, so the models agree and so should the partitions.
    a, b = co_clustered_pairs(duck_dir), co_clustered_pairs(run_dir)
    assert len(a) > 50, "fixture too small to compare partitions"
    assert len(a & b) / len(a | b) >= 0.99, f"{len(a ^ b)} co-clustered pairs differ of {len(a | b)}"
    pd_, ps = _parameters(duck_dir), _parameters(run_dir)
    assert pd_.keys() == ps.keys()
    for level, (m_d, u_d) in pd_.items():
        assert ps[level][0] == pytest.approx(m_d, abs=0.01), f"m of {level}"
        assert ps[level][1] == pytest.approx(u_d, abs=0.005), f"u of {level}"
