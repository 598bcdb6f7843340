"""Privacy / accuracy trade-off of encoding profiles: attack success vs linkage accuracy.

    python bench/bench_hardening.py --datasets febrl4 --json bench/results/hardening_febrl4.json
    python bench/bench_hardening.py --people 50000 --seed 1 --datasets synth --variants 2 --json ...
    python bench/bench_hardening.py --people 50000 --seed 1 --datasets synth --variants 0 --no-suite 0 --json ...

For each variant (the unhardened configs in configs/partners/unhardened/, the earlier year-salted
profile as overrides of them, and the shipped configs/partners/*.yaml) the script encodes the extracts
with one fresh key, links them (`link_extracts`, default link config), scores the link against truth
(`evaluate_link`) and attacks the encoded extracts:
* `audit_extract` on each extract, worst-case reference (its own name frequencies), without the suite;
* the attack suite (`linkage.audit.suite.run_suite`) over all extracts pooled (cross-partner), scored per
  partner and for all partners, once with the worst-case population (the raw extracts themselves,
  joint statistics included) and once with a realistic one (synthetic: `linkage synth` with seed + 1;
  FEBRL4: FEBRL3). On synthetic data the police extract is sorted by surname first (row-order scenario).
It reports the highest share of records whose name an attack re-identifies next to pairwise precision,
recall and F1. FEBRL data are read from /work/shared/data/febrl (bench only).
Since issue 14 configs/partners/unhardened/ holds the accuracy profile shipped until then and the shipped
configs the privacy-first one; bench/results/hardening_*.json were measured before that change.
"""

from __future__ import annotations

import argparse
import copy
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from linkage.audit import audit_extract  # noqa: E402
from linkage.encode import encode_extract  # noqa: E402
from linkage.keys import generate_key, write_key_file  # noqa: E402
from linkage.link import evaluate_link, link_extracts  # noqa: E402

PARTNERS = ROOT / "configs" / "partners"
UNHARDENED = PARTNERS / "unhardened"
FEBRL = Path("/work/shared/data/febrl")
SHIPPED = "shipped"

# Encodings overrides merged into each unhardened config; SHIPPED reads configs/partners/*.yaml.
VARIANTS: dict[str, dict[str, Any] | str] = {
    "unhardened (configs/partners/unhardened)": {},
    "year-salted (previous hardened profile)": {
        "name_variants": ["exact", "del1"], "name_token_salt": "dob_year",
        "postcode_variants": ["exact", "sector", "district"], "bloom": {"salt": "dob_year", "blip": 0.02}},
    "shipped defaults (configs/partners)": SHIPPED,
    "shipped + name/postcode composite tokens": {"_from": SHIPPED, "name_postcode_tokens": True},
}
def merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in override.items():
        out[k] = merge(out.get(k) or {}, v) if isinstance(v, dict) else v
    return out


def variant_config(base: Path, variant: dict | str, out: Path) -> Path:
    if variant == SHIPPED:
        return PARTNERS / base.name
    assert isinstance(variant, dict)
    overrides = {k: v for k, v in variant.items() if k != "_from"}
    data = yaml.safe_load(((PARTNERS if variant.get("_from") == SHIPPED else UNHARDENED) / base.name).read_text())
    data["encodings"] = merge(data.get("encodings") or {}, overrides)
    out.write_text(yaml.safe_dump(data, sort_keys=False))
    return out


def sorted_by_surname(raw: Path, column: str) -> Path:
    """The extract sorted by surname (the row-order scenario: a partner exporting in name order)."""
    out = raw.with_name(raw.stem + "_sorted.csv")
    if not out.is_file():
        frame = pd.read_csv(raw, dtype=str, keep_default_na=False)
        frame.assign(_k=frame[column].str.strip().str.lower()).sort_values("_k", kind="stable").drop(
            columns="_k").to_csv(out, index=False)
    return out


