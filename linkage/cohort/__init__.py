"""Risk-factor cohorts: from the crosswalk and partner payloads to de-identified researcher tables.

``build_cohort`` is the whole stage. The person-level frame it works on (index offence, factor flags,
prior offences, linked sources) stays inside the VRN: it is returned to the caller, never written to
the output folder, which receives only tables that passed disclosure control, the release intruder
(``cohort.intruder``) and, when a register is given, the differencing check (``cohort.register``).
"""

from __future__ import annotations

import datetime as dt
import secrets
from pathlib import Path
from typing import Any

import pandas as pd
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from threadpoolctl import threadpool_limits

from linkage.cohort.config import load_cohort_config
from linkage.cohort.disclosure import round_to_base
from linkage.cohort.inputs import read_inputs
from linkage.cohort.intruder import IntruderReport, ReleaseRefused, attack
from linkage.cohort.offences import OffenceClassifier
from linkage.cohort.register import ReleaseRegister, populations
from linkage.cohort.report import DESCRIPTIONS, build_report, check_code_lists, checker_pack, write_tables
from linkage.cohort.risk_factors import add_derived_police_columns, factor_sources, person_factors
from linkage.cohort.selection import police_history, school_year_age, select_cohort, to_band
from linkage.cohort.tables import WITHHELD, Release, TableBuilder, ethnic_group
from linkage.errors import LinkageInputError
from linkage.io import PhaseTimer, atomic_output_dir, check_output_dir, sha256_file, write_json
from linkage.keys import read_analysis_private_key

__all__ = ["build_cohort", "build_person_frame", "protect_against_intruder"]

AGE_SOURCES = {"police": "the police age at occurrence",
               "school_year": "school years of linked education records (may be one year low)"}


def build_person_frame(loaded, inputs) -> pd.DataFrame:
    """VRN-internal: one row per cohort member with index offence, flags, counts and linked sources."""
    cfg = loaded.cohort
    police = inputs.payloads.get(cfg.police.source)
    if police is None:
        raise LinkageInputError(f"no encoded extract for the index source '{cfg.police.source}'")
    police = add_derived_police_columns(police, cfg)
    inputs.payloads[cfg.police.source] = police
    classifier = OffenceClassifier(loaded.offences, police[cfg.police.ho_class],
                                   police[cfg.police.description]) if cfg.police.ho_class in police else None
    if classifier is None:
        raise LinkageInputError("payload column needed by the cohort config is missing",
                                file=f"{cfg.police.source} payload.parquet", field=cfg.police.ho_class)
    cohort = select_cohort(police, cfg, classifier)
    if cohort["age"].isna().all():
        estimate = school_year_age(cohort, inputs.payloads.get(
            cfg.age.school_year_estimate.source if cfg.age.school_year_estimate else ""), cfg)
        cohort["age"] = estimate.to_numpy()
        cohort["age_source"] = pd.Series(["school_year"] * len(cohort), dtype="string").where(
            cohort["age"].notna().to_numpy())
    age = pd.to_numeric(cohort["age"], errors="coerce")
    keep = pd.Series(True, index=cohort.index)
    if cfg.age.min is not None:
        keep &= ~(age < cfg.age.min).fillna(False)
    if cfg.age.max is not None:
        keep &= ~(age > cfg.age.max).fillna(False)
    cohort = cohort[keep].reset_index(drop=True)
    if cohort.empty:
        raise LinkageInputError("no one in the linked data meets the cohort definition", file=loaded.paths["cohort"])
    # Only cohort members' rows can count; the rest were needed above (co-offending, index choice).
    # Filtering keeps row labels, so the offence classifier built on the full police frame still aligns.
    members = set(cohort["person_id"])
    payloads = {s: df[df["person_id"].isin(members)] for s, df in inputs.payloads.items()}
    history = police_history(cohort, payloads[cfg.police.source], cfg)
    flags = person_factors(cohort, payloads, loaded.risk_factors, cfg, classifier)
    persons = cohort.merge(history, on="person_id").merge(flags, on="person_id")
    for src in inputs.payloads:
        persons[f"linked_{src}"] = persons["person_id"].isin(inputs.linked_to(src)).astype(bool)
    persons["ethnic_group"] = ethnic_group(persons["ethnicity"])
    persons["age_band"] = to_band(persons["age"], cfg.age.bands)
    return persons


