"""The ``linkage`` command: a thin layer over the library API.

Each command parses its arguments, calls one API function and prints a short summary. Errors of the
``LinkageError`` family become one line on stderr and a non-zero exit; ``--debug`` (before or after the
command) adds a traceback scrubbed of every message that could quote a value.
Typer (on Click) was chosen for argument parsing because its commands are plain typed functions.
"""

from __future__ import annotations

import contextlib
import errno
import signal
import sys
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
import typer.core

from linkage import keys
from linkage.errors import LinkageError

T = TypeVar("T")

class _DebugAnywhere(typer.core.TyperGroup):
    """Accept ``--debug`` before or after the subcommand (``linkage link --debug …`` too)."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        end = args.index("--") if "--" in args else len(args)
        if "--debug" in args[:end]:
            args = ["--debug"] + [a for a in args[:end] if a != "--debug"] + args[end:]
        return super().parse_args(ctx, args)


app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, cls=_DebugAnywhere,
                  help="Privacy-preserving record linkage for a Violence Reduction Network.")

_state = {"debug": False}


def _print_version(value: bool) -> None:
    if value:
        from linkage import __version__

        typer.echo(f"linkage {__version__}")
        raise typer.Exit()


def pip_extra(extra: str) -> str:
    """``pip install 'linkage[extra]'`` for help text: the bracket escaped so Rich does not read it as markup."""
    return f"pip install 'linkage\\[{extra}]'"


@app.callback()
def _main(debug: Annotated[bool, typer.Option("--debug", help="show a traceback (scrubbed of values) on error; "
                                              "allowed before or after the command")] = False,
          version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                                help="print the version and exit")] = False) -> None:
    _state["debug"] = debug


class Terminated(BaseException):
    """SIGTERM or SIGHUP arrived: unwind like Ctrl-C so every temporary folder is removed on the way out."""


def _on_signal(signum: int, frame: object) -> None:
    raise Terminated(signum)


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: Any = None, line: str | None = None) -> None:
    print(f"warning: {message}", file=sys.stderr)


def scrubbed_traceback(exc: BaseException) -> str:
    """The traceback of ``exc`` and its causes: frames (file, line, code) and exception types only.

    Messages of exceptions raised outside this package are dropped: pyarrow, pandas, pydantic and the
    standard library quote the offending value (a whole CSV row, a date, a name) in their messages.
    Our own ``LinkageError`` messages are written never to carry a value, so they are kept.
    """
    lines: list[str] = []
    seen: set[int] = set()
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append(current)
        current = current.__cause__ or current.__context__
    for item in reversed(chain):
        lines.append("Traceback (most recent call last, values scrubbed):")
        for frame in traceback.extract_tb(item.__traceback__):
            lines.append(f'  File "{frame.filename}", line {frame.lineno}, in {frame.name}')
            if frame.line:
                lines.append(f"    {frame.line.strip()}")
        shown = str(item) if isinstance(item, LinkageError) else "(message withheld: it may quote data)"
        lines.append(f"{type(item).__module__}.{type(item).__qualname__}: {shown}")
    return "\n".join(lines)


def describe_unexpected(exc: BaseException) -> tuple[str, int]:
    """One actionable line (and exit code) for failures that are not ``LinkageError``; never a value."""
    text = str(exc)
    if "Out of Memory Error" in text:  # DuckDB's, also when wrapped by Splink
        return ("DuckDB ran out of memory; raise duckdb_memory_limit in the link config (or leave it unset for "
                "80% of RAM), or lower blocking_budget_pairs_per_identity"), 1
    if isinstance(exc, MemoryError):
        return "out of memory; lower chunk_rows in the config or free memory and rerun; no output was written", 1
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        where = f" writing {exc.filename}" if getattr(exc, "filename", None) else ""
        return f"disk full{where}; free space and rerun (no output was written)", 1
    if isinstance(exc, OSError) and exc.errno in (errno.EACCES, errno.EPERM):
        return f"permission denied: {exc.filename or 'a file or folder'}; check its permissions", 1
    if isinstance(exc, OSError) and exc.errno == errno.ENOENT:
        return f"file or folder not found: {exc.filename or '(unnamed)'}", 1
    if isinstance(exc, OSError):
        return f"input/output error ({exc.strerror or type(exc).__name__}); no output was written", 1
    if isinstance(exc, OverflowError):
        return "a number is too large to store (over 64 bits); check the numeric columns of the input", 1
    if isinstance(exc, UnicodeError):
        return "text that is not valid in its declared encoding; set input.encoding in the config", 1
    if isinstance(exc, RecursionError):
        return "an input is nested too deeply to read (hostile or damaged file?)", 1
    if type(exc).__name__ == "InterruptException":  # DuckDB's Ctrl-C, raised from inside a query
        return "interrupted; no output was written", 130
    if type(exc).__name__ == "EMTrainingException":
        return ("the model could not be trained: too few comparable record pairs (are the extracts empty or "
                "encoded with different settings?)"), 1
    return f"unexpected {type(exc).__name__}; rerun with --debug for a traceback (values are not shown)", 1


def run_safely(func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call the API; turn failures into one line and an exit code. ``--debug`` adds a scrubbed traceback.

    SIGTERM and SIGHUP are turned into an exception for the duration of the call, so atomic output
    folders and spill folders are removed by the same clean-up paths as on any other error.
    """
    previous = {}
    for sig in (signal.SIGTERM, signal.SIGHUP):
        with contextlib.suppress(ValueError):  # not the main thread: leave signals alone
            previous[sig] = signal.signal(sig, _on_signal)
    show = warnings.showwarning
    warnings.showwarning = _show_warning
    try:
        return func(*args, **kwargs)
    except LinkageError as exc:
        _debug_trace(exc)
        print(f"error: {exc}", file=sys.stderr)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt as exc:
        _debug_trace(exc)
        print("error: interrupted; no output was written", file=sys.stderr)
        raise typer.Exit(130) from None
    except Terminated as exc:
        _debug_trace(exc)
        print("error: terminated by a signal; no output was written", file=sys.stderr)
        raise typer.Exit(143) from None
    except Exception as exc:  # unexpected: never the message (it could carry data), but say what to do
        _debug_trace(exc)
        message, code = describe_unexpected(exc)
        print(f"error: {message}", file=sys.stderr)
        raise typer.Exit(code) from None
    finally:
        warnings.showwarning = show
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _debug_trace(exc: BaseException) -> None:
    if _state["debug"]:
        print(scrubbed_traceback(exc), file=sys.stderr)


