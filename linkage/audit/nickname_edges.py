"""The attack on the cross-name edges of salted nickname lists (``given_name__alias``, ``given_name__alias_pc``).

A salted nickname list holds a token for each canonical form of the given name (the name and the formal names it is
short for), composite with the salt (the date of birth, or the full postcode), padded with keyed fillers of the name
and salt. Two records' lists are therefore equal when they hold the same name with the same salt, and share exactly
``|aliases(a) & aliases(b)|`` tokens when they hold different but nickname-related names a and b with the same salt
(Bill and William share William's form); fillers never coincide across names, and tokens of different salts never
coincide. So the linkage unit sees, without grouping anything itself, edges between the lists of one date or one
address, each labelled with its overlap count.

The nickname lists are public, so the attacker computes the same count for every pair of reference names. An edge
of count c restricts its two lists to reference pairs of overlap c. Each list (a node: one name at one salt) takes
the reference name that best explains all its edges: score(a) = f(a) x prod over edges of the summed frequency of
the names b with overlap(a, b) = c, with f counted within the node's year of birth / sex / district group when
conditions are given (as the other attacks do; a node's group is that of most of its records). The guess goes to
every record holding the list (same name, same salt). Lists without a cross-name edge get no guess.

Then, per connected component of the edges (lists of one date or one address), the names are chosen jointly
(:func:`joint_names`): the lists there hold different names, each edge's count must be its two names' overlap and
two lists without an edge must share no form. Bill and William at one date push each other's marginal guess to the
commoner William; jointly, one of them must be Bill.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd

from linkage.audit.typo_graph import condition_groups

#: Salted nickname-list columns whose cross-name edges this attack reads.
NICKNAME_EDGE_COLUMNS = ("given_name__alias", "given_name__alias_pc")
JOINT_MAX_NODES = 60  # components larger than this (a weak salt: whole districts) keep the per-list guesses
JOINT_BUDGET = 50_000  # candidate names tried per component
_MISSING_EDGE = -1e6  # log-score of an edge no reference partner explains (kept finite: the most edges explained win)


def _list_codes(lists: pd.Series) -> tuple[np.ndarray, list[tuple[str, ...]]]:
    """Per record, the code of its distinct list (-1: no list), and each code's tokens."""
    keys = [tuple(sorted(v)) if isinstance(v, (list, np.ndarray)) and len(v) else None for v in lists.tolist()]
    codes, uniques = pd.factorize(pd.Series(keys, dtype=object), use_na_sentinel=True)
    return np.asarray(codes), list(uniques)


def observed_edges(lists: pd.Series) -> tuple[np.ndarray, int, pd.DataFrame]:
    """(node code per record, -1 for none; number of nodes; edges a < b with ``shared`` token counts)."""
    codes, nodes = _list_codes(lists)
    sizes = [len(t) for t in nodes]
    frame = pd.DataFrame({"n": np.repeat(np.arange(len(nodes)), sizes),
                          "t": [t for toks in nodes for t in toks]})
    frame = frame[frame.groupby("t")["n"].transform("size") > 1]
    pairs = frame.merge(frame, on="t")
    pairs = pairs[pairs["n_x"] < pairs["n_y"]]
    edges = pairs.groupby(["n_x", "n_y"]).size().rename("shared").reset_index()
    return codes, len(nodes), edges.rename(columns={"n_x": "a", "n_y": "b"})


