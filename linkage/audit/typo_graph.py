"""The attack on a full name's deletion-neighbourhood column (``full_name__del1``): graph matching.

Records whose full names are within one edit share a token of this column; records of one name hold the same
list. So the attacker (the linkage unit, without the key) sees a graph: one node per distinct list (a full name),
weighted by how many records hold it, an edge wherever two lists share a token (two names one typo apart). From
a reference list of names it computes the same graph in the clear: deletion neighbourhoods need no key. Graph
matching (Vidanage et al.'s attack on Bloom-filter similarity graphs, here on exact token sharing) then pairs
the two graphs' nodes: each node starts coloured by its degree (and by its list's size when lists are not
padded, which gives the name's length), colours are refined by the multiset of the neighbours' colours
(Weisfeiler-Lehman), and within each final colour class nodes are aligned by frequency. A name whose
neighbourhood structure is unique is found even when it is held by one record.

With ``conditions`` (co-released token columns: year of birth, sex, district) the attacker also splits records by
those tokens (their clear values found by aligning each whole column's frequencies) and aligns within each
(colour, group) class: a name's colour comes from the whole graph (the most structure), its count is that of its
records in the group, against the reference names of the same colour counted in the same year/sex/district.

Tokens are held compactly (64-bit integers, the first 16 hex digits of each token): at 200,000 people a column
of 24-token lists as Python strings would take over a gigabyte. :func:`list_key` names a whole list, which is
how the oracle scores a record (its first token may be shared with a neighbouring name).
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from linkage import normalise as nz
from linkage.audit.attacks import CONDITIONS
from linkage.audit.frequency import align

#: Name columns attacked by graph matching (their tokens link names one edit apart).
TYPO_GRAPH_COLUMNS = ("full_name__del1",)
WL_ROUNDS = (0, 2)  # refinement rounds tried: degree only, and two rounds of neighbour colours
#: Co-released groupings the graph attack is also run within (the suite runs those whose tokens are present).
GRAPH_CONDITION_SETS: list[tuple[str, ...]] = [("dob__year",), ("dob__year", "sex__exact"), ("postcode__district",)]
_UNKNOWN_GROUP = "\x00?"  # group of a record or reference row without the condition's value (same on both sides)

_HEX = np.full(256, 0, dtype=np.uint64)
_HEX[np.frombuffer(b"0123456789", dtype=np.uint8)] = np.arange(10, dtype=np.uint64)
_HEX[np.frombuffer(b"abcdef", dtype=np.uint8)] = np.arange(10, 16, dtype=np.uint64)


def compact_lists(column: pa.ChunkedArray | pa.Array) -> list[np.ndarray | None]:
    """Each list of 32-hex-digit tokens as a sorted int64 array of their first 64 bits (None for a null list)."""
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    flat = pc.list_flatten(arr).cast(pa.large_string())
    if len(flat):
        data = np.frombuffer(flat.buffers()[2], dtype=np.uint8)
        offsets = np.frombuffer(flat.buffers()[1], dtype=np.int64)[flat.offset:flat.offset + len(flat) + 1]
        if not np.all(np.diff(offsets) == 32):
            raise ValueError("token lists hold tokens that are not 32 hex digits")
        digits = _HEX[data[offsets[0]:offsets[-1]].reshape(-1, 32)[:, :16]]
        values = np.zeros(len(flat), dtype=np.uint64)
        for k in range(16):
            values = (values << np.uint64(4)) | digits[:, k]
        ints = values.view(np.int64)
    else:
        ints = np.zeros(0, dtype=np.int64)
    lengths = pc.list_value_length(arr).fill_null(0).to_numpy(zero_copy_only=False)
    valid = arr.is_valid().to_numpy(zero_copy_only=False)
    parts = np.split(ints, np.cumsum(lengths)[:-1]) if len(lengths) else []
    return [np.sort(p) if ok else None for p, ok in zip(parts, valid, strict=True)]


def compact_one(tokens: list[str]) -> np.ndarray:
    """:func:`compact_lists` of one Python list of hex tokens."""
    return np.sort(np.array([int(t[:16], 16) for t in tokens], dtype=np.uint64).view(np.int64))


def list_key(tokens: Any) -> int | None:
    """A 64-bit name for a whole (compact) token list: equal lists, equal keys."""
    if not isinstance(tokens, np.ndarray) or not len(tokens):
        return None
    return int.from_bytes(hashlib.blake2b(np.sort(tokens).tobytes(), digest_size=8).digest(), "big")


def _edges(node_of_token_rows: np.ndarray, token_codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Undirected edges (a < b) between nodes holding a common token (any hashable code), without repeats."""
    frame = pd.DataFrame({"n": node_of_token_rows, "t": token_codes}).drop_duplicates()
    frame = frame[frame.groupby("t")["n"].transform("size") > 1]
    pairs = frame.merge(frame, on="t")
    pairs = pairs[pairs["n_x"] < pairs["n_y"]][["n_x", "n_y"]].drop_duplicates()
    return pairs["n_x"].to_numpy(), pairs["n_y"].to_numpy()


