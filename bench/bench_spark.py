"""DuckDB and Spark on the same encoded extracts: same partition? how long? how much memory?

Three modes, results appended to a JSON file after every run (partial runs count):

    # Agreement: every hardening profile of bench_hardening.py, on FEBRL4 and on synthetic data; per
    # profile the pair-level Jaccard of the two backends' co-clustered record pairs.
    nice -n 10 python bench/bench_spark.py --agreement --people 16000 --datasets febrl4,synth
    # Scale (default): one link per backend per size, wall time per phase and peak memory (Python, JVM).
    nice -n 10 python bench/bench_spark.py --scale --sizes 100000 --backends duckdb spark
    # Blocking only: exact pairs per prediction rule on DuckDB (how scoring work grows).
    python bench/bench_spark.py --blocking-only --sizes 4000 16000 64000

Spark runs with the config's defaults (``SparkBackendSettings``: driver memory 6g, 2 x cores shuffle
partitions) on ``--master`` (default local[2]); docs/scaling.md quotes the results.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_hardening import VARIANTS, datasets, variant_config  # noqa: E402

from linkage import keys  # noqa: E402
from linkage.encode import encode_extract  # noqa: E402
from linkage.link import evaluate_link, link_extracts  # noqa: E402
from linkage.link.config import LinkConfig, SparkBackendSettings, load_link_config  # noqa: E402
from linkage.link.evaluate import co_clustered_pairs  # noqa: E402

SOURCES = ("police", "education", "social_care")


DRIVER_MEMORY: list[str] = []  # --driver-memory, when given


def _config(backend: str, master: str, release_jvm: bool) -> LinkConfig:
    cfg = load_link_config()
    if backend == "spark":
        spark = SparkBackendSettings(master=master, release_jvm=release_jvm)
        if DRIVER_MEMORY:
            spark = spark.model_copy(update={"driver_memory": DRIVER_MEMORY[0]})
        cfg = cfg.model_copy(update={"backend": spark})
    return cfg


def _peak_mb() -> dict[str, float]:
    """Peak resident memory so far: this process, and its finished children (the JVM once released)."""
    return {"python_peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "children_peak_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)}


def _link(backend: str, dirs: list[Path], out: Path, master: str, release_jvm: bool) -> dict[str, Any]:
    started = time.perf_counter()
    m = link_extracts(dirs, out, _config(backend, master, release_jvm), quiet=True, allow_unaudited=True)  # unaudited
    return {"wall_seconds": round(time.perf_counter() - started, 1), "phases": m["timings_seconds"],
            "training": m["training"]["timings_seconds"], "pairs_scored": m["counts"]["pairs_scored"],
            "persons": m["counts"]["persons"], "records": sum(m["counts"]["records"].values()),
            "identities": sum(m["counts"]["identities"].values()), **_peak_mb()}


def jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a | b else 1.0


def agreement(args: argparse.Namespace, work: Path, results: dict[str, Any]) -> None:
    key = keys.generate_key()
    key_file = work / "bench.key"
    keys.write_key_file(key_file, key)
    chosen = [list(VARIANTS)[int(i)] for i in args.variants.split(",")] if args.variants else list(VARIANTS)
    for ds in datasets(work, args.people, args.seed, args.datasets.split(",")):
        for name in chosen:
            label = f"agreement:{ds['name']}:{name}"
            vdir = work / f"v{list(VARIANTS).index(name)}_{ds['name'].split()[0].lower()}"
            shutil.rmtree(vdir, ignore_errors=True)
            vdir.mkdir(parents=True)
            dirs = []
            for base, raw, src in ds["inputs"]:
                enc = vdir / f"enc_{src}"
                encode_extract(variant_config(base, VARIANTS[name], vdir / f"{src}.yaml"), key, raw, enc,
                               source=src, quiet=True)
                dirs.append(enc)
            row: dict[str, Any] = {"dataset": ds["name"], "profile": name, "master": args.master}
            for backend in ("duckdb", "spark"):
                row[backend] = _link(backend, dirs, vdir / backend, args.master, release_jvm=False)
                row[backend]["f1"] = evaluate_link(vdir / backend, ds["truth"], key_file)["pairwise"]["f1"]
            a, b = co_clustered_pairs(vdir / "duckdb"), co_clustered_pairs(vdir / "spark")
            row.update({"co_clustered_pairs_duckdb": len(a), "co_clustered_pairs_spark": len(b),
                        "co_clustered_pairs_differing": len(a ^ b), "pair_jaccard": round(jaccard(a, b), 5)})
            _save(args.out, results, label, row)
            shutil.rmtree(vdir, ignore_errors=True)


def _encoded(people: int, work: Path, seed: int) -> list[Path]:
    from linkage.synth import generate_extracts

    root = work / f"n{people}"
    root.mkdir()
    generate_extracts(people, seed, root / "raw", quiet=True)
    key = keys.generate_key()
    for source in SOURCES:
        encode_extract(REPO / "configs" / "partners" / f"{source}.yaml", key, root / "raw" / f"{source}.csv",
                       root / source, quiet=True)
    return [root / s for s in SOURCES]


def scale(args: argparse.Namespace, work: Path, results: dict[str, Any]) -> None:
    for people in args.sizes:
        dirs = _encoded(people, work, args.seed)
        row: dict[str, Any] = {"people": people, "master": args.master}
        for backend in args.backends:
            row[backend] = _link(backend, dirs, work / f"n{people}" / backend, args.master, release_jvm=True)
        if len(args.backends) == 2:
            a, b = co_clustered_pairs(work / f"n{people}" / "duckdb"), co_clustered_pairs(work / f"n{people}" / "spark")
            row.update({"co_clustered_pairs_differing": len(a ^ b), "pair_jaccard": round(jaccard(a, b), 5)})
        _save(args.out, results, f"scale:{people}:{'+'.join(args.backends)}", row)
        shutil.rmtree(work / f"n{people}", ignore_errors=True)


def blocking(args: argparse.Namespace, work: Path, results: dict[str, Any]) -> None:
    """Exact pairs each prediction blocking rule adds (after the rules before it), counted on DuckDB."""
    import duckdb
    from splink.blocking_analysis import count_comparisons_from_blocking_rules
    from splink.internals.duckdb.database_api import DuckDBAPI

    from linkage.link.checks import check_extracts
    from linkage.link.job import column_types, pair_filter, plan_link
    from linkage.link.model import DEFAULT_BLOCKING, to_splink_rule, usable_rules
    from linkage.link.tables import load_tokens_duckdb

    for people in args.sizes:
        dirs = _encoded(people, work, args.seed)
        extracts = check_extracts(dirs)
        cfg = load_link_config()
        types = column_types(extracts)
        link_type, dedupe, _ = plan_link(extracts, cfg)
        con = duckdb.connect()
        tables = load_tokens_duckdb(con, extracts, types)
        db_api = DuckDBAPI(connection=con)
        inputs = [db_api.register(t, table_name=f"in{i}", dataset_display_name=f"s{i}")
                  for i, t in enumerate(tables)]
        rules = usable_rules(cfg.blocking_rules or DEFAULT_BLOCKING, set(types))
        counted = count_comparisons_from_blocking_rules(
            inputs, blocking_rules=[to_splink_rule(r, pair_filter(link_type, dedupe)) for r in rules],
            link_type=link_type, unique_id_column_name="identity_id", record_sample_proportion=1.0)
        con.close()
        total = int(counted[-1]["cumulative_comparison_count"]) if counted else 0
        row: dict[str, Any] = {"people": people, "blocked_pairs": {"total": total,
                                 "per_rule": {str(r): int(c["marginal_comparison_count"])
                                              for r, c in zip(rules, counted, strict=True)}}}
        row["identities"] = sum(json.loads((d / "manifest.json").read_text())["counts"]["identities"] for d in dirs)
        _save(args.out, results, f"blocking:{people}", row)
        shutil.rmtree(work / f"n{people}", ignore_errors=True)


def _save(out: Path, results: dict[str, Any], label: str, row: dict[str, Any]) -> None:
    results[label] = row
    print(json.dumps({label: row}), flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--agreement", action="store_true", help="every hardening profile, FEBRL4 and synthetic")
    mode.add_argument("--scale", action="store_true", help="time each backend per size (the default mode)")
    mode.add_argument("--blocking-only", action="store_true", help="count blocked pairs per rule (DuckDB)")
    parser.add_argument("--people", type=int, default=16000, help="synthetic size of --agreement")
    parser.add_argument("--sizes", type=int, nargs="+", default=[4000, 16000], help="sizes: --scale, --blocking-only")
    parser.add_argument("--datasets", default="febrl4,synth")
    parser.add_argument("--variants", default="", help="comma-separated bench_hardening variant numbers (all)")
    parser.add_argument("--backends", nargs="+", choices=["duckdb", "spark"], default=["duckdb", "spark"])
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--driver-memory", default=None, help="Spark driver heap (default: the config's, 6g)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "spark.json")
    args = parser.parse_args()
    if args.driver_memory:
        DRIVER_MEMORY.append(args.driver_memory)
    work = Path(tempfile.mkdtemp(prefix="bench-spark-"))
    results = json.loads(args.out.read_text()) if args.out.is_file() else {}
    try:
        if args.agreement:
            agreement(args, work, results)
        elif args.scale:
            scale(args, work, results)
        else:
            blocking(args, work, results)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
