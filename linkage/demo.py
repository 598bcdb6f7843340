"""``run_demo``: the whole path partners → linkage unit → analysis → researcher on synthetic data, in one call.

It plays all four roles on one machine, which real deployments never do: each role gets its own folder
and the demo only ever hands a role what that role would receive, so a newcomer can see which files cross
which hand-over (and :func:`role_holdings` lists them).

    DIR/partners/raw/                  synthetic raw extracts + truth.csv           (partners only)
    DIR/partners/project.key           the shared project key                       (partners only)
    DIR/partners/analysis.pub          the analysis environment's public key        (sent to partners)
    DIR/linkage-unit/identifiers/<s>/  identifier packages: tokens, manifest        (partner → linkage unit)
    DIR/linkage-unit/link/             internal crosswalk, pairs, model, report     (linkage unit only)
    DIR/linkage-unit/release.key       this release's pseudonym key                 (linkage unit only)
    DIR/analysis/analysis.key          the analysis private key                     (analysis only)
    DIR/analysis/attributes/<s>/       attribute packages, encrypted to analysis.pub (partner → analysis,
                                       relayed sealed by the linkage unit)
    DIR/analysis/crosswalk/            crosswalk with per-release person ids        (linkage unit → analysis)
    DIR/researcher/cohort/             disclosure-controlled tables and report      (analysis → researcher)
    DIR/synthetic-only/evaluation.json accuracy against the synthetic truth: needs the truth, the key and
                                       the internal crosswalk together, so it exists only because the data
                                       are synthetic
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from linkage import keys
from linkage.io import check_output_dir
from linkage.resources import configs_dir

SOURCES = ("police", "education", "social_care", "health")
ROLES = ("partners", "linkage-unit", "analysis", "researcher")


def _say(message: str, quiet: bool) -> None:
    if not quiet:
        print(message, file=sys.stderr, flush=True)


def role_holdings(out_dir: str | Path) -> dict[str, list[str]]:
    """Per role folder, the files it holds (relative paths, sorted)."""
    out = Path(out_dir)
    return {role: sorted(str(p.relative_to(out / role)) for p in (out / role).rglob("*") if p.is_file())
            for role in ROLES if (out / role).is_dir()}


def _describe(out: Path) -> list[str]:
    """What each role holds, one line per kind of file (what a newcomer needs to see)."""
    lines = []
    for role, files in role_holdings(out).items():
        groups: dict[str, int] = {}
        for f in files:
            parts = Path(f).parts
            key = "/".join(parts[:-1] + ("*",)) if len(parts) > 1 else f
            groups[key] = groups.get(key, 0) + 1
        shown = ", ".join(k if n == 1 else f"{k} ({n} files)" for k, n in groups.items())
        lines.append(f"    {role + '/':14s} {shown}")
    return lines


def run_demo(out_dir: str | Path, people: int = 5000, seed: int = 2024, *, quiet: bool = False,
             configs: Path | None = None, release_audit: bool = True,
             project_key: bytes | None = None) -> dict[str, Any]:
    """Run synth → keys → hash (four partners) → link → export crosswalk → cohort. Returns a summary.

    Each partner's extract goes through the release gate as ``linkage hash`` runs it (encoded, audited, kept
    only if the audit passes) and the link refuses any without a passing audit, as ``linkage link`` does.
    ``release_audit=False`` skips the audits (recorded as not audited) for callers that only need the data
    path, e.g. benchmarks of later steps. ``project_key``: the partners' key (default: a fresh one, as a real
    project would make; a test passes a fixed one so that the audits' verdicts repeat)."""
    from linkage.audit.gate import encode_with_release_gate
    from linkage.cohort import build_cohort
    from linkage.link import evaluate_link, link_extracts
    from linkage.link.pseudonyms import export_crosswalk
    from linkage.synth import generate_extracts

    configs = configs_dir() if configs is None else Path(configs)
    out = check_output_dir(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for role in ROLES:
        (out / role).mkdir()
    partners, unit, analysis = out / "partners", out / "linkage-unit", out / "analysis"
    started = time.perf_counter()
    timings: dict[str, float] = {}

    def step(name: str, t0: float) -> None:
        timings[name] = round(time.perf_counter() - t0, 1)
        _say(f"    done in {timings[name]:.1f}s", quiet)

    _say(f"[1/8] synthetic population of {people:,} people (seed {seed}) — partners' raw extracts", quiet)
    t0 = time.perf_counter()
    raw = partners / "raw"
    synth = generate_extracts(people, seed, raw, quiet=True)
    step("synth", t0)

    _say("[2/8] keys: the partners' project key; the analysis key pair (public half sent to partners)", quiet)
    key_path = partners / "project.key"
    key = keys.generate_key() if project_key is None else project_key
    keys.write_key_file(key_path, key)
    fingerprint = keys.write_analysis_keypair(analysis / "analysis.key", analysis / "analysis.pub")
    shutil.move(analysis / "analysis.pub", partners / "analysis.pub")
    public = keys.read_analysis_public_key(partners / "analysis.pub")
    _say(f"    project KCV {keys.key_check_value(key)}; analysis public key fingerprint {fingerprint}", quiet)

    _say("[3/8] each partner encodes its extract and audits it (linkage hash, the release gate): identifier "
         "package → linkage unit, attribute package (encrypted) → analysis", quiet)
    t0 = time.perf_counter()
    (unit / "identifiers").mkdir()
    (analysis / "attributes").mkdir()
    encoded, audits = {}, {}
    for source in SOURCES:
        manifest, record = encode_with_release_gate(
            configs / "partners" / f"{source}.yaml", key, raw / f"{source}.csv", unit / "identifiers" / source,
            audit=release_audit, quiet=True, analysis_public_key=public,
            attributes_out=analysis / "attributes" / source)
        c = manifest["counts"]
        encoded[source] = c
        audits[source] = {k: record.get(k) for k in ("status", "risk", "max_risk", "strongest_attack")}
        verdict = (f"release audit {record['status']} ({100 * record['risk']:.1f}% worst case)"
                   if record["status"] in ("passed", "failed") else "not audited")
        _say(f"    {source:12s} {c['rows_read']:>8,} rows → {c['records']:>7,} records "
             f"({c['rows_rejected']:,} rows rejected); {len(manifest['attribute_package']['columns'])} "
             f"attribute columns sealed; {verdict}", quiet)
    step("hash", t0)

    _say("[4/8] the linkage unit links the identifier packages (linkage link; refuses any without a passing "
         "release audit)", quiet)
    t0 = time.perf_counter()
    link_dir = unit / "link"
    link_manifest = link_extracts([unit / "identifiers" / s for s in SOURCES], link_dir, quiet=True,
                                  allow_unaudited=not release_audit)
    step("link", t0)

    _say("[5/8] the linkage unit releases a crosswalk with per-release person ids (linkage export-crosswalk)",
         quiet)
    t0 = time.perf_counter()
    release_key = keys.generate_key()
    keys.write_key_file(unit / "release.key", release_key)
    export_crosswalk(link_dir, release_key, analysis / "crosswalk", release_id="demo-release-1")
    step("export", t0)

    _say("[6/8] accuracy against the synthetic truth (linkage evaluate; possible only on synthetic data)", quiet)
    t0 = time.perf_counter()
    (out / "synthetic-only").mkdir()
    evaluation = evaluate_link(link_dir, raw / "truth.csv", key_path)
    (out / "synthetic-only" / "evaluation.json").write_text(json.dumps(evaluation, indent=2, default=str) + "\n")
    pairwise = evaluation.get("pairwise", evaluation)
    _say(f"    pairwise precision {pairwise.get('precision', float('nan')):.3f}, "
         f"recall {pairwise.get('recall', float('nan')):.3f}, F1 {pairwise.get('f1', float('nan')):.3f}", quiet)
    step("evaluate", t0)

    _say("[7/8] the analysis environment builds researcher tables for the high-harm cohort (linkage cohort)",
         quiet)
    t0 = time.perf_counter()
    cohort = build_cohort(configs / "cohorts" / "high_harm.yaml", analysis / "crosswalk",
                          [analysis / "attributes" / s for s in SOURCES], out / "researcher" / "cohort",
                          quiet=True, analysis_key=analysis / "analysis.key",
                          register=analysis / "release-register.json",
                          checker_log=analysis / "cohort-disclosure-log.json")
    step("cohort", t0)

    _say("[8/8] the analysis environment builds the needs-assessment profile and the knife-crime cohort "
         "(linkage profile, linkage cohort)", quiet)
    t0 = time.perf_counter()
    from linkage.profile.demo_hook import run_needs_assessment

    needs = run_needs_assessment(out, analysis / "crosswalk", [analysis / "attributes" / s for s in SOURCES],
                                 configs=configs, cohorts=("knife_u25",), analysis_key=analysis / "analysis.key")
    step("needs assessment", t0)

    _say("\nWhat each role holds:", quiet)
    for line in _describe(out):
        _say(line, quiet)

    summary = {
        "people": people, "seed": seed, "synthetic_high_harm_people": synth.get("high_harm_people"),
        "encoded": encoded, "release_audits": audits, "link_counts": link_manifest.get("counts"),
        "evaluation": pairwise,
        "analysis_key_fingerprint": fingerprint,
        "cohort_people_rounded": cohort["people_rounded"], "cohort_summary": cohort.get("summary"),
        "holdings": role_holdings(out),
        "timings": timings,
        "elapsed_seconds": round(time.perf_counter() - started, 1),
        "reports": {"link": str(link_dir / "report.html"),
                    "cohort": str(out / "researcher" / "cohort" / "report.html"),
                    "profile": str(out / "researcher" / "profile" / "report.html"),
                    "knife_u25": str(out / "researcher" / "cohort_knife_u25" / "report.html")},
        "profile_tables": len(needs["profile"]["tables"]),
    }
    return summary