def datasets(work: Path, people: int, seed: int, wanted: list[str]) -> list[dict]:
    from linkage.synth import generate_extracts

    out = []
    if "synth" in wanted:
        raws = {}
        for s in (seed, seed + 1):  # seed + 1: an independent population, the realistic attacker's reference
            raw = work / f"synth_{people}_{s}"
            if not (raw / "truth.csv").is_file():
                shutil.rmtree(raw, ignore_errors=True)
                generate_extracts(people, s, raw, quiet=True)
            raws[s] = raw
        raw = raws[seed]
        inputs = [(PARTNERS / f"{s}.yaml", raw / f"{s}.csv", s) for s in ("police", "education", "social_care")]
        inputs[0] = (inputs[0][0], sorted_by_surname(raw / "police.csv", "surname"), "police")
        out.append({"name": f"synthetic {people:,} people", "truth": raw / "truth.csv", "inputs": inputs,
                    "realistic": [(PARTNERS / f"{s}.yaml", raws[seed + 1] / f"{s}.csv")
                                  for s in ("police", "education", "social_care")]})
    if "febrl4" in wanted:
        files = {"febrl4a": FEBRL / "dataset4a.csv", "febrl4b": FEBRL / "dataset4b.csv"}
        rows = []
        for source, path in files.items():
            ids = pd.read_csv(path, dtype=str, skipinitialspace=True).rec_id.str.strip()
            rows += [(source, r, r.split("-")[1]) for r in ids]
        truth = work / "febrl4_truth.csv"
        pd.DataFrame(rows, columns=["source", "local_id", "person_id"]).to_csv(truth, index=False)
        out.append({"name": "FEBRL4", "truth": truth,
                    "inputs": [(PARTNERS / "febrl.yaml", p, s) for s, p in files.items()],
                    # FEBRL3: same generator, other people: the realistic attacker's reference
                    "realistic": [(PARTNERS / "febrl.yaml", FEBRL / "dataset3.csv")]})
    return out


def run_variant(work: Path, ds: dict, name: str, variant: dict | str, key: bytes, key_file: Path,
                suite: bool = True) -> dict:
    from linkage.audit.population import pooled_population
    from linkage.audit.suite import load_part, run_suite, strongest

    vdir = work / f"v{list(VARIANTS).index(name)}_{ds['name'].split()[0].lower()}"
    shutil.rmtree(vdir, ignore_errors=True)
    vdir.mkdir(parents=True)
    enc_dirs, audits, items = [], [], []
    t0 = time.perf_counter()
    for base, raw, src in ds["inputs"]:
        cfg = variant_config(base, variant, vdir / f"{src}.yaml")
        enc = vdir / f"enc_{src}"
        encode_extract(cfg, key, raw, enc, source=src, quiet=True)
        enc_dirs.append(enc)
        items.append((enc, cfg, raw))
        audits.append(audit_extract(enc, config=cfg, key=key, clear_input=raw, worst_case_reference=True,
                                    suite=False))
    # Cross-partner suite: the attacker pools every extract; worst case = the extracts' own statistics,
    # realistic = an independent population of the same kind.
    parts = [load_part(enc, cfg, key, raw) for enc, cfg, raw in items]  # one oracle per extract, both suites
    populations = {"worst": pooled_population([(c, r) for _, c, r in items]),
                   "realistic": pooled_population([(variant_config(b, variant, vdir / f"ref_{i}.yaml"), r)
                                                   for i, (b, r) in enumerate(ds["realistic"])])}
    suites: dict[str, dict] = {k: {"attacks": [], "strongest": {}} for k in populations}
    for kind, population in populations.items() if suite else ():
        rows = run_suite(parts, population)
        suites[kind] = {"attacks": rows, "strongest": {k: {"attack": v["attack"], "column": v["column"]}
                                                       for k, v in strongest(rows).items()}}
    encode_audit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    link_extracts(enc_dirs, vdir / "link", quiet=True, allow_unaudited=True)  # encoded here without the release audit
    link_s = time.perf_counter() - t0
    metrics = evaluate_link(vdir / "link", ds["truth"], key_file)["pairwise"]

    def worst(pred) -> float:
        shares = [c["records_reidentified_share"] for a in audits for c in a["columns"] if pred(c["column"])]
        return max(shares, default=0.0)

    def suite_risk(kind: str, row_order: bool) -> dict:
        from linkage.audit.suite import risk_of

        out: dict[str, float] = {}
        for r in suites[kind]["attacks"]:
            if ("row order" in r["column"]) == row_order:
                out[r["partner"]] = max(out.get(r["partner"], 0.0), risk_of(r))
        return out

    return {"dataset": ds["name"], "variant": name,
            "reid_name_tokens": worst(lambda c: not c.endswith("__bloom")),
            "reid_exact_tokens": worst(lambda c: c.endswith(("__exact", "_shared"))),
            "reid_bloom": worst(lambda c: c.endswith("__bloom")),
            "suite_worst": suite_risk("worst", False), "suite_realistic": suite_risk("realistic", False),
            "row_order_excess": suite_risk("worst", True),
            "suite_strongest": {k: v["strongest"] for k, v in suites.items()},
            "suite_rows": {k: v["attacks"] for k, v in suites.items()},
            "precision": metrics["precision"], "recall": metrics["recall"], "f1": metrics["f1"],
            "link_seconds": round(link_s, 1), "encode_audit_seconds": round(encode_audit_s, 1)}


