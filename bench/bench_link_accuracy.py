"""Linkage accuracy and time: (a) plain Splink on clear identifiers vs (b) `linkage link` on encoded extracts.

(b) runs the shipped configs (configs/partners/*.yaml, configs/linkage.yaml) with no per-dataset setting:
the threshold is chosen without labels (linkage.link.threshold). (a) is plain Splink as a competent user
runs it: the same cleaned identifiers (the encoder's own normalisation), the same budgeted blocking rules
(incl. each single field where affordable, on clear values), Splink's comparison library on clear values
(Damerau-Levenshtein, Jaro-Winkler, DateOfBirthComparison, postcode edit distance), prior from an exact
full-name + DOB rule at recall 0.7, u from 1e6 random pairs, EM blocked on DOB and on full name, Splink's
one-to-one clustering between duplicate-free sources (connected components otherwise) at 0.5. (a) is also
clustered at 0.99, 0.1, 0.3, 0.7 and 0.9, and the table shows its best F1 over those (a threshold chosen
with the labels, which no user has) beside its 0.5 result.

Datasets: FEBRL4 (two files, core identifiers), FEBRL3 (one file, deduplication), synthetic three-partner
data (`linkage synth`) and the messy profile (`linkage synth --profile messy`: one deduplication file with
nicknames, typos, DOB digit typos incl. non-calendar dates, 20% missing per field). Reads
/work/shared/data/febrl (bench only; tests never do).

    python bench/bench_link_accuracy.py --people 100000 --messy-people 20000 --json bench/results/link_accuracy.json

Per dataset it also reports (b)'s blocking recall over the rules the link ran, per rule (true pairs found,
and found by no other rule), from bench/bench_blocking.py, outside the timed link. ``--memory-limit`` caps
DuckDB's memory in (a) and (b) alike (a resource cap for a shared host, not an accuracy setting).

Link time = (a) from registering the data in Splink to its first clustered persons; (b) the whole
`link_extracts` call (checks, load, train, score, operating point, cluster, write outputs and report).
Encoding time is reported apart.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import time
from pathlib import Path

import duckdb
import jellyfish
import numpy as np
import pandas as pd
import pyarrow as pa
import splink.comparison_level_library as cll
import splink.comparison_library as cl
from splink import Linker, SettingsCreator
from splink.internals.duckdb.database_api import DuckDBAPI

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from linkage.config import load_partner_config  # noqa: E402
from linkage.encode import encode_extract  # noqa: E402
from linkage.encode.identifiers import IdentifierEncoder  # noqa: E402
from linkage.encode.reader import iter_chunks  # noqa: E402
from linkage.keys import generate_key  # noqa: E402
from linkage.link import evaluate_link, link_extracts  # noqa: E402
from linkage.link.cluster import assign_person_ids, build_record_graph, cluster_records, run_sql  # noqa: E402
from linkage.link.config import LinkConfig, load_link_config  # noqa: E402
from linkage.link.evaluate import pairwise_and_cluster_metrics  # noqa: E402
from linkage.link.model import plan_blocking, to_splink_rule, usable_rules  # noqa: E402

FEBRL = Path("/work/shared/data/febrl")
PARTNERS = ROOT / "configs" / "partners"
# Plain Splink as a competent user runs it (Splink's tutorials): prior from an exact full-name + DOB rule
# at recall 0.7, EM blocked on DOB and on full name, threshold 0.5 (also scored at 0.99, its best on large
# synthetic data; the table keeps the better of the two). (b) runs the shipped configs/linkage.yaml.
PLAIN_RECIPE = {"training.em_rules": [["dob__exact"], ["given_name__exact", "surname__exact"]],
                "clustering.threshold_match_probability": 0.5}
PLAIN_THRESHOLDS = (0.5, 0.99, 0.1, 0.3, 0.7, 0.9)


def dataset_config(overrides: dict) -> LinkConfig:
    """The shipped configs/linkage.yaml with a dataset's overrides (dotted names) applied."""
    cfg = load_link_config()
    for dotted, value in overrides.items():
        target = cfg
        *path, name = dotted.split(".")
        for part in path:
            target = getattr(target, part)
        setattr(target, name, value)
    return cfg


# --- (a) plain Splink on clear, cleaned identifiers ---------------------------------------------------

