"""Files that ship inside the package: configs, code lists and reference data, found via ``importlib.resources``.

A plain (non-editable) wheel install has no repository beside it, so nothing may find a shipped file by
walking up from ``__file__`` to a repo folder. Everything shipped lives under ``linkage/configs/``
(partner configs, the link config, the cohort configs with the offence and risk-factor code lists they
name) and ``linkage/data/`` (reference frequency tables), and is reached through the functions here.

A partner can name a shipped config instead of giving a path: ``linkage hash --config police`` means
``linkage/configs/partners/police.yaml``; ``unhardened/police`` the old accuracy profile (not for release).
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from linkage.errors import LinkageConfigError

#: Kinds of shipped config and the folder (under ``configs/``) that holds each.
CONFIG_KINDS = {"partner": "partners", "cohort": "cohorts", "link": ""}


def configs_dir() -> Path:
    """The folder of shipped configs (``linkage/configs``) as a real path.

    Wheels install as plain files, so the package's resource root is a file-system path; a zip import
    (which would need extracting) is refused with a clear message rather than half-working.
    """
    root = files("linkage").joinpath("configs")
    path = Path(str(root))
    if not path.is_dir() and (Path(__file__).resolve().parents[1] / "configs").is_dir():
        path = Path(__file__).resolve().parents[1] / "configs"  # a checkout before the configs moved in
    if not path.is_dir():
        raise LinkageConfigError(f"{path}: shipped configs not found; reinstall linkage (the wheel includes them)")
    return path


def data_path(name: str) -> Path:
    """A shipped reference-data file under ``linkage/data`` (e.g. ``name_frequencies.csv``)."""
    path = Path(str(files("linkage").joinpath("data", name)))
    if not path.is_file():
        raise LinkageConfigError(f"{name}: no such shipped data file")
    return path


def shipped_configs(kind: str = "partner") -> list[str]:
    """Names of the shipped configs of one kind (``partner``, ``cohort``), e.g. ``police``, ``unhardened/police``."""
    base = configs_dir() / CONFIG_KINDS[kind]
    return sorted(str(p.relative_to(base).with_suffix("")) for p in base.rglob("*.yaml"))


def default_link_config() -> Path:
    """The shipped link config (``linkage/configs/linkage.yaml``)."""
    return configs_dir() / "linkage.yaml"


def resolve_config(value: str | Path, kind: str = "partner") -> Path:
    """A config given as a path, or as the name of a shipped one (``police``, ``high_harm``).

    An existing file always wins, so a partner's own ``police.yaml`` in the working folder is used rather
    than the shipped one of the same name. A missing path that is not a shipped name is an error listing
    what ships.
    """
    path = Path(value)
    if path.is_file():
        return path
    text = str(value)
    name = text[:-5] if text.endswith((".yaml", ".yml")) else text
    if kind in CONFIG_KINDS and "\\" not in name and ".." not in Path(name).parts:
        candidate = configs_dir() / CONFIG_KINDS[kind] / f"{name}.yaml"
        if candidate.is_file():
            return candidate
    names = ", ".join(shipped_configs(kind)) if kind in CONFIG_KINDS else ""
    raise LinkageConfigError(f"{value}: config file not found, and not the name of a shipped {kind} config"
                             + (f" (shipped: {names})" if names else ""))
