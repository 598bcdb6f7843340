"""linkage: privacy-preserving record linkage for a Violence Reduction Network.

The data's path is the architecture: partners encode (:func:`encode_extract`), the VRN links
(:func:`link_extracts`), the analysis step builds cohort tables for researchers (:func:`build_cohort`).
Each stage reads only the folders the previous stage hands over.

Every function here takes its data first, then the folder it writes, then keyword-only settings; a key
is a key file path or the key's bytes; a config is a path or the name of a shipped one (``"police"``);
folders may be given as one path or a list. Each returns a typed result (:mod:`linkage.results`) with
DataFrame accessors and a notebook display. Heavy modules are imported on first call, so
``import linkage`` stays cheap.
"""

from __future__ import annotations

__version__ = "0.1.0"

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from linkage.keys import generate_key, key_check_value, read_key_file, record_id, write_key_file

if TYPE_CHECKING:
    from linkage.encode.sources import DatabaseSource
    from linkage.results import AuditResult, CohortRelease, EncodedExtract, Evaluation, LinkResult, SyntheticExtracts

KeySource = bytes | str | Path
"""A project key: the path of a key file from ``linkage keygen``, or the 32 key bytes themselves."""

Folders = str | Path | Sequence[str | Path]
"""One folder, or a list of folders."""

__all__ = ["Folders", "KeySource", "__version__", "audit_extract", "build_cohort", "encode_extract", "evaluate_link",
           "export_crosswalk", "generate_extracts", "generate_key", "key_check_value", "link_extracts", "load_key",
           "read_key_file", "record_id", "write_analysis_keypair", "write_key_file"]


def load_key(key: KeySource) -> bytes:
    """The key bytes from a key file path, or the bytes unchanged (checked for length either way)."""
    if isinstance(key, bytes | bytearray):
        from linkage.errors import KeyFileError
        from linkage.keys import KEY_BYTES

        if len(key) != KEY_BYTES:
            raise KeyFileError(f"a key must be {KEY_BYTES} bytes, got {len(key)}")
        return bytes(key)
    return read_key_file(key)


def _folders(value: Folders) -> list[str | Path]:
    if isinstance(value, str | Path):
        return [Path(value)]
    return [Path(v) for v in value]


def encode_extract(input: str | Path | DatabaseSource, out_dir: str | Path, *, config: str | Path, key: KeySource,
                   source: str | None = None, quiet: bool = False, workers: int = 1,
                   analysis_public_key: str | Path | None = None,
                   attributes_out: str | Path | None = None, audit: bool = True, max_risk: float | None = None,
                   audit_report: str | Path | None = None, no_audit_reason: str | None = None) -> EncodedExtract:
    """Partner step: clean and encode a raw extract with the shared key, behind the release gate (``linkage hash``).

    Like the command, it encodes into a staging folder, runs the worst-case release audit on that output
    (the attack suite, with the extract's own name frequencies as the attacker's reference; the key only
    scores the guesses) and publishes the extract only if no attack re-identifies more than ``max_risk`` of
    its records. The verdict is recorded in the manifest (``release_audit``), which :func:`link_extracts`
    checks. A failed audit raises :class:`linkage.audit.gate.ReleaseAuditFailed` (the command's exit 4) and
    writes nothing (only ``audit_report``, if asked for).

    Args:
        input: the raw extract (CSV, Parquet or .xlsx), or a table or query in a database
            (:class:`linkage.encode.sources.DatabaseSource`; the release audit re-reads the clear extract from a
            file, so a database input needs ``audit=False``, and an export audited with :func:`audit_extract`).
        out_dir: the new folder for the encoded extract (tokens, payload, rejected rows, manifest);
            missing parent folders are created.
        config: the partner config YAML, or a shipped config's name (``"police"``, ``"unhardened/police"``).
        key: the project key file, or the key bytes.
        source: overrides the config's source name (two extracts of one layout).
        quiet: no progress bar, no audit progress lines.
        workers: worker processes (more help only on 4 or more cores).
        analysis_public_key: the analysis environment's public key file (``linkage keygen --analysis``): the
            payload is generalised and encrypted to it into the attribute package; ``None`` writes none.
        attributes_out: the attribute package folder (default ``<out_dir>-attributes``).
        audit: run the release audit (default). ``False`` is ``linkage hash --no-audit`` (closed test
            environments): the skipped audit is recorded in the manifest and :func:`link_extracts` refuses
            the extract unless ``allow_unaudited=True``.
        max_risk: the audit threshold, a share in [0, 1] (default 0.10, the worst-case target); the linkage
            unit refuses an extract that passed only at a threshold above 0.10.
        audit_report: also write the audit report (audit.md/.html/.json) to this new folder.
        no_audit_reason: with ``audit=False``, the reason recorded in the manifest. By default this call is
            recorded and a warning printed; a caller that names its own reason (``linkage hash --no-audit``)
            tells its user itself, so no warning is printed here.

    Returns:
        The encoded extract: counts, ``release_audit``, ``tokens()``, ``rejected()``.
    """
    import sys

    from linkage.audit.gate import (
        DEFAULT_MAX_RISK,
        LIBRARY_NO_AUDIT,
        encode_with_release_gate,
        stderr_audit_progress,
        warn_weak_encodings,
    )
    from linkage.keys import read_analysis_public_key
    from linkage.resources import resolve_config
    from linkage.results import EncodedExtract

    if max_risk is not None and not 0 <= max_risk <= 1:
        raise ValueError(f"max_risk must be a share in [0, 1], got {max_risk!r}")

    config_path = resolve_config(config)
    public = read_analysis_public_key(analysis_public_key) if analysis_public_key is not None else None
    manifest, _ = encode_with_release_gate(
        config_path, load_key(key), Path(input) if isinstance(input, str | Path) else input, out_dir, audit=audit,
        max_risk=DEFAULT_MAX_RISK if max_risk is None else max_risk, report_dir=audit_report,
        no_audit_reason=LIBRARY_NO_AUDIT if no_audit_reason is None else no_audit_reason,
        progress=None if quiet else stderr_audit_progress(), on_encoded=warn_weak_encodings(config_path),
        source=source, quiet=quiet, workers=workers, analysis_public_key=public, attributes_out=attributes_out)
    if not audit and no_audit_reason is None:
        print(f"warning: {out_dir}: encoded with audit=False: no release audit ran (recorded in the manifest; "
              "link_extracts refuses this extract unless allow_unaudited=True)", file=sys.stderr)
    return EncodedExtract(Path(out_dir), manifest)


