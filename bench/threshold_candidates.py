"""True F1 at every candidate threshold of a link's cluster sweep (a benchmark tool: reads the truth and the key).

    python bench/threshold_candidates.py /tmp/i16-prior-k2 link_i16 messy,synthetic,febrl3 [--profile shipped]

For each dataset of a bench_tradeoff.py --work folder, re-clusters the link folder OUT (``linkage.link.recluster``,
no re-scoring) at each threshold its manifest's ``operating_point.cluster_sweep`` lists, scores the partition
against the truth and prints it beside the sweep's expected F1, bounds, noise (``expected_f1_sd``) and tie flag:
what a threshold rule could have chosen and what each choice was worth. Links between two one-to-one sources
(FEBRL4) have no cluster sweep and are skipped.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from tradeoff_work import TradeoffWork

from linkage.link import evaluate_link
from linkage.link.recluster import recluster


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("work", type=Path)
    parser.add_argument("out")
    parser.add_argument("datasets")
    parser.add_argument("--profile", default="shipped")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    work = TradeoffWork(args.work)
    results = {}
    for ds in args.datasets.split(","):
        link = work.profile_dir(args.profile, ds) / args.out
        op = json.loads((link / "manifest.json").read_text())["operating_point"]
        rows = []
        for row in op.get("cluster_sweep") or []:
            t = float(row["threshold"])
            folder = link.parent / f"{args.out}_at_{t:.4f}"
            if folder.exists():
                shutil.rmtree(folder)
            recluster(link, folder, t, quiet=True)
            f1 = evaluate_link(folder, work.truth(ds), work.key_file)["pairwise"]["f1"]
            shutil.rmtree(folder)
            rows.append({**{k: row.get(k) for k in ("threshold", "expected_f1", "expected_f1_bounds", "expected_f1_sd",
                                                   "tied_with_best")}, "true_f1": round(f1, 5)})
            print(ds, f"t={t:.4g}", "chosen" if t == op["threshold"] else "", json.dumps(rows[-1]), flush=True)
        results[ds] = {"chosen": op["threshold"], "candidates": rows}
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
