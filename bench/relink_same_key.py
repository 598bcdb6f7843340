"""Re-link the shipped-profile encodings of an earlier bench_tradeoff.py run (same key, same encodings) with the
``linkage`` package first on PYTHONPATH, and score them: a link-model change measured without key spread.

    git archive <old commit> linkage | tar -x -C /tmp/old      # the code to compare against
    PYTHONPATH=/tmp/old python bench/relink_same_key.py /tmp/i15-ab link_old messy,febrl3,febrl4,synthetic
    PYTHONPATH=$PWD python bench/relink_same_key.py /tmp/i15-ab link_new messy,febrl3,febrl4,synthetic

WORK is bench_tradeoff.py's --work folder (its key, link config and truth files are reused); OUT names the link
folder written beside each dataset's encodings. Datasets: messy, febrl3, febrl4, synthetic (10,000 people).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import inspect
import json
from pathlib import Path

from tradeoff_work import TradeoffWork

import linkage
from linkage.link import evaluate_link, link_extracts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("work", type=Path)
    parser.add_argument("out")
    parser.add_argument("datasets")
    parser.add_argument("--profile", default="shipped")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    print("linkage from", linkage.__file__, flush=True)
    work = TradeoffWork(args.work)
    results = {}
    for ds in args.datasets.split(","):
        folder = work.profile_dir(args.profile, ds)
        encoded = sorted(p for p in folder.iterdir() if p.name.startswith("enc_"))
        # the encodings were written without the release audit (bench_tradeoff --no-audit); code older than the
        # library gate has no allow_unaudited keyword and no gate to pass
        # (linkage.link.link_extracts is a lazy wrapper with *args: read the signature of the function it calls)
        target = getattr(importlib.import_module("linkage.link.job"), "link_extracts", link_extracts) \
            if importlib.util.find_spec("linkage.link.job") else link_extracts
        gate = {"allow_unaudited": True} if "allow_unaudited" in inspect.signature(target).parameters else {}
        link_extracts(encoded, folder / args.out, work.link_config, quiet=True, **gate)
        metrics = evaluate_link(folder / args.out, work.truth(ds), work.key_file)["pairwise"]
        results[ds] = {k: metrics[k] for k in ("precision", "recall", "f1")}
        print(ds, results[ds], flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
