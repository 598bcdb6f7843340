"""The strongest key-less attacks we know, using everything the linkage unit holds.

* :func:`conditioned_frequency_attack`: frequency alignment of a name token column *within* groups of
  records that share co-released tokens (year of birth, sex, postcode district) and the size of the same
  name's deletion-neighbourhood list (which gives the name's length). The groups' tokens are first mapped
  to clear values by their own frequencies; guesses for a token seen in several groups are pooled by vote.
  Composite (salted) tokens that repeat only within a year still repeat there, which this attack reads.
* :func:`bloom_cluster_attack`: similarity-graph clustering of Bloom filters (Vidanage et al.'s idea):
  filters whose Dice similarity is high are linked (bit-sampling LSH candidates, verified Dice), each cluster
  stands for one name, its size is the name's frequency and its majority-vote centroid undoes random bit
  flips (BLIP). Clusters are then aligned with reference names by size and length and decoded by n-gram
  pattern mining (:mod:`linkage.audit.bloom_attack`); optionally within year-of-birth groups, which is what
  a year salt needs.
* :func:`row_order_attack`: guesses names from row position alone, as if the extract were sorted by that
  name; its success is compared with chance.

All functions see encoded values and reference statistics only; scoring happens elsewhere (with the key).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from functools import lru_cache
from typing import cast

import numpy as np
import pandas as pd

from linkage import normalise as nz
from linkage.audit.bloom_attack import bloom_attack
from linkage.audit.frequency import align
from linkage.graph import index_component_labels

# Co-released token columns an attacker can condition on -> population column holding the clear value.
CONDITIONS = {"dob__year": "year", "sex__exact": "sex", "postcode__district": "district", "postcode__sector": "sector",
              "postcode__exact": "postcode"}
CONDITION_SETS: list[tuple[str, ...]] = [(), ("dob__year",), ("dob__year", "sex__exact"), ("postcode__district",)]
MIN_COUNT = 2       # a token seen once carries no frequency information: it is not guessed
MIN_GROUP = 20      # a Bloom group this small has too few filters to cluster or mine patterns from
CLUSTER_DICE = 0.8  # filters at least this similar are taken to encode the same name
_UNKNOWN = "\x00?"  # group label for a missing condition value (same on both sides)


def _map_tokens(tokens: pd.Series, clear: pd.Series) -> dict:
    """Clear value of each token of a condition column, by frequency alignment of the whole column."""
    return align(Counter(tokens.dropna().tolist()), Counter(clear.dropna().tolist()), top=10 ** 9)


def _group_keys(records: pd.DataFrame, population: pd.DataFrame,
                conditions: tuple[str, ...]) -> tuple[pd.Series, pd.Series]:
    """Per record and per reference row, the (mapped) condition values joined into one group key."""
    obs = pd.Series([""] * len(records), index=records.index, dtype=object)
    ref = pd.Series([""] * len(population), index=population.index, dtype=object)
    for cond in conditions:
        mapping = _map_tokens(records[cond], population[CONDITIONS[cond]])
        obs = obs + "|" + records[cond].map(mapping).fillna(_UNKNOWN).astype(str)
        ref = ref + "|" + population[CONDITIONS[cond]].fillna(_UNKNOWN).astype(str)
    return obs, ref


def deletion_list_size(name: str) -> int:
    """Size of a name's deletion-neighbourhood token list (what an unpadded ``__del1`` column shows)."""
    return len(nz.deletion_neighbourhood(name))


