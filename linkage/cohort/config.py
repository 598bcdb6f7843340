"""Config models for the cohort stage: offence taxonomy, risk-factor catalogue, cohort definition.

All three are YAML in ``configs/`` (``offences.yaml``, ``risk_factors.yaml``, ``cohorts/*.yaml``). The
models only describe data; the logic that applies them lives in ``offences.py``, ``risk_factors.py``,
``disclosure.py`` and ``tables.py``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from linkage.config import SCHEMA_MODELS, StrictModel, load_yaml_model

# --- offence taxonomy ------------------------------------------------------------------------------


class OffenceRule(StrictModel):
    """Offences with one of these Home Office classes, optionally narrowed by the description."""

    ho_classes: list[str] = Field(min_length=1, description="Home Office class codes, e.g. '5D', '8N'")
    description_regex: str | None = Field(
        None, description="case-insensitive regex the offence description must match (e.g. GBH within 8N)")
    description_exclude_regex: str | None = Field(
        None, description="case-insensitive regex the offence description must NOT match")


class OffenceGroup(StrictModel):
    label: str
    rules: list[OffenceRule] = Field(default_factory=list)
    includes: list[str] = Field(default_factory=list, description="other groups this group contains")

    @model_validator(mode="after")
    def _not_empty(self) -> OffenceGroup:
        if not self.rules and not self.includes:
            raise ValueError("an offence group needs rules or includes")
        return self


class OffenceFlag(StrictModel):
    """A flag on an occurrence: a payload column holding one of ``values``, or membership of an offence group."""

    label: str
    column: str | None = Field(None, description="police payload column, e.g. knife_flag")
    values: list[str] = Field(default_factory=list, description="values (case-insensitive) that set the flag")
    offence_group: str | None = Field(None, description="the flag is set for offences in this group")

    @model_validator(mode="after")
    def _one_kind(self) -> OffenceFlag:
        if (self.column is None) == (self.offence_group is None):
            raise ValueError("a flag needs exactly one of 'column' (with 'values') or 'offence_group'")
        if self.column is not None and not self.values:
            raise ValueError("a column flag needs 'values'")
        return self


class OffenceTaxonomy(StrictModel):
    """Named offence groups (serious violence by group, high-harm subset, drug offences) and flags."""

    groups: dict[str, OffenceGroup] = Field(min_length=1)
    flags: dict[str, OffenceFlag] = Field(default_factory=dict, description="occurrence flags (knife, domestic…)")

    @model_validator(mode="after")
    def _includes_exist(self) -> OffenceTaxonomy:
        for name, group in self.groups.items():
            for inc in group.includes:
                if inc not in self.groups:
                    raise ValueError(f"group '{name}' includes unknown group '{inc}'")
                if inc == name:
                    raise ValueError(f"group '{name}' includes itself")
        for name, flag in self.flags.items():
            if flag.offence_group is not None and flag.offence_group not in self.groups:
                raise ValueError(f"flag '{name}' names unknown offence group '{flag.offence_group}'")
        return self


# --- risk-factor catalogue -------------------------------------------------------------------------

ConditionOp = Literal["eq", "ne", "in", "not_in", "contains_any", "regex", "ge", "gt", "le", "lt",
                      "not_null", "is_null", "ratio_ge", "offence_group"]


class Condition(StrictModel):
    """One test on one payload column; an indicator holds when all its conditions hold."""

    column: str
    op: ConditionOp
    values: list[str] = Field(default_factory=list,
                              description="for in / not_in / contains_any (codes in a ';'-list)")
    value: int | float | str | None = Field(None, description="for eq / ne / regex / comparisons / ratio_ge")
    denominator_column: str | None = Field(None, description="ratio_ge: column / denominator_column >= value")
    group: str | None = Field(None, description="offence_group: a group of the offence taxonomy")

    @model_validator(mode="after")
    def _operands(self) -> Condition:
        op = self.op
        if op in ("in", "not_in", "contains_any") and not self.values:
            raise ValueError(f"op '{op}' needs 'values'")
        if op in ("eq", "ne", "regex", "ge", "gt", "le", "lt", "ratio_ge") and self.value is None:
            raise ValueError(f"op '{op}' needs 'value'")
        if op == "ratio_ge" and not self.denominator_column:
            raise ValueError("op 'ratio_ge' needs 'denominator_column'")
        if op == "offence_group" and not self.group:
            raise ValueError("op 'offence_group' needs 'group'")
        return self


class Indicator(StrictModel):
    """A codable sign of a factor in one source, with the date that places it in time."""

    source: str
    label: str = ""
    when: list[Condition] = Field(min_length=1)
    date_column: str = Field(description="the date that must fall strictly before the index date")
    exclude_index_crime: bool = Field(False, description="police: never count the index occurrence itself")


class Domain(StrictModel):
    label: str
    per_person: bool = Field(True, description="counted per person (False: an area attribute)")


class RiskFactor(StrictModel):
    id: str = Field(pattern=r"^[a-z0-9_]+$")
    label: str
    domain: str
    indicators: list[Indicator] = Field(default_factory=list)
    note: str = ""


class RiskFactorCatalogue(StrictModel):
    domains: dict[str, Domain] = Field(min_length=1)
    factors: list[RiskFactor] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> RiskFactorCatalogue:
        seen: set[str] = set()
        for f in self.factors:
            if f.id in seen:
                raise ValueError(f"factor id '{f.id}' appears twice")
            seen.add(f.id)
            if f.domain not in self.domains:
                raise ValueError(f"factor '{f.id}' has unknown domain '{f.domain}'")
        return self


# --- cohort definition -----------------------------------------------------------------------------


class PoliceColumns(StrictModel):
    """Where the police payload keeps what the cohort step needs."""

    source: str = "police"
    crime_ref: str = "crime_ref"
    ho_class: str = "ho_class"
    description: str = "offence_description"
    committed: str = "committed_from"
    role: str = "role"
    ethnicity: str = "ethnicity"
    area: str = "npa"
    age_at_occurrence: str = Field("age_at_occurrence", description="used when the partner supplies it")
    relationship: str = Field("victim_relationship", description="victim-offender relationship of the occurrence")
    district: str = Field("district", description="local-authority district where the offence happened")
    offender_roles: list[str] = Field(default_factory=lambda: ["SUSPECT", "OFFENDER"],
                                      description="roles that make an occurrence the person's offence")


class SchoolYearAge(StrictModel):
    """Estimate age from the national-curriculum year (the pupil's age on 31 August is nc_year + 4)."""

    source: str = "education"
    nc_year: str = "nc_year"
    event_date: str = "event_date"


class AgeSettings(StrictModel):
    """Age at index is only known if a partner supplies it: payloads carry no date of birth by design."""

    min: int | None = Field(None, ge=0, description="inclusive; people of unknown age are kept and counted")
    max: int | None = Field(None, ge=0, description="inclusive")
    school_year_estimate: SchoolYearAge | None = Field(
        default_factory=SchoolYearAge, description="fallback when the police payload has no age column")
    bands: list[tuple[int, int]] = Field(
        default_factory=lambda: [(10, 13), (14, 15), (16, 17), (18, 20), (21, 24), (25, 34), (35, 120)])


class Subgroup(StrictModel):
    """Index offences in any of ``offence_groups`` (if given) that also carry every flag in ``flags`` and,
    if given, one of ``relationships``. Earlier sub-groups win when several match."""

    label: str
    offence_groups: list[str] = Field(default_factory=list, description="index offence in any of these groups")
    flags: list[str] = Field(default_factory=list, description="flags of the offence taxonomy, all required")
    relationships: list[str] = Field(default_factory=list, description="victim-offender relationships")

    @model_validator(mode="after")
    def _not_empty(self) -> Subgroup:
        if not (self.offence_groups or self.flags or self.relationships):
            raise ValueError("a sub-group needs offence_groups, flags or relationships")
        return self


class IndexFilter(StrictModel):
    """Extra conditions a qualifying offence must meet to be an index offence (all must hold)."""

    flags: list[str] = Field(default_factory=list, description="flags of the offence taxonomy, all required "
                                                               "(e.g. knife)")
    age_min: int | None = Field(None, ge=0, description="person's age at the offence, inclusive (needs the "
                                                        "police age_at_occurrence column)")
    age_max: int | None = Field(None, ge=0, description="inclusive, e.g. 24 for 'under 25 at the offence'")
    relationships: list[str] = Field(default_factory=list, description="victim-offender relationships allowed")
    areas: list[str] = Field(default_factory=list, description="NPAs or districts of the offence allowed")


# The shipped floor of the disclosure policy (the ONS / UK LLC "10-5 rule"): a config may be stricter,
# never weaker, unless ``risk_accepted`` names who accepted the risk (the override is logged in the
# manifest and in the output-checker pack).
POLICY_FLOOR = {"suppress_min": 1, "suppress_max": 9, "rounding_base": 5, "stat_min_contributors": 10,
                "k_anonymity": 5}
LLR_NPAS = ["Central Leicester", "Charnwood", "East Leicester", "Harborough", "Hinckley & Blaby",
            "Melton & Rutland", "North West Leicestershire", "Oadby & Wigston", "South Leicester",
            "West Leicester"]


class RiskAcceptance(StrictModel):
    """An explicit, logged override of the disclosure floor: who accepted the risk and why."""

    accepted_by: str = Field(min_length=3, description="name and role of the person who accepted the risk")
    reason: str = Field(min_length=10, description="why a weaker policy is acceptable for this release")


class DisclosureSettings(StrictModel):
    """Disclosure policy of a researcher release. Defaults are the floor; configs may only strengthen it."""

    suppress_min: int = Field(1, ge=1, description="smallest count that is suppressed")
    suppress_max: int = Field(9, ge=0, description="largest count that is suppressed (10-5 rule: 1-9)")
    rounding_base: int = Field(5, ge=1, description="released counts rounded to the nearest multiple")
    stat_min_contributors: int = Field(
        10, ge=1, description="percentages (released denominator), means and medians need this many people")
    derive_statistics_from: Literal["released", "true"] = Field(
        "released", description="percentages, intervals and means come from the released (rounded) counts; "
                                "'true' (unrounded) is weaker and needs risk_accepted")
    k_anonymity: int = Field(5, ge=2)
    max_row_suppression: float = Field(
        0.05, ge=0, le=1, description="person-level table: generalise until at most this share is dropped")
    symbol: str = Field("c", pattern=r"^[a-z]$", description="what a suppressed cell shows")
    area_codes: list[str] = Field(
        default_factory=lambda: list(LLR_NPAS),
        description="code list of areas a table may show; any other payload value is shown as 'Other area'")
    risk_accepted: RiskAcceptance | None = Field(
        None, description="required for any setting weaker than the shipped floor; logged in every release")

    def weakenings(self) -> list[str]:
        """Settings weaker than the shipped floor, as 'name value (floor F)' strings."""
        out = []
        for name, floor in POLICY_FLOOR.items():
            value = getattr(self, name)
            weaker = value > floor if name == "suppress_min" else value < floor
            if weaker:
                out.append(f"{name} {value} (floor {floor})")
        if self.derive_statistics_from != "released":
            out.append(f"derive_statistics_from {self.derive_statistics_from} (floor released)")
        return out

    @model_validator(mode="after")
    def _floor(self) -> DisclosureSettings:
        weak = self.weakenings()
        if weak and self.risk_accepted is None:
            raise ValueError("disclosure policy is weaker than the shipped 10-5 floor (" + "; ".join(weak)
                             + "); refused unless disclosure.risk_accepted names who accepted the risk")
        return self

    def sensitive(self, value: int) -> bool:
        """A true count this policy withholds."""
        return self.suppress_min <= value <= self.suppress_max

    def intruder_sensitive(self, value: int) -> bool:
        """A true count no intruder may narrow down: the floor's range (1-9) or this policy's, if wider.
        A weakened policy is still judged against the floor (its release goes out only under risk_accepted)."""
        return (min(self.suppress_min, POLICY_FLOOR["suppress_min"]) <= value
                <= max(self.suppress_max, POLICY_FLOOR["suppress_max"]))

    def intruder_min_width(self) -> int:
        """Fewest values a sensitive count's feasible interval must keep (the floor's rounding base, or more)."""
        return max(self.rounding_base, POLICY_FLOOR["rounding_base"])


class PersonLevel(StrictModel):
    enabled: bool = False
    quasi_identifiers: list[str] = Field(
        default_factory=lambda: ["subgroup", "age_band", "ethnic_group", "index_quarter", "area"])
    generalisation: list[str] = Field(
        default_factory=lambda: ["index_quarter", "area", "ethnic_group", "age_band"],
        description="order in which quasi-identifiers are coarsened (quarter -> year, others -> '*')")


class CohortConfig(StrictModel):
    """Who is in the cohort, what their index offence is, and how tables are released."""

    name: str = Field(pattern=r"^[A-Za-z0-9_\-]+$")
    label: str
    offences: str = Field("../offences.yaml", description="taxonomy path, relative to this file")
    risk_factors: str = Field("../risk_factors.yaml", description="catalogue path, relative to this file")
    qualifying_groups: list[str] = Field(min_length=1)
    start: dt.date | None = Field(None, description="earliest index offence date (inclusive)")
    end: dt.date | None = Field(None, description="latest index offence date (inclusive)")
    police: PoliceColumns = Field(default_factory=PoliceColumns)
    age: AgeSettings = Field(default_factory=AgeSettings)
    index: IndexFilter = Field(default_factory=IndexFilter, description="offence flags, age at the offence, "
                                                                        "relationship and area of the index")
    subgroups: dict[str, Subgroup] = Field(default_factory=dict)
    factor_count_bands: list[tuple[int, int]] = Field(
        default_factory=lambda: [(0, 0), (1, 2), (3, 4), (5, 6), (7, 9), (10, 99)])
    prior_offence_bands: list[tuple[int, int]] = Field(
        default_factory=lambda: [(0, 0), (1, 4), (5, 9), (10, 19), (20, 49), (50, 9999)])
    disclosure: DisclosureSettings = Field(default_factory=DisclosureSettings)
    person_level: PersonLevel = Field(default_factory=PersonLevel)

    @model_validator(mode="after")
    def _checks(self) -> CohortConfig:
        if self.start and self.end and self.start > self.end:
            raise ValueError("start is after end")
        seen: dict[str, str] = {}
        for name, sg in self.subgroups.items():
            for g in sg.offence_groups:
                if g in seen:
                    raise ValueError(f"offence group '{g}' is in sub-groups '{seen[g]}' and '{name}'; "
                                     "sub-groups must not overlap")
                seen[g] = name
        if self.age.min is not None and self.age.max is not None and self.age.min > self.age.max:
            raise ValueError("age.min is above age.max")
        return self


class LoadedCohortConfig(StrictModel):
    """A cohort config with its taxonomy and catalogue resolved (what the builder uses)."""

    cohort: CohortConfig
    offences: OffenceTaxonomy
    risk_factors: RiskFactorCatalogue
    paths: dict[str, str]

    def as_manifest(self) -> dict[str, Any]:
        return {"cohort": self.cohort.model_dump(mode="json"),
                "offences": self.offences.model_dump(mode="json"),
                "risk_factors": self.risk_factors.model_dump(mode="json"), "paths": self.paths}


def resolve_taxonomy(config_path: str | Path, offences_ref: str, groups: list[str],
                     flags: list[str]) -> tuple[OffenceTaxonomy, Path]:
    """Load the offence taxonomy a config points to (``offences_ref``, relative to the config file) and
    check that every offence group and flag the config names is in it. Shared by every stage whose config
    refers to the taxonomy (cohorts, the profile), so they load and fail the same way."""
    from linkage.errors import LinkageConfigError

    config_path = Path(config_path)
    off_path = (config_path.parent / offences_ref).resolve()
    offences = load_yaml_model(off_path, OffenceTaxonomy)
    for g in groups:
        if g not in offences.groups:
            raise LinkageConfigError(f"{config_path}: offence group '{g}' is not in {off_path.name}")
    for fl in flags:
        if fl not in offences.flags:
            raise LinkageConfigError(f"{config_path}: flag '{fl}' is not in {off_path.name}")
    return offences, off_path


def load_cohort_config(path: str | Path) -> LoadedCohortConfig:
    """Load a cohort config and the taxonomy and catalogue it points to; check cross-references."""
    from linkage.errors import LinkageConfigError

    path = Path(path)
    cohort = load_yaml_model(path, CohortConfig)
    offences, off_path = resolve_taxonomy(
        path, cohort.offences,
        cohort.qualifying_groups + [g for sg in cohort.subgroups.values() for g in sg.offence_groups],
        cohort.index.flags + [f for sg in cohort.subgroups.values() for f in sg.flags])
    rf_path = (path.parent / cohort.risk_factors).resolve()
    catalogue = load_yaml_model(rf_path, RiskFactorCatalogue)
    for f in catalogue.factors:
        for ind in f.indicators:
            for c in ind.when:
                if c.op == "offence_group" and c.group not in offences.groups:
                    raise LinkageConfigError(
                        f"{rf_path}: factor '{f.id}': offence group '{c.group}' is not in {off_path.name}")
    return LoadedCohortConfig(cohort=cohort, offences=offences, risk_factors=catalogue,
                              paths={"cohort": str(path), "offences": str(off_path),
                                     "risk_factors": str(rf_path)})


SCHEMA_MODELS.update({"cohort-config": CohortConfig, "offence-taxonomy": OffenceTaxonomy,
                      "risk-factor-catalogue": RiskFactorCatalogue})