def build_cohort(config_path: str | Path, link_dir: str | Path, encoded_dirs: list[str | Path],
                 out_dir: str | Path, *, quiet: bool = False, keep_persons: bool = False,
                 analysis_key: X25519PrivateKey | str | Path | None = None,
                 checker_log: str | Path | None = None, register: str | Path | None = None) -> dict[str, Any]:
    """Build a cohort release in ``out_dir`` (atomically) and return a JSON-ready summary.

    Before anything is written the release is attacked by ``cohort.intruder``; if it can narrow a
    sensitive count below the rounding base, :class:`ReleaseRefused` is raised and nothing is written.
    ``checker_log`` (VRN-internal, outside the release) receives the intruder's per-cell intervals for
    the output checker. ``register`` (VRN-internal) is the release register: a release whose cohort,
    sub-groups or categories differ from an earlier release's by 1-9 people is refused, and a written
    release is recorded in it. The summary holds the output files, the rounded cohort size, the released
    ``cohort_summary`` rows and the disclosure-rule counts. With ``keep_persons`` it also holds, under
    ``"persons"``, the VRN-internal person frame (a DataFrame, for checks); that frame is never written.
    ``analysis_key`` (a private key or its file) opens attribute packages; see :func:`read_inputs`.
    """
    timer = PhaseTimer(echo=not quiet)
    check_output_dir(out_dir)
    loaded = load_cohort_config(config_path)
    cfg = loaded.cohort
    with timer.phase("read crosswalk and payloads"):
        if isinstance(analysis_key, (str, Path)):
            analysis_key = read_analysis_private_key(analysis_key)
        inputs = read_inputs(link_dir, list(encoded_dirs), analysis_key)
    with timer.phase("select cohort and code risk factors"):
        persons = build_person_frame(loaded, inputs)
    with timer.phase("build tables under disclosure control"):
        builder = TableBuilder(persons, cfg, loaded.risk_factors, sorted(inputs.payloads),
                               factor_sources(loaded.risk_factors))
        release = builder.build()
        check_code_lists(release)  # before the (slow) intruder: free text in a category fails fast
    with timer.phase("attack the release (integer-programming intruder)"):
        # Under a logged override the configured (weaker) policy is what was accepted: attack, record the
        # verdict, but do not add suppression to meet the floor.
        release, intruder = protect_against_intruder(
            builder, release, cfg.disclosure, repair=cfg.disclosure.risk_accepted is None)
    if checker_log is not None:  # VRN-internal: the output checker sees why the release passed or failed
        Path(checker_log).parent.mkdir(parents=True, exist_ok=True)
        write_json(Path(checker_log), {"kind": "cohort-disclosure-log", "cohort": cfg.name,
                                       "intruder": intruder.summary(), "quantities": intruder.log_entries(),
                                       "rules": release.log.entries})
    accepted = cfg.disclosure.risk_accepted
    if not intruder.passed and accepted is None:
        raise ReleaseRefused(intruder.error_line())
    reg = ReleaseRegister.open(register) if register is not None else None
    pops = populations(builder)
    if reg is not None:
        reg.check(pops, cfg.disclosure)
        with timer.phase("attack it together with earlier releases (release register)"), threadpool_limits(1):
            for earlier_id, joint in reg.attack_with_earlier(cfg.name, pops, release, cfg.disclosure):
                if not joint.passed and accepted is None:
                    raise ReleaseRefused(joint.error_line().replace(
                        "release refused:", f"release refused: together with release {earlier_id},"))
    if accepted is not None:  # a weakened policy goes out only with its override and verdict on record
        release.log.add("(policy)", "override:" + "; ".join(cfg.disclosure.weakenings()), 1,
                        f"risk accepted by {accepted.accepted_by}; intruder verdict "
                        f"{'pass' if intruder.passed else 'FAIL'}")
    base = cfg.disclosure.rounding_base
    age_sources = sorted(set(persons["age_source"].dropna()))
    notes = [f"Cohort: {cfg.label}. Index offence = each person's most recent qualifying offence as "
             f"{' or '.join(cfg.police.offender_roles).lower()}; factors count only when dated before the "
             "index day.",
             "Age: " + (f"from {' and '.join(AGE_SOURCES.get(a, a) for a in age_sources)}."
                        if age_sources else "not available (no partner supplies an age; payloads carry no "
                                            "date of birth), so no age filter or age band was applied.")]
    release_id = secrets.token_hex(6)
    with timer.phase("write release"), atomic_output_dir(out_dir) as tmp:
        files = write_tables(release, tmp, cfg.disclosure.symbol)
        build_report(release, f"{cfg.label}: risk-factor profile", notes, cfg.disclosure).write(
            tmp / "report.html")
        (tmp / "output_checker.md").write_text(
            checker_pack(release, cfg.disclosure, intruder.summary(), notes), encoding="utf-8")
        files += ["report.html", "output_checker.md"]
        manifest = {
            "kind": "cohort-release",
            "release_id": release_id,
            "release_register": "checked" if reg is not None else "not used: differencing against earlier "
                                                                   "releases was not checked",
            "tool_version": _version(),
            "created": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "cohort": cfg.name,
            "inputs": {"sha256": inputs.checksums,
                       "payload_records_missing_from_crosswalk": {
                           s: _safe_count(n, cfg) for s, n in inputs.unlinked_records.items()}},
            "config": loaded.as_manifest(),
            "tables": {name: DESCRIPTIONS.get(name, "") for name in release.tables},
            "disclosure": {"settings": cfg.disclosure.model_dump(mode="json"),
                           "weaker_than_floor": cfg.disclosure.weakenings(),
                           "log": release.log.entries, "summary": release.log.summary(),
                           "intruder": intruder.summary()},
            "outputs": {f: sha256_file(tmp / f) for f in files},
            "timings": timer.timings,
        }
        write_json(tmp / "manifest.json", manifest)
        # Registered before the folder is committed: a register that cannot be saved leaves no release that
        # later releases would not be differenced against (the reverse failure only makes later checks stricter).
        if reg is not None:
            reg.record(release_id, cfg.name, pops, release, cfg.disclosure)
    symbol = cfg.disclosure.symbol
    summary_rows = [{k: (symbol if v is WITHHELD else v) for k, v in row.items()}
                    for row in release.tables["cohort_summary"]]
    result: dict[str, Any] = {
        "out_dir": str(out_dir), "files": files + ["manifest.json"],
        "people_rounded": round_to_base(len(persons), base), "subgroups": builder.subgroups,
        "summary": summary_rows, "disclosure_summary": release.log.summary(), "intruder": intruder.summary()}
    if keep_persons:  # VRN-internal objects for checks and benchmarks; never written
        result["persons"] = persons
        result["release"] = release
    return result


MAX_REPAIR_ROUNDS = 8


def protect_against_intruder(builder: TableBuilder, release: Release, settings, *,
                             repair: bool = True) -> tuple[Release, IntruderReport]:
    """Attack the release; while the intruder narrows a sensitive count, withhold the released cells its
    bounds lean on (logged as ``secondary_intruder``) and attack again. Returns the last release and verdict."""
    with threadpool_limits(1):
        report = attack(release.tables, settings, release.truth, release.facts, WITHHELD)
        for _ in range(MAX_REPAIR_ROUNDS if repair else 0):
            leaned = {release.keys[c] for t in report.failures for c in t.leans_on if c in release.keys}
            leaned -= set(builder.reg.suppressed)
            if report.passed or not leaned:
                break
            builder.withhold(leaned)
            release = builder.build()
            report = attack(release.tables, settings, release.truth, release.facts, WITHHELD)
    return release, report


def _safe_count(n: int, cfg) -> int | str:
    d = cfg.disclosure
    return d.symbol if d.sensitive(n) else round_to_base(n, d.rounding_base)


def _version() -> str:
    from linkage import __version__

    return __version__
