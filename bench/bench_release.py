"""What disclosure control costs and what an intruder still gets, on releases of synthetic cohorts.

    python bench/bench_release.py [--sizes 20000,50000] [--seeds 1] [--out bench/results/release.json]

For each population size and seed it runs the whole demo pipeline (synth -> hash -> link -> cohort),
then rebuilds the cohort release twice from the linked data: under the shipped policy and under the old
one (suppress 1-4, percentages and means from unrounded counts; run with a logged override). Each
release is attacked by ``cohort.intruder`` with every quantity solved as an integer program, and we
report:

- the share of released counts an intruder can pin to one value (of the released counts and of all
  count cells; published zeros are exact by design, so non-zero ones are counted apart), and how many
  quantities with a true value of 1-9 it narrows below the rounding base (the refusal rule);
- the mean absolute error the protection adds to the published percentages (published minus the
  percentage of the true counts, over the percentages shown), and the share of percentages shown.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import yaml
from threadpoolctl import threadpool_limits

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from linkage.cohort import build_cohort  # noqa: E402
from linkage.cohort.config import load_cohort_config  # noqa: E402
from linkage.cohort.intruder import attack  # noqa: E402
from linkage.cohort.risk_factors import factor_sources  # noqa: E402
from linkage.cohort.tables import WITHHELD, TableBuilder  # noqa: E402
from linkage.demo import SOURCES, run_demo  # noqa: E402

PCT_COLUMNS = {  # table -> (pct column, numerator column, denominator column)
    "cohort_summary": ("pct_previously_victimised", "previously_victimised", "people"),
    "factor_prevalence": ("pct", "people_with_factor", "denominator"),
    "linkage_coverage": ("pct_linked", "linked", "people"),
    "coverage_by_characteristic": ("pct_linked", "linked", "people"),
}
OLD_POLICY = {"suppress_max": 4, "derive_statistics_from": "true",
              "risk_accepted": {"accepted_by": "bench_release.py", "reason": "the pre-issue-11 policy, for comparison"}}


def percentage_error(release) -> tuple[float | None, int, int]:
    errors, shown, total = [], 0, 0
    for table, (pct, num, den) in PCT_COLUMNS.items():
        for i, row in enumerate(release.tables[table]):
            if row.get(pct) is None:
                continue
            total += 1
            if row[pct] is WITHHELD:
                continue
            n, d = release.truth[(table, i, num)], release.truth[(table, i, den)]
            shown += 1
            errors.append(abs(row[pct] - 100.0 * n / d))
    return (sum(errors) / len(errors) if errors else None), shown, total


def audit(release, settings, persons_n: int, label: str, build_s: float) -> dict:
    t0 = time.perf_counter()
    with threadpool_limits(1):
        report = attack(release.tables, settings, release.truth, release.facts, WITHHELD, audit_all=True, exact=True)
    released = [t for t in report.targets if t.kind == "rounded"]
    mae, shown, total = percentage_error(release)
    pinned = sum(t.width == 1 for t in released)
    pinned_nonzero = sum(t.width == 1 and t.truth != 0 for t in released)
    cells = sum(1 for (_, _, col) in release.truth if not col.startswith("mean_"))
    return {"policy": label, "cohort_people": persons_n, "count_cells": cells,
            "released_counts": len(released), "released_counts_pinned_exactly": pinned,
            "released_nonzero_counts_pinned_exactly": pinned_nonzero,
            "share_released_pinned_exactly": round(pinned / max(1, len(released)), 4),
            "share_of_all_cells_pinned_exactly": round(pinned / max(1, cells), 4),
            "sensitive_quantities": sum(settings.intruder_sensitive(t.truth) for t in report.targets
                                        if t.truth is not None),
            "sensitive_narrowed_below_base": len(report.failures),
            "sensitive_pinned_exactly": sum(1 for t in report.failures if t.width == 1),
            "pct_shown": shown, "pct_cells": total, "pct_mae_points": None if mae is None else round(mae, 3),
            "build_seconds": round(build_s, 1), "audit_seconds": round(time.perf_counter() - t0, 1)}


def measure(shipped: Path, old: Path, demo: Path, out: Path) -> list[dict]:
    """The shipped policy through ``build_cohort`` (with its intruder repair rounds); the old policy as the
    table builder alone (it had no intruder), on the same person frame."""
    t0 = time.perf_counter()
    result = build_cohort(shipped, demo / "vrn" / "link", [demo / "encoded" / s for s in SOURCES], out,
                          quiet=True, keep_persons=True)
    persons = result["persons"]
    rows = [audit(result["release"], load_cohort_config(shipped).cohort.disclosure, len(persons), "shipped 10-5",
                  time.perf_counter() - t0)]
    loaded = load_cohort_config(old)
    t0 = time.perf_counter()
    builder = TableBuilder(persons.copy(), loaded.cohort, loaded.risk_factors, sorted(SOURCES),
                           factor_sources(loaded.risk_factors))
    release = builder.build()
    rows.append(audit(release, loaded.cohort.disclosure, len(persons),
                      "old: suppress 1-4, % and means from true counts",
                      time.perf_counter() - t0))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="20000,50000")
    ap.add_argument("--seeds", default="1")
    ap.add_argument("--out", default=str(REPO / "bench/results/release.json"))
    args = ap.parse_args()
    rows = []
    for people in [int(x) for x in args.sizes.split(",")]:
        for seed in [int(x) for x in args.seeds.split(",")]:
            tmp = Path(tempfile.mkdtemp(prefix="bench-release-"))
            try:
                print(f"{people:,} people, seed {seed}: demo pipeline …", flush=True)
                run_demo(tmp / "demo", people=people, seed=seed, quiet=True)
                cfg = yaml.safe_load((REPO / "configs/cohorts/high_harm.yaml").read_text())
                cfg["offences"], cfg["risk_factors"] = (str(REPO / "configs/offences.yaml"),
                                                        str(REPO / "configs/risk_factors.yaml"))
                shipped = tmp / "shipped.yaml"
                shipped.write_text(yaml.safe_dump(cfg))
                cfg["disclosure"].update(OLD_POLICY)
                old = tmp / "old.yaml"
                old.write_text(yaml.safe_dump(cfg))
                for row in measure(shipped, old, tmp / "demo", tmp / "release"):
                    row = {"people": people, "seed": seed, **row}
                    print(json.dumps(row), flush=True)
                    rows.append(row)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"rows": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
