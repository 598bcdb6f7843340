"""Score a link folder against known truth (synthetic data, benchmarks): pairwise and cluster metrics.

Truth names people by (source, local id); the crosswalk names records by keyed pseudonym, so the key
is needed to join them. That makes evaluation a partner-side or test-bench task, never a VRN one.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pandas as pd

from linkage.errors import LinkageInputError
from linkage.keys import read_key_file, record_id

TRUTH_COLUMNS = ("source", "local_id", "person_id")


def _pairs(sizes: pd.Series) -> int:
    return int((sizes * (sizes - 1) // 2).sum())


def _ratio(num: float, den: float) -> float:
    return round(num / den, 6) if den else 1.0


def pairwise_and_cluster_metrics(predicted: pd.Series, truth: pd.Series) -> dict[str, Any]:
    """Metrics for two labelings of the same records (index = record id, value = person label)."""
    df = pd.DataFrame({"pred": predicted, "true": truth})
    tp = _pairs(df.groupby(["pred", "true"]).size())
    pred_pairs = _pairs(df.groupby("pred").size())
    true_pairs = _pairs(df.groupby("true").size())
    precision, recall = _ratio(tp, pred_pairs), _ratio(tp, true_pairs)
    f1 = round(2 * precision * recall / (precision + recall), 6) if precision + recall else 0.0

    pred_sets = df.groupby("pred").apply(lambda g: frozenset(g.index), include_groups=False)
    true_sets = df.groupby("true").apply(lambda g: frozenset(g.index), include_groups=False)
    exact = len(set(pred_sets) & set(true_sets))
    # B-cubed: per record, overlap of its predicted and true clusters, relative to each.
    overlap = df.groupby(["pred", "true"]).size().rename("overlap").reset_index()
    per_record = df.reset_index().merge(overlap, on=["pred", "true"])
    pred_size = df.groupby("pred").size()
    true_size = df.groupby("true").size()
    b3_p = float((per_record.overlap / per_record.pred.map(pred_size)).mean()) if len(df) else 1.0
    b3_r = float((per_record.overlap / per_record.true.map(true_size)).mean()) if len(df) else 1.0
    return {
        "records": int(len(df)),
        "pairwise": {"true_positives": tp, "predicted_pairs": pred_pairs, "true_pairs": true_pairs,
                     "false_positives": pred_pairs - tp, "false_negatives": true_pairs - tp,
                     "precision": precision, "recall": recall, "f1": f1},
        "clusters": {"predicted_persons": int(len(pred_sets)), "true_persons": int(len(true_sets)),
                     "exactly_recovered": exact,
                     "precision": _ratio(exact, len(pred_sets)), "recall": _ratio(exact, len(true_sets)),
                     "split_persons": int((df.groupby("true")["pred"].nunique() > 1).sum()),
                     "merged_clusters": int((df.groupby("pred")["true"].nunique() > 1).sum()),
                     "bcubed_precision": round(b3_p, 6), "bcubed_recall": round(b3_r, 6)},
    }


def co_clustered_pairs(link_dir: str | Path) -> set[tuple[str, str]]:
    """Every pair of records a link folder places in one person: its partition, compared without labels
    (person ids differ between runs and backends; the pairs do not)."""
    crosswalk = pd.read_parquet(Path(link_dir) / "crosswalk.parquet", columns=["person_id", "record_id"])
    pairs: set[tuple[str, str]] = set()
    for _, group in crosswalk.groupby("person_id"):
        pairs.update(itertools.combinations(sorted(group.record_id), 2))
    return pairs


def read_truth(truth_csv: str | Path) -> pd.DataFrame:
    path = Path(truth_csv)
    if not path.is_file():
        raise LinkageInputError("truth file not found", file=str(path))
    truth = pd.read_csv(path, dtype=str, keep_default_na=False)
    truth.columns = [c.strip() for c in truth.columns]
    for col in TRUTH_COLUMNS:
        if col not in truth.columns:
            raise LinkageInputError("truth file lacks a required column", file=str(path), field=col)
    for col in TRUTH_COLUMNS:
        truth[col] = truth[col].str.strip()
    return truth[list(TRUTH_COLUMNS)].drop_duplicates(["source", "local_id"])


def evaluate_link(link_dir: str | Path, truth_csv: str | Path, key_path: str | Path | bytes) -> dict[str, Any]:
    """Pairwise precision/recall/F1 and cluster metrics of a link folder against a truth CSV.

    ``key_path`` is the key file, or the key itself as bytes.
    """
    link = Path(link_dir)
    manifest_path, crosswalk_path = link / "manifest.json", link / "crosswalk.parquet"
    for p in (manifest_path, crosswalk_path):
        if not p.is_file():
            raise LinkageInputError("not found; is this a link folder?", file=str(p))
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    project_id = manifest["project_id"]
    sources = [i["source"] for i in manifest["inputs"]]
    key = key_path if isinstance(key_path, bytes) else read_key_file(key_path)
    crosswalk = pd.read_parquet(crosswalk_path, columns=["person_id", "source", "record_id"])

    truth = read_truth(truth_csv)
    truth = truth[truth.source.isin(sources)].copy()
    truth["record_id"] = [record_id(key, project_id, s, lid) for s, lid in zip(truth.source, truth.local_id,
                                                                               strict=True)]
    merged = crosswalk.merge(truth[["record_id", "person_id"]].rename(columns={"person_id": "true_person"}),
                             on="record_id", how="inner").set_index("record_id")
    if merged.empty:
        # Perfect-looking scores over nothing would mislead: say what is wrong instead.
        raise LinkageInputError("no crosswalk record matches the truth file; wrong key, wrong truth file, or "
                                "extracts encoded by a different encoder version", file=str(truth_csv))
    result = pairwise_and_cluster_metrics(merged.person_id, merged.true_person)
    result["coverage"] = {"crosswalk_records": int(len(crosswalk)), "truth_records": int(len(truth)),
                          "evaluated_records": int(len(merged)),
                          "crosswalk_records_without_truth": int(len(crosswalk) - len(merged)),
                          "truth_records_not_in_crosswalk": int(len(truth) - len(merged))}
    result["link_dir"] = str(link)
    result["sources"] = sources
    return result