def _neighbours(n: int, a: np.ndarray, b: np.ndarray) -> list[list[int]]:
    out: list[list[int]] = [[] for _ in range(n)]
    for x, y in zip(a.tolist(), b.tolist(), strict=True):
        out[x].append(y)
        out[y].append(x)
    return out


def _refine(colours: list[Any], neighbours: list[list[int]], rounds: int) -> list[Any]:
    for _ in range(rounds):
        # A colour is a hash of integers (not randomised between processes), so both graphs' colours compare.
        colours = [hash((c, tuple(sorted(colours[j] for j in nb)))) for c, nb in zip(colours, neighbours, strict=True)]
    return colours


def reference_core(label: str) -> str:
    """The core full name the encoder neighbours (``given\\x1fsurname``) from a reference ``full_name`` label."""
    return label.replace(" ", "\x1f")


def condition_groups(records: pd.DataFrame, population: pd.DataFrame,
                     conditions: tuple[str, ...]) -> tuple[pd.Series, pd.Series]:
    """Per record and per reference row, a group label joining the clear values of the ``conditions`` columns.

    The records' condition tokens are mapped to clear values by aligning the whole column's frequencies with the
    reference's (the attacker holds no key); the reference rows use their clear values."""
    obs = pd.Series([""] * len(records), index=records.index, dtype=object)
    ref = pd.Series([""] * len(population), index=population.index, dtype=object)
    for cond in conditions:
        clear = population[CONDITIONS[cond]]
        mapping = align(Counter(records[cond].dropna().tolist()), Counter(clear.dropna().tolist()), top=10 ** 9)
        obs = obs + "|" + records[cond].map(mapping).fillna(_UNKNOWN_GROUP).astype(str)
        ref = ref + "|" + clear.fillna(_UNKNOWN_GROUP).astype(str)
    return obs, ref


def deletion_graph_attack(records: pd.DataFrame, column: str, population: pd.DataFrame, field: str = "full_name",
                          rounds: int = 2, list_size: bool | None = None) -> pd.Series:
    """Guessed full name (reference label) per record from the token-sharing graph of a deletion-list column.

    ``records[column]`` holds compact token lists (:func:`compact_lists`); ``population[field]`` the
    attacker's reference names (``full_name`` labels, one row per person or record). ``list_size``: colour
    nodes by their list's size as well (default: only when the lists are not all of one size, i.e. unpadded).
    Returns a Series aligned with ``records`` (None: no guess).
    """
    return deletion_graph_attacks(records, column, population, field, (rounds,), list_size)[rounds]