# --- keys ------------------------------------------------------------------------------------------

@app.command()
def keygen(
    out: Annotated[Path, typer.Option("--out", help="key file to create (must not exist)")],
    analysis: Annotated[bool, typer.Option("--analysis", help="make the analysis environment's key pair instead: "
                                           "--out is the private key, the public key goes to --public-out")] = False,
    public_out: Annotated[Path | None, typer.Option("--public-out", help="with --analysis: public key file "
                                                    "(default: --out with .pub appended)")] = None,
) -> None:
    """Create a new 256-bit project secret (or, with --analysis, a key pair), readable by its owner only."""
    if analysis:
        public = public_out if public_out is not None else out.with_name(out.name + ".pub")
        fingerprint = run_safely(keys.write_analysis_keypair, out, public)
        typer.echo(f"wrote {out} (private: keep in the analysis environment)\nwrote {public} (public: send to "
                   f"partners)\npublic key fingerprint: {fingerprint}\npartners confirm this fingerprint with you "
                   "out of band before sending data")
        return

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
    config: Annotated[str, typer.Option("--config", help="partner config YAML, or a shipped config's name "
                                        "(police, education, social_care, health, febrl; unhardened/police "
                                        "etc.: the old accuracy profile, NOT FOR RELEASE)")],
    input: Annotated[str, typer.Option("--input", help="raw extract (CSV, Parquet or .xlsx), or a database URL "
                                       "such as postgresql://user@host/db (" + pip_extra("db") + ")")],
    key: Annotated[Path | None, typer.Option("--key", help="key file from `linkage keygen`")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="new folder for the encoded extract")] = None,
    source: Annotated[str | None, typer.Option("--source", help="override the config's source name")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="no progress bar")] = False,
    workers: Annotated[int, typer.Option("--workers", min=1, help="worker processes (more help only on 4+ cores)")] = 1,
    analysis_key: Annotated[Path | None, typer.Option(
        "--analysis-key", help="the analysis environment's PUBLIC key file: the payload is encrypted to it "
                               "(without it no attribute package is written)")] = None,
    attributes_out: Annotated[Path | None, typer.Option(
        "--attributes-out", help="new folder for the attribute package (default: <out>-attributes)")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="report per field what would be accepted, blanked "
                                          "or rejected; needs no key, writes nothing")] = False,
    table: Annotated[str | None, typer.Option("--table", help="database input: table (or schema.table)")] = None,
    query: Annotated[str | None, typer.Option("--query", help="database input: a SELECT giving the extract")] = None,
    password_file: Annotated[Path | None, typer.Option(
        "--password-file", help="database input: file holding the password (else $LINKAGE_DB_PASSWORD)")] = None,
    no_audit: Annotated[bool, typer.Option("--no-audit", help="skip the release audit (closed test environments "
                                           "only); recorded in the manifest, and `linkage link` then refuses the "
                                           "extract unless --allow-unaudited")] = False,
    max_risk: Annotated[float | None, typer.Option(
        "--max-risk", min=0.0, max=1.0, help="release audit threshold: when the worst-case re-identified share "
                                             "exceeds it, exit 4 and write nothing (default 0.10)")] = None,
    audit_report: Annotated[Path | None, typer.Option("--audit-report", help="also write the audit report "
                                                      "(audit.md/.html/.json) to this new folder")] = None,
) -> None:
    """Partner step: write the identifier package (for the linkage unit) and the encrypted attribute package,
    published only when the release audit of the identifier package passes (the release gate)."""
    import linkage
    from linkage.audit.gate import DEFAULT_MAX_RISK
    from linkage.encode.sources import DatabaseSource, open_input
    from linkage.resources import resolve_config

    if dry_run:
        # Not through linkage.encode_extract: a dry run needs no key, encodes nothing and writes nothing, which
        # is a different contract (and a different result, a per-field report); it is the library's
        # linkage.encode.dryrun.dry_run, the same function `linkage init` calls.
        from linkage.encode.dryrun import dry_run as check_extract

        report = run_safely(lambda: check_extract(resolve_config(config), open_input(
            input, table=table, query=query, password_file=password_file), source=source, quiet=quiet))
        typer.echo(report.render())
        return
    if key is None or out is None:
        typer.echo("error: --key and --out are required (or use --dry-run to check the config first)", err=True)
        raise typer.Exit(2)

    # The options are checked in this order before any work, so a user sees the first mistake first.
    config_path = run_safely(resolve_config, config)
    secret = run_safely(keys.read_key_file, key)
    source_input = run_safely(open_input, input, table=table, query=query, password_file=password_file)
    if not no_audit and isinstance(source_input, DatabaseSource):
        no_audit = True  # the audit re-reads the clear extract from a file; audit an export with `linkage audit`
        print("warning: database input: the release audit runs on files only; run `linkage audit` on an export",
              file=sys.stderr)
    threshold = DEFAULT_MAX_RISK if max_risk is None else max_risk
    # The public API does the work (file and database inputs alike); the command names its own reason for a
    # skipped audit, and prints its own warning for it below.
    extract = run_safely(lambda: linkage.encode_extract(
        source_input, out, config=config_path, key=secret, source=source, quiet=quiet, workers=workers,
        analysis_public_key=analysis_key, attributes_out=attributes_out, audit=not no_audit, max_risk=threshold,
        audit_report=audit_report, no_audit_reason="linkage hash --no-audit"))
    manifest, record = extract.manifest, extract.release_audit or {}
    c = manifest["counts"]
    typer.echo(f"{manifest['source']}: read {c['rows_read']} rows, accepted {c['rows_accepted']}, "
               f"rejected {c['rows_rejected']}, values blanked {sum(c.get('blanked_by_reason', {}).values())} "
               f"(see {out / 'rejected.csv'}); {c['records']} records, "
               f"{c['identities']} identifier sets; KCV {manifest['kcv']}; "
               f"{manifest['elapsed_seconds']:.1f}s")
    attributes = manifest.get("attribute_package")
    if attributes is not None:
        typer.echo(f"identifier package (for the linkage unit): {out}\nattribute package (for the analysis "
                   f"environment only): {attributes['path']}, {len(attributes['columns'])} columns, encrypted to "
                   f"{attributes['recipient_fingerprint']}")
    else:
        typer.echo(f"identifier package (for the linkage unit): {out}; no attribute package (no --analysis-key)",
                   err=True)
    if no_audit:
        print("warning: --no-audit: no release audit ran (recorded in the manifest; `linkage link` will refuse "
              "this extract unless --allow-unaudited is given)", file=sys.stderr)
    else:
        typer.echo(f"release audit passed: highest worst-case re-identification {100 * record['risk']:.1f}% "
                   f"(threshold {100 * threshold:.1f}%), recorded in {out / 'manifest.json'}")