def conditioned_frequency_attack(records: pd.DataFrame, column: str, population: pd.DataFrame, field: str,
                                 transform: Callable[[str], str], conditions: tuple[str, ...] = (),
                                 size_column: str | None = None) -> dict:
    """{token: guessed clear value} for one token column, aligning frequencies within condition groups.

    ``population`` holds the attacker's reference rows (:mod:`linkage.audit.population`); ``field`` is
    its name column and ``transform`` maps a core name to what the column encodes (exact, initial, ...).
    ``size_column`` is a token-list column of the same name whose size is used as a further condition.
    """
    obs_key, ref_key = _group_keys(records, population, conditions)
    names = population[field]
    if size_column is not None:
        obs_key = obs_key + "|" + records[size_column].map(
            lambda v: str(len(v)) if isinstance(v, (list, np.ndarray)) else "")
        ref_key = ref_key + "|" + names.map(lambda v: str(deletion_list_size(v)) if isinstance(v, str) and v else "")
    obs = pd.DataFrame({"g": obs_key, "tok": records[column]}).dropna()
    ref = pd.DataFrame({"g": ref_key, "name": names.map(lambda v: transform(v) if isinstance(v, str) and v else None)})
    ref = ref.dropna()
    obs_counts = obs.groupby(["g", "tok"]).size()
    obs_groups: dict[str, Counter] = defaultdict(Counter)
    for obs_key_tok, n in obs_counts[obs_counts >= MIN_COUNT].items():
        group, tok = cast(tuple[str, str], obs_key_tok)  # a (group, token) MultiIndex entry
        obs_groups[group][tok] = int(n)
    ref_groups: dict[str, Counter] = defaultdict(Counter)
    for ref_key_name, n in ref.groupby(["g", "name"]).size().items():
        ref_group, ref_name = cast(tuple[str, str], ref_key_name)
        ref_groups[ref_group][ref_name] = int(n)
    votes: dict[object, Counter] = defaultdict(Counter)
    for g, observed in obs_groups.items():
        reference = ref_groups.get(g)
        if not reference:
            continue
        for tok, guess in align(observed, reference, top=len(observed)).items():
            votes[tok][guess] += observed[tok]
    return {tok: max(v.items(), key=lambda kv: (kv[1], kv[0]))[0] for tok, v in votes.items()}


def list_frequency_attack(records: pd.DataFrame, column: str, population: pd.DataFrame, field: str,
                          conditions: tuple[str, ...] = (),
                          list_size: Callable[[str], int] | None = None) -> pd.Series:
    """Guessed core name per record from a token-list column of one name (composite or alias tokens).

    Every token of every list is counted (records holding it) within condition groups, which also include
    the list's size (unpadded lists give it away; ``list_size`` gives a reference name's list size, so the
    reference is split the same way); tokens seen at least twice are aligned by frequency
    with the group's reference names, and each record takes the guess its tokens vote for most (weighted
    by the tokens' counts). Returns a Series aligned with ``records`` (None: no guess).
    """
    obs_key, ref_key = _group_keys(records, population, conditions)
    sizes = records[column].map(lambda v: len(v) if isinstance(v, (list, np.ndarray)) else 0)
    seen = sizes[sizes > 0].unique()
    if list_size is not None and len(seen) <= 1 and not any(
            list_size(v) == (seen[0] if len(seen) else -1) for v in population[field].dropna().unique()):
        # One size for every list, and no reference name's own list has it: padded. Splitting the reference by the
        # names' own list sizes would leave it empty (a padded nickname list: no name has 20 forms), so the attacker
        # aligns against the whole reference. Unpadded lists that happen to share one size keep the split (an
        # extract without nicknames: every list holds one token, and only names without nicknames are candidates).
        list_size = None
    obs_key = obs_key + "|" + sizes.astype(str)
    exploded = pd.DataFrame({"g": obs_key, "tok": records[column]}).explode("tok").dropna()
    exploded = exploded.reset_index().rename(columns={"index": "row"}).drop_duplicates(["row", "tok"])
    # Tokens held by exactly the same records are one unit (several salts of one name and date that no
    # other record shares): aligning them separately would spend several reference ranks on one name.
    tok_codes = pd.factorize(exploded["tok"])[0]
    exploded["unit"] = row_set_labels(tok_codes, exploded["row"].to_numpy())[tok_codes]
    counts = exploded.drop_duplicates(["row", "unit"]).groupby(["g", "unit"]).size()
    obs_groups: dict[str, Counter] = defaultdict(Counter)
    for key, n in counts[counts >= MIN_COUNT].items():
        group, unit = cast(tuple[str, int], key)
        obs_groups[group][unit] = int(n)
    ref = pd.DataFrame({"g": ref_key, "name": population[field]}).dropna()
    if list_size is not None:
        # The attacker computes each reference name's list size too (public nickname list, name length).
        sizes_of = {v: str(list_size(v)) for v in ref["name"].unique()}
        ref["g"] = ref["g"] + "|" + ref["name"].map(sizes_of)
    ref_groups = {g: Counter(s.tolist()) for g, s in ref.groupby("g")["name"]}
    guess_of: dict[int, str] = {}
    for g, observed in obs_groups.items():
        # Without a size function a reference group holds every list size (fixed-size lists: one size).
        reference = ref_groups.get(g if list_size is not None else g.rsplit("|", 1)[0])
        if reference:
            guess_of.update(align(observed, reference, top=len(observed)))
    exploded["guess"] = exploded["unit"].map(guess_of)
    weights = counts.rename("weight").reset_index()
    exploded = exploded.merge(weights, on=["g", "unit"], how="left")
    exploded["weight"] = exploded["weight"].fillna(0).astype(np.int64)
    voted = exploded.dropna(subset=["guess"]).groupby(["row", "guess"])["weight"].sum().reset_index()
    voted = voted.sort_values(["row", "weight", "guess"], ascending=[True, False, True]).drop_duplicates("row")
    return pd.Series(dict(zip(voted["row"], voted["guess"], strict=True)), dtype=object).reindex(records.index)


