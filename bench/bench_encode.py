"""Encoding throughput and peak memory: `linkage hash` against clkhash on the same records, one run.

    python bench/bench_encode.py [--rows 1000000] [--clkhash-rows 100000] [--out bench/results/encode.json]

Writes a synthetic extract (given name, surname, DOB, postcode: the FEBRL core fields, with realistic
repetition of names), encodes it with Bloom filters on, in a fresh subprocess per size so peak memory
(ru_maxrss) is measured per run, then encodes the first --clkhash-rows records with clkhash (record-level
CLKs with its documented FEBRL-style schema) and reports both rates and their ratio. Sizes below
--rows (a quarter and a half) show whether memory grows with input size.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

SYLLABLES = ["an", "ar", "be", "da", "el", "en", "ha", "in", "ja", "ka", "la", "li", "ma", "mi", "na", "ne",
             "ol", "pa", "ra", "ri", "sa", "sh", "ta", "th", "va", "wi", "ya", "zo", "ch", "mo", "ke", "lu"]


def make_extract(path: Path, rows: int, seed: int = 7) -> None:
    """Zipf-distributed names over a few thousand given names and tens of thousands of surnames."""
    rng = np.random.default_rng(seed)

    def vocabulary(n: int, parts: int) -> np.ndarray:
        picks = rng.integers(0, len(SYLLABLES), size=(n, parts))
        return np.array(["".join(SYLLABLES[i] for i in row) for row in picks])

    given, surname = vocabulary(4000, 2), vocabulary(40000, 3)

    def zipf_pick(vocab: np.ndarray) -> np.ndarray:
        ranks = np.minimum(rng.zipf(1.3, rows), len(vocab)) - 1
        return vocab[ranks]

    days = rng.integers(0, 365 * 80, rows)
    dob = (np.datetime64("1930-01-01") + days.astype("timedelta64[D]")).astype(str)
    frame = pd.DataFrame({
        "rec_id": [f"rec-{i}" for i in range(rows)],
        "given_name": zipf_pick(given), "surname": zipf_pick(surname),
        "date_of_birth": np.char.replace(dob, "-", ""),
        "postcode": rng.integers(2000, 8000, rows).astype(str),
    })
    frame.to_csv(path, index=False)


def run_ours(csv: Path, out: Path, key: Path) -> dict:
    code = f"""
import json, resource, time
from linkage.encode import encode_extract
from linkage.keys import read_key_file
t = time.perf_counter()
m = encode_extract('configs/partners/febrl.yaml', read_key_file({str(key)!r}), {str(csv)!r}, {str(out)!r},
                   quiet=True)
usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
print(json.dumps({{"seconds": time.perf_counter() - t, "rows": m["counts"]["rows_read"],
                   "cpu_seconds": sum(u.ru_utime + u.ru_stime for u in usage),
                   "peak_rss_mb": max(u.ru_maxrss for u in usage) / 1024}}))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


CLKHASH_SCRIPT = """
import json, sys, time
import pandas as pd
from clkhash import clk
from clkhash.comparators import NgramComparison
from clkhash.field_formats import BitsPerTokenStrategy, FieldHashingProperties, StringSpec
from clkhash.schema import Schema
frame = pd.read_csv(sys.argv[1], dtype=str, keep_default_na=False, nrows=int(sys.argv[2]))
props = FieldHashingProperties(comparator=NgramComparison(2), strategy=BitsPerTokenStrategy(15))
names = ["given_name", "surname", "date_of_birth", "postcode"]
schema = Schema(fields=[StringSpec(identifier=n, hashing_properties=props) for n in names], l=1024)
records = frame[names].values.tolist()
t = time.perf_counter()
clk.generate_clks(records, schema, "secret-key-for-benchmark")
seconds = time.perf_counter() - t
# CPU cost measured on one process (pool workers are not counted until reaped, which would flatter it).
t = time.process_time()
clk.generate_clks(records[:20000], schema, "secret-key-for-benchmark", max_workers=1)
cpu_per_row = (time.process_time() - t) / min(len(records), 20000)
print(json.dumps({"seconds": seconds, "cpu_seconds": cpu_per_row * len(records), "rows": len(records)}))
"""


def run_clkhash(csv: Path, rows: int, venv: Path) -> dict | None:
    """clkhash pins cryptography<41, which conflicts with ours, so it runs in a venv of its own."""
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        installed = subprocess.run([str(python), "-m", "pip", "install", "-q", "clkhash==0.18.3", "pandas"],
                                   capture_output=True, text=True)
        if installed.returncode != 0:
            print("could not install clkhash: no comparison", file=sys.stderr)
            return None
    result = subprocess.run([str(python), "-c", CLKHASH_SCRIPT, str(csv), str(rows)], capture_output=True,
                            text=True, check=True)
    run = json.loads(result.stdout.strip().splitlines()[-1])
    run["records_per_s"] = run["rows"] / run["seconds"]
    run["records_per_cpu_s"] = run["rows"] / run["cpu_seconds"]
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--clkhash-rows", type=int, default=100_000)
    parser.add_argument("--out", type=Path, default=Path("bench/results/encode.json"))
    parser.add_argument("--clkhash-venv", type=Path, default=Path(tempfile.gettempdir()) / "linkage-clkhash-venv")
    args = parser.parse_args()
    results: dict = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()}, "linkage": []}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        key = tmp / "bench.key"
        subprocess.run([sys.executable, "-m", "linkage.cli", "keygen", "--out", str(key)], check=True,
                       capture_output=True)
        for size in sorted({args.rows // 4, args.rows // 2, args.rows}):
            csv = tmp / f"extract-{size}.csv"
            make_extract(csv, size)
            run = run_ours(csv, tmp / f"enc-{size}", key)
            run["records_per_s"] = run["rows"] / run["seconds"]
            run["records_per_cpu_s"] = run["rows"] / run["cpu_seconds"]
            results["linkage"].append(run)
            print(f"linkage hash  {size:>9,} rows  {run['records_per_s']:>9,.0f} rec/s  "
                  f"{run['records_per_cpu_s']:>9,.0f} rec/CPU-s  "
                  f"peak RSS of largest process {run['peak_rss_mb']:,.0f} MB", flush=True)
        clk = run_clkhash(tmp / f"extract-{args.rows}.csv", args.clkhash_rows, args.clkhash_venv)
        results["clkhash"] = clk
        if clk:
            ours = results["linkage"][-1]["records_per_s"]
            results["speedup_vs_clkhash"] = ours / clk["records_per_s"]
            ours_cpu = results["linkage"][-1]["records_per_cpu_s"]
            results["cpu_efficiency_vs_clkhash"] = ours_cpu / clk["records_per_cpu_s"]
            print(f"clkhash       {clk['rows']:>9,} rows  {clk['records_per_s']:>9,.0f} rec/s  "
                  f"{clk['records_per_cpu_s']:>9,.0f} rec/CPU-s")
            print(f"linkage / clkhash: {results['speedup_vs_clkhash']:.1f}x wall-clock rate, "
                  f"{results['cpu_efficiency_vs_clkhash']:.1f}x per CPU-second")
        else:
            print("clkhash unavailable: no comparison")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
