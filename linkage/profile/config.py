"""Config of ``linkage profile``: the SNA's serious-violence profile and area concentration of risk factors.

Data, not code: which offence group is serious violence, the reporting period and the year-on-year
comparison, the night-time-economy and after-school windows, where denominators come from, and the
disclosure settings (the cohort stage's :class:`DisclosureSettings`). Paths are relative to the file.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from pydantic import Field, model_validator

from linkage.cohort.config import DisclosureSettings, OffenceTaxonomy, PoliceColumns, resolve_taxonomy
from linkage.config import SCHEMA_MODELS, StrictModel, load_yaml_model


class Period(StrictModel):
    start: dt.date
    end: dt.date = Field(description="inclusive")

    @model_validator(mode="after")
    def _ordered(self) -> Period:
        if self.start > self.end:
            raise ValueError("period start is after its end")
        return self

    @property
    def months(self) -> float:
        return ((self.end - self.start).days + 1) / (365.25 / 12)


class TimeWindow(StrictModel):
    """Clock window [start_hour:00, end_hour:00); wraps past midnight when end_hour <= start_hour."""

    start_hour: int = Field(ge=0, le=23)
    end_hour: int = Field(ge=0, le=24, description="exclusive: 5 means up to 04:59")


class NteSettings(StrictModel):
    label: str = "Night-time economy"
    window: TimeWindow = Field(default_factory=lambda: TimeWindow(start_hour=22, end_hour=5))
    locations: list[str] = Field(default_factory=lambda: ["PUBLIC", "HOSPITALITY"],
                                 description="location_type values that make a night-time occurrence NTE")


class AfterSchoolSettings(StrictModel):
    label: str = "After school"
    window: TimeWindow = Field(default_factory=lambda: TimeWindow(start_hour=15, end_hour=16))
    max_age: int = Field(17, description="a victim or suspect aged at most this (under-18s)")


class AreaConcentration(StrictModel):
    """Risk factors of young people by area of residence (education/social-care indicators, ever recorded)."""

    enabled: bool = True
    risk_factors: str = Field("risk_factors.yaml", description="catalogue; only education and social-care "
                                                                 "indicators are used")
    sources: list[str] = Field(default_factory=lambda: ["education", "social_care"])
    home_area_source: str = "education"
    home_area_column: str = Field("home_sector", description="postcode sector of residence (an attribute)")
    levels: list[str] = Field(default_factory=lambda: ["sector", "district", "npa"],
                              description="finest first; the first where areas are large enough is used")
    min_young_people: int = Field(500, ge=1, description="an area level is used when at least 80% of its "
                                                          "areas have this many young people")
    age_bands: list[str] = Field(default_factory=lambda: ["10-17", "18-24"],
                                 description="denominator age bands that make 'young people'")
    several: int = Field(2, ge=2, description="'several' risk factors means at least this many")


class HealthColumns(StrictModel):
    """Where the health partner's ISTV A&E payload keeps what the profile needs."""

    source: str = "health"
    arrival: str = "arrival_datetime"
    location: str = "location_of_assault"
    means: str = "means_of_assault"
    admitted: str = "admitted"
    age: str = "age_at_attendance"


LLR_LOCAL_AUTHORITIES = {
    "Leicester": ["Leicester"],
    "Leicestershire": ["Blaby", "Charnwood", "Harborough", "Hinckley and Bosworth", "Melton",
                       "North West Leicestershire", "Oadby and Wigston"],
    "Rutland": ["Rutland"]}
LLR_NPA_DISTRICTS = {
    "Central Leicester": ["Leicester"], "East Leicester": ["Leicester"], "South Leicester": ["Leicester"],
    "West Leicester": ["Leicester"], "Charnwood": ["Charnwood"], "Hinckley & Blaby": ["Hinckley and Bosworth", "Blaby"],
    "North West Leicestershire": ["North West Leicestershire"], "Harborough": ["Harborough"],
    "Oadby & Wigston": ["Oadby and Wigston"], "Melton & Rutland": ["Melton", "Rutland"]}


class AreaCodeLists(StrictModel):
    """The area code lists of the release: every area a table names comes from here (never from a payload),
    and the nesting is public, so an intruder knows it: an LA is the sum of its districts, and the
    neighbourhood policing areas (NPAs) covering a set of whole districts add up to those districts."""

    local_authorities: dict[str, list[str]] = Field(default_factory=lambda: dict(LLR_LOCAL_AUTHORITIES),
                                                    description="local authority -> its districts")
    npas: dict[str, list[str]] = Field(default_factory=lambda: dict(LLR_NPA_DISTRICTS),
                                       description="NPA -> the districts it lies in")

    def districts(self) -> set[str]:
        return {d for ds in self.local_authorities.values() for d in ds}

    def npa_groups(self) -> list[tuple[list[str], list[str]]]:
        """(NPAs, districts) pairs with equal totals: NPAs linked through a shared district form one group."""
        groups: list[tuple[set[str], set[str]]] = []
        for npa, ds in sorted(self.npas.items()):
            hit = [g for g in groups if g[1] & set(ds)]
            merged = ({npa} | {n for g in hit for n in g[0]}, set(ds) | {d for g in hit for d in g[1]})
            groups = [g for g in groups if g not in hit] + [merged]
        return [(sorted(n), sorted(d)) for n, d in groups]

    @model_validator(mode="after")
    def _known_districts(self) -> AreaCodeLists:
        unknown = {d for ds in self.npas.values() for d in ds} - self.districts()
        if unknown:
            raise ValueError(f"NPA districts not in any local authority: {sorted(unknown)}")
        return self