def markdown(rows: list[dict]) -> str:
    lines = ["| dataset | variant | names re-identified, per-extract audit (any name column) | strongest suite "
             "attack, worst case (max over partners / all pooled) | realistic reference | row order above chance "
             "| precision | recall | F1 | ΔF1 vs unhardened |", "|---|---|---|---|---|---|---|---|---|---|"]
    base = {r["dataset"]: r["f1"] for r in rows if r["variant"].startswith("unhardened")}

    def pct(x: float) -> str:
        return f"{100 * x:.1f}%"

    def split(d: dict) -> str:
        if not d:
            return "n/a"
        partners = [v for k, v in d.items() if k != "all partners"]
        pooled = d.get("all partners")
        return pct(max(partners, default=0.0)) + ("" if pooled is None else f" / {pct(pooled)}")

    for r in rows:
        delta = r["f1"] - base.get(r["dataset"], r["f1"])
        lines.append(f"| {r['dataset']} | {r['variant']} | {pct(max(r['reid_name_tokens'], r['reid_bloom']))} | "
                     f"{split(r['suite_worst'])} | {split(r['suite_realistic'])} | "
                     f"{pct(max(r['row_order_excess'].values())) if r['row_order_excess'] else 'n/a'} | "
                     f"{r['precision']:.4f} | "
                     f"{r['recall']:.4f} | {r['f1']:.4f} | {delta:+.4f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--datasets", default="synth")
    parser.add_argument("--variants", default="", help="comma-separated variant numbers (default: all)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/linkage-bench-hardening"))
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--no-suite", default="", help="comma-separated variant numbers whose extracts get only the "
                        "per-extract audit, not the attack suite (saves time on large runs; reported as n/a)")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    key = generate_key()
    key_file = args.work / "bench.key"
    key_file.unlink(missing_ok=True)
    write_key_file(key_file, key)
    chosen = [list(VARIANTS)[int(i)] for i in args.variants.split(",")] if args.variants else list(VARIANTS)
    rows = []
    for ds in datasets(args.work, args.people, args.seed, args.datasets.split(",")):
        for name in chosen:
            suite = str(list(VARIANTS).index(name)) not in args.no_suite.split(",")
            rows.append(run_variant(args.work, ds, name, VARIANTS[name], key, key_file, suite))
            r = rows[-1]
            print(f"{ds['name']} | {name}: exact {r['reid_exact_tokens']:.3f} tokens {r['reid_name_tokens']:.3f} "
                  f"bloom {r['reid_bloom']:.3f} suite {r['suite_worst']} realistic {r['suite_realistic']} "
                  f"row order {r['row_order_excess']} | P {r['precision']:.4f} R {r['recall']:.4f} F1 {r['f1']:.4f} "
                  f"({r['link_seconds']}s link)", file=sys.stderr, flush=True)
    print(markdown(rows))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
