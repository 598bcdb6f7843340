"""Configuration as data: pydantic models for partner configs, YAML loading, JSON Schema export.

Link and cohort configs live beside their stages (``linkage.link.config``, ``linkage.cohort.config``)
but use :func:`load_yaml_model` from here, and register with :data:`SCHEMA_MODELS` so that
``linkage schemas`` exports every schema to ``schemas/``.
"""

from __future__ import annotations

import codecs
import datetime as dt
import json
import re
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from linkage.contracts.names import SOURCE_PATTERN
from linkage.errors import LinkageConfigError

M = TypeVar("M", bound=BaseModel)

IDENTIFIER_FIELDS = (
    "given_name", "middle_names", "surname", "former_surnames",
    "date_of_birth", "sex", "postcode", "upn", "nhs_number",
)
NAME_VARIANTS = ("exact", "phonetic", "initial", "del1", "bloom")


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InputFormat(StrictModel):
    """How the raw extract is stored."""

    format: Literal["csv", "parquet", "xlsx"] = "csv"
    encoding: str = Field("utf-8", description="Text encoding of a CSV, e.g. utf-8, utf-8-sig, cp1252")
    delimiter: str = Field(",", min_length=1, max_length=1)
    sheet: str | None = Field(None, description="Worksheet name for .xlsx (default: the first sheet)")

    @field_validator("encoding")
    @classmethod
    def _known_codec(cls, name: str) -> str:
        try:
            info = codecs.lookup(name)
        except LookupError:
            raise ValueError("unknown text encoding; use e.g. utf-8, utf-8-sig, cp1252 or latin-1") from None
        if not getattr(info, "_is_text_encoding", True):
            raise ValueError("not a text encoding; use e.g. utf-8, utf-8-sig, cp1252 or latin-1")
        return name


OnInvalid = Literal["reject", "blank"]
_ON_INVALID: Any = Field("reject", description="a present but unusable value: reject the row (listed in "
                         "rejected.csv), or blank the field and keep the row (listed as 'blanked')")


class ColumnField(StrictModel):
    column: str
    on_invalid: OnInvalid = _ON_INVALID


class NameField(StrictModel):
    """A name column. Several names in one field are split into parts."""

    column: str


class MultiColumnField(StrictModel):
    """Several columns holding the same kind of value (former surnames, preferred surname, aliases)."""

    columns: list[str] = Field(min_length=1)


class DateOfBirthField(StrictModel):
    column: str
    on_invalid: OnInvalid = _ON_INVALID
    formats: list[str] = Field(["%Y-%m-%d"], min_length=1, description="strptime formats, tried in order")
    min: dt.date = Field(dt.date(1900, 1, 1), description="earliest plausible date of birth")
    max: dt.date | None = Field(None, description="latest plausible date of birth (default: today)")
    placeholders: list[dt.date] = Field(
        default_factory=lambda: [dt.date(1900, 1, 1), dt.date(1901, 1, 1), dt.date(1800, 1, 1)],
        description="dates known to stand for 'unknown': encoded as missing and counted in the manifest",
    )


class SexField(StrictModel):
    column: str
    on_invalid: OnInvalid = _ON_INVALID
    codes: dict[str, Literal["M", "F"] | None] = Field(
        default_factory=lambda: {"M": "M", "MALE": "M", "1": "M", "F": "F", "FEMALE": "F", "2": "F",
                                 "U": None, "0": None, "9": None, "X": None, "UNKNOWN": None},
        description="raw code (case-insensitive) -> M / F / null",
    )


class PostcodeField(StrictModel):
    column: str
    on_invalid: OnInvalid = _ON_INVALID
    format: Literal["uk", "digits4", "any"] = Field(
        "uk", description="uk: validated UK postcode split into sector/district; digits4: 4-digit "
                          "(e.g. Australian) postcode, sector = first 3, district = first 2; any: exact only")
    missing_markers: list[str] = Field(default_factory=lambda: ["NFA", "NK", "UNKNOWN", "N/A", "ZZ99 3VZ"])