@app.command()
def init(
    input: Annotated[Path, typer.Option("--input", help="the extract (CSV, Parquet or .xlsx); only a sample is read")],
    out: Annotated[Path, typer.Option("--out", help="config file to write (must not exist)")],
    source: Annotated[str | None, typer.Option("--source", help="source name (default: the file's name)")] = None,
    project_id: Annotated[str, typer.Option("--project-id", help="project id agreed by all partners")] = "my-project",
    rows: Annotated[int, typer.Option("--rows", min=10, help="rows sampled")] = 5000,
) -> None:
    """Partner step, once: write a starting config from a sample of the extract, each choice explained."""
    from linkage.encode.dryrun import dry_run as check_extract
    from linkage.init import init_config

    result = run_safely(init_config, input, out, source=source, project_id=project_id, rows=rows)
    mapped = ", ".join(f"{k}={v.get('column') or v.get('columns')}" for k, v in result["config"]["identifiers"].items())
    typer.echo(f"wrote {out} from {result['rows_sampled']:,} sampled rows: local id {result['config']['local_id']}; "
               f"{mapped}; {len(result['config']['payload'])} payload columns")
    report = run_safely(lambda: check_extract(out, input, quiet=True))
    typer.echo(f"under it, hash would accept {report.rows_accepted:,} of {report.rows_read:,} rows "
               f"({100 * report.accepted_share:.2f}%); see `linkage hash --dry-run --config {out} --input {input}`")


