"""Blocking budget: pairs each prediction blocking rule generates and the true pairs it alone finds.

Scoring time and memory are proportional to the pairs the blocking rules let through; recall can never
exceed the share of true pairs some rule lets through. This measures both on encoded synthetic extracts
with their truth file, for the shipped rules (linkage.link.model.DEFAULT_BLOCKING) or for a candidate list
in a YAML file (the `blocking_rules:` syntax of configs/linkage.yaml), so a rule can be dropped or tightened
on evidence:

    python bench/bench_blocking.py ENC_DIR... --truth raw/truth.csv --key key [--rules candidate.yaml]
        [--json bench/results/blocking.json]

Per rule: identity-row pairs, distinct record pairs, true record pairs it finds, and true record pairs no
other rule in the list finds ("only"). A rule with many pairs and few "only" pairs is the one to tighten.
Record pairs follow the link's own pair filter (police deduplicated, one-person-per-id sources only linked).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import duckdb
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from linkage.keys import read_key_file, record_id  # noqa: E402
from linkage.link.checks import check_extracts  # noqa: E402
from linkage.link.config import BlockingRule, load_link_config  # noqa: E402
from linkage.link.evaluate import read_truth  # noqa: E402
from linkage.link.job import column_types, pair_filter, plan_link  # noqa: E402
from linkage.link.model import DEFAULT_BLOCKING, usable_rules  # noqa: E402
from linkage.link.tables import load_tokens_duckdb  # noqa: E402


def rule_sql(rule: BlockingRule) -> str:
    if isinstance(rule, list):
        return " AND ".join(f"l.{c} = r.{c}" for c in rule)
    return rule


def measure(encoded: list[Path], truth_csv: Path, key_path: Path, rules: list[BlockingRule]) -> dict:
    con = duckdb.connect()
    extracts = check_extracts(encoded)
    types = column_types(extracts)
    link_type, dedupe, _ = plan_link(extracts, load_link_config())
    tables = load_tokens_duckdb(con, extracts, types)
    rules = usable_rules(rules, set(types))
    needed = sorted({"record_id", "identity_id", "source"} | {c for c in types if not c.endswith("__bloom")})
    cols = ", ".join(needed)
    con.execute("CREATE TABLE t AS " + " UNION ALL ".join(f"SELECT {cols} FROM {tb}" for tb in tables))

    key = read_key_file(key_path)
    project_id = extracts[0].manifest["project_id"]
    truth = read_truth(truth_csv)
    truth = truth[truth.source.isin([ex.source for ex in extracts])].copy()
    truth["record_id"] = [record_id(key, project_id, s, lid) for s, lid in zip(truth.source, truth.local_id,
                                                                               strict=True)]
    con.register("truth_df", truth[["record_id", "source", "person_id"]])
    con.execute("CREATE TABLE truth AS SELECT * FROM truth_df")
    pairs_sql = pair_filter(link_type, dedupe)
    # True record pairs the link may find: same person, allowed by the link's own pair filter.
    con.execute(f"""CREATE TABLE true_pairs AS SELECT l.record_id AS a, r.record_id AS b FROM truth l JOIN truth r
                    ON l.person_id = r.person_id AND l.record_id < r.record_id {pairs_sql}""")
    n_true = con.execute("SELECT count(*) FROM true_pairs").fetchone()[0]

    per_rule = []
    for i, rule in enumerate(rules):
        t0 = time.perf_counter()
        # Identity rows ordered as Splink does (source, then id) so each unordered pair is counted once.
        con.execute(f"""CREATE TABLE r{i} AS
            SELECT least(l.record_id, r.record_id) AS a, greatest(l.record_id, r.record_id) AS b, count(*) AS n
            FROM t l JOIN t r ON ({rule_sql(rule)})
              AND (l.source || l.identity_id) < (r.source || r.identity_id) {pairs_sql}
            GROUP BY ALL""")
        ident, rec = con.execute(f"SELECT coalesce(sum(n), 0), count(*) FROM r{i}").fetchone()
        found = con.execute(f"SELECT count(*) FROM r{i} JOIN true_pairs USING (a, b)").fetchone()[0]
        per_rule.append({"rule": rule if isinstance(rule, str) else "+".join(rule), "identity_pairs": int(ident),
                         "record_pairs": int(rec), "true_found": int(found),
                         "seconds": round(time.perf_counter() - t0, 1)})
        print(f"  {per_rule[-1]['rule'][:70]:<70} {ident:>11,} {found:>8,}", file=sys.stderr)

    union = " UNION ALL ".join(f"SELECT a, b, {i} AS k FROM r{i}" for i in range(len(rules)))
    con.execute(f"CREATE TABLE hits AS SELECT a, b, list(DISTINCT k) AS ks FROM ({union}) GROUP BY a, b")
    found_any = con.execute("SELECT count(*) FROM hits JOIN true_pairs USING (a, b)").fetchone()[0]
    only = dict(con.execute("""SELECT ks[1], count(*) FROM hits JOIN true_pairs USING (a, b)
                               WHERE len(ks) = 1 GROUP BY 1""").fetchall())
    for i, row in enumerate(per_rule):
        row["true_only_this_rule"] = int(only.get(i, 0))
    return {"extracts": [str(p) for p in encoded], "identities": con.execute("SELECT count(*) FROM t").fetchone()[0],
            "true_record_pairs": int(n_true), "blocked_record_pairs": con.execute("SELECT count(*) FROM hits")
            .fetchone()[0], "identity_pairs": sum(r["identity_pairs"] for r in per_rule),
            "true_pairs_blocked": int(found_any), "blocking_recall": round(found_any / max(n_true, 1), 4),
            "rules": per_rule}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("encoded", nargs="+", type=Path)
    ap.add_argument("--truth", type=Path, required=True)
    ap.add_argument("--key", type=Path, required=True)
    ap.add_argument("--rules", type=Path, help="YAML list of blocking rules (default: DEFAULT_BLOCKING)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    rules = yaml.safe_load(args.rules.read_text()) if args.rules else DEFAULT_BLOCKING
    result = measure(args.encoded, args.truth, args.key, rules)
    result["rules_file"] = str(args.rules) if args.rules else "DEFAULT_BLOCKING"
    print(f"{'rule':<70} {'id pairs':>11} {'rec pairs':>10} {'true':>8} {'only':>6}")
    for r in result["rules"]:
        print(f"{r['rule'][:70]:<70} {r['identity_pairs']:>11,} {r['record_pairs']:>10,} {r['true_found']:>8,} "
              f"{r['true_only_this_rule']:>6,}")
    print(f"identity pairs {result['identity_pairs']:,}; record pairs {result['blocked_record_pairs']:,}; "
          f"true pairs blocked {result['true_pairs_blocked']:,} of {result['true_record_pairs']:,} "
          f"(blocking recall {result['blocking_recall']})")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
