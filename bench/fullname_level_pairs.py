"""Pairs that reach the unsalted full-name level ("same full name (no date or postcode in common)") of a link
folder, and how many are true matches: all kept pairs (pairs.parquet: match probability >= 0.01), and those at
or above the operating point's threshold.

    python bench/fullname_level_pairs.py LINK_DIR TRUTH_CSV KEY_FILE

A pair is at that level when its full-name comparison carries a term-frequency adjustment (no other full-name
level has one). Bench only: it reads the truth and the key.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from linkage.keys import read_key_file, record_id
from linkage.link.evaluate import read_truth


def level_pairs(link_dir: Path, truth_csv: Path, key_file: Path) -> dict[str, float]:
    manifest = json.loads((link_dir / "manifest.json").read_text())
    pairs = pd.read_parquet(link_dir / "pairs.parquet")
    if "mw_tf_adj_full_name" not in pairs:
        return {"pairs": 0}
    at = pairs[pairs.mw_tf_adj_full_name.fillna(0) != 0].copy()
    key = read_key_file(key_file)
    truth = read_truth(truth_csv)
    person = {record_id(key, manifest["project_id"], s, lid): p
              for s, lid, p in zip(truth.source, truth.local_id, truth.person_id, strict=True)}
    at["true"] = [person.get(a) is not None and person.get(a) == person.get(b)
                  for a, b in zip(at.record_id_l, at.record_id_r, strict=True)]
    threshold = float(manifest["operating_point"]["threshold"])
    linked = at[at.match_probability >= threshold]
    return {"pairs": len(at), "true": int(at["true"].sum()), "threshold": threshold,
            "linked": len(linked), "linked_true": int(linked["true"].sum()),
            "match_weight_min": round(float(at.match_weight.min()), 1) if len(at) else None,
            "match_weight_median_true": round(float(at[at["true"]].match_weight.median()), 1) if len(at) else None,
            "match_weight_max": round(float(at.match_weight.max()), 1) if len(at) else None,
            "training": manifest["training"].get("unsalted_full_name")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("link_dir", type=Path)
    parser.add_argument("truth_csv", type=Path)
    parser.add_argument("key_file", type=Path)
    args = parser.parse_args()
    print(json.dumps(level_pairs(args.link_dir, args.truth_csv, args.key_file), indent=2))


if __name__ == "__main__":
    main()
