"""Parameters of the synthetic-data generator: error rates per partner and population settings.

Defaults follow the proposed per-record rates of the domain notes (§2); everything else is invented and
documented in docs/synthetic-data.md. A YAML file with any subset of these fields can be passed to
``linkage synth --params``; its schema is exported by ``linkage schemas`` as ``synth-params``.
"""

from __future__ import annotations

import datetime as dt

from pydantic import Field, model_validator

from linkage.config import SCHEMA_MODELS, StrictModel

Rate = float


def _rate(default: float, description: str) -> float:
    return Field(default, ge=0.0, le=1.0, description=description)


class SourceErrorRates(StrictModel):
    """Identifier error rates of one partner, per *identity unit*.

    The unit is a row for police (each occurrence records the person afresh) and a local id for
    education and social care (the case-management record holds one set of identifiers). The three name
    errors are mutually exclusive per unit, so each rate is the share of units showing that error.
    """

    forename_variant: Rate = _rate(0.05, "forename recorded as a transliteration, spelling variant or nickname")
    surname_change: Rate = _rate(0.04, "surname recorded differently: hyphenation, other parent's surname, "
                                       "Singh/Kaur in place of the family name or the reverse")
    name_swap: Rate = _rate(0.01, "given and family names swapped")
    dob_error: Rate = _rate(0.005, "date of birth wrong (kind chosen by dob_error_mix)")
    postcode_defect: Rate = _rate(0.05, "postcode missing, NFA or stale (kind chosen by postcode_defect_mix)")
    duplicate_id: Rate = _rate(0.02, "share of people (with 2+ records in this source) holding a second "
                                     "local id: duplicate nominal, temporary UPN, second LA child id")
    missing_dob: Rate = _rate(0.0, "date of birth left empty")
    missing_sex: Rate = _rate(0.0, "sex recorded as unknown")


class PoliceErrorRates(SourceErrorRates):
    """Police defaults (domain notes §2): victims' and suspects' identifiers are often incomplete."""

    forename_variant: Rate = _rate(0.12, "see SourceErrorRates")
    surname_change: Rate = _rate(0.10, "see SourceErrorRates")
    name_swap: Rate = _rate(0.04, "see SourceErrorRates")
    dob_error: Rate = _rate(0.04, "see SourceErrorRates")
    postcode_defect: Rate = _rate(0.25, "see SourceErrorRates")
    duplicate_id: Rate = _rate(0.08, "duplicate nominals")
    missing_dob: Rate = _rate(0.03, "see SourceErrorRates")
    missing_sex: Rate = _rate(0.02, "gender recorded as U")


class EducationErrorRates(SourceErrorRates):
    """Education defaults: the school census is the cleanest source."""

    forename_variant: Rate = _rate(0.05, "see SourceErrorRates")
    surname_change: Rate = _rate(0.04, "see SourceErrorRates")
    name_swap: Rate = _rate(0.01, "see SourceErrorRates")
    dob_error: Rate = _rate(0.005, "see SourceErrorRates")
    postcode_defect: Rate = _rate(0.05, "see SourceErrorRates")
    duplicate_id: Rate = _rate(0.02, "temporary UPN before the permanent one")


class SocialCareErrorRates(SourceErrorRates):
    """Social-care defaults."""

    forename_variant: Rate = _rate(0.06, "see SourceErrorRates")
    surname_change: Rate = _rate(0.08, "see SourceErrorRates")
    name_swap: Rate = _rate(0.02, "see SourceErrorRates")
    dob_error: Rate = _rate(0.015, "see SourceErrorRates")
    postcode_defect: Rate = _rate(0.15, "see SourceErrorRates")
    duplicate_id: Rate = _rate(0.03, "second LA child id for a later episode")
    missing_sex: Rate = _rate(0.01, "sex recorded as 0 (not known)")


class DobErrorMix(StrictModel):
    """How a wrong date of birth is wrong (shares, normalised)."""

    day_month_swap: float = Field(0.3, ge=0)
    digit_typo: float = Field(0.3, ge=0)
    year_off_by_one: float = Field(0.2, ge=0)
    placeholder: float = Field(0.1, ge=0, description="01/01/1900 (police), 1 January (education), "
                                                      "15th of the month (social care)")
    event_date: float = Field(0.1, ge=0, description="the event date typed into the DOB field")


