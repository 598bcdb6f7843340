"""linkage evaluate on a hand-made crosswalk whose metrics are worked out by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from linkage.cli import app
from linkage.errors import LinkageInputError, ManifestMismatchError
from linkage.keys import generate_key, key_check_value, record_id, write_key_file
from linkage.link import evaluate_link

PROJECT = "test-project"
# Truth: person A holds s1:a1, s2:a2, s2:a3; person B holds s1:b1, s2:b2; person C holds s1:c1.
TRUTH = [("s1", "a1", "A"), ("s2", "a2", "A"), ("s2", "a3", "A"), ("s1", "b1", "B"), ("s2", "b2", "B"),
         ("s1", "c1", "C")]


def make_link(tmp_path: Path, clusters: dict[str, list[tuple[str, str]]]) -> tuple[Path, Path, Path]:
    key = generate_key()
    write_key_file(tmp_path / "key", key)
    link = tmp_path / "link"
    link.mkdir()
    rows = [{"person_id": pid, "source": s, "record_id": record_id(key, PROJECT, s, lid)}
            for pid, members in clusters.items() for s, lid in members]
    pd.DataFrame(rows).to_parquet(link / "crosswalk.parquet", index=False)
    (link / "manifest.json").write_text(json.dumps({
        "kind": "link", "tool_version": "test", "project_id": PROJECT, "kcv": key_check_value(key),
        "inputs": [{"source": "s1", "files": {}}, {"source": "s2", "files": {}}]}))
    pd.DataFrame(TRUTH, columns=["source", "local_id", "person_id"]).to_csv(tmp_path / "truth.csv", index=False)
    return link, tmp_path / "truth.csv", tmp_path / "key"


def test_metrics_on_a_hand_made_crosswalk(tmp_path):
    # Predicted: {a1, a2}, {a3}, {b1, b2, c1}.
    link, truth, key = make_link(tmp_path, {"P1": [("s1", "a1"), ("s2", "a2")], "P2": [("s2", "a3")],
                                            "P3": [("s1", "b1"), ("s2", "b2"), ("s1", "c1")]})
    r = evaluate_link(link, truth, key)
    p = r["pairwise"]
    # True pairs: A has 3, B has 1 -> 4. Predicted pairs: 1 + 0 + 3 = 4. Correct: a1-a2 and b1-b2.
    assert (p["true_pairs"], p["predicted_pairs"], p["true_positives"]) == (4, 4, 2)
    assert (p["false_positives"], p["false_negatives"]) == (2, 2)
    assert p["precision"] == pytest.approx(0.5) and p["recall"] == pytest.approx(0.5)
    assert p["f1"] == pytest.approx(0.5)
    c = r["clusters"]
    assert (c["predicted_persons"], c["true_persons"], c["exactly_recovered"]) == (3, 3, 0)
    assert c["split_persons"] == 1 and c["merged_clusters"] == 1
    # B-cubed precision: records a1, a2, a3 are pure (1 each); b1, b2 share 2 of 3; c1 shares 1 of 3.
    assert c["bcubed_precision"] == pytest.approx((3 + 2 / 3 + 2 / 3 + 1 / 3) / 6, abs=1e-6)
    # B-cubed recall: a1, a2 find 2 of 3; a3 finds 1 of 3; b1, b2, c1 find their whole person.
    assert c["bcubed_recall"] == pytest.approx((2 / 3 + 2 / 3 + 1 / 3 + 3) / 6, abs=1e-6)
    assert r["coverage"]["evaluated_records"] == 6


def test_perfect_crosswalk_scores_one_and_cli_writes_json(tmp_path):
    link, truth, key = make_link(tmp_path, {"X": [("s1", "a1"), ("s2", "a2"), ("s2", "a3")],
                                            "Y": [("s1", "b1"), ("s2", "b2")], "Z": [("s1", "c1")]})
    out = tmp_path / "metrics.json"
    result = CliRunner().invoke(app, ["evaluate", "--link", str(link), "--truth", str(truth), "--key", str(key),
                                      "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "F1 1.0000" in result.output
    metrics = json.loads(out.read_text())
    assert metrics["pairwise"]["f1"] == 1.0 and metrics["clusters"]["exactly_recovered"] == 3


def test_wrong_key_is_refused_rather_than_scored_perfect(tmp_path):
    link, truth, _ = make_link(tmp_path, {"X": [("s1", "a1"), ("s2", "a2")]})
    other = tmp_path / "other.key"
    write_key_file(other, generate_key())
    with pytest.raises(ManifestMismatchError, match="check value"):
        evaluate_link(link, truth, other)


def test_truth_records_absent_from_the_crosswalk_count_as_unmatched(tmp_path):
    # The crosswalk lacks a3 and b2 (rejected by the encoder, say): scoring only the survivors would report
    # a perfect link; every truth record is scored, so A's pairs with a3 and B's pair are misses.
    link, truth, key = make_link(tmp_path, {"X": [("s1", "a1"), ("s2", "a2")], "Y": [("s1", "b1")],
                                            "Z": [("s1", "c1")]})
    r = evaluate_link(link, truth, key)
    p = r["pairwise"]
    assert (p["true_pairs"], p["true_positives"], p["false_negatives"]) == (4, 1, 3)
    assert p["precision"] == 1.0 and p["recall"] == pytest.approx(0.25)
    cov = r["coverage"]
    assert (cov["truth_records"], cov["truth_records_in_crosswalk"], cov["truth_records_not_in_crosswalk"]) == (6, 4, 2)
    assert cov["share_of_truth_in_crosswalk"] == pytest.approx(4 / 6, abs=1e-6)


def test_json_to_a_missing_folder_is_one_line_error(tmp_path):
    link, truth, key = make_link(tmp_path, {"X": [("s1", "a1"), ("s2", "a2"), ("s2", "a3")]})
    result = CliRunner().invoke(app, ["evaluate", "--link", str(link), "--truth", str(truth), "--key", str(key),
                                      "--json", str(tmp_path / "nope" / "m.json")])
    assert result.exit_code != 0
    assert "Traceback" not in result.output and "error: " in result.output and "does not exist" in result.output


def test_truth_without_required_column_is_refused(tmp_path):
    link, truth, key = make_link(tmp_path, {"X": [("s1", "a1")]})
    pd.DataFrame({"source": ["s1"], "local_id": ["a1"]}).to_csv(truth, index=False)
    with pytest.raises(LinkageInputError, match="person_id"):
        evaluate_link(link, truth, key)


@pytest.mark.parametrize("content, message", [
    (b"source,local_id,person_id\ns1,a1,\xff\xfe\n", "not UTF-8"),
    (b"source,local_id,person_id,person_id\ns1,a1,A,B\n", "appears twice"),
    (b"", "not a readable CSV"),
])
def test_bad_truth_files_are_one_line_errors(tmp_path, content, message):
    link, truth, key = make_link(tmp_path, {"X": [("s1", "a1")]})
    truth.write_bytes(content)
    with pytest.raises(LinkageInputError, match=message):
        evaluate_link(link, truth, key)