def link_extracts(encoded: Folders, out_dir: str | Path, *, config: str | Path | None = None,
                  backend: str | None = None, quiet: bool = False, spark_master: str | None = None,
                  spark_conf: dict[str, str] | list[str] | None = None,
                  allow_unaudited: bool = False) -> LinkResult:
    """VRN step: link encoded extracts into persons (``linkage link``). Needs no key.

    Like the command, it refuses an extract whose manifest records no passing release audit (encoded with
    ``encode_extract(..., audit=False)`` or ``linkage hash --no-audit``, by an older tool that did not audit,
    or whose audit failed) with :class:`linkage.audit.gate.UnauditedExtractError`, unless
    ``allow_unaudited=True``.

    Args:
        encoded: the encoded extract folders from :func:`encode_extract`.
        out_dir: the new link folder (crosswalk, scored pairs, model, report).
        config: a link config YAML; ``None`` uses the shipped ``linkage.yaml``.
        backend: ``"duckdb"`` (one machine) or ``"spark"`` (``pip install 'linkage[spark]'``, needs Java);
            ``None``: the config's ``backend`` section decides (default DuckDB).
        quiet: no progress lines.
        spark_master, spark_conf: Spark master URL and extra settings (Spark backend only).
        allow_unaudited: link extracts without a passing release audit anyway (synthetic data, closed test
            environments); each is named on stderr.

    Returns:
        The link: counts, ``crosswalk()``, ``pairs()``, ``report_path``.
    """
    from linkage.link.run import link_extracts as _link
    from linkage.results import LinkResult

    manifest = _link(_folders(encoded), out_dir, config, backend, quiet=quiet, spark_master=spark_master,
                     spark_conf=spark_conf, allow_unaudited=allow_unaudited)
    return LinkResult(Path(out_dir), manifest)


def export_crosswalk(link: str | Path, out_dir: str | Path, *, release_key: KeySource,
                     release_id: str | None = None) -> dict[str, Any]:
    """Linkage unit → analysis environment: the crosswalk with person ids keyed per release
    (``linkage export-crosswalk``). Two releases' ids cannot be joined without the linkage unit's keys.

    Args:
        link: the link folder from :func:`link_extracts`.
        out_dir: the new crosswalk-release folder (``crosswalk.parquet`` + ``manifest.json``).
        release_key: this release's key (a ``linkage keygen`` key file, or its bytes), kept by the linkage unit.
        release_id: a label for the release (default: derived from the key).

    Returns:
        The release manifest.
    """
    from linkage.link.pseudonyms import export_crosswalk as _export

    return _export(link, load_key(release_key), out_dir, release_id=release_id)


