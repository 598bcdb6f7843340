"""The naming grammar every hand-over is checked against: source names and encoding column names.

These names travel from a partner's file into the linkage unit's SQL (table aliases, column lists,
string literals). Whatever the backend quotes, a name that does not match this grammar is refused at the
contract layer, before any SQL is built: a quote, a space, a semicolon or a comment marker can never be
part of a valid name, so an injected manifest fails here with a one-line error.
"""

from __future__ import annotations

import re

#: A partner's source name, as the partner config's ``source`` pattern (also when given with --source).
SOURCE_PATTERN = r"^[A-Za-z0-9_\-]{1,64}$"
#: An encoding column: ``<field>__<variant>`` in lower case, e.g. ``given_name__exact``, ``dob__ym``.
COLUMN_PATTERN = r"^[a-z][a-z0-9_]{0,39}__[a-z0-9][a-z0-9_]{0,39}$"
#: The label of an encoding (``exact``, ``bloom+fold+blip0.02``, ``parts+dob_year``).
ENCODING_LABEL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_+.\-]{0,99}$"
#: A field name inside a column spec (``given_name``, ``name``, ``date_of_birth``).
FIELD_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"
#: A file listed in a manifest: a bare file name, never a path.
FILE_NAME_PATTERN = r"^[A-Za-z0-9_\-]{1,64}\.(parquet|csv|json|html|arrow|bin)$"
SHA256_PATTERN = r"^[0-9a-f]{64}$"
#: An extract id: a keyed identifier of one partner extract, shared by its identifier and attribute packages.
EXTRACT_ID_PATTERN = r"^[0-9a-f]{16,64}$"
KCV_PATTERN = r"^[0-9a-f]{12}$"
#: A project id: printable, no control characters (it is shown in messages and stored in every manifest).
PROJECT_ID_PATTERN = r"^[^\x00-\x1f\x7f]{1,200}$"

#: Column-name endings of the token-list encodings ("token_list" in a manifest): deletion neighbourhoods,
#: nickname lists, date- and postcode-tolerant name composites and the shared name parts. In a blocking rule
#: such a column means "the lists share a token" and is exploded; tests check it against every column the encoder emits.
TOKEN_LIST_SUFFIXES = ("__del1", "__alias", "__alias_pc", "__near_dob", "__near_pc", "__parts")


#: The full-name composite columns (given name and surname together with a near date of birth, the postcode,
#: or a postcode one typo apart): the encoder emits them together, the model compares and blocks on them.
FULL_NAME_COMPOSITES = ("full_name__near_dob", "full_name__exact_pc", "full_name__near_pc")


def is_token_list_column(name: str) -> bool:
    return name.endswith(TOKEN_LIST_SUFFIXES)


_SOURCE = re.compile(SOURCE_PATTERN)
_COLUMN = re.compile(COLUMN_PATTERN)


def is_valid_source(name: object) -> bool:
    return isinstance(name, str) and _SOURCE.fullmatch(name) is not None


def is_valid_column(name: object) -> bool:
    return isinstance(name, str) and _COLUMN.fullmatch(name) is not None


def describe_source_rule() -> str:
    return "1-64 letters, digits, '_' or '-'"


def describe_column_rule() -> str:
    return "'<field>__<variant>' in lower-case letters, digits and '_'"


_SAFE_PART = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")


def safe_location(loc: tuple[object, ...] | list[object]) -> str:
    """A validation error's location for a message: parts that are not plain names are not echoed."""
    parts = [str(p) if _SAFE_PART.fullmatch(str(p)) else "(a name breaking the grammar)" for p in loc]
    return ".".join(parts) or "(top level)"
