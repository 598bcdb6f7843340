"""Privacy and accuracy of encoding profiles in one run: the issue-14 trade-off table.

    python bench/bench_tradeoff.py --profiles shipped,hardened --datasets febrl4,febrl3,synth,messy \\
        --people 20000 --messy-people 10000 --json bench/results/tradeoff.json

A profile is an ``encodings`` block: ``shipped`` is each dataset's own config in configs/partners/, any
other name ``X`` takes the block of configs/partners/X/febrl.yaml (or a path to a partner config) and puts
it in place of the dataset config's block, so every profile runs on the same layouts. One fresh key per
run. Per dataset and profile: encode, link with the shipped link config, pairwise P/R/F1 against truth,
and (unless --no-audit) the attack suite (`linkage.audit.suite.run_suite`, every partner pooled) with the
worst-case population (the raw extracts themselves) and a realistic one (FEBRL4: FEBRL3; synthetic:
seed + 1). Reports the highest re-identified share of any partner and of all partners pooled. FEBRL data
are read from /work/shared/data/febrl (bench only).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_link_accuracy import FEBRL, febrl_truth  # noqa: E402

from linkage.encode import encode_extract  # noqa: E402
from linkage.keys import generate_key, write_key_file  # noqa: E402
from linkage.link import evaluate_link, link_extracts  # noqa: E402

PARTNERS = ROOT / "configs" / "partners"


def profile_block(profile: str) -> dict[str, Any] | None:
    if profile == "shipped":
        return None
    path = Path(profile) if profile.endswith(".yaml") else PARTNERS / profile / "febrl.yaml"
    return yaml.safe_load(path.read_text())["encodings"]


def config_for(base: Path, block: dict[str, Any] | None, out: Path) -> Path:
    if block is None:
        return base
    data = yaml.safe_load(base.read_text())
    data["encodings"] = block
    out.write_text(yaml.safe_dump(data, sort_keys=False))
    return out


def datasets(work: Path, wanted: list[str], people: int, messy_people: int, seed: int) -> list[dict]:
    out = []
    if "febrl4" in wanted:
        files = {"febrl4a": FEBRL / "dataset4a.csv", "febrl4b": FEBRL / "dataset4b.csv"}
        out.append({"name": "FEBRL4", "inputs": [("febrl.yaml", p, s) for s, p in files.items()],
                    "truth": febrl_truth(files, work / "febrl4_truth.csv"),
                    "realistic": [("febrl.yaml", FEBRL / "dataset3.csv")]})
    if "febrl3" in wanted:
        files = {"febrl3": FEBRL / "dataset3.csv"}
        out.append({"name": "FEBRL3", "inputs": [("febrl.yaml", files["febrl3"], "febrl3")],
                    "truth": febrl_truth(files, work / "febrl3_truth.csv"), "realistic": None})
    if "synth" in wanted:
        from linkage.synth import generate_extracts

        raws = {}
        for s in (seed, seed + 1):
            raw = work / f"synth_{people}_{s}"
            if not (raw / "truth.csv").is_file():
                shutil.rmtree(raw, ignore_errors=True)
                generate_extracts(people, s, raw, quiet=True)
            raws[s] = raw
        srcs = ("police", "education", "social_care")
        out.append({"name": f"synthetic {people:,}", "truth": raws[seed] / "truth.csv",
                    "inputs": [(f"{s}.yaml", raws[seed] / f"{s}.csv", s) for s in srcs],
                    "realistic": [(f"{s}.yaml", raws[seed + 1] / f"{s}.csv") for s in srcs]})
    if "messy" in wanted:
        from linkage.synth.messy import generate_messy

        raw = work / f"messy_{messy_people}_{seed}"
        if not (raw / "truth.csv").is_file():
            shutil.rmtree(raw, ignore_errors=True)
            generate_messy(messy_people, seed, raw)
        out.append({"name": f"messy {messy_people:,}", "truth": raw / "truth.csv",
                    "inputs": [("messy.yaml", raw / "people.csv", "messy")], "realistic": None})
    return out


def run_one(work: Path, ds: dict, profile: str, key: bytes, key_file: Path, audit: bool,
            link_config: Any = None) -> dict[str, Any]:
    from linkage.audit.population import pooled_population
    from linkage.audit.suite import load_part, risk_of, run_suite

    block = profile_block(profile)
    tag = Path(profile).stem if profile.endswith(".yaml") else profile
    vdir = work / f"{tag}_{ds['name'].split()[0].lower()}"
    shutil.rmtree(vdir, ignore_errors=True)
    vdir.mkdir(parents=True)
    items = []
    t0 = time.perf_counter()
    for base, raw, src in ds["inputs"]:
        cfg = config_for(PARTNERS / base, block, vdir / f"{src}.yaml")
        encode_extract(cfg, key, raw, vdir / f"enc_{src}", source=src, quiet=True)
        items.append((vdir / f"enc_{src}", cfg, raw))
    encode_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    link_extracts([e for e, _, _ in items], vdir / "link", link_config, quiet=True)
    link_s = time.perf_counter() - t0
    metrics = evaluate_link(vdir / "link", ds["truth"], key_file)["pairwise"]
    row: dict[str, Any] = {"dataset": ds["name"], "profile": profile, "precision": metrics["precision"],
                           "recall": metrics["recall"], "f1": metrics["f1"], "encode_s": round(encode_s, 1),
                           "link_s": round(link_s, 1)}
    if audit:
        t0 = time.perf_counter()
        parts = [load_part(e, c, key, r) for e, c, r in items]
        pops = {"worst": pooled_population([(c, r) for _, c, r in items])}
        if ds["realistic"]:
            pops["realistic"] = pooled_population([(config_for(PARTNERS / b, block, vdir / f"ref_{i}.yaml"), r)
                                                   for i, (b, r) in enumerate(ds["realistic"])])
        for kind, pop in pops.items():
            rows = run_suite(parts, pop)
            best: dict[str, tuple[float, str]] = {}
            for r in rows:
                risk = risk_of(r)
                if r["partner"] not in best or risk > best[r["partner"]][0]:
                    best[r["partner"]] = (risk, f"{r['attack']} on {r['column']}")
            row[kind] = {k: {"risk": v[0], "strongest": v[1]} for k, v in best.items()}
            row[f"{kind}_rows"] = rows
        row["audit_s"] = round(time.perf_counter() - t0, 1)
    return row


def summary(r: dict[str, Any]) -> str:
    def top(kind: str) -> str:
        d = r.get(kind)
        if not d:
            return "n/a"
        k, v = max(d.items(), key=lambda kv: kv[1]["risk"])
        return f"{100 * v['risk']:.1f}% ({k}: {v['strongest']})"

    return (f"{r['dataset']} | {r['profile']} | P {r['precision']:.4f} R {r['recall']:.4f} F1 {r['f1']:.4f} | "
            f"worst {top('worst')} | realistic {top('realistic')}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", default="shipped,hardened")
    parser.add_argument("--datasets", default="febrl4,febrl3,synth")
    parser.add_argument("--people", type=int, default=20_000)
    parser.add_argument("--messy-people", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-audit", action="store_true")
    parser.add_argument("--audit-profiles", default=None, help="comma-separated: audit only these profiles")
    parser.add_argument("--work", type=Path, default=Path("/tmp/linkage-bench-tradeoff"))
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--memory-limit", default=None, help="DuckDB memory limit of each link, e.g. 3GB")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    key = generate_key()
    key_file = args.work / "bench.key"
    key_file.unlink(missing_ok=True)
    write_key_file(key_file, key)
    link_config = None
    if args.memory_limit:
        from linkage.link.config import load_link_config

        link_config = load_link_config().model_copy(update={"duckdb_memory_limit": args.memory_limit})
    rows = []
    for ds in datasets(args.work, args.datasets.split(","), args.people, args.messy_people, args.seed):
        for profile in args.profiles.split(","):
            audit = not args.no_audit and (args.audit_profiles is None or profile in args.audit_profiles.split(","))
            rows.append(run_one(args.work, ds, profile, key, key_file, audit, link_config))
            print(summary(rows[-1]), flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
