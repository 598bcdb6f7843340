"""The ``linkage`` command: a thin layer over the library API.

Each command parses its arguments, calls one API function and prints a short summary. Errors of the
``LinkageError`` family become one line on stderr and a non-zero exit; ``--debug`` shows the traceback.
Typer (on Click) was chosen for argument parsing because its commands are plain typed functions.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from linkage import keys
from linkage.errors import LinkageError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Privacy-preserving record linkage for a Violence Reduction Network.")

_state = {"debug": False}


@app.callback()
def _main(debug: Annotated[bool, typer.Option("--debug", help="show tracebacks on error")] = False) -> None:
    _state["debug"] = debug


def run_safely(func, *args, **kwargs):
    """Call the API; turn expected failures into one line and exit code, never a traceback."""
    try:
        return func(*args, **kwargs)
    except LinkageError as exc:
        if _state["debug"]:
            raise
        print(f"error: {exc}", file=sys.stderr)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        print("error: interrupted; no output was written", file=sys.stderr)
        raise typer.Exit(130) from None
    except Exception as exc:  # unexpected: still no traceback (it could carry data), but say what kind
        if _state["debug"]:
            raise
        if "Out of Memory Error" in str(exc):  # DuckDB's, also when wrapped by Splink
            print("error: DuckDB ran out of memory; raise duckdb_memory_limit in the link config (or leave it "
                  "unset for 80% of RAM), or lower blocking_budget_pairs_per_identity", file=sys.stderr)
            raise typer.Exit(1) from None
        print(f"error: unexpected {type(exc).__name__}; rerun with --debug for details", file=sys.stderr)
        raise typer.Exit(1) from None


# --- keys ------------------------------------------------------------------------------------------

@app.command()
def keygen(out: Annotated[Path, typer.Option("--out", help="key file to create (must not exist)")]) -> None:
    """Create a new 256-bit project secret, readable by its owner only."""
    def _do() -> str:
        key = keys.generate_key()
        keys.write_key_file(out, key)
        return keys.key_check_value(key)

    kcv = run_safely(_do)
    typer.echo(f"wrote {out}\nkey check value (KCV): {kcv}")


@app.command()
def keycheck(keyfile: Annotated[Path, typer.Argument(help="key file")]) -> None:
    """Print the key check value of a key file (safe to share: it reveals nothing about the key)."""
    kcv = run_safely(lambda: keys.key_check_value(keys.read_key_file(keyfile)))
    typer.echo(kcv)


@app.command("hash")
def hash_extract(
    config: Annotated[Path, typer.Option("--config", help="partner config YAML")],
    key: Annotated[Path, typer.Option("--key", help="key file from `linkage keygen`")],
    input: Annotated[Path, typer.Option("--input", help="raw extract (CSV, Parquet or .xlsx)")],
    out: Annotated[Path, typer.Option("--out", help="new folder for the encoded extract")],
    source: Annotated[str | None, typer.Option("--source", help="override the config's source name")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="no progress bar")] = False,
    workers: Annotated[int, typer.Option("--workers", min=1, help="worker processes (more help only on 4+ cores)")] = 1,
    no_audit: Annotated[bool, typer.Option("--no-audit", help="skip the release audit; recorded in the manifest, "
                                           "and `linkage link` then refuses the extract unless overridden")] = False,
    max_risk: Annotated[float, typer.Option("--max-risk", min=0.0, max=1.0, help="release audit threshold: "
                                            "highest worst-case re-identified share allowed")] = 0.10,
    audit_report: Annotated[Path | None, typer.Option("--audit-report", help="also write the audit report "
                                                      "(audit.md/.html/.json) to this new folder")] = None,
) -> None:
    """Partner step: clean and encode an extract with the shared key, then audit it (release gate)."""
    from linkage.audit.gate import ReleaseAuditFailed, audit_on_hash, record_no_audit
    from linkage.config import load_partner_config
    from linkage.encode import encode_extract
    from linkage.encode.hardening import weak_encoding_reasons

    secret = run_safely(keys.read_key_file, key)
    manifest = run_safely(lambda: encode_extract(config, secret, input, out,
                                                 source=source, quiet=quiet, workers=workers))
    for reason in weak_encoding_reasons(load_partner_config(config)):  # after success: errors stay one line
        print(f"warning: weak encodings: {reason}", file=sys.stderr)
    c = manifest["counts"]
    typer.echo(f"{manifest['source']}: read {c['rows_read']} rows, accepted {c['rows_accepted']}, "
               f"rejected {c['rows_rejected']} (see {out / 'rejected.csv'}); {c['records']} records, "
               f"{c['identities']} identifier sets; KCV {manifest['kcv']}; "
               f"{manifest['elapsed_seconds']:.1f}s")
    if no_audit:
        record_no_audit(out, "linkage hash --no-audit")
        print("warning: --no-audit: no release audit ran (recorded in the manifest; `linkage link` will refuse "
              "this extract unless overridden)", file=sys.stderr)
        return

    def _audit() -> dict:
        record = audit_on_hash(out, config, secret, input, max_risk=max_risk, report_dir=audit_report)
        if record["status"] != "passed":
            raise ReleaseAuditFailed(f"release audit FAILED: {record['strongest_attack']} re-identifies "
                                     f"{100 * record['risk']:.1f}% of records (threshold {100 * max_risk:.1f}%); "
                                     "do not release this extract (verdict recorded in its manifest)",
                                     file=str(out))
        return record

    record = run_safely(_audit)
    typer.echo(f"release audit passed: highest worst-case re-identification {100 * record['risk']:.1f}% "
               f"(threshold {100 * max_risk:.1f}%), recorded in {out / 'manifest.json'}")


@app.command()
def schemas(out: Annotated[Path, typer.Option("--out")] = Path("schemas")) -> None:
    """Export the JSON Schemas of every config and manifest to a folder."""
    from linkage.config import export_schemas

    for path in run_safely(export_schemas, out):
        typer.echo(f"wrote {path}")


# --- cohort ----------------------------------------------------------------------------------------

@app.command()
def cohort(
    encoded: Annotated[list[Path], typer.Argument(help="encoded extract folders (payload.parquet + manifest.json)")],
    config: Annotated[Path, typer.Option("--config", help="cohort config, e.g. configs/cohorts/high_harm.yaml")],
    link: Annotated[Path, typer.Option("--link", help="link output folder holding crosswalk.parquet")],
    out: Annotated[Path, typer.Option("--out", help="release folder to create (must be new or empty)")],
    quiet: Annotated[bool, typer.Option("--quiet", help="no progress lines")] = False,
) -> None:
    """Build de-identified risk-factor tables for a cohort under disclosure control."""
    from linkage.cohort import build_cohort

    result = run_safely(build_cohort, config, link, encoded, out, quiet=quiet)
    typer.echo(f"wrote {len(result['files'])} files to {out} (cohort of about {result['people_rounded']} "
               f"people; disclosure rules fired: {sum(result['disclosure_summary'].values())} cells)")


# --- synthetic data --------------------------------------------------------------------------------

@app.command()
def synth(
    people: Annotated[int, typer.Option("--people", min=1, help="people in the population (each in >= 1 extract)")],
    seed: Annotated[int, typer.Option("--seed", help="random seed; same people + seed = identical files")],
    out: Annotated[Path, typer.Option("--out", help="output folder to create (must not exist or be empty)")],
    params: Annotated[Path | None, typer.Option("--params", help="YAML of generator settings (synth-params)")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="no progress display")] = False,
) -> None:
    """Write synthetic police, education and social-care extracts with truth.csv for testing linkage."""
    from linkage.synth import generate_extracts, load_params

    def _do() -> dict:
        settings = load_params(params) if params is not None else None
        return generate_extracts(people, seed, out, params=settings, quiet=quiet)

    summary = run_safely(_do)
    rows = ", ".join(f"{name} {n:,}" for name, n in summary["rows"].items())
    typer.echo(f"wrote {out}: {summary['people']:,} people; rows: {rows}; "
               f"high-harm people: {summary['high_harm_people']}")


# --- link and evaluate -----------------------------------------------------------------------------

@app.command()
def link(
    encoded: Annotated[list[Path], typer.Argument(help="encoded extract folders from `linkage hash`")],
    out: Annotated[Path, typer.Option("--out", help="link folder to create (must be new or empty)")],
    config: Annotated[Path | None, typer.Option("--config", help="link config (default configs/linkage.yaml)")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="no progress lines")] = False,
    backend: Annotated[str, typer.Option("--backend", help="duckdb (one machine) or spark (pip install "
                                                            "'linkage[spark]', needs Java)")] = "duckdb",
    spark_master: Annotated[str | None, typer.Option(
        "--spark-master", help="Spark master URL, e.g. local[4] or spark://host:7077 (default local[*])")] = None,
    spark_conf: Annotated[list[str] | None, typer.Option(
        "--spark-conf", help="extra Spark setting KEY=VALUE, repeatable (see docs/scaling.md)")] = None,
    allow_unaudited: Annotated[bool, typer.Option("--allow-unaudited", help="link extracts whose manifest "
                                                  "records no passing release audit (reported)")] = False,
) -> None:
    """VRN step: link encoded extracts into persons (crosswalk, scored pairs, model, report)."""
    from linkage.audit.gate import REQUIRE_AUDIT
    from linkage.link import link_extracts

    if allow_unaudited:
        print("warning: --allow-unaudited: extracts without a passing release audit are linked", file=sys.stderr)
    gate = REQUIRE_AUDIT.set(not allow_unaudited)
    try:
        m = run_safely(link_extracts, encoded, out, config, backend, quiet=quiet, spark_master=spark_master,
                       spark_conf=spark_conf)
    finally:
        REQUIRE_AUDIT.reset(gate)
    c, g = m["counts"], m["chain_guards"]
    typer.echo(f"wrote {out}: {sum(c['records'].values()):,} records -> {c['persons']:,} persons "
               f"({c['persons_in_two_or_more_sources']:,} in two or more sources); flagged: "
               f"{g['clusters_with_conflicting_identifiers']} identifier conflicts, "
               f"{g['clusters_over_size_limit']} oversized; {m['timings_seconds']['total']:.1f}s")


@app.command()
def evaluate(
    link_dir: Annotated[Path, typer.Option("--link", help="link folder from `linkage link`")],
    truth: Annotated[Path, typer.Option("--truth", help="truth CSV: source, local_id, person_id")],
    key: Annotated[Path, typer.Option("--key", help="key file (maps local ids to record ids)")],
    json_out: Annotated[Path | None, typer.Option("--json", help="also write the metrics as JSON")] = None,
) -> None:
    """Pairwise precision, recall and F1 plus cluster metrics of a link against known truth."""
    from linkage.io import write_json
    from linkage.link import evaluate_link

    r = run_safely(evaluate_link, link_dir, truth, key)
    p, c = r["pairwise"], r["clusters"]
    typer.echo(f"records evaluated: {r['records']:,}\n"
               f"pairwise: precision {p['precision']:.4f}  recall {p['recall']:.4f}  F1 {p['f1']:.4f}  "
               f"(TP {p['true_positives']:,}, FP {p['false_positives']:,}, FN {p['false_negatives']:,})\n"
               f"clusters: {c['predicted_persons']:,} predicted vs {c['true_persons']:,} true; exactly recovered "
               f"{c['exactly_recovered']:,} (precision {c['precision']:.4f}, recall {c['recall']:.4f}); "
               f"split persons {c['split_persons']:,}, merged clusters {c['merged_clusters']:,}; "
               f"B-cubed P {c['bcubed_precision']:.4f} R {c['bcubed_recall']:.4f}")
    if json_out is not None:
        write_json(json_out, r)


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", help="new folder for everything the demo writes")] = Path("demo-out"),
    people: Annotated[int, typer.Option("--people", help="synthetic population size")] = 10000,
    seed: Annotated[int, typer.Option("--seed")] = 2024,
) -> None:
    """Run the whole job end to end on built-in synthetic data: synth → keygen → hash → link → cohort."""
    from linkage.demo import run_demo

    summary = run_safely(run_demo, out, people=people, seed=seed)
    typer.echo(f"\nDemo finished in {summary['elapsed_seconds']:.0f}s.")
    typer.echo(f"High-harm cohort (rounded, as released to researchers): {summary['cohort_people_rounded']} people")
    for row in summary.get("cohort_summary") or []:
        typer.echo("  " + ", ".join(f"{k}: {v}" for k, v in row.items()))
    typer.echo(f"Linkage report:  {summary['reports']['link']}")
    typer.echo(f"Cohort report:   {summary['reports']['cohort']}")
    typer.echo(f"Researcher tables: {Path(summary['reports']['cohort']).parent}")


# --- privacy audit ---------------------------------------------------------------------------------

@app.command()
def audit(
    encoded: Annotated[Path, typer.Argument(help="encoded extract folder from `linkage hash`")],
    reference: Annotated[Path | None, typer.Option("--reference", help="frequency CSV field,value,weight "
                                                   "(default: the shipped UK name list)")] = None,
    max_risk: Annotated[float | None, typer.Option("--max-risk", min=0.0, max=1.0, help="fail (exit 4) when "
                                                   "any column's verified re-identified share exceeds this")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="report folder to create (audit.md/.html/.json)")] = None,
    config: Annotated[Path | None, typer.Option("--config", help="partner config (to verify the attacks)")] = None,
    key: Annotated[Path | None, typer.Option("--key", help="key file (to verify the attacks)")] = None,
    input: Annotated[Path | None, typer.Option("--input", help="raw extract (to verify the attacks)")] = None,
    worst_case: Annotated[bool, typer.Option("--worst-case", help="attacker's reference = this extract's own "
                                             "name frequencies (needs --config and --input)")] = False,
    reference_input: Annotated[Path | None, typer.Option("--reference-input", help="raw extract of an independent "
                                                         "population, same layout: the realistic attacker's "
                                                         "reference for the attack suite")] = None,
) -> None:
    """Partner step before release: attack the encoded extract without the key and report the risk."""
    from linkage.audit import audit_extract

    def _do() -> dict:
        secret = keys.read_key_file(key) if key is not None else None
        return audit_extract(encoded, reference, max_risk, config=config, key=secret, clear_input=input,
                             worst_case_reference=worst_case, out_dir=out, reference_input=reference_input)

    result = run_safely(_do)
    for row in result["columns"]:
        share = row["records_reidentified_share"]
        shown = "not verified" if share is None else f"{100 * share:.1f}% of records re-identified"
        typer.echo(f"{row['column']:24s} {row['attack']}: {shown}")
    from linkage.audit.suite import risk_of

    for row in result.get("attacks") or []:
        typer.echo(f"{row['column']:24s} {row['attack']}: {100 * row['records_reidentified_share']:.1f}% of records "
                   f"re-identified ({100 * risk_of(row):.1f}% counted by the gate)")
    from linkage.audit.report import verdict

    typer.echo(verdict(result) + (f" Report: {out}" if out else ""))
    if not result["passed"]:
        raise typer.Exit(4)


if __name__ == "__main__":  # pragma: no cover
    app()
