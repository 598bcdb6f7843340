"""Time ``linkage link`` on DuckDB and on local Spark over synthetic extracts of growing size.

Each size: synthesise N people, encode the three partner extracts with one key, link on DuckDB, then on
Spark (``--master``), and record wall time per phase, pairs scored and whether the two partitions agree.
With ``--blocking-only``, count instead the pairs each prediction blocking rule generates (DuckDB only,
fast), to see how the scoring workload grows towards a national run. Results go to
``bench/results/spark.json`` (one entry per size); docs/scaling.md quotes them.

    python bench/bench_spark.py --sizes 1000 4000 16000 --master 'local[2]'
    python bench/bench_spark.py --backends duckdb --sizes 100000 --out bench/results/spark_duckdb_only.json
    python bench/bench_spark.py --blocking-only --sizes 4000 16000 64000 --out bench/results/spark_blocking.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from linkage import keys
from linkage.encode import encode_extract
from linkage.link import link_extracts
from linkage.link.evaluate import co_clustered_pairs
from linkage.link.spark import link_extracts_spark
from linkage.synth import generate_extracts

REPO = Path(__file__).resolve().parents[1]
SOURCES = ("police", "education", "social_care")


def _encoded(people: int, work: Path, seed: int) -> tuple[Path, list[Path]]:
    root = work / f"n{people}"
    root.mkdir()
    generate_extracts(people, seed, root / "raw", quiet=True)
    key = keys.generate_key()
    dirs = []
    for source in SOURCES:
        encode_extract(REPO / "configs" / "partners" / f"{source}.yaml", key, root / "raw" / f"{source}.csv",
                       root / source, quiet=True)
        dirs.append(root / source)
    return root, dirs


def blocked_pairs(dirs: list[Path]) -> dict:
    """Exact pairs each prediction blocking rule adds (after the rules before it), counted on DuckDB.

    Scoring cost is proportional to these pairs, so their growth with size is what a national run must
    budget for.
    """
    import duckdb
    from splink.blocking_analysis import count_comparisons_from_blocking_rules
    from splink.internals.duckdb.database_api import DuckDBAPI

    from linkage.link.checks import check_extracts
    from linkage.link.config import load_link_config
    from linkage.link.model import DEFAULT_BLOCKING, to_splink_rule, usable_rules
    from linkage.link.run import _column_types, _pair_filter, _plan, load_tokens

    extracts = check_extracts(dirs)
    cfg = load_link_config()
    types = _column_types(extracts)
    link_type, dedupe, _ = _plan(extracts, cfg)
    con = duckdb.connect()
    tables = load_tokens(con, extracts, types)
    db_api = DuckDBAPI(connection=con)
    inputs = [db_api.register(t, dataset_display_name=ex.source) for ex, t in zip(extracts, tables, strict=True)]
    rules = usable_rules(cfg.blocking_rules or DEFAULT_BLOCKING, set(types))
    counted = count_comparisons_from_blocking_rules(
        inputs, blocking_rules=[to_splink_rule(r, _pair_filter(link_type, dedupe)) for r in rules],
        link_type=link_type, unique_id_column_name="identity_id", record_sample_proportion=1.0)
    con.close()
    return {"total": int(counted[-1]["cumulative_comparison_count"]) if counted else 0,
            "per_rule": {str(r): int(c["marginal_comparison_count"]) for r, c in zip(rules, counted, strict=True)}}


def bench_blocking(people: int, work: Path, seed: int) -> dict:
    root, dirs = _encoded(people, work, seed)
    identities = sum(json.loads((d / "manifest.json").read_text())["counts"]["identities"] for d in dirs)
    records = sum(json.loads((d / "manifest.json").read_text())["counts"]["records"] for d in dirs)
    return {"people": people, "records": records, "identities": identities, "blocked_pairs": blocked_pairs(dirs)}


def bench_size(people: int, master: str, work: Path, seed: int, backends: list[str]) -> dict:
    root, dirs = _encoded(people, work, seed)
    runs = {}
    for backend in backends:
        started = time.perf_counter()
        if backend == "spark":
            manifest = link_extracts_spark(dirs, root / backend, master=master, quiet=True)
        else:
            manifest = link_extracts(dirs, root / backend, quiet=True)
        runs[backend] = {"wall_seconds": round(time.perf_counter() - started, 1),
                         "phases": manifest["timings_seconds"],
                         "training": manifest["training"]["timings_seconds"],
                         "pairs_scored": manifest["counts"]["pairs_scored"],
                         "persons": manifest["counts"]["persons"]}
        identities = sum(manifest["counts"]["identities"].values())
        records = sum(manifest["counts"]["records"].values())
    row = {"people": people, "records": records, "identities": identities, "master": master, **runs}
    if len(runs) == 2:
        a, b = co_clustered_pairs(root / "duckdb"), co_clustered_pairs(root / "spark")
        row.update({"co_clustered_pairs_duckdb": len(a), "co_clustered_pairs_differing": len(a ^ b)})
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 2000, 8000])
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "spark.json")
    parser.add_argument("--backends", nargs="+", choices=["duckdb", "spark"], default=["duckdb", "spark"])
    parser.add_argument("--blocking-only", action="store_true",
                        help="only count blocked pairs per rule (DuckDB, no Spark); results keyed 'blocking:N'")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-spark-"))
    results = json.loads(args.out.read_text()) if args.out.is_file() else {}
    try:
        for people in args.sizes:
            if args.blocking_only:
                row = bench_blocking(people, work, args.seed)
                results[f"blocking:{people}"] = row
            else:
                row = bench_size(people, args.master, work, args.seed, args.backends)
                key = str(people) if len(args.backends) == 2 else f"{args.backends[0]}:{people}"
                results[key] = row
            print(json.dumps(row), flush=True)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(results, indent=2) + "\n")  # after each size: partial runs count
            shutil.rmtree(work / f"n{people}", ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