@app.command()
def schemas(out: Annotated[Path, typer.Option("--out")] = Path("schemas")) -> None:
    """Export the JSON Schemas of every config and manifest to a folder."""
    from linkage.config import export_schemas

    for path in run_safely(export_schemas, out):
        typer.echo(f"wrote {path}")


# --- cohort ----------------------------------------------------------------------------------------

@app.command()
def cohort(
    encoded: Annotated[list[Path], typer.Argument(help="attribute packages from `linkage hash --analysis-key`")],
    config: Annotated[str, typer.Option("--config", help="cohort config YAML, or a shipped one's name (high_harm)")],
    link: Annotated[Path, typer.Option("--link", help="crosswalk release from `linkage export-crosswalk` (or a "
                                                      "link folder) holding crosswalk.parquet + manifest.json")],
    out: Annotated[Path, typer.Option("--out", help="release folder to create (must be new or empty)")],
    quiet: Annotated[bool, typer.Option("--quiet", help="no progress lines")] = False,
    analysis_key: Annotated[Path | None, typer.Option(
        "--analysis-key", help="the analysis environment's PRIVATE key file (opens the attribute packages)")] = None,
    register: Annotated[Path | None, typer.Option(
        "--register", help="VRN-internal release register: refuse releases that differ from an earlier one "
                           "by 1-9 people, and record this one")] = None,
    checker_log: Annotated[Path | None, typer.Option(
        "--checker-log", help="VRN-internal JSON for the output checker: the intruder's per-cell intervals "
                              "(never put it in the release folder)")] = None,
) -> None:
    """Analysis step: build de-identified risk-factor tables for a cohort under disclosure control."""
    from linkage.cohort import build_cohort
    from linkage.resources import resolve_config

    packages: list[str | Path] = list(encoded)
    result = run_safely(lambda: build_cohort(resolve_config(config, "cohort"), link, packages, out, quiet=quiet,
                                             analysis_key=analysis_key, register=register, checker_log=checker_log))
    typer.echo(f"wrote {len(result['files'])} files to {out} (cohort of about {result['people_rounded']} "
               f"people; disclosure rules fired: {sum(result['disclosure_summary'].values())} cells)")


