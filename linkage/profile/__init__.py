"""``linkage profile``: the SNA's serious-violence profile and area concentration of risk factors.

``build_profile(config, link_dir, encoded_dirs, out_dir)`` reads the crosswalk and payloads through the
cohort stage's input reader, computes the figures of :mod:`linkage.profile.figures`, releases every count
through :mod:`linkage.profile.release` (disclosure control) and writes CSV + Parquet tables, one
``report.html`` and ``manifest.json`` atomically. Definitions: docs/needs-assessment.md.
"""

from __future__ import annotations

import datetime as dt
import secrets
from pathlib import Path
from typing import Any

from linkage.cohort.inputs import read_inputs
from linkage.cohort.intruder import ReleaseRefused
from linkage.cohort.offences import OffenceClassifier
from linkage.cohort.register import ReleaseRegister
from linkage.cohort.report import write_tables
from linkage.errors import LinkageInputError
from linkage.io import PhaseTimer, atomic_output_dir, check_output_dir, sha256_file, write_json
from linkage.profile.config import load_profile_config
from linkage.profile.denominators import load_denominators
from linkage.profile.figures import occurrences
from linkage.profile.release import ProfileRelease
from linkage.profile.tables import build_profile_tables

__all__ = ["build_profile", "profile_from_frames"]


def profile_from_frames(loaded, police, payloads: dict | None = None, denominators=None) -> ProfileRelease:
    """The whole profile from in-memory frames (police payload rows with ``person_id``)."""
    from linkage.profile.areas import area_section

    cfg = loaded.profile
    pc = cfg.police
    if pc.ho_class not in police or pc.description not in police:
        raise LinkageInputError("payload column needed by the profile is missing",
                                file=f"{pc.source} payload.parquet", field=pc.ho_class)
    police = police.reset_index(drop=True)
    classifier = OffenceClassifier(loaded.offences, police[pc.ho_class], police[pc.description])
    occ = occurrences(police, classifier, cfg)
    den = denominators if denominators is not None else load_denominators(loaded.paths.get("denominators"))
    section = None
    if cfg.areas.enabled and payloads:
        section = area_section(loaded, payloads, den)
    health = (payloads or {}).get(cfg.health.source)
    return build_profile_tables(occ, police, cfg, den, ProfileRelease(cfg.disclosure), section, health)


def build_profile(config_path: str | Path | None, link_dir: str | Path, encoded_dirs: list[str | Path],
                  out_dir: str | Path, *, denominators: str | Path | None = None, quiet: bool = False,
                  analysis_key: Any = None, register: str | Path | None = None) -> dict[str, Any]:
    """Build the profile release in ``out_dir``; returns a JSON-ready summary.

    ``encoded_dirs`` are the partners' attribute packages, opened with ``analysis_key`` (the analysis
    environment's private key or its file); ``link_dir`` the crosswalk release (or a link folder).
    Before anything is written the release passes the cohort releases' checks: the code lists, the
    integer-programming intruder (:class:`ReleaseRefused`, exit 3, when it narrows a sensitive count) and,
    with ``register`` (the VRN-internal release register), differencing against earlier profile releases.
    """
    from linkage.profile.report import build_report

    timer = PhaseTimer(echo=not quiet)
    check_output_dir(out_dir)
    loaded = load_profile_config(config_path)
    if denominators is not None:
        loaded.paths["denominators"] = str(denominators)
    cfg = loaded.profile
    with timer.phase("read crosswalk and payloads"):
        if isinstance(analysis_key, (str, Path)):
            from linkage.keys import read_analysis_private_key

            analysis_key = read_analysis_private_key(analysis_key)
        inputs = read_inputs(link_dir, list(encoded_dirs), analysis_key)
    police = inputs.payloads.get(cfg.police.source)
    if police is None:
        raise LinkageInputError(f"no encoded extract for the police source '{cfg.police.source}'")
    with timer.phase("profile figures under disclosure control, attacked by the release intruder"):
        den = load_denominators(loaded.paths.get("denominators"))
        release = profile_from_frames(loaded, police, inputs.payloads, den)
    intruder = release.intruder
    assert intruder is not None
    accepted = cfg.disclosure.risk_accepted
    if not intruder.passed and accepted is None:
        raise ReleaseRefused(intruder.error_line())
    if accepted is not None:  # a weakened policy goes out only with its override and verdict on record
        release.log.add("(policy)", "override:" + "; ".join(cfg.disclosure.weakenings()), 1,
                        f"risk accepted by {accepted.accepted_by}; intruder verdict "
                        f"{'pass' if intruder.passed else 'FAIL'}")
    reg = ReleaseRegister.open(register) if register is not None else None
    if reg is not None:
        with timer.phase("attack it together with earlier releases (release register)"):
            release.check_earlier(reg, cfg.name)
    release_id = secrets.token_hex(6)
    symbol = cfg.disclosure.symbol
    with timer.phase("write release"), atomic_output_dir(out_dir) as tmp:
        files = write_tables(release, tmp, symbol)  # type: ignore[arg-type]
        build_report(release, cfg, loaded.paths).write(tmp / "report.html")
        files.append("report.html")
        write_json(tmp / "manifest.json", {
            "kind": "profile-release", "release_id": release_id,
            "release_register": "checked" if reg is not None else "not used: differencing against earlier "
                                                                   "releases was not checked",
            "created": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "inputs": {"sha256": inputs.checksums},
            "config": cfg.model_dump(mode="json"), "paths": loaded.paths,
            "denominators": loaded.paths.get("denominators", "shipped ONS Census 2021 districts"),
            "disclosure": {"settings": cfg.disclosure.model_dump(mode="json"), "log": release.log.entries,
                           "summary": release.log.summary(), "intruder": intruder.summary()},
            "outputs": {f: sha256_file(tmp / f) for f in files}, "timings": timer.timings})
        # Registered before the folder is committed (as for cohorts): never a release the register lacks.
        if reg is not None:
            reg.record_cells(release_id, cfg.name, release.populations, release.cells(), release.relations(),
                             cfg.disclosure)
    return {"out_dir": str(out_dir), "files": files + ["manifest.json"], "tables": sorted(release.tables),
            "disclosure_summary": release.log.summary(), "intruder": intruder.summary()}
