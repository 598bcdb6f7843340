"""From raw identifier columns to clean values, then to keyed encodings.

Two steps, both vectorised over *distinct* values: :meth:`IdentifierEncoder.clean` normalises each
distinct raw value once (and reports the rows whose value is unusable); :meth:`IdentifierEncoder.encode`
turns each distinct clean value into tokens, deletion neighbourhoods and Bloom filters. Python code runs
once per distinct value, never once per row: names, dates and postcodes repeat a great deal, which is what
makes the encoder fast. The column names and meanings are the contract in docs/data-contracts.md §2.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from typing import Any

import jellyfish
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from linkage import normalise as nz
from linkage.config import PartnerConfig
from linkage.contracts.names import FULL_NAME_COMPOSITES
from linkage.encode.bloom import BloomEncoder
from linkage.encode.evidence import dob_digit_neighbourhood, name_aliases
from linkage.encode.matchkeys import SALT_COUNT, dob_tolerant_salts
from linkage.encode.tokens import Tokeniser

_CACHE_LIMIT = 1_000_000
POSTCODE_TYPO_COUNT = 8  # a 7-character postcode (spaces dropped) and its 7 one-character deletions
# The full name's deletion neighbourhood (full_name__del1) is padded to this many tokens: a full name of up to 23
# characters (given name, separator, surname) and its one-character deletions fit; a longer one keeps a keyed
# pseudo-random 24 of its tokens (trimmed in token order), so a typo in it is found only if the deletion the two
# names share survives both trims.
FULL_NAME_TYPO_COUNT = 24
# A salted nickname list (given_name__alias, given_name__alias_pc) is padded to this many tokens, so the list's size
# no longer tells whether the name is a nickname, nor of how many formal names. Every name of the nickname lists fits
# ("chris", the longest, has 19 forms): a trimmed list is a keyed subset, which at 12 dropped Christopher from Chris's
# list at 37% of addresses and the name's own token at 35% (a shorter list would not hide more: the size is fixed).
ALIAS_COUNT = 20


class _Invalid:
    """Result slot for a present but unusable value; carries the reason, never the value.

    ``blank`` is set for values that only ever blank the field (placeholders, names with no letters),
    whatever the field's ``on_invalid`` says.
    """

    __slots__ = ("blank", "reason")

    def __init__(self, reason: str, blank: bool = False) -> None:
        self.reason, self.blank = reason, blank


def map_distinct(values: pa.Array | pa.ChunkedArray, func: Callable[[Any], Any],
                 cache: dict) -> tuple[np.ndarray, list[Any]]:
    """Apply ``func`` once per distinct non-null value, memoised across chunks.

    Returns (index per row into the results, with nulls pointing one past the end; results per distinct
    value). :func:`take` turns the pair back into an Arrow column.
    """
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    encoded = pc.dictionary_encode(values)
    uniques = encoded.dictionary.to_pylist()
    index = encoded.indices.fill_null(len(uniques)).to_numpy(zero_copy_only=False).astype(np.int64)
    results: list[Any] = []
    for raw in uniques:
        out = cache.get(raw, cache)
        if out is cache:
            try:
                out = func(raw)
            except nz.InvalidValue as exc:
                out = _Invalid(str(exc), isinstance(exc, nz.BlankedValue))
            if len(cache) < _CACHE_LIMIT:
                cache[raw] = out
        results.append(out)
    return index, results


class ArrowMemo:
    """Results of ``func`` per distinct value, kept as Arrow arrays across chunks.

    A chunk's values are matched against the known ones in Arrow (``index_in``) and the column is built
    with one ``take``, so only values never seen before cost Python work. On the 1M-row FEBRL-style
    benchmark most distinct values of a chunk were already seen in an earlier one.
    """

    def __init__(self, func: Callable[[str], Any], type: pa.DataType) -> None:
        self.func, self.type = func, type
        self.keys = pa.array([], pa.string())
        self.values = pa.array([], type)

    def apply(self, column: pa.Array | pa.ChunkedArray) -> pa.Array:
        if isinstance(column, pa.ChunkedArray):
            column = column.combine_chunks()
        encoded = pc.dictionary_encode(column)
        uniques = encoded.dictionary
        known = pc.index_in(uniques, value_set=self.keys)
        new = pc.is_null(known)
        values = self.values
        if pc.any(new).as_py():
            new_keys = uniques.filter(new)
            new_values = pa.array([self.func(v) for v in new_keys.to_pylist()], type=self.type)
            # New values go after the known ones; positions of the new uniques follow in order.
            new_pos = pa.array(np.arange(len(values), len(values) + len(new_keys), dtype=np.int32))
            values = pa.concat_arrays([values, new_values])
            if len(self.keys) < _CACHE_LIMIT:
                self.keys, self.values = pa.concat_arrays([self.keys, new_keys]), values
            slots = np.cumsum(new.to_numpy(zero_copy_only=False)) - 1
            known = pc.if_else(new, new_pos.take(pa.array(np.maximum(slots, 0))), known)
        return values.take(known.take(encoded.indices))


def take(index: np.ndarray, results: list[Any], type: pa.DataType) -> pa.Array:
    """Per-row Arrow column from :func:`map_distinct`'s output (converts only the distinct values)."""
    return pa.array(results + [None], type=type).take(pa.array(index))