# --- profile (SNA) ----------------------------------------------------------------------------------

@app.command()
def profile(
    encoded: Annotated[list[Path], typer.Argument(help="attribute packages (police; education, social care for "
                                                       "the area tables; health for A&E)")],
    link: Annotated[Path, typer.Option("--link", help="crosswalk release from `linkage export-crosswalk` (or a "
                                                      "link folder)")],
    out: Annotated[Path, typer.Option("--out", help="release folder to create (must be new or empty)")],
    config: Annotated[Path | None, typer.Option(
        "--config", help="profile config (default configs/profile.yaml)")] = None,
    denominators: Annotated[Path | None, typer.Option(
        "--denominators", help="population CSV (default: shipped ONS Census 2021 districts; "
                               "synth: population.csv)")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="no progress lines")] = False,
    analysis_key: Annotated[Path | None, typer.Option(
        "--analysis-key", help="the analysis environment's PRIVATE key file (opens the attribute packages)")] = None,
    register: Annotated[Path | None, typer.Option(
        "--register", help="VRN-internal release register: refuse a profile whose occurrences differ from an "
                           "earlier one's by 1-9, attack it together with earlier ones, and record it")] = None,
) -> None:
    """Analysis step: the SNA serious-violence profile and area concentration of risk factors, disclosure-controlled."""
    from linkage.profile import build_profile
    from linkage.resources import configs_dir

    cfg = config if config is not None else configs_dir() / "profile.yaml"
    result = run_safely(build_profile, cfg, link, encoded, out, denominators=denominators, quiet=quiet,
                        analysis_key=analysis_key, register=register)
    typer.echo(f"wrote {len(result['files'])} files to {out} ({len(result['tables'])} tables; disclosure rules "
               f"fired: {sum(result['disclosure_summary'].values())} cells)")


# --- synthetic data --------------------------------------------------------------------------------