def clear_frame(config_path: Path, raw: Path, source: str) -> pd.DataFrame:
    """Clean a raw extract with the encoder's own normalisation; one row per distinct identifier set."""
    cfg = load_partner_config(config_path)
    encoder = IdentifierEncoder(cfg, b"\0" * 32)
    needed = list(dict.fromkeys([cfg.local_id] + [c for cols in cfg.identifiers.columns().values() for c in cols]))
    frames = []
    for chunk in iter_chunks(raw, cfg.input, needed, cfg.chunk_rows):
        clean, problems = encoder.clean(chunk)
        reject = np.zeros(chunk.num_rows, dtype=bool)
        for mask, _col, _reason, action in problems:
            if action == "reject":
                reject |= mask
        df = pd.DataFrame({k: pa.array(v).to_pandas() for k, v in clean.items()})
        df["local_id"] = chunk.column(cfg.local_id).to_pandas().astype(str).str.strip()
        frames.append(df[~reject])
    df = pd.concat(frames, ignore_index=True)
    given = df["given"].str.split().str[0] if "given" in df else None
    out = pd.DataFrame({"local_id": df.local_id, "source": source})
    out["given_name__exact"] = given
    out["surname__exact"] = df["surname"].str.replace(" ", "", regex=False) if "surname" in df else None
    for field in ("given_name", "surname"):
        v = out[f"{field}__exact"]
        out[f"{field}__initial"] = v.str[:1]
        out[f"{field}__phonetic"] = v.map(lambda x: jellyfish.metaphone(x) if isinstance(x, str) else None)
    out["name__given_shared"], out["name__surname_shared"] = out.given_name__exact, out.surname__exact
    dob = df["dob"] if "dob" in df else pd.Series(None, index=df.index, dtype=object)
    out["dob__exact"], out["dob__year"] = dob, dob.str[:4]
    out["dob__ym"], out["dob__md"] = dob.str[:6], dob.str[4:]
    out["dob__swap"] = dob.map(lambda d: d[:4] + d[6:8] + d[4:6] if isinstance(d, str) and d[4:6] != d[6:8]
                               and int(d[6:8]) <= 12 else None)
    out["postcode__exact"] = df.get("pc_full")
    out["postcode__sector"], out["postcode__district"] = df.get("pc_sector"), df.get("pc_district")
    for col, name in (("sex", "sex__exact"), ("upn", "upn__exact"), ("nhs", "nhs_number__exact")):
        out[name] = df[col] if col in df else None
    out = out.drop_duplicates().reset_index(drop=True)
    out["record_id"] = source + "|" + out.local_id
    out["identity_id"] = out.record_id + "-" + out.groupby("record_id").cumcount().astype(str)
    return out.drop(columns=["local_id"])


def plain_comparisons(cols: set[str]) -> list:
    def name(col: str, out: str) -> cl.CustomComparison:
        return cl.CustomComparison(comparison_levels=[
            cll.NullLevel(col), cll.ExactMatchLevel(col, term_frequency_adjustments=True),
            cll.DamerauLevenshteinLevel(col, 1), cll.JaroWinklerLevel(col, 0.9), cll.JaroWinklerLevel(col, 0.8),
            cll.ElseLevel()], output_column_name=out)

    comps = [name("given_name__exact", "given_name"), name("surname__exact", "surname"),
             cl.DateOfBirthComparison("dob__exact", input_is_string=True, datetime_format="%Y%m%d")]
    pc = "postcode__exact"
    comps.append(cl.CustomComparison(comparison_levels=[
        cll.NullLevel(pc), cll.ExactMatchLevel(pc, term_frequency_adjustments=True), cll.DamerauLevenshteinLevel(pc, 1),
        cll.ExactMatchLevel("postcode__sector"), cll.ExactMatchLevel("postcode__district"), cll.ElseLevel()],
        output_column_name="postcode"))
    for field in ("sex", "upn", "nhs_number"):
        col = f"{field}__exact"
        if col in cols:
            comps.append(cl.CustomComparison(comparison_levels=[cll.NullLevel(col), cll.ExactMatchLevel(col),
                                                                cll.ElseLevel()], output_column_name=field))
    return comps