class Identifiers(StrictModel):
    """Which raw column holds which identifier. Only given_name/surname/date_of_birth are usual minimums."""

    given_name: NameField | None = None
    middle_names: NameField | None = None
    surname: NameField | None = None
    former_surnames: MultiColumnField | None = None
    date_of_birth: DateOfBirthField | None = None
    sex: SexField | None = None
    postcode: PostcodeField | None = None
    upn: ColumnField | None = None
    nhs_number: ColumnField | None = None

    def columns(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for name in IDENTIFIER_FIELDS:
            spec = getattr(self, name)
            if spec is None:
                continue
            out[name] = list(spec.columns) if isinstance(spec, MultiColumnField) else [spec.column]
        return out


PayloadType = Literal["string", "int", "float", "bool", "date", "datetime"]
Generalisation = Literal["none", "hour_band", "hour", "day", "month", "year", "pseudonym", "drop"]
#: Which generalisations apply to which payload type (docs/partner-guide.md, "Attribute package").
GENERALISATIONS: dict[str, tuple[str, ...]] = {
    "datetime": ("none", "hour_band", "hour", "day", "month", "year", "drop"),
    "date": ("none", "month", "year", "drop"),
    "string": ("none", "pseudonym", "drop"),
    "int": ("none", "drop"), "float": ("none", "drop"), "bool": ("none", "drop"),
}


class PayloadColumn(StrictModel):
    """One attribute column: parsed and checked at the partner, then generalised before it is encrypted."""

    column: str
    type: PayloadType = "string"
    formats: list[str] = Field(default_factory=list, description="strptime formats for date/datetime")
    required: bool = Field(False, description="reject the row when this column is empty")
    generalise: Generalisation = Field(
        "none", description="what travels in the attribute package: none (as parsed); datetime: hour_band "
                            "(start of a band_hours-wide band), hour, day (a date), month, year (first day); "
                            "date: month, year; string: pseudonym (keyed with the project key, equal values stay "
                            "equal, e.g. a crime reference that embeds a date); any: drop (checked, not shipped)")
    band_hours: int = Field(4, ge=1, le=12, description="hour_band width in hours (must divide 24)")

    @model_validator(mode="after")
    def _generalisation_fits_type(self) -> PayloadColumn:
        if self.generalise not in GENERALISATIONS[self.type]:
            raise ValueError(f"payload column '{self.column}': generalise '{self.generalise}' does not apply to "
                             f"type {self.type} (allowed: {', '.join(GENERALISATIONS[self.type])})")
        if 24 % self.band_hours:
            raise ValueError(f"payload column '{self.column}': band_hours must divide 24")
        return self

    def shipped_type(self) -> PayloadType:
        """The column's type in the attribute package after generalisation."""
        if self.type == "datetime" and self.generalise in ("day", "month", "year"):
            return "date"
        return self.type


_BLOOM_FIELDS: tuple[Literal["given_name", "surname"], ...] = ("given_name", "surname")
NameVariant = Literal["exact", "phonetic", "initial", "del1", "alias"]
DobVariant = Literal["exact", "swap", "ym", "year", "md", "del1"]
PostcodeVariant = Literal["exact", "sector", "district", "del1"]
_NAME_VARIANTS: tuple[NameVariant, ...] = ("exact", "phonetic", "initial", "del1", "alias")
_DOB_VARIANTS: tuple[DobVariant, ...] = ("exact", "swap", "ym", "year", "md", "del1")
_POSTCODE_VARIANTS: tuple[PostcodeVariant, ...] = ("exact", "sector", "district", "del1")


class BloomSettings(StrictModel):
    fields: list[Literal["given_name", "surname"]] = Field(default_factory=lambda: list(_BLOOM_FIELDS))
    bits: int = Field(512, ge=64, le=4096, multiple_of=64)
    hashes: int = Field(15, ge=1, le=32, description="bit positions set per n-gram")
    ngram: int = Field(2, ge=1, le=4)
    # Hardening options (docs/threat-model.md). Defaults leave the filters exactly as before.
    salt: Literal["dob_year", "dob"] | None = Field(
        None, description="mix the year of birth (dob_year) or the whole date of birth (dob) into every "
                          "n-gram's positions: the same name gives unrelated filters for other birth "
                          "years/dates (no date: the name alone)")
    xor_fold: bool = Field(False, description="XOR the filter's two halves together (half the length)")
    balanced: bool = Field(False, description="append the complement and permute with the key "
                                              "(twice the length; every filter has the same bit count)")
    blip: float = Field(0.0, ge=0.0, le=0.25, description="flip each bit with this probability; the flips "
                        "are keyed and seeded by the whole identifier set, so reruns stay byte-identical")
    postcode_layout: bool = Field(
        False, description="hardening companion: a second filter per name (<field>__pcbloom), same layout, salted "
                           "with the full postcode (null without one): a misspelt name still agrees at the same "
                           "address when the date of birth is wrong or missing; filters of one name at two "
                           "postcodes share no positions")

    @model_validator(mode="after")
    def _balanced_without_blip(self) -> BloomSettings:
        # The link reads a balanced pair's Dice on the balanced scale only when both are exactly half set
        # (linkage.link.levels.BloomDiceLevel); BLIP flips bits after balancing, so no pair is, and every
        # stranger (plain-scale Dice ~0.65) would pass the 0.6 level.
        if self.balanced and self.blip:
            raise ValueError("bloom: balanced and blip cannot be combined (BLIP breaks the half-set filters the "
                             "link's balanced Dice levels rely on)")
        return self

    @model_validator(mode="after")
    def _folded_length(self) -> BloomSettings:
        # Folded filters must still be whole 64-bit words (the linker counts bits word by word).
        if self.xor_fold and self.bits % 128:
            raise ValueError("xor_fold needs bits to be a multiple of 128 (the folded half stays whole 64-bit words)")
        if self.postcode_layout and self.salt != "dob":
            # the link model prices the postcode-salted level from the date-salted one (link.model.postcode_filter_u)
            raise ValueError("postcode_layout needs salt: dob (the postcode-salted filters are the date-salted "
                             "filters' companion)")
        return self

    def output_bits(self) -> int:
        """Length of the stored filter after folding and balancing."""
        return (self.bits // 2 if self.xor_fold else self.bits) * (2 if self.balanced else 1)

    def hardening_label(self, salt: str | None = "config") -> str:
        """Suffix naming the hardening in the manifest's encoding (empty when there is none); ``salt``
        overrides the configured salt's name (the postcode layout: ``postcode``)."""
        salt = self.salt if salt == "config" else salt
        parts = (["fold"] if self.xor_fold else []) + (["balanced"] if self.balanced else [])
        parts += [f"blip{self.blip:g}"] if self.blip else []
        parts += [f"salt-{salt}"] if salt else []
        return "".join(f"+{p}" for p in parts)


class Encodings(StrictModel):
    name_variants: list[NameVariant] = Field(
        default_factory=lambda: list(_NAME_VARIANTS),
        description="alias (given name only): the exact tokens of the formal names a nickname may stand for "
                    "(linkage.encode.evidence)")
    shared_name_tokens: bool = Field(True, description="tokens under one name key, to detect name swaps")
    dob_variants: list[DobVariant] = Field(
        default_factory=lambda: list(_DOB_VARIANTS),
        description="del1: the eight digits and their one-deletion variants (one digit mistyped), also for "
                    "well-formed non-calendar dates, which are kept for this comparison only")
    postcode_variants: list[PostcodeVariant] = Field(default_factory=lambda: list(_POSTCODE_VARIANTS))
    bloom: BloomSettings | None = Field(default_factory=BloomSettings)
    name_token_salt: Literal["dob_year", "dob"] | None = Field(
        None, description="hardening: every name token (exact, phonetic, initial, del1, shared) becomes a "
                          "composite token of the name and the year of birth (dob_year) or the whole date of "
                          "birth (dob), so name frequencies no longer show; names then agree only within the "
                          "same birth year / date")
    name_postcode_tokens: bool = Field(
        False, description="hardening companion: a second composite token per name, name + full postcode "
                           "(match-key style), so a person whose date of birth differs between sources still "
                           "agrees on name where the address agrees")
    name_dob_tolerant_tokens: bool = Field(
        False, description="hardening companion: a fixed-size list per name of composite tokens, the name with "
                           "each one-digit deletion of the date of birth, with the date's day and month in "
                           "order, and with a two-year window of the year (ONS match-key style), so names still "
                           "agree when the date of birth has one digit mistyped, day and month swapped or the "
                           "year off by one; every token stays near-unique (a name within ~10 dates)")
    composite_name: Literal["each", "full"] = Field(
        "each", description="what the date-tolerant and name x postcode composite tokens are built on: each "
                            "name separately (given_name__near_dob, surname__exact_pc, ...) or the full name, "
                            "given name and surname together (full_name__near_dob, full_name__exact_pc). Per-name "
                            "composites link different people who share one name; chained, a common name's "
                            "records form one component whose size gives the name away (the audit's "
                            "token-sharing graph attack); full-name composites link far fewer people")
    name_postcode_typo_tokens: bool = Field(
        False, description="hardening companion (composite_name: full only): a fixed-size list of composite tokens, "
                           "the full name with each one-character deletion of the postcode, so a person whose date "
                           "of birth is wrong or missing still agrees on name where the postcode has one typo; "
                           "built on the full name only (per name it would chain a common name's neighbours)")
    name_postcode_alias_tokens: bool = Field(
        False, description="hardening companion (given name, with name_variants alias): a fixed-size list of "
                           "composite tokens, each canonical form of the given name (itself and the formal names it "
                           "may be a nickname of) with the full postcode, padded with keyed fillers, so a nickname "
                           "and its formal name still agree at the same address when the date of birth is wrong or "
                           "missing (Bill / William)")
    phonetic_postcode_tokens: bool = Field(
        False, description="hardening companion: a composite token per name of its Metaphone code and the full "
                           "postcode, so a misspelt name still agrees at the same address when the date differs")
    full_name_tokens: bool = Field(
        False, description="hardening companion: one token of given name and surname together, not composite "
                           "with the date of birth, so a person whose date of birth is wrong or missing still "
                           "agrees on name; a full name is far rarer than either part (the audit attacks it)")
    full_name_typo_tokens: bool = Field(
        False, description="hardening companion (with full_name_tokens and composite_name: full): a fixed-size "
                           "list (24) of tokens of the order-free full name and each one-character deletion of "
                           "it, never salted, padded with keyed fillers of the name, so two records whose full "
                           "names differ by one typo share a token where no date or postcode agrees (the audit "
                           "attacks it by frequency and by matching its token-sharing graph)")
    pad_token_lists: int | None = Field(
        None, ge=8, le=64, description="hardening: pad (or trim) every name deletion-neighbourhood list to "
                                      "this many tokens, so its size no longer gives the name's length")
    shuffle_rows: bool = Field(
        False, description="hardening: write tokens.parquet in a keyed pseudo-random order (by identity id), "
                           "so the order of the raw extract (e.g. sorted by surname) does not show")


    @model_validator(mode="after")
    def _typo_tokens_on_full_name(self) -> Encodings:
        if self.name_postcode_typo_tokens and self.composite_name != "full":
            raise ValueError("name_postcode_typo_tokens needs composite_name: full (per-name postcode-typo "
                             "composites link different people of one name)")
        if self.name_postcode_alias_tokens and "alias" not in self.name_variants:
            raise ValueError("name_postcode_alias_tokens needs alias in name_variants (its level follows the "
                             "date-salted nickname level and is priced from it)")
        if self.full_name_typo_tokens and not (self.full_name_tokens and self.composite_name == "full"):
            raise ValueError("full_name_typo_tokens needs full_name_tokens: true and composite_name: full (its "
                             "level follows the full name's in the full-name comparison)")
        return self


DEFAULT_PLACEHOLDERS = ("UNKNOWN", "UNK", "N/A", "NULL", "NONE", "NOT KNOWN", "NOT STATED", "NOT RECORDED",
                        "-", "--", "?", "TBC")


class PartnerConfig(StrictModel):
    """Everything ``linkage hash`` needs to know about one partner's extract."""

    project_id: str = Field(min_length=1, description="scopes every key: tokens of two projects never match")
    source: str = Field(min_length=1, pattern=SOURCE_PATTERN, description="1-64 letters, digits, '_' or '-'")
    input: InputFormat = Field(default_factory=InputFormat)
    local_id: str = Field(description="column holding the partner's own person/record id")
    one_person_per_id: bool = Field(
        False, description="each local id is one person (education UPN, social-care child id); "
                           "carried in the manifest so linkage can apply one-to-one constraints")
    unique_local_id: bool = Field(False, description="the extract has one row per local id; repeats are rejected")
    identifiers: Identifiers
    payload: list[PayloadColumn] = Field(default_factory=list, description="attribute columns for the analysis "
                                         "environment only: declare the fewest that the analyses need")
    analysis_key_fingerprint: str | None = Field(
        None, pattern=r"^[0-9a-f]{4}(:[0-9a-f]{4}){7}$",
        description="fingerprint of the analysis public key, confirmed out of band; `hash` refuses any other key")
    encodings: Encodings = Field(default_factory=Encodings)
    chunk_rows: int = Field(100_000, ge=1000, description="rows read per chunk (bounds memory)")
    placeholders: list[str] = Field(
        default_factory=lambda: list(DEFAULT_PLACEHOLDERS),
        description="values (case-insensitive) that stand for 'unknown' in any identifier column: encoded "
                    "as missing and counted per field in the manifest")
    max_rejected_share: float = Field(
        0.05, ge=0.0, le=1.0, description="fail the run when more than this share of rows is rejected (in "
                                          "total or for one field); a run rejecting every row always fails")
    max_blanked_share: float = Field(
        0.05, ge=0.0, le=1.0, description="fail the run when more than this share of one identifier's values "
                                          "is blanked as unusable (placeholders for 'unknown' do not count)")

    @model_validator(mode="after")
    def _payload_is_not_identifier(self) -> PartnerConfig:
        identifier_columns = {c for cols in self.identifiers.columns().values() for c in cols}
        for p in self.payload:
            if p.column in identifier_columns:
                raise ValueError(f"payload column '{p.column}' is also a mapped identifier; "
                                 "identifiers must never travel in the payload")
            if p.column == self.local_id:
                raise ValueError(f"payload column '{p.column}' is the local id; the attribute package carries "
                                 "record_id, never the partner's own id")
            if looks_like_identifier(p.column):
                raise ValueError(f"payload column '{p.column}' is named like an identifier (name, date of "
                                 "birth, postcode, NHS number, UPN, address); identifiers never travel in the "
                                 "payload: map it under identifiers, or rename it if it is not one")
        if not self.identifiers.columns():
            raise ValueError("no identifier columns are mapped")
        return self


#: Payload column names (letters and digits only, lower case) that are identifiers whatever the config says.
IDENTIFIER_LIKE_NAMES = frozenset({
    "name", "fullname", "forename", "forenames", "firstname", "givenname", "middlename", "middlenames",
    "surname", "lastname", "familyname", "formersurname", "maidenname", "alias",
    "dob", "dateofbirth", "birthdate", "birthdt", "dateofbirthdt",
    "postcode", "postalcode", "zipcode", "address", "addressline1", "street",
    "nhs", "nhsno", "nhsnumber", "upn", "uniquepupilnumber", "nino", "nationalinsurancenumber",
})


def looks_like_identifier(column: str) -> bool:
    return re.sub(r"[^0-9a-z]", "", column.casefold()) in IDENTIFIER_LIKE_NAMES


def with_source(cfg: PartnerConfig, source: str) -> PartnerConfig:
    """The config with another source name (``hash --source``), validated like the config's own."""
    if not isinstance(source, str) or not re.fullmatch(SOURCE_PATTERN, source):
        raise LinkageConfigError(f"--source: a source name must be 1-64 letters, digits, '_' or '-' "
                                 f"(got {len(source)} characters that do not match)")
    return cfg.model_copy(update={"source": source})


SCHEMA_MODELS: dict[str, type[BaseModel]] = {"partner-config": PartnerConfig}


class _UniqueKeyLoader(yaml.SafeLoader):
    """Safe YAML loader that refuses a mapping with a repeated key (YAML would keep only the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise LinkageConfigError(f"line {key_node.start_mark.line + 1}: key '{key}' appears twice in one "
                                         "mapping; YAML would silently keep only the last value")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_yaml_text(text: str) -> Any:
    """Parse YAML safely, refusing repeated keys."""
    return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)


def load_yaml_model(path: str | Path, model: type[M]) -> M:
    """Load a YAML file and validate it, turning every failure into one clear line."""
    path = Path(path)
    if not path.is_file():
        raise LinkageConfigError(f"{path}: config file not found")
    try:
        data = load_yaml_text(path.read_text(encoding="utf-8"))
    except LinkageConfigError as exc:
        raise LinkageConfigError(f"{path}: {exc}") from None
    except (yaml.YAMLError, UnicodeDecodeError, RecursionError) as exc:
        raise LinkageConfigError(f"{path}: not valid YAML ({type(exc).__name__})") from None
    try:
        return model.model_validate(data or {})
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"]) or "(top level)"
        more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise LinkageConfigError(f"{path}: {loc}: {first['msg']}{more}") from None


def load_partner_config(path: str | Path) -> PartnerConfig:
    return load_yaml_model(path, PartnerConfig)


def export_schemas(out_dir: str | Path) -> list[Path]:
    """Write one JSON Schema per registered model; returns the written paths."""
    # Import the stages so their models register themselves.
    import importlib

    for module in ("linkage.encode.manifest", "linkage.link.config", "linkage.cohort.config", "linkage.synth.params",
                   "linkage.contracts.attribute_package", "linkage.profile.config"):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError:
            continue
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, model in sorted(SCHEMA_MODELS.items()):
        path = out / f"{name}.schema.json"
        path.write_text(json.dumps(model.model_json_schema(), indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written