@app.command()
def synth(
    people: Annotated[int, typer.Option("--people", min=1, help="people in the population (each in >= 1 extract)")],
    seed: Annotated[int, typer.Option("--seed", help="random seed; same people + seed = identical files")],
    out: Annotated[Path, typer.Option("--out", help="output folder to create (must not exist or be empty)")],
    params: Annotated[Path | None, typer.Option("--params", help="YAML of generator settings (synth-params)")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="no progress display")] = False,
    profile: Annotated[str, typer.Option("--profile", help="default: three partner extracts; messy: one "
                                                           "deduplication file with heavy errors (people.csv, "
                                                           "truth.csv; --params then holds synth-messy-params)")
                       ] = "default",
) -> None:
    """Write synthetic police, education and social-care extracts with truth.csv for testing linkage."""
    from linkage.synth import generate_extracts, load_params

    if profile == "messy":  # i13
        from linkage.config import load_yaml_model
        from linkage.synth.messy import generate_messy
        from linkage.synth.params import MessyParams

        messy = run_safely(lambda: generate_messy(
            people, seed, out, load_yaml_model(params, MessyParams) if params is not None else None))
        typer.echo(f"wrote {out}: {messy['people']:,} people, {messy['records']:,} records (messy profile)")
        return
    if profile != "default":
        typer.echo(f"error: --profile must be default or messy, got {profile!r}", err=True)
        raise typer.Exit(2)

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
    config: Annotated[Path | None, typer.Option("--config", help="link config (default: shipped linkage.yaml)")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="no progress lines")] = False,
    backend: Annotated[str | None, typer.Option("--backend", help="duckdb (one machine) or spark ("
                                                                   + pip_extra("spark") + ", needs Java); overrides "
                                                                   "the config's backend.kind")] = None,
    spark_master: Annotated[str | None, typer.Option(
        "--spark-master", help="Spark master URL, e.g. local[4] or spark://host:7077 (default local[*])")] = None,
    spark_conf: Annotated[list[str] | None, typer.Option(
        "--spark-conf", help="extra Spark setting KEY=VALUE, repeatable (see docs/scaling.md)")] = None,
    allow_unaudited: Annotated[bool, typer.Option("--allow-unaudited", help="also link extracts whose manifest "
                                                  "records no passing release audit (none, --no-audit, or failed); "
                                                  "each is named on stderr")] = False,
) -> None:
    """VRN step: link encoded extracts into persons (crosswalk, scored pairs, model, report). Extracts whose
    release audit did not pass are refused unless --allow-unaudited."""
    from linkage.link import link_extracts

    if allow_unaudited:
        print("warning: --allow-unaudited: extracts without a passing release audit are linked", file=sys.stderr)
    m = run_safely(link_extracts, encoded, out, config, backend, quiet=quiet, spark_master=spark_master,
                   spark_conf=spark_conf, allow_unaudited=allow_unaudited)
    c, g = m["counts"], m["chain_guards"]
    typer.echo(f"wrote {out}: {sum(c['records'].values()):,} records -> {c['persons']:,} persons "
               f"({c['persons_in_two_or_more_sources']:,} in two or more sources); flagged: "
               f"{g['clusters_with_conflicting_identifiers']} identifier conflicts, "
               f"{g['clusters_over_size_limit']} oversized; {m['timings_seconds']['total']:.1f}s")


@app.command("export-crosswalk")
def export_crosswalk_cmd(
    link_dir: Annotated[Path, typer.Option("--link", help="link folder from `linkage link`")],
    release_key: Annotated[Path, typer.Option("--release-key", help="key file from `linkage keygen`, one per "
                                              "release, kept by the linkage unit")],
    out: Annotated[Path, typer.Option("--out", help="new folder for the release (goes to the analysis environment)")],
    release_id: Annotated[str | None, typer.Option("--release-id", help="name of the release (default: the "
                                                   "release key's check value)")] = None,
) -> None:
    """Linkage-unit step: hand over a crosswalk whose person ids are keyed for this release only."""
    from linkage.link.pseudonyms import export_crosswalk

    m = run_safely(lambda: export_crosswalk(link_dir, keys.read_key_file(release_key), out, release_id=release_id))
    typer.echo(f"wrote {out}: {m['counts']['records']:,} records, {m['counts']['persons']:,} persons under "
               f"release {m['release_id']} (ids cannot be joined to other releases without {release_key})")


@app.command()
def cluster(
    link_dir: Annotated[Path, typer.Option("--link", help="link folder from `linkage link`")],
    threshold: Annotated[str, typer.Option("--threshold", help="match probability, or 'auto' (highest "
                                                                "expected F1)")],
    out: Annotated[Path, typer.Option("--out", help="new link folder to create (must be new or empty)")],
    quiet: Annotated[bool, typer.Option("--quiet", help="no progress lines")] = False,
) -> None:
    """VRN step: re-cluster a link's scored pairs at another threshold (no re-scoring; seconds)."""
    from linkage.link.recluster import recluster

    try:
        value: float | str = threshold if threshold == "auto" else float(threshold)
    except ValueError:
        typer.echo(f"error: --threshold must be 'auto' or a number, got {threshold!r}", err=True)
        raise typer.Exit(2) from None
    m = run_safely(recluster, link_dir, out, value, quiet=quiet)
    typer.echo(f"wrote {out}: threshold {m['operating_point']['threshold']:.4g} -> {m['counts']['persons']:,} "
               f"persons; largest {m['counts']['largest_cluster']}; "
               f"{m['chain_guards']['clusters_over_size_limit']} oversized")