class PostcodeDefectMix(StrictModel):
    missing: float = Field(0.4, ge=0)
    nfa: float = Field(0.2, ge=0, description="'NFA' (no fixed abode); police only, else treated as missing")
    stale: float = Field(0.4, ge=0, description="an earlier address, or an unconfirmed nearby postcode")


class SynthParams(StrictModel):
    """All generator settings. Defaults give the documented 'LLR-like, enriched for at-risk youth' data."""

    police: PoliceErrorRates = Field(default_factory=PoliceErrorRates)
    education: EducationErrorRates = Field(default_factory=EducationErrorRates)
    social_care: SocialCareErrorRates = Field(default_factory=SocialCareErrorRates)
    dob_error_mix: DobErrorMix = Field(default_factory=DobErrorMix)
    postcode_defect_mix: PostcodeDefectMix = Field(default_factory=PostcodeDefectMix)
    minority_name_error_multiplier: float = Field(
        1.5, ge=1.0, le=4.0, description="name error rates are multiplied by this for people not White "
                                          "British (errors cluster by ethnicity), capped so the three sum <= 0.9")
    police_alias_rate: Rate = _rate(0.30, "share of suspects/offenders with alias identities")
    police_alias_row_share: Rate = _rate(0.35, "share of an aliased person's police rows recorded under the alias")
    police_missing_ethnicity: Rate = _rate(0.06, "police ethnicity left empty")
    csc_upn_known: Rate = _rate(0.70, "social-care record carries the child's UPN")
    csc_upn_typo: Rate = _rate(0.05, "share of carried UPNs copied with a one-character typo")
    csc_nhs_known: Rate = _rate(0.75, "social-care record carries an NHS number")
    no_school_record: Rate = _rate(0.03, "children never in an LLR state school (independent, home-educated)")
    risk_shift: float = Field(0.0, ge=-2.0, le=2.0, description="shift of household adversity (0 = default "
                                                                "enrichment for at-risk youth)")
    high_harm_scale: float = Field(1.0, ge=0.0, le=10.0, description="multiplier on the chance that a "
                                                                     "prolific young offender commits GBH+")
    birth_year_min: int = Field(1995, ge=1980, le=2015)
    birth_year_max: int = Field(2012, ge=1980, le=2018)
    education_start: dt.date = Field(dt.date(2006, 9, 1), description="first academic year in the extract")
    social_care_start: dt.date = Field(dt.date(2008, 4, 1), description="CIN census coverage start")
    police_start: dt.date = Field(dt.date(2010, 1, 1))
    extract_date: dt.date = Field(dt.date(2025, 3, 31), description="end of coverage of all three extracts")
    households_per_batch: int = Field(4000, ge=10, le=200_000, description="generation batch (bounds memory)")
    sna: SnaCalibration = Field(default_factory=lambda: SnaCalibration(),
                                description="SNA profile calibration of police serious violence (issue 17)")
    health: HealthSettings = Field(default_factory=lambda: HealthSettings(),
                                   description="the A&E (ISTV) extract of the health partner (issue 17)")

    @model_validator(mode="after")
    def _check_years(self) -> SynthParams:
        if self.birth_year_min > self.birth_year_max:
            raise ValueError("birth_year_min is after birth_year_max")
        if not self.education_start < self.extract_date:
            raise ValueError("education_start must be before extract_date")
        return self


SCHEMA_MODELS["synth-params"] = SynthParams


class MessyParams(StrictModel):
    """The messy profile (``linkage synth --profile messy``): one deduplication file with several records per
    person and heavy, unmodelled-by-us errors, for accuracy on data nobody tuned for (issue 13).

    Rates are per record and per field; errors are independent, so a record can carry several.
    """

    records_per_person_mean: float = Field(2.5, ge=1.0, le=10.0, description="mean records per person "
                                                                            "(1 + Poisson)")
    missing: Rate = _rate(0.20, "each identifier field left empty")
    name_typo: Rate = _rate(0.25, "a name with one character substituted, dropped, doubled or transposed")
    nickname: Rate = _rate(0.15, "given name recorded as a nickname (Bill for William) when one is known")
    surname_change: Rate = _rate(0.05, "surname replaced by another (marriage, other parent's name)")
    name_swap: Rate = _rate(0.03, "given and family names swapped")
    dob_digit_typo: Rate = _rate(0.10, "one of the eight digits of the date of birth mistyped, whether or not "
                                       "the result is a calendar date (month 81 is kept as written)")
    dob_year_off: Rate = _rate(0.03, "year of birth off by one")
    dob_day_month_swap: Rate = _rate(0.03, "day and month swapped (when the day is 1-12)")
    postcode_typo: Rate = _rate(0.10, "one character of the postcode mistyped")
    postcode_moved: Rate = _rate(0.15, "an earlier or later address: another postcode")
    birth_year_min: int = Field(1920, ge=1850, le=2025)
    birth_year_max: int = Field(2020, ge=1850, le=2025)
    household_share: Rate = _rate(0.3, "people living with another person of the same surname and postcode "
                                       "(relatives are the hardest non-matches)")