def row_hash(columns: list[pa.Array], hash_key: bytes, seed: np.ndarray | None = None) -> np.ndarray:
    """A keyed 64-bit hash per row of several string columns (BLAKE2b of each distinct value, combined).

    Used only to spot repeated identifier sets within one run (the key is random per run); never
    written to any output.
    """
    h = seed.copy() if seed is not None else np.zeros(len(columns[0]) if columns else 0, dtype=np.uint64)
    for col in columns:
        index, uniques = map_distinct(col, lambda v: v, {})
        hashes = np.array([int.from_bytes(hashlib.blake2b(v.encode(), key=hash_key, digest_size=8).digest(), "big")
                           for v in uniques] + [0x9E3779B97F4A7C15], dtype=np.uint64)
        h = (h * np.uint64(1_000_003)) ^ hashes[index]
    return h


def merge_token_lists(arrays: list[pa.ListArray]) -> pa.ListArray:
    """Row-wise union of several list<string> columns, each row sorted and de-duplicated (vectorised)."""
    n = len(arrays[0])
    parents = pa.concat_arrays([pc.list_parent_indices(a).cast(pa.int64()) for a in arrays])
    flat = pa.concat_arrays([pc.list_flatten(a) for a in arrays])
    table = pa.table({"p": parents, "v": flat}).group_by(["p", "v"]).aggregate([])
    table = table.sort_by([("p", "ascending"), ("v", "ascending")])
    counts = np.bincount(table["p"].to_numpy(), minlength=n)
    offsets = pa.array(np.concatenate([[0], np.cumsum(counts)]).astype(np.int32))
    return pa.ListArray.from_arrays(offsets, table["v"].combine_chunks(), mask=pa.array(counts == 0))


def core_full_name(joined: str) -> str:
    """``given\x1fsurname`` as the full-name encodings see it: the first given name and the surname's parts
    joined (as in the per-name exact tokens), so "Ann Marie Smith-Jones" and "Ann Smith Jones" agree; the two in
    alphabetical order, so a record with given name and surname swapped still agrees."""
    given, _, surname = joined.partition("\x1f")
    return full_name_label(given.split(" ")[0], surname.replace(" ", ""), "\x1f")


def full_name_label(given_core: str, surname_core: str, sep: str = " ") -> str:
    """The full name a full-name encoding stands for: both core names in alphabetical order (order-free)."""
    return sep.join(sorted((given_core, surname_core)))


def pad_tokens(tokens: list[str], size: int, tokeniser: Tokeniser, value: str) -> list[str]:
    """A token list of exactly ``size`` tokens: keyed filler tokens of this value, or trimmed (sorted order).

    Fillers depend on the value, so the same name pads identically at every partner and two different
    names never share a filler; the list's size no longer tells the name's length.
    """
    fillers = [tokeniser.token(f"\x1epad{i}\x1e{value}") for i in range(max(0, size - len(tokens)))]
    return sorted([*tokens, *(f for f in fillers if f)])[:size]


def full_name_typo_tokens(core: str, tokeniser: Tokeniser,
                          size: int | None = FULL_NAME_TYPO_COUNT) -> list[str] | None:
    """The padded deletion neighbourhood of a core full name (``given\x1fsurname``, order-free): the name's
    token, one per distinct one-character deletion, and keyed fillers of this name up to ``size`` tokens
    (``None``: unpadded, whose size gives the name's length away; the audit's tests use it as the weak case)."""
    found = tokeniser.tokens(nz.deletion_neighbourhood(core))
    if not found or size is None:
        return found
    return pad_tokens(found, size, tokeniser, core)