# CPython's tuple hash constants (Objects/tupleobject.c, xxHash-style since 3.8).
_XXPRIME_1 = np.uint64(11400714785074694791)
_XXPRIME_2 = np.uint64(14029467366897019727)
_XXPRIME_5 = np.uint64(2870177450012600261)


def row_set_labels(tok_codes: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Per token code (0..k-1), a label of the set of rows holding it: ``hash(tuple(sorted(rows)))``.

    Computed over all tokens at once instead of one Python call per token (the suite's cost at 50,000
    people). The label only has to be equal for equal row sets and an arbitrary but fixed order otherwise
    (it breaks frequency ties); it is the value CPython gives the tuple, so guesses are the same as when
    it was computed token by token. ``rows`` are non-negative integers (hash(int) is the int itself).
    """
    n_tokens = int(tok_codes.max()) + 1 if len(tok_codes) else 0
    if n_tokens == 0:
        return np.zeros(0, dtype=np.int64)
    if rows.min() < 0 or rows.max() >= (1 << 61) - 1:
        raise ValueError("row labels must be non-negative integers below 2**61 - 1")
    order = np.lexsort((rows, tok_codes))
    code, lane = tok_codes[order], rows[order].astype(np.uint64)
    starts = np.flatnonzero(np.r_[True, code[1:] != code[:-1]])
    lengths = np.diff(np.r_[starts, len(code)])
    by_length = np.argsort(-lengths, kind="stable")  # tokens with > k rows are a prefix of this order
    starts, lengths = starts[by_length], lengths[by_length]
    acc = np.full(len(starts), _XXPRIME_5, dtype=np.uint64)
    descending = -lengths
    with np.errstate(over="ignore"):
        for k in range(int(lengths[0])):
            m = int(np.searchsorted(descending, -k, side="left"))  # tokens held by more than k rows
            acc[:m] += lane[starts[:m] + k] * _XXPRIME_2
            acc[:m] = (acc[:m] << np.uint64(31)) | (acc[:m] >> np.uint64(33))
            acc[:m] *= _XXPRIME_1
        acc += lengths.astype(np.uint64) ^ (_XXPRIME_5 ^ np.uint64(3527539))
    acc[acc == np.uint64(2 ** 64 - 1)] = np.uint64(1546275796)
    labels = np.empty(n_tokens, dtype=np.int64)
    labels[code[starts]] = acc.view(np.int64)
    return labels


# --- Bloom filters ----------------------------------------------------------------------------------

_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.int32)


def _bit_matrix(filters: list[bytes]) -> np.ndarray:
    raw = np.frombuffer(b"".join(filters), dtype=np.uint8).reshape(len(filters), -1)
    return raw


def _band_keys(raw: np.ndarray, bands: int, width: int, seed: int = 7, chunk: int = 8192) -> np.ndarray:
    """Bit-sampling LSH: per band, ``width`` keyed-random bit positions read as one integer per filter.

    Two filters agree on a band when they agree on all its bits, which is likely for near-duplicates
    (a few flipped bits) and unlikely for unrelated filters; cheap even for 100,000 filters.
    """
    n, n_bytes = raw.shape
    positions = np.random.default_rng(seed).integers(0, 8 * n_bytes, size=(bands, width))
    weights = (1 << np.arange(width, dtype=np.int64))
    keys = np.empty((n, bands), dtype=np.int64)
    for start in range(0, n, chunk):
        bits = np.unpackbits(raw[start:start + chunk], axis=1)
        for band in range(bands):
            keys[start:start + chunk, band] = bits[:, positions[band]].astype(np.int64) @ weights
    return keys


def _dice_pairs(raw: np.ndarray, a: np.ndarray, b: np.ndarray, chunk: int = 100_000) -> np.ndarray:
    """Dice similarity of filter pairs (a[i], b[i]), in slices: all candidate pairs at once took 0.8 GB for
    77,000 filters, and grow with the population."""
    out = np.empty(len(a), dtype=np.float64)
    ones = _POPCOUNT.astype(np.uint8)
    for start in range(0, len(a), chunk):
        left, right = raw[a[start:start + chunk]], raw[b[start:start + chunk]]
        inter = ones[left & right].sum(axis=1, dtype=np.int64)
        total = ones[left].sum(axis=1, dtype=np.int64) + ones[right].sum(axis=1, dtype=np.int64)
        out[start:start + chunk] = np.where(total > 0, 2 * inter / np.maximum(total, 1), 0.0)
    return out


@lru_cache(maxsize=32)
def _pairs_of(width: int) -> tuple[np.ndarray, np.ndarray]:
    return np.triu_indices(width, 1)


def cluster_filters(filters: list[bytes], min_dice: float = CLUSTER_DICE, bands: int = 12) -> np.ndarray:
    """Cluster label per distinct filter: connected components of the graph of pairs with Dice >= min_dice.

    Candidate pairs come from LSH banding (filters agreeing on a whole band); within a bucket every
    pair is tried when it is small, else each member against the bucket's first and previous member.
    """
    n = len(filters)
    if n <= 1:
        return np.zeros(n, dtype=np.int64)
    raw = _bit_matrix(filters)
    band_keys = _band_keys(raw, bands, 24)
    edges_a, edges_b = [], []
    for band in range(bands):  # each band's candidate pairs are verified before the next band's are made
        key = band_keys[:, band]
        order = np.argsort(key, kind="stable")
        sorted_key = key[order]
        starts = np.flatnonzero(np.r_[True, sorted_key[1:] != sorted_key[:-1]])
        ends = np.r_[starts[1:], n]
        left, right = [], []
        for s, e in zip(starts, ends, strict=True):
            width = int(e - s)
            if width < 2:
                continue
            members = order[s:e]
            if width <= 30:
                upper_i, upper_j = _pairs_of(width)
                left.append(members[upper_i])
                right.append(members[upper_j])
            else:
                left += [np.full(width - 1, members[0]), members[:-1]]
                right += [members[1:], members[1:]]
        if left:
            a, b = np.concatenate(left), np.concatenate(right)
            keep = _dice_pairs(raw, a, b) >= min_dice
            edges_a.append(a[keep])
            edges_b.append(b[keep])
    if not edges_a:
        return np.arange(n)
    a, b = np.concatenate(edges_a), np.concatenate(edges_b)
    return index_component_labels(n, a, b)


def _centroids(filters: list[bytes], counts: np.ndarray, labels: np.ndarray) -> dict[int, bytes]:
    """Majority-vote filter of each cluster (weighted by how often each distinct filter occurs).

    A one-filter cluster's centroid is the filter itself; only the members of larger clusters are unpacked
    to bits (salted filters are nearly all alone: unpacking them all took 4 KB per filter).
    """
    sizes = np.bincount(labels)
    out = {int(label): filters[i] for i, label in enumerate(labels) if sizes[label] == 1}
    members = np.flatnonzero(sizes[labels] > 1)
    if len(members):
        raw = _bit_matrix([filters[i] for i in members])
        member_labels, w = labels[members], counts[members]
        for label, idx in pd.Series(np.arange(len(members))).groupby(member_labels):
            rows = idx.to_numpy()
            ones = (np.unpackbits(raw[rows], axis=1) * w[rows, None]).sum(axis=0)
            out[int(str(label))] = np.packbits((ones / w[rows].sum() >= 0.5).astype(np.uint8)).tobytes()
    return out


def bloom_cluster_attack(records: pd.DataFrame, column: str, population: pd.DataFrame, field: str,
                         ngram: int, hashes: int, structured: bool, conditions: tuple[str, ...] = (),
                         min_group: int = MIN_GROUP) -> dict:
    """{filter bytes: guessed core name}: cluster similar filters, then align and pattern-mine the clusters.

    ``min_group``: smallest group attacked. Within a full postcode (the salt of ``__pcbloom`` filters) a
    group of two already shows whether its names repeat, and a worst-case reference knows who lives there.
    """
    obs_key, ref_key = _group_keys(records, population, conditions)
    frame = pd.DataFrame({"g": obs_key, "f": records[column]}).dropna()
    ref = pd.DataFrame({"g": ref_key, "name": population[field]}).dropna()
    ref_groups = {g: Counter(s.tolist()) for g, s in ref.groupby("g")["name"]}
    votes: dict[bytes, Counter] = defaultdict(Counter)
    for g, part in frame.groupby("g"):
        reference = ref_groups.get(g)
        if not reference or len(part) < min_group:
            continue
        counted = Counter(part["f"].tolist())
        distinct = list(counted)
        counts = np.array([counted[f] for f in distinct], dtype=np.float64)
        labels = cluster_filters(distinct)
        centroid = _centroids(distinct, counts, labels)
        by_filter = {f: centroid[int(label)] for f, label in zip(distinct, labels, strict=True)}
        guesses = bloom_attack(part["f"].map(by_filter), reference, ngram, hashes, structured=structured)
        for f in distinct:
            guess = guesses.get(by_filter[f])
            if guess is not None:
                votes[f][guess] += counted[f]
    return {f: max(v.items(), key=lambda kv: (kv[1], kv[0]))[0] for f, v in votes.items()}


def group_baseline_guesses(records: pd.DataFrame, column: str, population: pd.DataFrame, field: str,
                           conditions: tuple[str, ...], min_group: int = MIN_GROUP) -> dict:
    """{value: guessed name} from the grouping alone, without reading ``column``: every record of an attacked
    group gets the group's commonest reference name.

    This is what a group attack gets for free when the reference knows who is in each group (the worst case
    knows the extract's own names per postcode): two records at one postcode with different names are a coin
    toss whatever the encoding. The gate counts a group attack's share only above this baseline."""
    obs_key, ref_key = _group_keys(records, population, conditions)
    frame = pd.DataFrame({"g": obs_key, "f": records[column]}).dropna()
    ref = pd.DataFrame({"g": ref_key, "name": population[field]}).dropna()
    modes = {g: max(Counter(s.tolist()).items(), key=lambda kv: (kv[1], kv[0]))[0]
             for g, s in ref.groupby("g")["name"]}
    votes: dict[bytes, Counter] = defaultdict(Counter)
    for g, part in frame.groupby("g"):
        mode = modes.get(g)
        if mode is None or len(part) < min_group:
            continue
        for f, n in Counter(part["f"].tolist()).items():
            votes[f][mode] += n
    return {f: max(v.items(), key=lambda kv: (kv[1], kv[0]))[0] for f, v in votes.items()}

# --- row order --------------------------------------------------------------------------------------

def row_order_attack(truth: pd.Series, reference: pd.Series) -> dict[str, float]:
    """Guess each record's name from its position, as if the rows were sorted by that name (either way).

    ``truth`` holds the records' real core names in file order (used only to score); ``reference`` the
    attacker's names. Returns the share guessed right (name and initial) and what chance would give.
    """
    present = truth.dropna().reset_index(drop=True)
    ref = reference.dropna().sort_values().reset_index(drop=True)
    if present.empty or ref.empty:
        return {"share": 0.0, "chance": 0.0, "initial_share": 0.0, "initial_chance": 0.0}
    positions = ((np.arange(len(present)) + 0.5) / len(present) * len(ref)).astype(int)
    best: dict[str, float] = {}
    for guess in (ref.iloc[positions].reset_index(drop=True), ref.iloc[positions[::-1]].reset_index(drop=True)):
        scores = {"share": float((guess == present).mean()),
                  "initial_share": float((guess.str[0] == present.str[0]).mean())}
        p_true, p_guess = present.value_counts(normalize=True), guess.value_counts(normalize=True)
        i_true, i_guess = present.str[0].value_counts(normalize=True), guess.str[0].value_counts(normalize=True)
        scores["chance"] = float((p_true * p_guess.reindex(p_true.index, fill_value=0)).sum())
        scores["initial_chance"] = float((i_true * i_guess.reindex(i_true.index, fill_value=0)).sum())
        if not best or scores["share"] + scores["initial_share"] > best["share"] + best["initial_share"]:
            best = scores
    return {k: round(v, 4) for k, v in best.items()}


# --- token-sharing graph -----------------------------------------------------------------------------

def token_graph_attack(records: pd.DataFrame, columns: list[str], population: pd.DataFrame, field: str,
                       conditions: tuple[str, ...] = ()) -> pd.Series:
    """Guessed core name per record from the graph of records that share any token of one name field.

    Composite tokens of a name never collide across names, so two records holding one such token have the
    same name; the date-tolerant list links a person to others of that name born on the same day and
    month in any year, in the same ten days of a month, or two years apart, and the name x postcode token
    links a household. Chained, these links join everyone of a common name into one connected component
    once the population is large enough (the frequency each single token hides comes back as the
    component's size). Components (at least ``MIN_COUNT`` records) are aligned by size with the reference
    names; with ``conditions`` (``sex__exact``) within the group of the component's majority mapped value
    (a given name is nearly always one sex). ``columns`` are the field's token and token-list columns whose
    tokens stand for one name only (no nickname or deletion lists, which link different names).
    Returns a Series aligned with ``records`` (None: no guess).
    """
    n = len(records)
    rows_parts, tok_parts = [], []
    for col in columns:
        values = records[col].reset_index(drop=True)
        if values.map(lambda v: isinstance(v, (list, np.ndarray))).any():
            values = values.explode()
        values = values.dropna()
        rows_parts.append(values.index.to_numpy())
        # Bloom filters (bytes) link by equality as tokens do; namespaced by column so values never collide.
        tok_parts.append(np.asarray([f"{col}\x1f{v.hex() if isinstance(v, bytes) else v}" for v in values.tolist()],
                                    dtype=object))
    guesses = pd.Series([None] * n, index=records.index, dtype=object)
    if not rows_parts or not sum(len(r) for r in rows_parts):
        return guesses
    rows = np.concatenate(rows_parts)
    tok_codes, uniques = pd.factorize(np.concatenate(tok_parts))
    component = index_component_labels(n + len(uniques), rows, n + tok_codes)[:n]  # records and tokens as nodes
    has_token = np.zeros(n, dtype=bool)
    has_token[rows] = True
    frame = pd.DataFrame({"c": component, "g": ""})[has_token]
    ref = pd.DataFrame({"name": population[field], "g": ""}).dropna(subset=["name"])
    for cond in conditions:
        mapping = _map_tokens(records[cond], population[CONDITIONS[cond]])
        mapped = records[cond].map(mapping).fillna(_UNKNOWN).astype(str).to_numpy()[has_token]
        # The group of a component (a name) is its most common mapped value; same for a reference name.
        frame["v"] = mapped
        majority = frame.groupby(["c", "v"]).size().reset_index(name="k").sort_values(
            ["c", "k", "v"], ascending=[True, False, True]).drop_duplicates("c").set_index("c")["v"]
        frame["g"] = frame["g"] + "|" + frame["c"].map(majority)
        ref["v"] = population.loc[ref.index, CONDITIONS[cond]].fillna(_UNKNOWN).astype(str)
        ref_major = ref.groupby(["name", "v"]).size().reset_index(name="k").sort_values(
            ["name", "k", "v"], ascending=[True, False, True]).drop_duplicates("name").set_index("name")["v"]
        ref["g"] = ref["g"] + "|" + ref["name"].map(ref_major)
    sizes = frame.groupby(["g", "c"]).size()
    ref_groups = {g: Counter(s.tolist()) for g, s in ref.groupby("g")["name"]}
    guess_of: dict[int, str] = {}
    for g, part in sizes[sizes >= MIN_COUNT].groupby(level=0):
        reference = ref_groups.get(str(g))
        if reference:
            observed = Counter({int(c): int(k) for c, k in zip(part.index.get_level_values(1), part.to_numpy(),
                                                               strict=True)})
            guess_of.update(align(observed, reference, top=len(observed)))
    guessed = pd.Series(component).map(guess_of)
    guessed[~has_token] = None
    return pd.Series(guessed.to_numpy(), index=records.index, dtype=object)
