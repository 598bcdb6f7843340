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
Token-list rules (``dob__del1``…) are exploded, as the link runs them.

With ``--link LINK_DIR`` (a `linkage link` output over the same extracts) the rules are the ones that link
ran (its manifest's blocking plan) and the F1 loss is split: true pairs never compared, compared but scored
under the link's threshold, and false positives (direct: scored above it; transitive: joined through other
records); for the missed true pairs it counts which tokens they share, and how many have evidence enough to
link (crude sum of the link's level weights >= the threshold's) if a rule had compared them.
"""

from __future__ import annotations

import argparse
import json
import re
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
from linkage.link.model import (  # noqa: E402
    DEFAULT_BLOCKING,
    exploded_rule_rows_sql,
    is_token_list,
    rule_label,
    usable_rules,
)
from linkage.link.tables import load_tokens_duckdb  # noqa: E402


def rule_sql(rule: BlockingRule) -> str:
    if isinstance(rule, list):
        return " AND ".join(f"l.{c} = r.{c}" for c in rule)
    return rule


def rule_side(rule: BlockingRule) -> str:
    """One side of the rule's join: the records, with token-list columns exploded (one row per token) as
    the link's blocking does (see linkage.link.model.to_splink_rule)."""
    if isinstance(rule, list) and any(is_token_list(c) for c in rule):
        return f"({exploded_rule_rows_sql('t', ['record_id', 'identity_id', 'source', *rule])})"
    return "t"


def measure(encoded: list[Path], truth_csv: Path, key_path: Path, rules: list[BlockingRule],
            link_dir: Path | None = None) -> dict:
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
            FROM {rule_side(rule)} l JOIN {rule_side(rule)} r ON ({rule_sql(rule)})
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
    out = {"extracts": [str(p) for p in encoded], "identities": con.execute("SELECT count(*) FROM t").fetchone()[0],
           "true_record_pairs": int(n_true), "blocked_record_pairs": con.execute("SELECT count(*) FROM hits")
           .fetchone()[0], "identity_pairs": sum(r["identity_pairs"] for r in per_rule),
           "true_pairs_blocked": int(found_any), "blocking_recall": round(found_any / max(n_true, 1), 4),
           "rules": per_rule}
    if link_dir is not None:
        out["loss"] = loss_split(con, link_dir, set(types))
    return out


# Evidence a missed true pair may share: token agreement on each field (lists: any shared token).
EVIDENCE = {
    "given_exact": "l.given_name__exact = r.given_name__exact", "given_alias": "list_has_any(l.given_name__alias, "
    "r.given_name__alias)", "given_del1": "list_has_any(l.given_name__del1, r.given_name__del1)",
    "given_phonetic": "l.given_name__phonetic = r.given_name__phonetic",
    "given_initial": "l.given_name__initial = r.given_name__initial",
    "surname_exact": "l.surname__exact = r.surname__exact", "surname_del1": "list_has_any(l.surname__del1, "
    "r.surname__del1)", "surname_phonetic": "l.surname__phonetic = r.surname__phonetic",
    "surname_initial": "l.surname__initial = r.surname__initial",
    "dob_exact": "l.dob__exact = r.dob__exact", "dob_del1": "list_has_any(l.dob__del1, r.dob__del1)",
    "dob_year": "l.dob__year = r.dob__year", "dob_md": "l.dob__md = r.dob__md", "dob_ym": "l.dob__ym = r.dob__ym",
    "postcode_exact": "l.postcode__exact = r.postcode__exact", "postcode_del1": "list_has_any(l.postcode__del1, "
    "r.postcode__del1)", "postcode_sector": "l.postcode__sector = r.postcode__sector",
    "postcode_district": "l.postcode__district = r.postcode__district", "sex": "l.sex__exact = r.sex__exact",
    "given_missing": "l.given_name__exact IS NULL OR r.given_name__exact IS NULL",
    "surname_missing": "l.surname__exact IS NULL OR r.surname__exact IS NULL",
    "dob_missing": "l.dob__del1 IS NULL OR r.dob__del1 IS NULL",
    "postcode_missing": "l.postcode__exact IS NULL OR r.postcode__exact IS NULL",
    # hardened profile: name composites with the date's tolerance salts / the full postcode
    "given_near_dob": "list_has_any(l.given_name__near_dob, r.given_name__near_dob)",
    "surname_near_dob": "list_has_any(l.surname__near_dob, r.surname__near_dob)",
    "given_pc": "l.given_name__exact_pc = r.given_name__exact_pc",
    "surname_pc": "l.surname__exact_pc = r.surname__exact_pc",
}


def _level_bits(model: dict) -> dict[str, dict[str, float]]:
    """log2(m/u) per comparison level label of a link's model.json."""
    import math

    out: dict[str, dict[str, float]] = {}
    for comp in model["comparisons"]:
        for level in comp["comparison_levels"]:
            m, u = level.get("m_probability"), level.get("u_probability")
            if m and u:
                out.setdefault(comp["output_column_name"], {})[level.get("label_for_charts", "")] = math.log2(m / u)
    return out