def plain_link(frames: list[pd.DataFrame], duplicate_free: list[str],
               cfg: LinkConfig) -> tuple[dict[float, pd.Series], float]:
    """Plain Splink with its own recipe; returns ({threshold: person label per record_id}, seconds to the
    first clustering)."""
    t0 = time.perf_counter()
    con = duckdb.connect()
    if cfg.backend.kind == "duckdb" and cfg.backend.memory_limit:
        con.execute(f"SET memory_limit = '{cfg.backend.memory_limit}'")
    db = DuckDBAPI(connection=con)
    # Columns every frame has (all None where a source lacks the field).
    cols = set().union(*(f.columns for f in frames))
    present = {c for c in cols if any(f[c].notna().any() for f in frames if c in f)}
    frames = [f.reindex(columns=sorted(cols)) for f in frames]
    sources = [f.source.iloc[0] for f in frames]
    inputs = [db.register(f, dataset_display_name=s) for f, s in zip(frames, sources, strict=True)]
    # The same budgeted rule choice as (b): clear values are equal exactly where their tokens are.
    con.register("_all_clear", pd.concat(frames, ignore_index=True))
    rules, _ = plan_blocking(con, "_all_clear", present, cfg)
    dedupe = [s for s in sources if s not in duplicate_free]
    link_type = "dedupe_only" if len(frames) == 1 else ("link_and_dedupe" if dedupe else "link_only")
    extra = "" if link_type == "link_only" else " AND l.record_id <> r.record_id"
    if link_type == "link_and_dedupe":
        extra += " AND (l.source <> r.source OR l.source IN ({}))".format(", ".join(f"'{s}'" for s in dedupe))
    settings = SettingsCreator(link_type=link_type, unique_id_column_name="identity_id",
                               comparisons=plain_comparisons(present),
                               blocking_rules_to_generate_predictions=[to_splink_rule(r, extra) for r in rules],
                               additional_columns_to_retain=["record_id", "source"], retain_matching_columns=False)
    linker = Linker(inputs, settings, log_level=logging.ERROR)
    t = cfg.training
    linker.training.estimate_probability_two_random_records_match(
        [to_splink_rule(r) for r in usable_rules(t.prior_rules, present)], recall=t.prior_recall)
    linker.training.estimate_u_using_random_sampling(
        max_pairs=t.u_max_pairs, seed=t.seed, min_count_per_level=t.u_min_count_per_level,
        num_chunks=t.u_num_chunks)
    for rule in usable_rules(t.em_rules, present):
        linker.training.estimate_parameters_using_expectation_maximisation(to_splink_rule(rule),
                                                                           max_pairs=t.em_max_pairs)
    pred = linker.inference.predict(threshold_match_probability=cfg.pairs_min_match_probability)
    run_sql(con, f"CREATE TABLE _pairs AS SELECT record_id_l, record_id_r, match_probability "
                 f"FROM {pred.physical_name}")
    run_sql(con, "CREATE TABLE _records AS SELECT DISTINCT record_id, source FROM ("
            + " UNION ALL ".join(f"SELECT record_id, source FROM {s.physical_name}" for s in inputs) + ")")
    aliases = {s: f"s{i}" for i, s in enumerate(sources)}
    build_record_graph(con, "_pairs", "_records", aliases)
    labels, seconds = {}, 0.0
    for threshold in PLAIN_THRESHOLDS:
        settings = cfg.clustering.model_copy(update={"threshold_match_probability": threshold,
                                                     "split_oversized": False, "one_to_one_posteriors": False})
        cluster_records(con, db, settings, [aliases[s] for s in duplicate_free])
        assign_person_ids(con, "_records")
        labels[threshold] = con.execute("SELECT record_id, person_id FROM _crosswalk").df().set_index(
            "record_id").person_id
        seconds = seconds or time.perf_counter() - t0
    con.close()
    return labels, seconds


# --- datasets --------------------------------------------------------------------------------------

def febrl_truth(files: dict[str, Path], out: Path) -> Path:
    rows = []
    for source, path in files.items():
        ids = pd.read_csv(path, dtype=str, skipinitialspace=True).rec_id.str.strip()
        rows += [(source, r, r.split("-")[1]) for r in ids]
    pd.DataFrame(rows, columns=["source", "local_id", "person_id"]).to_csv(out, index=False)
    return out