class IdentifierEncoder:
    """Cleans and encodes the identifier fields of one partner config with one key."""

    def __init__(self, cfg: PartnerConfig, key: bytes, today: dt.date | None = None) -> None:
        self.cfg = cfg
        self.ids = cfg.identifiers
        self.enc = cfg.encodings
        self.key = key
        self.today = today or dt.date.today()
        self._caches: dict[str, dict] = {}
        self._memos: dict[str, ArrowMemo] = {}
        self._toks: dict[tuple[str, str], Tokeniser] = {}
        self._blooms: dict[str, BloomEncoder] = {}
        self._placeholder_mask = np.zeros(0, dtype=bool)
        self._non_calendar_mask = np.zeros(0, dtype=bool)
        self.columns = self._describe_columns()

    # -- clean ------------------------------------------------------------------------------------

    def clean(self, chunk: pa.Table) -> tuple[dict[str, pa.Array], list[tuple[np.ndarray, str, str, str]]]:
        """Clean identifier columns.

        Returns (clean frame, [(bad-row mask, column, reason, action), …]) where action is the field's
        ``on_invalid`` setting: "reject" (drop the row) or "blank" (keep the row, field missing).
        Clean columns: given, middle, surname, former_0…, dob (YYYYMMDD), sex, pc_full, pc_sector,
        pc_district, upn, nhs — each a string or None.
        """
        out: dict[str, pa.Array] = {}
        problems: list[tuple[np.ndarray, str, str, str]] = []
        ids = self.ids

        placeholders = frozenset(nz.placeholder_key(p) for p in self.cfg.placeholders)

        def checked(func: Callable[[str], Any]) -> Callable[[str], Any]:
            def clean_one(raw: str) -> Any:
                if not raw.strip():
                    return None
                if nz.is_placeholder(raw, placeholders):
                    raise nz.BlankedValue(nz.PLACEHOLDER_REASON)
                return func(raw)
            return clean_one

        def run(name: str, column: str, func: Callable[[str], Any]) -> pa.Array:
            action = getattr(getattr(ids, name), "on_invalid", "reject")
            index, results = map_distinct(chunk.column(column), checked(func),
                                          self._caches.setdefault(f"clean:{name}", {}))
            # Each (reason, action) pair: blank-only reasons (placeholders, no letters) never reject a row.
            kinds = np.array([f"{'blank' if r.blank else action}\x1f{r.reason}" if isinstance(r, _Invalid) else ""
                              for r in results] + [""], dtype=object)
            for kind in sorted(set(kinds) - {""}):
                act, reason = kind.split("\x1f", 1)
                problems.append((kinds[index] == kind, column, reason, act))
            return take(index, [None if isinstance(r, _Invalid) else r for r in results], pa.string())

        def joined_parts(raw: str) -> str | None:
            return nz.clean_name(raw)

        for name, clean_name in (("given_name", "given"), ("middle_names", "middle"), ("surname", "surname")):
            spec = getattr(ids, name)
            if spec is not None:
                out[clean_name] = run(name, spec.column, joined_parts)
        if ids.former_surnames is not None:
            for i, column in enumerate(ids.former_surnames.columns):
                out[f"former_{i}"] = run("former_surnames", column, joined_parts)
        if ids.date_of_birth is not None:
            spec = ids.date_of_birth
            latest = spec.max or self.today

            def dob(raw: str) -> str:
                parsed, placeholder = nz.check_dob(nz.parse_date(raw, spec.formats), spec.min, latest,
                                                   spec.placeholders)
                if placeholder or parsed is None:
                    return "PLACEHOLDER"
                return nz.format_date(parsed)  # zero-padded year: later slices assume YYYYMMDD

            values = run("date_of_birth", spec.column, dob)
            placeholder = pc.fill_null(pc.equal(values, "PLACEHOLDER"), False)
            self._placeholder_mask = placeholder.to_numpy(zero_copy_only=False)
            out["dob"] = pc.if_else(placeholder, pa.scalar(None, pa.string()), values)
            if "del1" in self.enc.dob_variants:
                # i13: digits of valid dates, and of well-formed non-calendar ones (typos of real dates), for
                # the one-digit-edit tokens only; flagged by count, never used as a date.
                index, digits = map_distinct(chunk.column(spec.column),
                                             lambda v: nz.date_digits(v, spec.formats),
                                             self._caches.setdefault("clean:dob_digits", {}))
                raw_digits = take(index, digits, pa.string())
                kept = pc.if_else(placeholder, pa.scalar(None, pa.string()),
                                  pc.coalesce(out["dob"], raw_digits))
                self._non_calendar_mask = pc.and_(pc.is_null(out["dob"]), pc.is_valid(kept)).to_numpy(
                    zero_copy_only=False)
                out["dob_digits"] = kept
        if ids.sex is not None:
            codes = ids.sex.codes
            out["sex"] = run("sex", ids.sex.column, lambda raw: nz.sex_code(raw, codes))
        if ids.postcode is not None:
            spec = ids.postcode

            def postcode(raw: str) -> str | None:
                found = nz.postcode_parts(raw, spec.format, spec.missing_markers)
                return "|".join(found) if found else None

            index, results = map_distinct(run("postcode", spec.column, postcode), lambda v: v.split("|"), {})
            for i, col in enumerate(("pc_full", "pc_sector", "pc_district")):
                out[col] = take(index, [r[i] for r in results], pa.string())
        if ids.upn is not None:
            out["upn"] = run("upn", ids.upn.column, nz.upn)
        if ids.nhs_number is not None:
            out["nhs"] = run("nhs_number", ids.nhs_number.column, nz.nhs_number)
        return out, problems

    def count_non_calendar(self, accepted: np.ndarray) -> int:
        """Accepted rows of the last cleaned chunk whose date of birth was kept as digits only (i13)."""
        return int((self._non_calendar_mask & accepted).sum()) if len(self._non_calendar_mask) else 0

    def count_placeholders(self, accepted: np.ndarray) -> int:
        """Accepted rows of the last cleaned chunk whose date of birth was a known placeholder."""
        return int((self._placeholder_mask & accepted).sum()) if len(self._placeholder_mask) else 0

    # -- encode -----------------------------------------------------------------------------------

    def _tok(self, field: str, purpose: str) -> Tokeniser:
        if (field, purpose) not in self._toks:
            self._toks[(field, purpose)] = Tokeniser(self.key, self.cfg.project_id, field, purpose)
        return self._toks[(field, purpose)]

    def _bloom(self, field: str) -> BloomEncoder:
        if field not in self._blooms:
            b = self.enc.bloom
            assert b is not None
            self._blooms[field] = BloomEncoder(self.key, self.cfg.project_id, field, b.bits, b.hashes, b.ngram,
                                               xor_fold=b.xor_fold, balanced=b.balanced, blip=b.blip)
        return self._blooms[field]

    def _describe_columns(self) -> dict[str, dict[str, Any]]:
        """Every encoding column this config produces: name -> {field, encoding, type}."""
        cols: dict[str, dict[str, Any]] = {}

        def add(name: str, field: str, encoding: str, kind: str) -> None:
            cols[name] = {"field": field, "encoding": encoding, "type": kind}

        bloom_fields = set(self.enc.bloom.fields) if self.enc.bloom else set()
        bloom_label = "bloom" + (self.enc.bloom.hardening_label() if self.enc.bloom else "")
        # Hardened encodings carry their hardening in the name, so the linker refuses to compare a
        # hardened column with a plain one (they would never agree).
        salt = f"+{self.enc.name_token_salt}" if self.enc.name_token_salt else ""
        for field in ("given_name", "surname"):
            if getattr(self.ids, field) is None:
                continue
            for variant in self.enc.name_variants:
                if variant == "alias" and field != "given_name":
                    continue  # nickname lists are about given names
                add(f"{field}__{variant}", field, variant + salt,
                    "token_list" if variant in ("del1", "alias") else "token")
            per_name = self.enc.composite_name == "each"
            if per_name and self.enc.name_dob_tolerant_tokens and self.ids.date_of_birth is not None:
                add(f"{field}__near_dob", field, "near_dob", "token_list")
            if per_name and self.enc.name_postcode_tokens and self.ids.postcode is not None:
                add(f"{field}__exact_pc", field, "exact_pc+postcode", "token")
            if field == "given_name" and self.enc.name_postcode_alias_tokens and self.ids.postcode is not None:
                add(f"{field}__alias_pc", field, "alias_pc+postcode", "token_list")
            if self.enc.phonetic_postcode_tokens and self.ids.postcode is not None:
                add(f"{field}__phonetic_pc", field, "phonetic_pc+postcode", "token")
            if field in bloom_fields:
                add(f"{field}__bloom", field, bloom_label, "bloom")
                if self.enc.bloom is not None and self.enc.bloom.postcode_layout and self.ids.postcode is not None:
                    # not "__bloom_pc": the linker names each Bloom column's popcount "<column>_pc"
                    add(f"{field}__pcbloom", field, "bloom" + self.enc.bloom.hardening_label("postcode"), "bloom")
        if self.enc.full_name_tokens and self.ids.given_name and self.ids.surname:
            add("name__full", "name", "full", "token")
        if self.enc.full_name_typo_tokens and self.ids.given_name and self.ids.surname:
            add("full_name__del1", "full_name", "del1", "token_list")
        if self.enc.composite_name == "full" and self.ids.given_name and self.ids.surname:
            # One composite per person, not per name: records of different people sharing one name are not linked.
            if self.enc.name_dob_tolerant_tokens and self.ids.date_of_birth is not None:
                add("full_name__near_dob", "full_name", "near_dob", "token_list")
            if self.enc.name_postcode_tokens and self.ids.postcode is not None:
                add("full_name__exact_pc", "full_name", "exact_pc+postcode", "token")
            if self.enc.name_postcode_typo_tokens and self.ids.postcode is not None:
                add("full_name__near_pc", "full_name", "near_pc+postcode", "token_list")
        if self.enc.shared_name_tokens and (self.ids.given_name or self.ids.surname):
            add("name__parts", "name", "parts" + salt, "token_list")
            if self.ids.given_name:
                add("name__given_shared", "name", "given_shared" + salt, "token")
            if self.ids.surname:
                add("name__surname_shared", "name", "surname_shared" + salt, "token")
        if self.ids.date_of_birth is not None:
            for dob_variant in self.enc.dob_variants:
                add(f"dob__{dob_variant}", "date_of_birth", dob_variant,
                    "token_list" if dob_variant == "del1" else "token")
        if self.ids.sex is not None:
            add("sex__exact", "sex", "exact", "token")
        if self.ids.postcode is not None:
            for pc_var in self.enc.postcode_variants:
                add(f"postcode__{pc_var}", "postcode", pc_var, "token_list" if pc_var == "del1" else "token")
        if self.ids.upn is not None:
            add("upn__exact", "upn", "exact", "token")
        if self.ids.nhs_number is not None:
            add("nhs_number__exact", "nhs_number", "exact", "token")
        return cols

    @staticmethod
    def _nulls(clean: dict[str, pa.Array]) -> pa.Array:
        return pa.nulls(len(next(iter(clean.values()))), pa.string())

    def _year(self, clean: dict[str, pa.Array]) -> pa.Array:
        """Year of birth per row (the salt of hardened encodings); null when unknown."""
        if "dob" not in clean:
            return self._nulls(clean)
        return pc.utf8_slice_codeunits(clean["dob"], 0, 4)

    def _salt(self, clean: dict[str, pa.Array], kind: str | None) -> pa.Array:
        """Per-row salt of hardened name encodings: year of birth (dob_year) or whole date of birth (dob)."""
        if kind == "dob":
            # A well-formed non-calendar date (kept as digits for the digit level) salts like a date: two
            # records with the same mistyped date still agree.
            dob = clean.get("dob", self._nulls(clean))
            return pc.coalesce(dob, clean["dob_digits"]) if "dob_digits" in clean else dob
        return self._year(clean)

    def arrow_types(self) -> dict[str, pa.DataType]:
        n_bytes = self.enc.bloom.output_bits() // 8 if self.enc.bloom else 0
        kinds = {"token": pa.string(), "token_list": pa.list_(pa.string()), "bloom": pa.binary(n_bytes)}
        return {name: kinds[spec["type"]] for name, spec in self.columns.items()}

    def encode(self, clean: dict[str, pa.Array]) -> dict[str, pa.Array]:
        """Encodings for each row of a (deduplicated) clean frame, keyed by output column."""
        types = self.arrow_types()
        clean = dict(clean)  # helper columns are added below; the caller's frame stays as it was
        out: dict[str, pa.Array] = {}

        def per_value(column: str, name: str, func: Callable[[str], Any]) -> None:
            if name in types and column in clean:
                memo = self._memos.get(name)
                if memo is None:
                    memo = self._memos[name] = ArrowMemo(func, types[name])
                out[name] = memo.apply(clean[column])

        # Hardening: name values travel joined (by \x1f) with the clean values they are salted or seeded
        # with; without hardening the plain clean column goes in, so the output is unchanged.
        name_salted = self.enc.name_token_salt is not None
        bloom_cfg = self.enc.bloom
        bloom_context = bloom_cfg is not None and (bloom_cfg.salt is not None or bloom_cfg.blip > 0)

        def named(column: str, with_context: bool) -> pa.Array:
            bloom_salt = bloom_cfg.salt if bloom_cfg is not None else None
            salt_kind = bloom_salt if with_context else self.enc.name_token_salt
            parts = [clean[column], self._salt(clean, salt_kind)]
            if with_context:
                parts += [clean.get(c, self._nulls(clean)) for c in ("dob", "sex", "pc_full")]
            joined = pc.binary_join_element_wise(*parts, "\x1f", null_handling="replace", null_replacement="")
            missing = pc.is_null(clean[column])
            if salt_kind is not None:
                # No salt, no salted encoding: a name "salted" with an empty date would be the plain name, whose
                # frequency the salt exists to hide (FEBRL3: 10% of names re-identified through such records).
                missing = pc.or_(missing, pc.is_null(parts[1]))
            return pc.if_else(missing, pa.scalar(None, pa.string()), joined)

        def salt_of(v: str) -> tuple[str, str]:
            """(name, suffix appended to every clear value before tokenising)."""
            name, _, rest = v.partition("\x1f")
            return (name, "\x1f" + rest.split("\x1f")[0]) if name_salted else (v, "")

        pad = self.enc.pad_token_lists
        for field, column in (("given_name", "given"), ("surname", "surname")):
            if column not in clean:
                continue
            # Given name: the first part (middle names go to name__parts). Surname: all parts joined, so
            # "Smith-Jones", "Smith Jones" and "Smithjones" agree.
            def core(v: str, field: str = field) -> str:
                return v.split(" ")[0] if field == "given_name" else v.replace(" ", "")

            source = named(column, False) if name_salted else clean[column]
            clean[f"_tok_{column}"] = source
            exact, phon, init, dele = (self._tok(field, p) for p in ("exact", "phonetic", "initial", "del1"))

            def tok(t: Tokeniser, f: Callable[[str], str], c: Callable[[str], str] = core) -> Callable:
                def run(v: str) -> str | None:
                    name, suffix = salt_of(v)
                    return t.token(f(c(name)) + suffix)
                return run

            def neighbours(v: str, c: Callable[[str], str] = core, t: Tokeniser = dele) -> list[str] | None:
                name, suffix = salt_of(v)
                found = t.tokens([n + suffix for n in nz.deletion_neighbourhood(c(name))])
                return pad_tokens(found, pad, t, c(name) + suffix) if pad and found else found

            per_value(f"_tok_{column}", f"{field}__exact", tok(exact, lambda x: x))
            per_value(f"_tok_{column}", f"{field}__phonetic", tok(phon, jellyfish.metaphone))
            per_value(f"_tok_{column}", f"{field}__initial", tok(init, lambda x: x[0]))
            per_value(f"_tok_{column}", f"{field}__del1", neighbours)

            def aliases(v: str, c: Callable[[str], str] = core, t: Tokeniser = exact) -> list[str] | None:
                # i13: nickname -> formal names, tokenised like the exact name (same salt) so they compare with it;
                # salted, padded to a fixed size (the unsalted list of the accuracy profile keeps its own size)
                name, suffix = salt_of(v)
                found = t.tokens([a + suffix for a in name_aliases(c(name))])
                return pad_tokens(found, ALIAS_COUNT, t, c(name) + suffix) if name_salted and found else found

            per_value(f"_tok_{column}", f"{field}__alias", aliases)
            near = f"{field}__near_dob"
            dob_source = clean.get("dob_digits", clean.get("dob"))
            if near in types and dob_source is not None:
                # Composite with each tolerance salt of the date of birth (linkage.encode.matchkeys); null
                # where the name or the date is missing; always SALT_COUNT tokens (keyed fillers).
                clean[f"_near_{column}"] = pc.binary_join_element_wise(clean[column], dob_source, "\x1f")
                near_tok = self._tok(field, "near_dob")

                def near_dob(v: str, c: Callable[[str], str] = core, t: Tokeniser = near_tok) -> list[str] | None:
                    name, _, digits = v.partition("\x1f")
                    found = t.tokens([f"{c(name)}\x1f{s}" for s in dob_tolerant_salts(digits)])
                    return pad_tokens(found, SALT_COUNT, t, f"{c(name)}\x1f{digits}") if found else None

                per_value(f"_near_{column}", near, near_dob)
            if f"{field}__exact_pc" in types and "pc_full" in clean:
                # Composite with the full postcode: null where either part is missing.
                clean[f"_pc_{column}"] = pc.binary_join_element_wise(clean[column], clean["pc_full"], "\x1f")
                at_postcode = self._tok(field, "exact_pc")

                def with_postcode(v: str, c: Callable[[str], str] = core, t: Tokeniser = at_postcode) -> str | None:
                    name, _, postcode = v.partition("\x1f")
                    return t.token(f"{c(name)}\x1f{postcode}")

                per_value(f"_pc_{column}", f"{field}__exact_pc", with_postcode)
            if f"{field}__alias_pc" in types and "pc_full" in clean:
                # Each canonical form of the name with the full postcode (null where either is missing): a nickname
                # and its formal name at one address share a token; always ALIAS_COUNT tokens (keyed fillers).
                clean[f"_pc_{column}"] = pc.binary_join_element_wise(clean[column], clean["pc_full"], "\x1f")
                alias_at = self._tok(field, "alias_pc")

                def aliases_with_postcode(v: str, c: Callable[[str], str] = core,
                                          t: Tokeniser = alias_at) -> list[str] | None:
                    name, _, postcode = v.partition("\x1f")
                    found = t.tokens([f"{a}\x1f{postcode}" for a in name_aliases(c(name))])
                    return pad_tokens(found, ALIAS_COUNT, t, f"{c(name)}\x1f{postcode}") if found else None

                per_value(f"_pc_{column}", f"{field}__alias_pc", aliases_with_postcode)
            if f"{field}__phonetic_pc" in types and "pc_full" in clean:
                clean[f"_pc_{column}"] = pc.binary_join_element_wise(clean[column], clean["pc_full"], "\x1f")
                sound_at = self._tok(field, "phonetic_pc")

                def sound_with_postcode(v: str, c: Callable[[str], str] = core,
                                        t: Tokeniser = sound_at) -> str | None:
                    name, _, postcode = v.partition("\x1f")
                    return t.token(f"{jellyfish.metaphone(c(name))}\x1f{postcode}")

                per_value(f"_pc_{column}", f"{field}__phonetic_pc", sound_with_postcode)
            if f"{field}__bloom" in types:
                bloom = self._bloom(field)
                if bloom_context:
                    assert bloom_cfg is not None
                    clean[f"_bloom_{column}"] = named(column, True)

                    def filt(v: str, c: Callable[[str], str] = core, b: BloomEncoder = bloom) -> bytes | None:
                        name, salt, *rest = v.split("\x1f")  # salt: year or date of birth (named() above)
                        return b.encode(c(name), salt=salt if bloom_cfg.salt else None, context="\x1f".join(rest))

                    per_value(f"_bloom_{column}", f"{field}__bloom", filt)
                else:
                    def plain(v: str, c: Callable[[str], str] = core, b: BloomEncoder = bloom) -> Any:
                        return b.encode(c(v))

                    per_value(column, f"{field}__bloom", plain)
            if f"{field}__pcbloom" in types and "pc_full" in clean:
                # Second layout salted with the full postcode (null where name or postcode is missing). The salt
                # is tagged, so a postcode can never give the positions of a date-salted filter.
                bloom = self._bloom(field)
                clean[f"_pc_{column}"] = pc.binary_join_element_wise(clean[column], clean["pc_full"], "\x1f")

                def filt_pc(v: str, c: Callable[[str], str] = core, b: BloomEncoder = bloom) -> bytes | None:
                    name, _, postcode = v.partition("\x1f")
                    return b.encode(c(name), salt=f"pc\x1f{postcode}", context=postcode)

                per_value(f"_pc_{column}", f"{field}__pcbloom", filt_pc)

        if "name__full" in types and "given" in clean and "surname" in clean:
            # Core given name and core surname (as in their exact tokens), never salted; null if either is missing.
            clean["_full"] = pc.binary_join_element_wise(clean["given"], clean["surname"], "\x1f")
            full = self._tok("name", "full")

            def full_name(v: str) -> str | None:
                return full.token(core_full_name(v))

            per_value("_full", "name__full", full_name)
        if "full_name__del1" in types and "given" in clean and "surname" in clean:
            # The order-free full name and each one-character deletion of it, never salted: two full names share
            # a token exactly when they are within one edit. Always FULL_NAME_TYPO_COUNT tokens (fillers keyed by
            # the name), so the list's size says nothing about the name's length.
            clean["_full"] = pc.binary_join_element_wise(clean["given"], clean["surname"], "\x1f")
            typo = self._tok("full_name", "del1")

            def full_name_neighbours(v: str, t: Tokeniser = typo) -> list[str] | None:
                return full_name_typo_tokens(core_full_name(v), t)

            per_value("_full", "full_name__del1", full_name_neighbours)
        if set(FULL_NAME_COMPOSITES) & set(types) and "given" in clean and "surname" in clean:
            # Core given name and core surname together (as in their exact tokens); null if either is missing.
            dob_source = clean.get("dob_digits", clean.get("dob"))
            if "full_name__near_dob" in types and dob_source is not None:
                clean["_full_near"] = pc.binary_join_element_wise(clean["given"], clean["surname"], dob_source, "\x1f")
                full_near = self._tok("full_name", "near_dob")

                def full_near_dob(v: str, t: Tokeniser = full_near) -> list[str] | None:
                    name, _, digits = v.rpartition("\x1f")
                    core = core_full_name(name)
                    found = t.tokens([f"{core}\x1f{s}" for s in dob_tolerant_salts(digits)])
                    return pad_tokens(found, SALT_COUNT, t, f"{core}\x1f{digits}") if found else None

                per_value("_full_near", "full_name__near_dob", full_near_dob)
            if "full_name__exact_pc" in types and "pc_full" in clean:
                clean["_full_pc"] = pc.binary_join_element_wise(clean["given"], clean["surname"], clean["pc_full"],
                                                                "\x1f")
                full_at = self._tok("full_name", "exact_pc")

                def full_with_postcode(v: str, t: Tokeniser = full_at) -> str | None:
                    name, _, postcode = v.rpartition("\x1f")
                    return t.token(f"{core_full_name(name)}\x1f{postcode}")

                per_value("_full_pc", "full_name__exact_pc", full_with_postcode)
            if "full_name__near_pc" in types and "pc_full" in clean:
                # The full name with the postcode and each one-character deletion of it (spaces dropped): two
                # postcodes one typo apart share a token. Always POSTCODE_TYPO_COUNT tokens (keyed fillers), so the
                # list's size says nothing about the postcode's length.
                clean["_full_pc"] = pc.binary_join_element_wise(clean["given"], clean["surname"], clean["pc_full"],
                                                                "\x1f")
                full_near_pc = self._tok("full_name", "near_pc")

                def full_near_postcode(v: str, t: Tokeniser = full_near_pc) -> list[str] | None:
                    name, _, postcode = v.rpartition("\x1f")
                    core = core_full_name(name)
                    found = t.tokens([f"{core}\x1f{d}" for d in nz.deletion_neighbourhood(postcode.replace(" ", ""))])
                    return pad_tokens(found, POSTCODE_TYPO_COUNT, t, f"{core}\x1f{postcode}") if found else None

                per_value("_full_pc", "full_name__near_pc", full_near_postcode)
        if "name__parts" in types:
            shared = self._tok("name", "shared")

            def parts_of(v: str) -> list[str] | None:
                name, suffix = salt_of(v)
                parts = name.split(" ")
                if len(parts) > 1:
                    parts.append("".join(parts))  # multi-part surnames also match their joined form
                return shared.tokens([p + suffix for p in parts])

            name_columns = [c for c in clean if c in ("given", "middle", "surname") or c.startswith("former_")]
            lists = [take(*map_distinct(named(c, False) if name_salted else clean[c], parts_of,
                                        self._caches.setdefault("enc:parts", {})),
                          pa.list_(pa.string())) for c in name_columns]
            out["name__parts"] = merge_token_lists(lists)
            per_value("_tok_given", "name__given_shared", tok(shared, lambda x: x, lambda v: v.split(" ")[0]))
            per_value("_tok_surname", "name__surname_shared", tok(shared, lambda x: x, lambda v: v.replace(" ", "")))

        exact = self._tok("date_of_birth", "exact")

        def swap(v: str) -> str | None:
            other = nz.swapped_day_month(dt.date(int(v[:4]), int(v[4:6]), int(v[6:])))
            return exact.token(nz.format_date(other)) if other else None

        ym, year, md = (self._tok("date_of_birth", p) for p in ("ym", "year", "md"))
        per_value("dob", "dob__exact", exact.token)
        per_value("dob", "dob__swap", swap)
        per_value("dob", "dob__ym", lambda v: ym.token(v[:6]))
        per_value("dob", "dob__year", lambda v: year.token(v[:4]))
        per_value("dob", "dob__md", lambda v: md.token(v[4:]))
        # i13: one-digit-edit evidence, also from well-formed non-calendar dates (dob_digits, never a valid date)
        ddel = self._tok("date_of_birth", "del1")
        per_value("dob_digits", "dob__del1", lambda v: ddel.tokens(dob_digit_neighbourhood(v)))
        per_value("sex", "sex__exact", self._tok("sex", "exact").token)
        per_value("pc_full", "postcode__exact", self._tok("postcode", "exact").token)
        per_value("pc_sector", "postcode__sector", self._tok("postcode", "sector").token)
        per_value("pc_district", "postcode__district", self._tok("postcode", "district").token)
        pdel = self._tok("postcode", "del1")
        per_value("pc_full", "postcode__del1", lambda v: pdel.tokens(nz.deletion_neighbourhood(v.replace(" ", ""))))
        per_value("upn", "upn__exact", self._tok("upn", "exact").token)
        per_value("nhs", "nhs_number__exact", self._tok("nhs_number", "exact").token)
        return {name: out[name] for name in types}
