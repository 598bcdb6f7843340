"""The needs-assessment step of ``linkage demo``: the profile and the two shipped cohorts.

``run_needs_assessment(demo_dir, link_dir, encoded_dirs)`` is the one call the demo makes after linking:
it writes ``researcher/profile`` (``linkage profile``, with the synthetic ``population.csv`` denominators)
and ``researcher/cohort_<name>`` for every cohort config given (default: high-harm and knife under-25).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

COHORTS = ("high_harm", "knife_u25")


def run_needs_assessment(demo_dir: str | Path, link_dir: str | Path, encoded_dirs: list[str | Path], *,
                         configs: Path | None = None, cohorts: tuple[str, ...] = COHORTS,
                         quiet: bool = True, analysis_key: Any = None) -> dict[str, Any]:
    from linkage.cohort import build_cohort
    from linkage.profile import build_profile
    from linkage.resources import configs_dir

    configs = configs_dir() if configs is None else Path(configs)

    demo = Path(demo_dir)
    researcher = demo / "researcher"
    researcher.mkdir(exist_ok=True)
    population = demo / "partners" / "raw" / "population.csv"
    out: dict[str, Any] = {"profile": build_profile(configs / "profile.yaml", link_dir, encoded_dirs,
                                                    researcher / "profile",
                                                    denominators=population if population.is_file() else None,
                                                    quiet=quiet, analysis_key=analysis_key)}
    for name in cohorts:
        res = build_cohort(configs / "cohorts" / f"{name}.yaml", link_dir, encoded_dirs,
                           researcher / f"cohort_{name}", quiet=quiet, analysis_key=analysis_key)
        out[name] = {"people_rounded": res["people_rounded"], "summary": res["summary"]}
    return out