class CodeLists(StrictModel):
    """What each category column of the profile may hold; a payload value outside these refuses the release."""

    areas: AreaCodeLists = Field(default_factory=AreaCodeLists)
    relationships: list[str] = Field(default_factory=lambda: ["STRANGER", "ACQUAINTANCE", "FAMILY", "PARTNER",
                                                              "NOT_RECORDED"])
    ae_locations: list[str] = Field(default_factory=lambda: ["HOME", "STREET_OPEN_SPACE", "PUB_CLUB_BAR",
                                                             "SCHOOL_COLLEGE", "WORKPLACE", "OTHER"])
    ae_means: list[str] = Field(default_factory=lambda: ["BODY_PART", "KNIFE_SHARP", "BLUNT_OBJECT",
                                                         "GLASS_BOTTLE", "FIREARM", "OTHER"])
    ae_admitted: list[str] = Field(default_factory=lambda: ["Y", "N"])


class ProfileConfig(StrictModel):
    name: str = Field("sv_profile", pattern=r"^[A-Za-z0-9_\-]+$")
    label: str = "Serious violence profile"
    offences: str = Field("offences.yaml", description="taxonomy path, relative to this file")
    serious_violence_group: str = "serious_violence"
    offence_groups: list[str] = Field(
        default_factory=lambda: ["homicide", "violence_with_injury", "violence_without_injury",
                                 "stalking_harassment", "sexual_offences", "robbery", "public_disorder",
                                 "arson_endangering_life", "aggravated_burglary", "exploitation_of_prostitution"],
        description="the breakdown; an occurrence counts in the first group it falls in")
    flags: list[str] = Field(default_factory=lambda: ["domestic", "public_place", "sexual", "knife"],
                             description="taxonomy flags whose share of serious violence is reported")
    period: Period = Field(default_factory=lambda: Period(start=dt.date(2023, 4, 1), end=dt.date(2024, 9, 30)))
    current_year: Period = Field(default_factory=lambda: Period(start=dt.date(2023, 4, 1), end=dt.date(2024, 3, 31)))
    previous_year: Period = Field(default_factory=lambda: Period(start=dt.date(2022, 4, 1),
                                                                 end=dt.date(2023, 3, 31)))
    police: PoliceColumns = Field(default_factory=PoliceColumns)
    health: HealthColumns = Field(default_factory=HealthColumns)
    location_column: str = "location_type"
    public_locations: list[str] = Field(default_factory=lambda: ["PUBLIC"])
    sex_column: str = Field("person_sex", description="recorded sex of the person at the occurrence")
    victim_roles: list[str] = Field(default_factory=lambda: ["VICTIM"])
    young_age_max: int = Field(24, description="'under 25' for the hour-of-day peak")
    nte: NteSettings = Field(default_factory=NteSettings)
    after_school: AfterSchoolSettings = Field(default_factory=AfterSchoolSettings)
    denominators: str | None = Field(None, description="population CSV (sector/district/npa/la, age_band, sex, "
                                                       "population); default: the shipped ONS table")
    areas: AreaConcentration = Field(default_factory=AreaConcentration)
    disclosure: DisclosureSettings = Field(default_factory=DisclosureSettings)
    code_lists: CodeLists = Field(default_factory=CodeLists)


class LoadedProfileConfig(StrictModel):
    profile: ProfileConfig
    offences: OffenceTaxonomy
    paths: dict[str, str]


def load_profile_config(path: str | Path | None) -> LoadedProfileConfig:
    """Load a profile config (None: the defaults, with configs/offences.yaml) and its taxonomy."""
    if path is None:
        from linkage.resources import configs_dir

        profile, where = ProfileConfig(), configs_dir() / "profile.yaml"
    else:
        where = Path(path)
        profile = load_yaml_model(where, ProfileConfig)
    offences, off_path = resolve_taxonomy(where, profile.offences,
                                          [profile.serious_violence_group, *profile.offence_groups], profile.flags)
    paths = {"profile": str(where), "offences": str(off_path),
             "risk_factors": str((where.parent / profile.areas.risk_factors).resolve())}
    if profile.denominators:
        paths["denominators"] = str((where.parent / profile.denominators).resolve())
    return LoadedProfileConfig(profile=profile, offences=offences, paths=paths)


SCHEMA_MODELS["profile-config"] = ProfileConfig
