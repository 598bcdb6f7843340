"""Score a link folder against known truth (synthetic data, benchmarks): pairwise and cluster metrics.

Truth names people by (source, local id); the crosswalk names records by keyed pseudonym, so the key
is needed to join them. That makes evaluation a partner-side or test-bench task, never a VRN one.
"""

from __future__ import annotations

import csv
import itertools
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

    pred_sets = {frozenset(group.index) for _, group in df.groupby("pred")}
    true_sets = {frozenset(group.index) for _, group in df.groupby("true")}
    exact = len(pred_sets & true_sets)
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
    """The truth CSV (source, local_id, person_id), one row per record; one-line errors naming the file."""
    path = Path(truth_csv)
    if not path.is_file():
        raise LinkageInputError("truth file not found", file=str(path))
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            header = [h.strip() for h in next(csv.reader(handle), [])]
        truth = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    except UnicodeDecodeError:
        raise LinkageInputError("truth file is not UTF-8 text", file=str(path)) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError, csv.Error):
        raise LinkageInputError("truth file is not a readable CSV (source, local_id, person_id)",
                                file=str(path)) from None
    if len(set(header)) != len(header):
        raise LinkageInputError("a column name appears twice in the header", file=str(path), row=0)
    truth.columns = header
    for col in TRUTH_COLUMNS:
        if col not in truth.columns:
            raise LinkageInputError("truth file lacks a required column", file=str(path), field=col)
    for col in TRUTH_COLUMNS:
        truth[col] = truth[col].str.strip()
    return truth[list(TRUTH_COLUMNS)].drop_duplicates(["source", "local_id"])


def evaluate_link(link_dir: str | Path, truth_csv: str | Path, key_path: str | Path | bytes) -> dict[str, Any]:
    """Pairwise precision/recall/F1 and cluster metrics of a link folder against a truth CSV.

    Every truth record of the linked sources is scored. A truth record absent from the crosswalk (rejected
    by its partner's encoder, or never linked) counts as a person of its own: its true pairs are misses.
    Scoring only the records that reached the crosswalk would report the accuracy of the survivors.
    ``coverage`` says how many truth records reached the crosswalk. ``key_path`` is the key file, or the key
    itself as bytes.
    """
    from linkage.contracts import read_link_output

    key = key_path if isinstance(key_path, bytes) else read_key_file(key_path)
    link = read_link_output(link_dir, key=key)  # refuses a key other than the extracts' (KCV)
    project_id = link.manifest.project_id
    sources = link.manifest.sources()
    try:
        crosswalk = pd.read_parquet(link.crosswalk_path, columns=["person_id", "source", "record_id"])
    except Exception:  # pyarrow raises several types for damaged files
        raise LinkageInputError("not a readable Parquet file", file=str(link.crosswalk_path)) from None

    truth = read_truth(truth_csv)
    truth = truth[truth.source.isin(sources)].copy()
    if truth.empty:
        raise LinkageInputError(f"no truth record belongs to a linked source ({', '.join(sources)})",
                                file=str(truth_csv), field="source")
    truth["record_id"] = [record_id(key, project_id, s, lid) for s, lid in zip(truth.source, truth.local_id,
                                                                               strict=True)]
    truth = truth.drop_duplicates("record_id")
    merged = truth[["record_id", "person_id"]].rename(columns={"person_id": "true_person"}).merge(
        crosswalk[["record_id", "person_id"]].drop_duplicates("record_id"), on="record_id", how="left")
    absent = merged.person_id.isna()
    if absent.all():
        # Perfect-looking scores over nothing would mislead: say what is wrong instead.
        raise LinkageInputError("no crosswalk record matches the truth file; wrong truth file, or extracts "
                                "encoded by a different encoder version", file=str(truth_csv))
    # Records the crosswalk lacks are unmatched: each is its own predicted person.
    merged.loc[absent, "person_id"] = "unmatched:" + merged.loc[absent, "record_id"]
    merged = merged.set_index("record_id")
    result = pairwise_and_cluster_metrics(merged.person_id, merged.true_person)
    in_crosswalk = int((~absent).sum())
    result["coverage"] = {"truth_records": int(len(truth)), "evaluated_records": int(len(merged)),
                          "truth_records_in_crosswalk": in_crosswalk,
                          "truth_records_not_in_crosswalk": int(absent.sum()),
                          "share_of_truth_in_crosswalk": _ratio(in_crosswalk, len(truth)),
                          "crosswalk_records": int(len(crosswalk)),
                          "crosswalk_records_without_truth": int((~crosswalk.record_id.isin(truth.record_id)).sum())}
    result["link_dir"] = str(link.path)
    result["sources"] = sources
    return result