def datasets(work: Path, people: int, seed: int, wanted: list[str], messy_people: int = 20_000) -> list[dict]:
    out = []
    if "febrl4" in wanted:
        files = {"febrl4a": FEBRL / "dataset4a.csv", "febrl4b": FEBRL / "dataset4b.csv"}
        out.append({"name": "FEBRL4 (core 4 fields)", "inputs": [(PARTNERS / "febrl.yaml", p, s) for s, p in
                                                                  files.items()],
                    "truth": febrl_truth(files, work / "febrl4_truth.csv"), "duplicate_free": list(files),
                    "config": {}})
    if "febrl3" in wanted:
        files = {"febrl3": FEBRL / "dataset3.csv"}
        out.append({"name": "FEBRL3 (dedupe)", "inputs": [(PARTNERS / "febrl.yaml", files["febrl3"], "febrl3")],
                    "truth": febrl_truth(files, work / "febrl3_truth.csv"), "duplicate_free": [],
                    "config": {}})
    if "messy" in wanted:
        from linkage.synth.messy import generate_messy

        raw = work / f"messy_{messy_people}_{seed}"
        if not (raw / "truth.csv").is_file():
            shutil.rmtree(raw, ignore_errors=True)
            generate_messy(messy_people, seed, raw)
        out.append({"name": f"messy synthetic {messy_people:,} people (dedupe)",
                    "inputs": [(PARTNERS / "messy.yaml", raw / "people.csv", "messy")],
                    "truth": raw / "truth.csv", "duplicate_free": [], "config": {}})
    if "synth" in wanted:
        from linkage.synth import generate_extracts

        raw = work / f"synth_{people}_{seed}"
        if not (raw / "truth.csv").is_file():
            shutil.rmtree(raw, ignore_errors=True)
            generate_extracts(people, seed, raw, quiet=True)
        srcs = ("police", "education", "social_care")
        out.append({"name": f"synthetic {people:,} people (3 partners)",
                    "inputs": [(PARTNERS / f"{s}.yaml", raw / f"{s}.csv", s) for s in srcs],
                    "truth": raw / "truth.csv", "duplicate_free": ["education", "social_care"], "config": {}})
    return out


def run(work: Path, people: int, seed: int, wanted: list[str], messy_people: int = 20_000,
        memory_limit: str | None = None) -> list[dict]:
    work.mkdir(parents=True, exist_ok=True)
    key = generate_key()
    key_file = work / "bench.key"
    key_file.unlink(missing_ok=True)
    from linkage.keys import write_key_file

    write_key_file(key_file, key)
    results = []
    for ds in datasets(work, people, seed, wanted, messy_people):
        print(f"== {ds['name']}", file=sys.stderr, flush=True)
        truth = pd.read_csv(ds["truth"], dtype=str)
        truth_label = pd.Series(truth.person_id.values, index=truth.source + "|" + truth.local_id)
        # (a) plain Splink on clear values
        frames = [clear_frame(partner_cfg, raw, src) for partner_cfg, raw, src in ds["inputs"]]
        cfg = dataset_config(ds["config"])
        plain_cfg = dataset_config(PLAIN_RECIPE)
        for c in (cfg, plain_cfg):
            if memory_limit and c.backend.kind == "duckdb":
                c.backend.memory_limit = memory_limit
        labels_at, a_seconds = plain_link(frames, ds["duplicate_free"], plain_cfg)
        plain_at = {}
        for threshold, labels in labels_at.items():
            common = labels.index.intersection(truth_label.index)
            plain_at[threshold] = pairwise_and_cluster_metrics(labels.loc[common], truth_label.loc[common])
        best = max(plain_at, key=lambda t: plain_at[t]["pairwise"]["f1"])
        a = plain_at[best]
        # (b) this project on encoded extracts
        t0 = time.perf_counter()
        enc_dirs = []
        for partner_cfg, raw, src in ds["inputs"]:
            d = work / f"enc_{src}"
            shutil.rmtree(d, ignore_errors=True)
            encode_extract(partner_cfg, key, raw, d, source=src, quiet=True)
            enc_dirs.append(d)
        encode_seconds = time.perf_counter() - t0
        link_dir = work / f"link_{ds['name'].split()[0].lower()}"
        shutil.rmtree(link_dir, ignore_errors=True)
        t0 = time.perf_counter()
        manifest = link_extracts(enc_dirs, link_dir, cfg, quiet=True, allow_unaudited=True)  # encoded unaudited
        b_seconds = time.perf_counter() - t0
        b = evaluate_link(link_dir, ds["truth"], key_file)
        blocking = blocking_recall(enc_dirs, ds["truth"], key_file, manifest, cfg)
        results.append({"dataset": ds["name"], "records": int(sum(manifest["counts"]["records"].values())),
                        "overrides": ds["config"],
                        "plain": {**a["pairwise"], "seconds": round(a_seconds, 1), "threshold": best,
                                  "f1_by_threshold": {str(t): m["pairwise"]["f1"] for t, m in plain_at.items()}},
                        "encoded": {**b["pairwise"], "seconds": round(b_seconds, 1),
                                    "encode_seconds": round(encode_seconds, 1),
                                    "phases": manifest["timings_seconds"],
                                    "operating_point": {k: v for k, v in manifest["operating_point"].items()
                                                        if k != "bayes_factor_histogram"}},
                        "blocking": blocking})
        r = results[-1]
        print(f"   plain   P {r['plain']['precision']:.4f} R {r['plain']['recall']:.4f} F1 {r['plain']['f1']:.4f} "
              f"{r['plain']['seconds']}s\n   encoded P {r['encoded']['precision']:.4f} R {r['encoded']['recall']:.4f} "
              f"F1 {r['encoded']['f1']:.4f} {r['encoded']['seconds']}s (encode {r['encoded']['encode_seconds']}s)\n"
              f"   plain F1 by threshold {r['plain']['f1_by_threshold']}; encoded threshold "
              f"{manifest['operating_point']['threshold']:.4f} prior {manifest['operating_point']['prior']:.3g} "
              f"(rules {manifest['operating_point']['rule_prior']:.3g}); blocking recall "
              f"{blocking['blocking_recall']} ({blocking['rules_run']} rules)",
              file=sys.stderr, flush=True)
    return results