@app.command()
def evaluate(
    link_dir: Annotated[Path, typer.Option("--link", help="link folder from `linkage link`")],
    truth: Annotated[Path, typer.Option("--truth", help="truth CSV: source, local_id, person_id")],
    key: Annotated[Path, typer.Option("--key", help="key file (maps local ids to record ids)")],
    json_out: Annotated[Path | None, typer.Option("--json", help="also write the metrics as JSON")] = None,
) -> None:
    """Pairwise precision, recall and F1 plus cluster metrics of a link against known truth."""
    from linkage.io import write_json_atomic
    from linkage.link import evaluate_link

    r = run_safely(evaluate_link, link_dir, truth, key)
    p, c, cov = r["pairwise"], r["clusters"], r["coverage"]
    typer.echo(f"records evaluated: {r['records']:,} (every truth record; {cov['truth_records_not_in_crosswalk']:,} "
               f"absent from the crosswalk count as unmatched; coverage "
               f"{100 * cov['share_of_truth_in_crosswalk']:.1f}%)\n"
               f"pairwise: precision {p['precision']:.4f}  recall {p['recall']:.4f}  F1 {p['f1']:.4f}  "
               f"(TP {p['true_positives']:,}, FP {p['false_positives']:,}, FN {p['false_negatives']:,})\n"
               f"clusters: {c['predicted_persons']:,} predicted vs {c['true_persons']:,} true; exactly recovered "
               f"{c['exactly_recovered']:,} (precision {c['precision']:.4f}, recall {c['recall']:.4f}); "
               f"split persons {c['split_persons']:,}, merged clusters {c['merged_clusters']:,}; "
               f"B-cubed P {c['bcubed_precision']:.4f} R {c['bcubed_recall']:.4f}")
    if json_out is not None:
        run_safely(write_json_atomic, json_out, r)


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", help="new folder for everything the demo writes")] = Path("demo-out"),
    people: Annotated[int, typer.Option("--people", help="synthetic population size (with fewer than ~1,500 "
                                        "the small health extract can fail its release audit, which stops the demo)"
                                        )] = 10000,
    seed: Annotated[int, typer.Option("--seed")] = 2024,
) -> None:
    """Run the whole job end to end on built-in synthetic data: synth → keygen → hash → link → cohort."""
    from linkage.demo import run_demo

    summary = run_safely(run_demo, out, people=people, seed=seed)
    typer.echo(f"\nDemo finished in {summary['elapsed_seconds']:.0f}s.")
    audits = summary.get("release_audits") or {}
    if audits:
        from linkage.audit.gate import DEFAULT_MAX_RISK

        typer.echo(f"Release audits (worst case, threshold {100 * DEFAULT_MAX_RISK:.0f}%): " + ", ".join(
            f"{source} {a['status']}" + (f" {100 * a['risk']:.1f}%" if a.get("risk") is not None else "")
            for source, a in audits.items()))
    f1 = (summary.get("evaluation") or {}).get("f1")
    if f1 is not None:
        typer.echo(f"Linkage accuracy against the synthetic truth: pairwise F1 {f1:.3f}")
    typer.echo(f"High-harm cohort (rounded, as released to researchers): {summary['cohort_people_rounded']} people")
    for row in summary.get("cohort_summary") or []:
        typer.echo("  " + ", ".join(f"{k}: {v}" for k, v in row.items()))
    typer.echo(f"Linkage report:  {summary['reports']['link']}")
    typer.echo(f"Cohort report:   {summary['reports']['cohort']}")
    typer.echo(f"Profile report:  {summary['reports']['profile']}  (the needs-assessment tables; knife-crime "
               f"cohort: {summary['reports']['knife_u25']})")
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