def deletion_graph_attacks(records: pd.DataFrame, column: str, population: pd.DataFrame, field: str = "full_name",
                           rounds: tuple[int, ...] = WL_ROUNDS, list_size: bool | None = None,
                           condition_sets: tuple[tuple[str, ...], ...] | None = None) -> dict[Any, pd.Series]:
    """:func:`deletion_graph_attack` for several refinement depths, both graphs built once: {rounds: guesses}.

    With ``condition_sets`` the keys are ``(rounds, conditions, voted)``: each condition set's guesses align names
    within (colour, group) classes (module docstring; ``()`` is the unconditioned attack), one guess per record's
    group (``voted`` False) and, for a non-empty set, one per list, voted by its records' groups (``voted`` True)."""
    keyed = condition_sets is not None
    condition_sets = ((),) if condition_sets is None else condition_sets
    lists = records[column]
    keys = lists.map(list_key)
    present = keys.notna()
    empty = pd.Series([None] * len(records), index=records.index, dtype=object)
    if not present.any():
        return {((r, c) if keyed else r): empty.copy() for r in rounds for c in condition_sets}
    node_codes, _ = pd.factorize(keys[present])
    counts = np.bincount(node_codes)
    first_row = pd.Series(np.arange(len(node_codes))).groupby(node_codes).first().to_numpy()
    node_lists = [lists[present].iloc[i] for i in first_row]
    sizes = [len(v) for v in node_lists]
    if list_size is None:
        list_size = len(set(sizes)) > 1
    rows = np.repeat(np.arange(len(node_lists)), sizes)
    toks = np.concatenate(node_lists) if node_lists else np.zeros(0, dtype=np.int64)
    enc_nb = _neighbours(len(node_lists), *_edges(rows, toks))

    ref_counts = Counter(population[field].dropna().astype(str).tolist())
    ref_names = list(ref_counts)
    # The reference's deletion strings as 64-bit hashes (one process: equal strings, equal hashes), so that
    # millions of them are not held as Python strings.
    ref_sizes: list[int] = []
    hashed: list[int] = []
    for name in ref_names:
        neighbourhood = nz.deletion_neighbourhood(reference_core(name))
        ref_sizes.append(len(neighbourhood))
        hashed.extend(hash(t) for t in neighbourhood)
    ref_rows = np.repeat(np.arange(len(ref_names)), ref_sizes)
    ref_nb = _neighbours(len(ref_names), *_edges(ref_rows, np.asarray(hashed, dtype=np.int64)))
    del hashed

    def initial(nb: list[list[int]], size: list[int]) -> list[Any]:
        return [hash((len(n), s if list_size else 0)) for n, s in zip(nb, size, strict=True)]

    # Per condition set: each present record's group code, and the reference's (name, group) counts.
    grouping: dict[tuple[str, ...], tuple[np.ndarray, Counter]] = {}
    ref_field = population[field].dropna().astype(str)
    for cond in condition_sets:
        if not cond:
            continue
        obs_group, ref_group = condition_groups(records, population, cond)
        codes, labels = pd.factorize(pd.concat([obs_group[present], ref_group.loc[ref_field.index]]))
        n_obs = int(present.sum())
        grouping[cond] = (codes[:n_obs], Counter(zip(ref_field.tolist(), codes[n_obs:].tolist(), strict=True)))

    out: dict[Any, pd.Series] = {}
    enc_col, ref_col, done = initial(enc_nb, sizes), initial(ref_nb, ref_sizes), 0
    for depth in sorted(rounds):
        enc_col = _refine(enc_col, enc_nb, depth - done)
        ref_col = _refine(ref_col, ref_nb, depth - done)
        done = depth
        for cond in condition_sets:
            guesses = empty.copy()
            if not cond:
                enc_classes: dict[Any, Counter] = defaultdict(Counter)
                for i, c in enumerate(enc_col):
                    enc_classes[c][i] = int(counts[i])
                ref_classes: dict[Any, Counter] = defaultdict(Counter)
                for name, c in zip(ref_names, ref_col, strict=True):
                    ref_classes[c][name] = ref_counts[name]
                guess_of: dict[Any, str] = {}
                for c, observed in enc_classes.items():
                    reference = ref_classes.get(c)
                    if reference:
                        guess_of.update(align(observed, reference, top=len(observed)))
                node_guess = pd.Series(guess_of, dtype=object).reindex(range(len(node_lists)))
                guesses[present] = node_guess.to_numpy()[node_codes]
            else:
                group_codes, ref_name_groups = grouping[cond]
                colour_of_name = dict(zip(ref_names, ref_col, strict=True))
                # A unit is one name (node) within one group; its class is (its colour, the group).
                width = int(group_codes.max()) + 1
                unit = pd.Series(node_codes.astype(np.int64) * width + group_codes)
                unit_counts = unit.value_counts()
                g_classes: dict[Any, Counter] = defaultdict(Counter)
                for u, n in zip(unit_counts.index.tolist(), unit_counts.tolist(), strict=True):
                    node, g = divmod(u, width)
                    g_classes[(enc_col[node], g)][u] = n
                r_classes: dict[Any, Counter] = defaultdict(Counter)
                for (name, g), n in ref_name_groups.items():
                    r_classes[(colour_of_name[name], g)][name] = n
                unit_guess: dict[int, str] = {}
                for c, observed in g_classes.items():
                    reference = r_classes.get(c)
                    if reference:
                        unit_guess.update(align(observed, reference, top=len(observed)))
                unit_guesses = [unit_guess.get(u) for u in unit.tolist()]
                guesses[present] = unit_guesses
                # One list is one name: its records' guesses in the several groups vote (the commonest wins).
                votes = pd.DataFrame({"node": node_codes, "guess": unit_guesses}).dropna()
                tally = votes.groupby(["node", "guess"]).size().reset_index(name="n")
                tally = tally.sort_values(["node", "n", "guess"], ascending=[True, False, True])
                winner = pd.Series(tally.drop_duplicates("node")["guess"].to_numpy(),
                                   index=tally.drop_duplicates("node")["node"].to_numpy(), dtype=object)
                voted = empty.copy()
                voted[present] = winner.reindex(range(len(node_lists))).to_numpy()[node_codes]
                out[(depth, cond, True)] = voted
            out[(depth, cond, False) if keyed else depth] = guesses
    return out
