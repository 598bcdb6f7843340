"""Synthetic-data generation time and peak memory: `linkage synth` at several population sizes.

    python bench/bench_synth.py [--sizes 10000,1000000] [--seed 1] [--out bench/results/synth.json]

Each size runs in a fresh subprocess (the generator's own API, progress off) so peak resident memory
(ru_maxrss of that child) is measured per run; output goes to a temporary folder that is deleted after
its size and row counts are recorded. Flat peak memory across sizes shows generation is bounded by the
batch size, not by the population.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = """
import json, resource, sys, time
from linkage.synth import generate_extracts
people, seed, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
t = time.perf_counter()
summary = generate_extracts(people, seed, out, quiet=True)
seconds = time.perf_counter() - t
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"people": people, "seconds": round(seconds, 2), "peak_rss_mb": round(peak_mb, 1),
                  "rows": summary["rows"], "high_harm_people": summary["high_harm_people"]}))
"""


def run_size(people: int, seed: int) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="bench-synth-"))
    out = tmp / "extracts"
    try:
        done = subprocess.run([sys.executable, "-c", CHILD, str(people), str(seed), str(out)],
                              check=True, capture_output=True, text=True)
        result = json.loads(done.stdout.strip().splitlines()[-1])
        result["output_mb"] = round(sum(f.stat().st_size for f in out.iterdir()) / 2**20, 1)
        result["people_per_second"] = round(people / result["seconds"])
        return result
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,1000000", help="comma-separated population sizes")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="also write the results as JSON here")
    args = parser.parse_args()
    results = []
    for size in (int(s) for s in args.sizes.split(",")):
        result = run_size(size, args.seed)
        results.append(result)
        print(f"{size:>10,} people: {result['seconds']:8.1f} s  {result['people_per_second']:>8,} people/s  "
              f"peak RSS {result['peak_rss_mb']:7.1f} MB  output {result['output_mb']:8.1f} MB  "
              f"rows {result['rows']}  high-harm {result['high_harm_people']}", flush=True)
    report = {"machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                          "platform": platform.platform()}, "results": results}
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