def blocking_recall(enc_dirs: list[Path], truth: Path, key_file: Path, manifest: dict, cfg: LinkConfig) -> dict:
    """Blocking recall of the rules the link ran (its manifest's plan), per rule (bench/bench_blocking.py)."""
    sys.path.insert(0, str(ROOT / "bench"))
    from bench_blocking import measure

    from linkage.link.model import DEFAULT_BLOCKING, rule_label

    used = {row["rule"] for row in manifest["blocking"] if row["used"]}
    rules = [r for r in cfg.blocking_rules or DEFAULT_BLOCKING if rule_label(r) in used]
    m = measure(enc_dirs, truth, key_file, rules)
    return {"rules_run": len(rules), "true_record_pairs": m["true_record_pairs"],
            "blocking_recall": m["blocking_recall"], "identity_pairs": m["identity_pairs"],
            "per_rule": [{k: r[k] for k in ("rule", "identity_pairs", "true_found", "true_only_this_rule")}
                         for r in m["rules"]]}


def markdown(results: list[dict]) -> str:
    lines = ["| dataset | records | plain Splink F1 at 0.5 | plain Splink best F1 (threshold chosen with labels) | "
             "encoded P / R / F1 (auto threshold) | plain link s | encoded link s | ratio | blocking recall |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        a, b = r["plain"], r["encoded"]
        at_half = a["f1_by_threshold"].get("0.5")
        lines.append(f"| {r['dataset']} | {r['records']:,} | {at_half:.4f} | {a['f1']:.4f} (at {a['threshold']}) | "
                     f"{b['precision']:.4f} / {b['recall']:.4f} / {b['f1']:.4f} "
                     f"(at {b['operating_point']['threshold']:.3g}) | {a['seconds']} | {b['seconds']} | "
                     f"{b['seconds'] / max(a['seconds'], 1e-9):.2f} | "
                     f"{r.get('blocking', {}).get('blocking_recall', float('nan')):.4f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--datasets", default="febrl4,febrl3,synth,messy")
    parser.add_argument("--messy-people", type=int, default=20_000,
                        help="people in the messy dedupe set (~2.5 records each; 20,000 -> ~50k records)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/linkage-bench-link"))
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--memory-limit", default=None, help="DuckDB memory cap for (a) and (b), e.g. 3GB")
    parser.add_argument("--table-from", type=Path, default=None, help="only print the table of a results JSON")
    args = parser.parse_args()
    if args.table_from:
        print(markdown(json.loads(args.table_from.read_text())))
        return
    logging.getLogger("splink").setLevel(logging.ERROR)
    results = run(args.work, args.people, args.seed, args.datasets.split(","), args.messy_people,
                  args.memory_limit)
    print(markdown(results))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