def reference_overlaps(names: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every ordered pair (i, j), i != j, of reference names sharing a nickname form, and how many they share."""
    from linkage.encode.evidence import name_aliases

    holders: dict[str, list[int]] = defaultdict(list)
    for i, name in enumerate(names):
        for form in name_aliases(name):
            holders[form].append(i)
    shared: Counter = Counter()
    for held in holders.values():
        for i, j in combinations(held, 2):
            shared[(i, j)] += 1
    if not shared:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    pairs = np.array(list(shared.keys()), dtype=np.int64)
    counts = np.array(list(shared.values()), dtype=np.int64)
    return (np.r_[pairs[:, 0], pairs[:, 1]], np.r_[pairs[:, 1], pairs[:, 0]], np.r_[counts, counts])


def nickname_edge_attack(records: pd.DataFrame, column: str, population: pd.DataFrame, field: str = "given_name",
                         conditions: tuple[str, ...] = ()) -> pd.Series:
    """Guessed name per record from the cross-name edges of a salted nickname-list column (module docstring).

    ``records[column]`` holds token lists; ``population[field]`` the attacker's reference names (core given names).
    Returns a Series aligned with ``records`` (None: the record's list has no edge, or nothing explains it)."""
    out = pd.Series([None] * len(records), index=records.index, dtype=object)
    codes, n_nodes, edges = observed_edges(records[column])
    if edges.empty:
        return out
    ref = population[field].dropna().astype(str)
    ref = ref[ref != ""]
    names = sorted(ref.unique())
    if not names:
        return out
    index_of = {n: i for i, n in enumerate(names)}
    a_idx, b_idx, shared = reference_overlaps(names)
    obs_group, ref_group = condition_groups(records, population, conditions)
    group_codes, group_labels = pd.factorize(pd.concat([obs_group, ref_group.loc[ref.index]]))
    n_obs = len(records)
    freq = np.zeros((len(group_labels), len(names)))
    np.add.at(freq, (group_codes[n_obs:], ref.map(index_of).to_numpy()), 1.0)
    # A node's group: that of most of its records.
    present = codes >= 0
    tally = (pd.DataFrame({"node": codes[present], "g": group_codes[:n_obs][present]})
             .value_counts().reset_index(name="n").sort_values(["node", "n", "g"], ascending=[True, False, True]))
    node_group = np.zeros(n_nodes, dtype=np.int64)
    first = tally.drop_duplicates("node")
    node_group[first["node"].to_numpy()] = first["g"].to_numpy()
    support_cache: dict[tuple[int, int], np.ndarray] = {}

    def support(group: int, count: int) -> np.ndarray:
        """Per reference name a: summed frequency (in ``group``) of the names sharing ``count`` forms with a."""
        if (group, count) not in support_cache:
            mask = shared == count
            support_cache[(group, count)] = np.bincount(a_idx[mask], weights=freq[group][b_idx[mask]],
                                                        minlength=len(names))
        return support_cache[(group, count)]

    incident: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for a, b, c in edges[["a", "b", "shared"]].itertuples(index=False):
        incident[int(a)].append((int(b), int(c)))
        incident[int(b)].append((int(a), int(c)))
    guess = np.full(n_nodes, None, dtype=object)
    with np.errstate(divide="ignore"):
        for node, neighbours in incident.items():
            prior = freq[int(node_group[node])]
            score = np.log(prior)
            explained = np.zeros(len(names), dtype=np.int64)
            for other, count in neighbours:
                s = support(int(node_group[other]), count)
                score += np.where(s > 0, np.log(np.where(s > 0, s, 1.0)), _MISSING_EDGE)
                explained += s > 0
            best = int(np.argmax(score))
            if np.isfinite(score[best]) and explained[best] > 0:  # at least one edge explained
                guess[node] = names[best]
    # Joint names per connected component (one date or address): different lists there are different names, every
    # edge's count must be its two names' overlap and two lists without an edge share no form. The marginal guesses
    # above stay where the search finds no consistent assignment within its budget.
    partners: dict[int, dict[int, int]] = defaultdict(dict)
    for i, j, c in zip(a_idx.tolist(), b_idx.tolist(), shared.tolist(), strict=True):
        partners[i][j] = c
    with np.errstate(divide="ignore"):
        log_p = np.log(freq / np.maximum(freq.sum(axis=1, keepdims=True), 1.0))
    weight = np.bincount(codes[present], minlength=n_nodes)
    adjacency = {u: dict(nb) for u, nb in incident.items()}
    seen: set[int] = set()
    for start in adjacency:
        if start in seen:
            continue
        component, frontier = {start}, [start]
        while frontier:
            nxt = [v for u in frontier for v in adjacency[u] if v not in component]
            component.update(nxt)
            frontier = list(dict.fromkeys(nxt))
        seen |= component
        found = joint_names(sorted(component), adjacency, partners, log_p, node_group, weight)
        for node, name in (found or {}).items():
            guess[node] = names[name]
    out[present] = guess[codes[present]]
    return out


def joint_names(nodes: list[int], adjacency: dict[int, dict[int, int]], partners: dict[int, dict[int, int]],
                log_p: np.ndarray, node_group: np.ndarray, weight: np.ndarray,
                budget: int = JOINT_BUDGET) -> dict[int, int] | None:
    """The likeliest consistent naming of one component's lists: {node: reference name index}, or None.

    Consistent: distinct names; an edge of count c joins names sharing exactly c forms; two lists without an edge
    share none. Likeliest: the largest sum over nodes of (records holding the list) x log(the name's share in the
    node's group); ``log_p`` is indexed [group, name] and ``node_group`` gives each node's group (a [node, name]
    matrix would be every list times every reference name: 24 GB at 50,000 people). Depth-first from the node with
    most edges, each next node a neighbour of one already named (so its candidates are that name's partners of the
    edge's count), pruned by the best score so far (log shares are <= 0); at most ``budget`` candidates are tried
    (then the best found counts)."""
    if len(nodes) > JOINT_MAX_NODES:
        return None
    start = max(nodes, key=lambda u: (len(adjacency[u]), -u))
    order, parent = [start], {start: start}
    for u in order:  # breadth-first: every node after the first has a named neighbour before it
        for v in sorted(adjacency[u]):
            if v not in parent:
                parent[v] = u
                order.append(v)
    need = set(adjacency[start].values())
    start_row = log_p[node_group[start]]
    first = [a for a, nb in partners.items() if np.isfinite(start_row[a]) and need <= set(nb.values())]
    assign: dict[int, int] = {}
    best: dict[str, Any] = {"score": -np.inf, "names": None, "steps": 0}

    def extend(k: int, score: float) -> None:
        if k == len(order):
            best["score"], best["names"] = score, dict(assign)
            return
        u = order[k]
        if k == 0:
            options = first
        else:
            p = parent[u]
            options = [a for a, c in partners[assign[p]].items() if c == adjacency[u][p]]
        row = log_p[node_group[u]]
        for a in sorted(options, key=lambda a: -row[a]):
            best["steps"] += 1
            if best["steps"] > budget:
                return
            s = score + weight[u] * row[a]
            if not np.isfinite(s) or s <= best["score"]:
                break  # options are in descending order: none after this one does better
            held = partners.get(a, {})
            if a in assign.values() or any(held.get(assign[v], 0) != adjacency[u].get(v, 0) for v in order[:k]):
                continue
            assign[u] = a
            extend(k + 1, s)
            del assign[u]

    extend(0, 0.0)
    return best["names"]
