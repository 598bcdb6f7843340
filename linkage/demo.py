"""``run_demo``: the whole path partner → VRN → researcher on built-in synthetic data, in one call.

It plays all three roles on one machine, which real deployments never do: the folders it writes are
laid out by role so a newcomer can see which files cross which hand-over.

    DIR/partners/raw/            synthetic raw extracts + truth.csv        (partners only)
    DIR/partners/project.key     the demo key                              (partners only)
    DIR/encoded/<source>/        encoded extracts                          (partner → VRN)
    DIR/vrn/link/                crosswalk, model, report                  (VRN)
    DIR/vrn/evaluation.json      accuracy against the synthetic truth      (possible only on synthetic data)
    DIR/researcher/cohort/       disclosure-controlled tables and report   (VRN → researcher)
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from linkage import keys
from linkage.io import check_output_dir
from linkage.resources import configs_dir

SOURCES = ("police", "education", "social_care")


def _say(message: str, quiet: bool) -> None:
    if not quiet:
        print(message, file=sys.stderr, flush=True)


def run_demo(out_dir: str | Path, people: int = 5000, seed: int = 2024, *, quiet: bool = False,
             configs: Path | None = None) -> dict[str, Any]:
    """Run synth → keygen → hash (three partners) → link → evaluate → cohort. Returns a summary."""
    from linkage.cohort import build_cohort
    from linkage.encode import encode_extract
    from linkage.link import evaluate_link, link_extracts
    from linkage.synth import generate_extracts

    configs = configs_dir() if configs is None else Path(configs)
    out = check_output_dir(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    timings: dict[str, float] = {}

    def step(name: str, t0: float) -> None:
        timings[name] = round(time.perf_counter() - t0, 1)
        _say(f"    done in {timings[name]:.1f}s", quiet)

    _say(f"[1/6] synthetic population of {people:,} people (seed {seed}) — partners' raw extracts", quiet)
    t0 = time.perf_counter()
    raw = out / "partners" / "raw"
    raw.parent.mkdir(parents=True)
    synth = generate_extracts(people, seed, raw, quiet=True)
    step("synth", t0)

    _say("[2/6] project key (shared by partners only; never sent to the VRN)", quiet)
    key_path = out / "partners" / "project.key"
    key = keys.generate_key()
    keys.write_key_file(key_path, key)
    _say(f"    KCV {keys.key_check_value(key)}", quiet)

    _say("[3/6] each partner encodes its extract (linkage hash)", quiet)
    t0 = time.perf_counter()
    (out / "encoded").mkdir()
    encoded = {}
    for source in SOURCES:
        manifest = encode_extract(configs / "partners" / f"{source}.yaml", key, raw / f"{source}.csv",
                                  out / "encoded" / source, quiet=True)
        c = manifest["counts"]
        encoded[source] = c
        _say(f"    {source:12s} {c['rows_read']:>8,} rows → {c['records']:>7,} records "
             f"({c['rows_rejected']:,} rows rejected)", quiet)
    step("hash", t0)

    _say("[4/6] the VRN links the encoded extracts (linkage link)", quiet)
    t0 = time.perf_counter()
    (out / "vrn").mkdir()
    link_dir = out / "vrn" / "link"
    link_manifest = link_extracts([out / "encoded" / s for s in SOURCES], link_dir, quiet=True)
    step("link", t0)

    _say("[5/6] accuracy against the synthetic truth (linkage evaluate)", quiet)
    t0 = time.perf_counter()
    evaluation = evaluate_link(link_dir, raw / "truth.csv", key_path)
    (out / "vrn" / "evaluation.json").write_text(json.dumps(evaluation, indent=2, default=str) + "\n")
    pairwise = evaluation.get("pairwise", evaluation)
    _say(f"    pairwise precision {pairwise.get('precision', float('nan')):.3f}, "
         f"recall {pairwise.get('recall', float('nan')):.3f}, F1 {pairwise.get('f1', float('nan')):.3f}", quiet)
    step("evaluate", t0)

    _say("[6/6] researcher tables for the high-harm cohort (linkage cohort)", quiet)
    t0 = time.perf_counter()
    (out / "researcher").mkdir()
    cohort = build_cohort(configs / "cohorts" / "high_harm.yaml", link_dir, [out / "encoded" / s for s in SOURCES],
                          out / "researcher" / "cohort", quiet=True)
    step("cohort", t0)

    summary = {
        "people": people, "seed": seed, "synthetic_high_harm_people": synth.get("high_harm_people"),
        "encoded": encoded, "link_counts": link_manifest.get("counts"), "evaluation": pairwise,
        "cohort_people_rounded": cohort["people_rounded"], "cohort_summary": cohort.get("summary"),
        "timings": timings,
        "elapsed_seconds": round(time.perf_counter() - started, 1),
        "reports": {"link": str(link_dir / "report.html"),
                    "cohort": str(out / "researcher" / "cohort" / "report.html")},
    }
    return summary