def write_analysis_keypair(private_path: str | Path, public_path: str | Path) -> str:
    """Analysis environment, once: write its key pair (private owner-only); returns the public key's
    fingerprint, which partners confirm out of band before encrypting attribute packages to it."""
    from linkage.keys import write_analysis_keypair as _write

    return _write(private_path, public_path)


def evaluate_link(link: str | Path, *, truth: str | Path, key: KeySource) -> Evaluation:
    """Pairwise and cluster accuracy of a link against known truth (synthetic or benchmark data only).

    Args:
        link: the link folder from :func:`link_extracts`.
        truth: a CSV of ``source, local_id, person_id``.
        key: the project key (file or bytes): maps local ids to the record ids in the crosswalk.
    """
    from linkage.link.evaluate import evaluate_link as _evaluate
    from linkage.results import Evaluation

    return Evaluation(_evaluate(link, truth, load_key(key)))


def build_cohort(encoded: Folders, out_dir: str | Path, *, link: str | Path, config: str | Path,
                 quiet: bool = False, analysis_key: str | Path | None = None,
                 register: str | Path | None = None, checker_log: str | Path | None = None) -> CohortRelease:
    """Analysis step: de-identified risk-factor tables for a cohort under disclosure control (``linkage cohort``).

    Args:
        encoded: the attribute packages (from ``encode_extract(..., analysis_public_key=...)``).
        out_dir: the new release folder for researchers.
        link: the crosswalk release from ``linkage export-crosswalk`` (or a link folder).
        config: a cohort config YAML, or a shipped one's name (``"high_harm"``).
        quiet: no progress lines.
        analysis_key: the analysis environment's private key file (opens the attribute packages).
        register: the VRN-internal release register (refuses releases that can be differenced).
        checker_log: VRN-internal JSON for the output checker (the intruder's per-cell intervals).

    Returns:
        The release: ``people_rounded``, ``cohort_summary()``, ``table(name)``, ``report_path``.
    """
    from linkage.cohort import build_cohort as _build
    from linkage.resources import resolve_config
    from linkage.results import CohortRelease

    summary = _build(resolve_config(config, "cohort"), link, _folders(encoded), out_dir, quiet=quiet,
                     analysis_key=analysis_key, register=register, checker_log=checker_log)
    return CohortRelease(Path(out_dir), summary)


def audit_extract(encoded: str | Path, *, reference: str | Path | None = None, max_risk: float | None = None,
                  config: str | Path | None = None, key: KeySource | None = None,
                  clear_input: str | Path | None = None, worst_case_reference: bool = False,
                  out_dir: str | Path | None = None) -> AuditResult:
    """Partner step before release: attack an encoded extract without the key and report the risk.

    Args:
        encoded: the encoded extract folder.
        reference: a ``field,value,weight`` frequency CSV; ``None`` uses the shipped UK name list.
        max_risk: fail (``passed`` False) when any column's verified re-identified share exceeds it (0-1).
        config, key, clear_input: the partner config, key and raw extract, to verify the attacks' guesses.
        worst_case_reference: use the raw extract's own name frequencies as the attacker's reference.
        out_dir: also write the report (audit.md/.html/.json) to this new folder.
    """
    from linkage.audit import audit_extract as _audit
    from linkage.resources import resolve_config
    from linkage.results import AuditResult

    result = _audit(encoded, reference, max_risk, config=None if config is None else resolve_config(config),
                    key=None if key is None else load_key(key), clear_input=clear_input,
                    worst_case_reference=worst_case_reference, out_dir=out_dir)
    return AuditResult(result)


def generate_extracts(out_dir: str | Path, *, people: int, seed: int, quiet: bool = False,
                      **params: Any) -> SyntheticExtracts:
    """Synthetic police, education and social-care extracts with ``truth.csv``, for trying linkage.

    Args:
        out_dir: the new folder for the extracts.
        people: people in the population (each in at least one extract).
        seed: random seed; the same people and seed give identical files.
        quiet: no progress display.
        **params: generator settings (fields of ``linkage.synth.params.SynthParams``), e.g. error rates.
    """
    from linkage.results import SyntheticExtracts
    from linkage.synth import generate_extracts as _generate

    return SyntheticExtracts(Path(out_dir), _generate(people, seed, out_dir, quiet=quiet, **params))
