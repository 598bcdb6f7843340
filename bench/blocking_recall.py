"""Blocking recall of true pairs and the true prior of a link (a benchmark tool: reads the truth and the key).

    python bench/blocking_recall.py /tmp/i15-ab link_new messy,febrl3,febrl4,synthetic [--profile shipped]

For each dataset of a bench_tradeoff.py --work folder: the comparable true pairs (across sources, or within a
deduplicated one, as ``linkage.link.threshold.comparable_pairs`` counts them), how many of them any of the link's
blocking rules (its manifest's ``blocking``) produced, the true prior (true pairs / comparable pairs) and the
link's estimated prior, blocking recall and expected true pairs (manifest ``operating_point``). The prior counts
identity pairs (a record with aliases has several identity rows), so the true prior does too.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
from tradeoff_work import TradeoffWork

from linkage.keys import read_key_file, record_id


def rule_pairs(rule: str) -> list[tuple[str, str]]:
    """(left column, right column) equalities of a blocking rule label ("a + b" or "l.a = r.b AND ...")."""
    if " = " in rule:
        return [(m.group(1), m.group(2)) for m in re.finditer(r"l\.(\w+)\s*=\s*r\.(\w+)", rule)]
    return [(c.strip(), c.strip()) for c in rule.split("+")]


def as_set(v: object) -> frozenset[str]:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return frozenset()
    if isinstance(v, (list, tuple, np.ndarray)):
        return frozenset(str(x) for x in v if x is not None)
    return frozenset([str(v)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("work", type=Path)
    ap.add_argument("link")
    ap.add_argument("datasets")
    ap.add_argument("--profile", default="shipped")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    work = TradeoffWork(args.work)
    key = read_key_file(work.key_file)
    out = {}
    for ds in args.datasets.split(","):
        folder = work.profile_dir(args.profile, ds)
        manifest = json.loads((folder / args.link / "manifest.json").read_text())
        rules = [rule_pairs(r["rule"]) for r in manifest["blocking"] if r.get("used", True)]
        cols = sorted({c for r in rules for pair in r for c in pair})
        frames = []
        for enc in sorted(p for p in folder.iterdir() if p.name.startswith("enc_")):
            em = json.loads((enc / "manifest.json").read_text())
            t = pd.read_parquet(enc / "tokens.parquet")
            t = t.reindex(columns=["record_id", *cols])  # a column this source lacks agrees with nothing
            t["source"] = em.get("source") or enc.name[4:]
            frames.append(t)
        tok = pd.concat(frames, ignore_index=True)
        project_id = manifest["project_id"]
        by_record: dict[str, list[dict[str, frozenset[str]]]] = {}
        for row in tok.itertuples(index=False):
            d = row._asdict()
            by_record.setdefault(d["record_id"], []).append({c: as_set(d[c]) for c in cols})
        source_of = dict(zip(tok.record_id, tok.source, strict=True))
        truth = pd.read_csv(work.truth(ds), dtype=str)
        truth["rid"] = [record_id(key, project_id, s, lid) for s, lid in zip(truth.source, truth.local_id,
                                                                               strict=True)]
        dedupe = set(manifest.get("deduplicated_sources") or [])
        single = len(set(source_of.values())) == 1
        n_true = n_blocked = id_true = id_blocked = 0
        for _, g in truth[truth.rid.isin(by_record)].groupby("person_id"):
            for a, b in itertools.combinations(sorted(set(g.rid)), 2):
                sa, sb = source_of[a], source_of[b]
                if sa == sb and not single and sa not in dedupe:
                    continue
                n_true += 1
                # identity pairs (a record with aliases has several): the unit the prior counts
                hits = [any(all(x[cl] & y[cr] for cl, cr in r) or all(y[cl] & x[cr] for cl, cr in r) for r in rules)
                        for x in by_record[a] for y in by_record[b]]
                n_blocked += any(hits)
                id_true += len(hits)
                id_blocked += sum(hits)
        op = manifest["operating_point"]
        n = op["comparable_pairs"]
        res = {"true_pairs": n_true, "blocked_true_pairs": n_blocked, "blocking_recall": round(n_blocked / n_true, 4),
               "true_identity_pairs": id_true, "identity_blocking_recall": round(id_blocked / id_true, 4),
               "estimated_blocking_recall": op.get("blocking_recall"),
               "comparable_pairs": n, "true_prior": id_true / n, "estimated_prior": op["prior"],
               "expected_true_pairs": op.get("expected_true_pairs"),
               "expected_true_unblocked": op.get("expected_true_unblocked")}
        out[ds] = res
        print(ds, json.dumps(res), flush=True)
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