SCHEMA_MODELS["synth-messy-params"] = MessyParams


# --- SNA profile calibration (issue 17) ------------------------------------------------------------
# Kept apart from the identifier-error settings above. Targets are the published SNA 2024-25 figures
# (domain notes §0); `linkage.synth.sna` tops the police histories up to them inside a reporting window.

PUBLISHED_SV_RATES = {  # serious violence per 1,000 residents, Apr 2023 - Sep 2024 (18 months)
    "Leicester": 55.6, "Charnwood": 32.3, "Hinckley and Bosworth": 32.9, "North West Leicestershire": 33.7,
    "Blaby": 24.2, "Harborough": 22.2, "Oadby and Wigston": 32.0, "Melton": 30.2, "Rutland": 20.5}


class SnaCalibration(StrictModel):
    """Police serious-violence background calibrated to the SNA profile (rates, shares, time patterns)."""

    enabled: bool = Field(True, description="add the calibrated serious-violence background")
    window_start: dt.date = Field(dt.date(2022, 4, 1), description="first day of the calibrated window")
    rate_scale: float = Field(
        3.0, ge=0.1, le=10.0, description="synthetic SV rates = this x the published district rates (the "
                                          "synthetic population is enriched for at-risk people, so the other "
                                          "scenarios alone come close to the published level)")
    yearly_growth: float = Field(0.02, ge=-0.5, le=0.5, description="year-on-year change of the background "
                                                                     "(invented: no published SV trend)")
    domestic_share: Rate = _rate(0.31, "share of SV occurrences flagged domestic abuse")
    public_share: Rate = _rate(0.236, "share in a public place (street, open space)")
    dwelling_share: Rate = _rate(0.61, "share in a dwelling")
    hospitality_share: Rate = _rate(0.041, "share in hospitality premises")
    education_share: Rate = _rate(0.025, "share in education premises")
    sexual_share: Rate = _rate(0.10, "share that are sexual offences")
    knife_share: Rate = _rate(0.05, "share knife/sharp-object enabled")
    knife_share_public: Rate = _rate(0.09, "knife share among public-place occurrences")
    nte_share: Rate = _rate(0.07, "share in the night-time economy (public place or hospitality, 22:00-04:59)")
    victim_female_share: Rate = _rate(0.55, "victims who are female")
    suspect_male_share: Rate = _rate(0.70, "suspects/offenders who are male")
    suspect_u25_share: Rate = _rate(0.32, "suspects/offenders under 25")
    stranger_share: Rate = _rate(0.41, "non-domestic occurrences where the victim was a stranger")
    knife_in_city: Rate = _rate(0.61, "knife-enabled occurrences located in Leicester City")


class HealthSettings(StrictModel):
    """The ISTV-style A&E extract (linkage.synth.health): who attends, and how identifiers are recorded."""

    enabled: bool = Field(True, description="write health.csv")
    start: dt.date = Field(dt.date(2016, 4, 1), description="first day of the A&E extract")
    attend_injury: Rate = _rate(0.15, "victims of assault with injury or robbery who attend A&E")
    attend_knife: Rate = _rate(0.55, "... when a knife or sharp object was used")
    attend_serious: Rate = _rate(0.85, "... for GBH, attempted murder and murder")
    unreported_rate: float = Field(0.02, ge=0, le=1, description="A&E assaults never reported to the police, per "
                                                                 "young person over the extract, at average risk")
    admitted_share: Rate = _rate(0.15, "attendances admitted (published LLR ratio 176 / 969)")
    nhs_known: Rate = _rate(0.92, "attendances carrying the NHS number")
    errors: SourceErrorRates = Field(default_factory=lambda: SourceErrorRates(
        forename_variant=0.06, surname_change=0.05, name_swap=0.02, dob_error=0.01, postcode_defect=0.15,
        duplicate_id=0.02, missing_dob=0.005), description="identifier errors per hospital number")


SynthParams.model_rebuild()
