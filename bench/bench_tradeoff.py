"""Privacy and accuracy of encoding profiles in one run: the issue-14 trade-off table.

    python bench/bench_tradeoff.py --profiles unhardened,shipped --datasets febrl4,febrl3,synth,messy \\
        --people 20000 --messy-people 10000 --json bench/results/tradeoff.json

A profile is an ``encodings`` block: ``shipped`` is each dataset's own config in configs/partners/ (the
privacy-first default since issue 14; ``hardened``, its name before, is an alias of it), any other name
``X`` takes the block of configs/partners/X/febrl.yaml (``unhardened``: the old accuracy profile) or of a
path to a partner config, and puts it in place of the dataset config's block, so every profile runs on the
same layouts. One fresh key per
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
from tradeoff_work import TradeoffWork  # noqa: E402

from linkage.encode import encode_extract  # noqa: E402
from linkage.keys import generate_key, write_key_file  # noqa: E402
from linkage.link import evaluate_link, link_extracts  # noqa: E402

PARTNERS = ROOT / "configs" / "partners"
LINK_CONFIG = ROOT / "configs" / "linkage.yaml"


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux ru_maxrss is in KiB)."""
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def link_config(work: Path, memory_limit: str | None) -> Path:
    """The shipped link config, with DuckDB's memory capped when asked (a shared machine)."""
    if not memory_limit:
        return LINK_CONFIG
    data = yaml.safe_load(LINK_CONFIG.read_text())
    data["backend"] = {**(data.get("backend") or {"kind": "duckdb"}), "memory_limit": memory_limit}
    out = TradeoffWork(work).link_config
    out.write_text(yaml.safe_dump(data, sort_keys=False))
    return out


#: Profile names that mean the shipped configs themselves (``hardened`` was the shipped profile's folder).
SHIPPED_ALIASES = ("shipped", "hardened")


def profile_block(profile: str) -> dict[str, Any] | None:
    if profile in SHIPPED_ALIASES:
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


def datasets(work: Path, wanted: list[str], people: int, messy_people: int, seed: int,
             sorted_police: bool = False) -> list[dict]:
    layout = TradeoffWork(work, people, messy_people, seed)
    out = []
    if "febrl4" in wanted:
        files = {"febrl4a": FEBRL / "dataset4a.csv", "febrl4b": FEBRL / "dataset4b.csv"}
        out.append({"name": "FEBRL4", "inputs": [("febrl.yaml", p, s) for s, p in files.items()],
                    "truth": febrl_truth(files, layout.truth("febrl4")),
                    "realistic": [("febrl.yaml", FEBRL / "dataset3.csv")]})
    if "febrl3" in wanted:
        files = {"febrl3": FEBRL / "dataset3.csv"}
        out.append({"name": "FEBRL3", "inputs": [("febrl.yaml", files["febrl3"], "febrl3")],
                    "truth": febrl_truth(files, layout.truth("febrl3")), "realistic": None})
    if "synth" in wanted:
        from linkage.synth import generate_extracts

        raws = {}
        for s in (seed, seed + 1):
            raw = layout.synth_dir(s)
            if not (raw / "truth.csv").is_file():
                shutil.rmtree(raw, ignore_errors=True)
                generate_extracts(people, s, raw, quiet=True)
            raws[s] = raw
        srcs = ("police", "education", "social_care")
        inputs = [(f"{s}.yaml", raws[seed] / f"{s}.csv", s) for s in srcs]
        if sorted_police:  # the row-order scenario: a partner exporting in surname order
            from bench_hardening import sorted_by_surname

            inputs[0] = ("police.yaml", sorted_by_surname(raws[seed] / "police.csv", "surname"), "police")
        out.append({"name": f"synthetic {people:,}", "truth": layout.truth("synthetic"), "inputs": inputs,
                    "realistic": [(f"{s}.yaml", raws[seed + 1] / f"{s}.csv") for s in srcs]})
    if "messy" in wanted:
        from linkage.synth.messy import generate_messy

        raw = layout.messy_dir()
        if not (raw / "truth.csv").is_file():
            shutil.rmtree(raw, ignore_errors=True)
            generate_messy(messy_people, seed, raw)
        out.append({"name": f"messy {messy_people:,}", "truth": layout.truth("messy"),
                    "inputs": [("messy.yaml", raw / "people.csv", "messy")], "realistic": None})
    return out


def dataset_key(ds: dict) -> str:
    """A dataset's name in folder names (febrl4, febrl3, synthetic, messy): the first word of its display name."""
    return ds["name"].split()[0].lower()