def loss_split(con: duckdb.DuckDBPyConnection, link_dir: Path, cols: set[str]) -> dict:
    """Where the link's F1 goes (see module docstring); labels are used here only, never by the link."""
    import math

    manifest = json.loads((link_dir / "manifest.json").read_text())
    thr = float(manifest["operating_point"]["threshold"])
    q = con.execute
    q(f"""CREATE TABLE scored AS SELECT least(record_id_l, record_id_r) AS a, greatest(record_id_l, record_id_r) AS b,
          max(match_probability) AS p FROM read_parquet('{link_dir / "pairs.parquet"}') GROUP BY ALL""")
    q(f"CREATE TABLE cw AS SELECT record_id, person_id FROM read_parquet('{link_dir / 'crosswalk.parquet'}')")
    q("""CREATE TABLE pred AS SELECT least(l.record_id, r.record_id) AS a, greatest(l.record_id, r.record_id) AS b
         FROM cw l JOIN cw r ON l.person_id = r.person_id AND l.record_id < r.record_id""")
    true_split = dict(q(f"""SELECT CASE WHEN pred.a IS NOT NULL THEN 'linked' WHEN hits.a IS NULL THEN 'never compared'
        WHEN scored.p IS NULL THEN 'compared, p < pairs_min' WHEN scored.p < {thr} THEN 'compared, under threshold'
        ELSE 'over threshold, split by clustering' END, count(*) FROM true_pairs
        LEFT JOIN hits USING (a, b) LEFT JOIN scored USING (a, b) LEFT JOIN pred USING (a, b) GROUP BY 1""").fetchall())
    fp = dict(q(f"""SELECT CASE WHEN coalesce(scored.p, 0) >= {thr} THEN 'direct' ELSE 'transitive' END, count(*)
        FROM pred LEFT JOIN true_pairs USING (a, b) LEFT JOIN scored USING (a, b) WHERE true_pairs.a IS NULL
        GROUP BY 1""").fetchall())
    ev = {k: v for k, v in EVIDENCE.items() if set(re.findall(r"[lr]\.(\w+)", v)) <= cols}
    # evidence on columns these extracts lack is false (the crude score below names every kind)
    sel = ", ".join(f"coalesce({v}, false) AS {k}" if k in ev else f"false AS {k}" for k, v in EVIDENCE.items())
    q(f"""CREATE TABLE missed AS SELECT {sel}, hits.a IS NOT NULL AS compared FROM true_pairs
          LEFT JOIN pred USING (a, b) LEFT JOIN hits USING (a, b)
          JOIN t l ON l.record_id = true_pairs.a JOIN t r ON r.record_id = true_pairs.b WHERE pred.a IS NULL""")
    shares = {k: q(f"SELECT round(avg({k}::INT), 3) FROM missed WHERE NOT compared").fetchone()[0] for k in ev}
    # Crude score of never-compared pairs from the link's own level weights (name del1 stands in for Bloom >= 0.8).
    bits = _level_bits(json.loads((link_dir / "model.json").read_text()))

    def w(comp: str, label_part: str) -> float:
        return next((v for k, v in bits.get(comp, {}).items() if label_part in k.lower()), 0.0)

    crude = " + ".join([
        f"CASE WHEN given_missing THEN 0 WHEN given_exact THEN {w('given_name', 'exact')} WHEN given_alias THEN "
        f"{w('given_name', 'nickname')} WHEN given_del1 THEN {w('given_name', '0.8')} WHEN given_phonetic THEN "
        f"{w('given_name', 'phonetic')} ELSE {w('given_name', 'all other')} END",
        f"CASE WHEN surname_missing THEN 0 WHEN surname_exact THEN {w('surname', 'exact')} WHEN surname_del1 THEN "
        f"{w('surname', '0.8')} WHEN surname_phonetic THEN {w('surname', 'phonetic')} "
        f"ELSE {w('surname', 'all other')} END",
        f"CASE WHEN dob_missing THEN 0 WHEN dob_exact THEN {w('dob', 'exact')} WHEN dob_del1 THEN {w('dob', 'digit')} "
        f"WHEN dob_md THEN {w('dob', 'month and day')} ELSE {w('dob', 'all other')} END",
        f"CASE WHEN postcode_missing THEN 0 WHEN postcode_exact THEN {w('postcode', 'exact')} WHEN postcode_del1 THEN "
        f"{w('postcode', 'one edit')} ELSE {w('postcode', 'all other')} END",
        f"CASE WHEN sex THEN {w('sex', 'exact')} ELSE 0 END"]) if {"given_missing", "surname_missing", "dob_missing",
                                                                  "postcode_missing", "sex"} <= set(ev) else "0"
    prior = float(manifest["operating_point"]["prior"])
    need = math.log2(thr / (1 - thr)) - math.log2(prior / (1 - prior))
    linkable = q(f"SELECT count(*) FROM missed WHERE NOT compared AND {crude} >= {need}").fetchone()[0]
    result = {"threshold": thr, "true_pairs": true_split, "false_positives": fp,
              "never_compared_sharing": shares, "never_compared_with_evidence_to_link": int(linkable),
              "bits_needed": round(need, 2)}
    print(json.dumps(result, indent=1), file=sys.stderr)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("encoded", nargs="+", type=Path)
    ap.add_argument("--truth", type=Path, required=True)
    ap.add_argument("--key", type=Path, required=True)
    ap.add_argument("--rules", type=Path, help="YAML list of blocking rules (default: DEFAULT_BLOCKING)")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--link", type=Path, help="link folder: use its blocking plan and split its F1 loss")
    args = ap.parse_args()
    rules = yaml.safe_load(args.rules.read_text()) if args.rules else DEFAULT_BLOCKING
    if args.link:
        plan = json.loads((args.link / "manifest.json").read_text())["blocking"]
        used = {row["rule"] for row in plan if row["used"]}
        cfg_rules = load_link_config().blocking_rules or DEFAULT_BLOCKING
        rules = [r for r in cfg_rules if rule_label(r) in used]
    result = measure(args.encoded, args.truth, args.key, rules, args.link)
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