def run_one(work: Path, ds: dict, profile: str, key: bytes, key_file: Path, audit: bool,
            link_cfg: Path = LINK_CONFIG, reuse: bool = False, link: bool = True) -> dict[str, Any]:
    from linkage.audit.population import pooled_population
    from linkage.audit.suite import load_part, risk_of, run_suite

    block = profile_block(profile)
    vdir = TradeoffWork(work).profile_dir(profile, dataset_key(ds))
    if not reuse:
        shutil.rmtree(vdir, ignore_errors=True)
        vdir.mkdir(parents=True)
    items = []
    t0 = time.perf_counter()
    for base, raw, src in ds["inputs"]:
        cfg = config_for(PARTNERS / base, block, vdir / f"{src}.yaml")
        if not reuse:
            encode_extract(cfg, key, raw, vdir / f"enc_{src}", source=src, quiet=True)
        items.append((vdir / f"enc_{src}", cfg, raw))
    encode_s = time.perf_counter() - t0
    row: dict[str, Any] = {"dataset": ds["name"], "profile": profile, "encode_s": round(encode_s, 1)}
    if not reuse and link:  # --reuse: attack the encodings of an earlier run (same work folder, same key), no link
        t0 = time.perf_counter()
        link_extracts([e for e, _, _ in items], vdir / "link", link_cfg, quiet=True, allow_unaudited=True)  # unaudited
        row["link_s"] = round(time.perf_counter() - t0, 1)
        metrics = evaluate_link(vdir / "link", ds["truth"], key_file)["pairwise"]
        row.update(precision=metrics["precision"], recall=metrics["recall"], f1=metrics["f1"])
        row["peak_rss_mb_after_link"] = peak_rss_mb()
        print(f"{ds['name']} | {profile} | F1 {row['f1']:.4f} | link {row['link_s']} s", flush=True)
    if audit:
        t0 = time.perf_counter()
        parts = [load_part(e, c, key, r) for e, c, r in items]
        row["load_parts_s"] = round(time.perf_counter() - t0, 1)
        pops = {"worst": pooled_population([(c, r) for _, c, r in items])}
        if ds["realistic"]:
            pops["realistic"] = pooled_population([(config_for(PARTNERS / b, block, vdir / f"ref_{i}.yaml"), r)
                                                   for i, (b, r) in enumerate(ds["realistic"])])
        row["populations_s"] = round(time.perf_counter() - t0 - row["load_parts_s"], 1)
        for kind, pop in pops.items():
            t1 = time.perf_counter()
            rows = run_suite(parts, pop)
            row[f"suite_{kind}_s"] = round(time.perf_counter() - t1, 1)
            print(f"  suite ({kind}) {row[f'suite_{kind}_s']} s, peak RSS {peak_rss_mb()} MB", flush=True)
            best: dict[str, tuple[float, str]] = {}
            for r in rows:
                risk = risk_of(r)
                if r["partner"] not in best or risk > best[r["partner"]][0]:
                    best[r["partner"]] = (risk, f"{r['attack']} on {r['column']}")
            row[kind] = {k: {"risk": v[0], "strongest": v[1]} for k, v in best.items()}
            row[f"{kind}_rows"] = rows
        row["audit_s"] = round(time.perf_counter() - t0, 1)
    row["peak_rss_mb"] = peak_rss_mb()
    return row


def summary(r: dict[str, Any]) -> str:
    def top(kind: str) -> str:
        d = r.get(kind)
        if not d:
            return "n/a"
        k, v = max(d.items(), key=lambda kv: kv[1]["risk"])
        return f"{100 * v['risk']:.1f}% ({k}: {v['strongest']})"

    scores = f"P {r['precision']:.4f} R {r['recall']:.4f} F1 {r['f1']:.4f}" if "f1" in r else "no link"
    return (f"{r['dataset']} | {r['profile']} | {scores} | "
            f"worst {top('worst')} | realistic {top('realistic')}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", default="unhardened,shipped",
                        help="comma-separated: shipped (alias hardened), unhardened, or a partner config path")
    parser.add_argument("--datasets", default="febrl4,febrl3,synth")
    parser.add_argument("--people", type=int, default=20_000)
    parser.add_argument("--messy-people", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-audit", action="store_true")
    parser.add_argument("--audit-profiles", default=None, help="comma-separated: audit only these profiles")
    parser.add_argument("--work", type=Path, default=Path("/tmp/linkage-bench-tradeoff"))
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--memory-limit", default=None, help="DuckDB memory limit of the link, e.g. 3GB")
    parser.add_argument("--sorted-police", action="store_true", help="synthetic police extract sorted by "
                        "surname before encoding (row-order scenario, as bench_hardening.py)")
    parser.add_argument("--no-link", action="store_true", help="encode and attack only (no F1)")
    parser.add_argument("--reuse", action="store_true", help="attack the encodings of an earlier run in --work "
                        "with its key (no encoding, no link): to time or compare the suite on fixed extracts")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    key_file = TradeoffWork(args.work).key_file
    if args.reuse:
        from linkage.keys import read_key_file

        key = read_key_file(key_file)
    else:
        key = generate_key()
        key_file.unlink(missing_ok=True)
        write_key_file(key_file, key)
    link_cfg = link_config(args.work, args.memory_limit)
    rows = []
    for ds in datasets(args.work, args.datasets.split(","), args.people, args.messy_people, args.seed,
                       args.sorted_police):
        for profile in args.profiles.split(","):
            audit = not args.no_audit and (args.audit_profiles is None or profile in args.audit_profiles.split(","))
            rows.append(run_one(args.work, ds, profile, key, key_file, audit, link_cfg, args.reuse,
                                not args.no_link))
            print(summary(rows[-1]), flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
