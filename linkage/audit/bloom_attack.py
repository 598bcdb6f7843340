"""Cryptanalysis of field-level Bloom filters without the key: frequency alignment plus pattern mining.

Step 1 pairs the most frequent *identical* filters with the most frequent reference names (a plain filter
is a deterministic function of the name, so it repeats exactly as often as the name). Step 2 mines bit
patterns: the bits an n-gram sets must be set in every filter of a name containing it, so intersecting the
step-1 anchor filters that share an n-gram estimates that n-gram's positions. Any filter can then be
decoded against every reference name whose n-grams are all known, including names far too rare for
step 1. Salting and BLIP break step 1 (no stable repeats), and with it step 2, which needs correct anchors.
"""

from __future__ import annotations

import math
from collections import Counter
from functools import lru_cache

import numpy as np
import pandas as pd

from linkage.audit.frequency import Weights, align

ANCHORS = 60       # identical-filter ranks trusted as anchors for pattern mining
MIN_SCORE = 0.6    # a decoded name's patterns must lie this far inside the filter (see decode)
MARGIN = 0.1       # ...and beat the runner-up by this much
Z_MAX = 1.0        # mean |z| above which an anchor is judged inconsistent (see pair_z)
ROUNDS = 2         # pattern-mining rounds: decoded filters refine the n-gram patterns


@lru_cache(maxsize=200_000)
def ngrams(value: str, n: int) -> frozenset[str]:
    """The encoder's n-grams of a value (padded with '_' for n > 1), as a set."""
    padded = f"_{value}_" if n > 1 else value
    return frozenset(padded[i:i + n] for i in range(max(1, len(padded) - n + 1)))


def estimated_grams(popcount: int, bits: int, hashes: int) -> float:
    """How many distinct n-grams a plain filter with this many set bits holds (inverts the fill rate)."""
    fill = min(popcount / bits, 0.999)
    return math.log(1 - fill) / (hashes * math.log(1 - 1 / bits))


def length_aware_align(counts: Counter, reference: Weights, n: int, bits: int, hashes: int,
                       top: int) -> dict[bytes, str]:
    """Pair frequent filters with frequent names of a matching n-gram count (read off the bit count)."""
    names = sorted(reference.items(), key=lambda kv: (-kv[1], kv[0]))
    sizes = {name: len(ngrams(name, n)) for name, _ in names}
    taken: set[str] = set()
    out: dict[bytes, str] = {}
    for f, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]:
        size = estimated_grams(int.from_bytes(f, "big").bit_count(), bits, hashes)
        for name, _ in names:
            if name not in taken and abs(sizes[name] - size) < 0.75:
                out[f] = name
                taken.add(name)
                break
    return out


@lru_cache(maxsize=4096)
def _fill(n_grams: int, bits: int, hashes: int) -> float:
    """Chance that a given bit is set by ``n_grams`` n-grams of ``hashes`` positions each."""
    return 1 - (1 - 1 / bits) ** (hashes * n_grams)


def pair_z(a: int, b: int, grams_a: frozenset[str], grams_b: frozenset[str], bits: int, hashes: int) -> float:
    """How far two filters' shared bits are from what their guessed names predict (a z-score).

    Names sharing n-grams share those n-grams' bits; the rest overlap by chance. Wrong guesses show up
    as filters overlapping much more, or less, than their names allow.
    """
    shared = len(grams_a & grams_b)
    p_shared = _fill(shared, bits, hashes)
    q_a, q_b = _fill(len(grams_a) - shared, bits, hashes), _fill(len(grams_b) - shared, bits, hashes)
    expected = bits * (p_shared + (1 - p_shared) * q_a * q_b)
    return abs((a & b).bit_count() - expected) / math.sqrt(max(expected, 1.0))


def consistent_anchors(anchors: dict[bytes, str], reference: Weights, n: int, bits: int,
                       hashes: int) -> dict[bytes, str]:
    """Drop anchors whose pairwise overlaps contradict their names, then re-guess them from the rest."""
    as_int = {f: int.from_bytes(f, "big") for f in anchors}

    def inconsistency(f: bytes, name: str, others: dict[bytes, str]) -> float:
        zs = [pair_z(as_int[f], as_int[g], ngrams(name, n), ngrams(other, n), bits, hashes)
              for g, other in others.items() if g != f]
        return sum(zs) / len(zs) if zs else 0.0

    # Pairwise z-scores once; then drop the most inconsistent anchor until all look consistent.
    order = list(anchors)
    z = {(f, g): pair_z(as_int[f], as_int[g], ngrams(anchors[f], n), ngrams(anchors[g], n), bits, hashes)
         for i, f in enumerate(order) for g in order[i + 1:]}
    z.update({(g, f): v for (f, g), v in list(z.items())})
    alive = set(order)
    while len(alive) > 3:
        worst_score, worst = max((sum(z[f, g] for g in alive if g != f) / (len(alive) - 1), f) for f in alive)
        if worst_score <= Z_MAX:
            break
        alive.discard(worst)
    kept = {f: anchors[f] for f in order if f in alive}
    used = set(kept.values())
    for f in anchors:
        if f in kept:
            continue
        size = estimated_grams(as_int[f].bit_count(), bits, hashes)
        options = [(inconsistency(f, name, kept), name) for name in reference
                   if name not in used and abs(len(ngrams(name, n)) - size) < 0.75]
        if options:
            score, name = min(options)
            if score <= Z_MAX:
                kept[f] = name
                used.add(name)
    return kept


def gram_positions(anchors: dict[int, str], n: int) -> dict[str, int]:
    """Estimated bit mask of each n-gram: the AND of the anchor filters whose guessed name contains it."""
    masks: dict[str, int] = {}
    for bits, name in anchors.items():
        for gram in ngrams(name, n):
            masks[gram] = masks[gram] & bits if gram in masks else bits
    return {g: m for g, m in masks.items() if m}


def decode(bits: int, positions: dict[str, int], candidates: dict[str, list[str]]) -> str | None:
    """The reference name whose n-gram patterns best explain a filter, or None.

    Every bit of a filter comes from one of its name's n-grams, and each estimated n-gram pattern holds
    that n-gram's true bits, so the right name's patterns cover the filter completely: names that do
    not are ruled out. Among the rest, the one whose patterns lie most inside the filter wins, and only
    by a clear margin over the runner-up.
    """
    scores = []
    for name, grams in candidates.items():
        union, inside = 0, 0.0
        for gram in grams:
            mask = positions[gram]
            union |= mask
            inside += (mask & bits).bit_count() / mask.bit_count()
        if union & bits == bits:
            scores.append((inside / len(grams), name))
    if not scores:
        return None
    scores.sort(reverse=True)
    best, name = scores[0]
    runner_up = scores[1][0] if len(scores) > 1 else 0.0
    return name if best >= MIN_SCORE and best - runner_up >= MARGIN else None


def _bit_rows(values: list[int], n_bits: int) -> np.ndarray:
    """Filters (as ints) unpacked into a (len, n_bits) 0/1 matrix; one bit order for filters and masks."""
    raw = np.frombuffer(b"".join(v.to_bytes(n_bits // 8, "big") for v in values), dtype=np.uint8)
    return np.unpackbits(raw.reshape(len(values), n_bits // 8), axis=1)


def decode_all(filters: list[int], positions: dict[str, int], candidates: dict[str, list[str]], n_bits: int,
               chunk: int = 2048) -> dict[int, str]:
    """:func:`decode` for many filters at once, as matrix products (the audit's cost at 50,000 people).

    Same rule: a name is possible only if its n-gram patterns cover every bit of the filter; its score is
    the mean share of each pattern inside the filter; the best must reach ``MIN_SCORE`` and beat the
    runner-up (0 if none) by ``MARGIN``. Returns {filter: name} for the filters decoded.
    """
    if not filters or not candidates:
        return {}
    names = list(candidates)
    grams = sorted({g for n in names for g in candidates[n]})
    column = {g: i for i, g in enumerate(grams)}
    masks = _bit_rows([positions[g] for g in grams], n_bits).astype(np.float64)     # grams x bits
    holds = np.zeros((len(names), len(grams)))                                      # names x grams
    for i, name in enumerate(names):
        holds[i, [column[g] for g in candidates[name]]] = 1.0
    outside = ((holds @ masks) == 0).astype(np.float32)                             # bits no pattern sets
    per_gram = holds / holds.sum(axis=1, keepdims=True)
    out: dict[int, str] = {}
    for start in range(0, len(filters), chunk):
        part = filters[start:start + chunk]
        bits = _bit_rows(part, n_bits)
        inside = (bits.astype(np.float64) @ masks.T) / masks.sum(axis=1)            # filters x grams
        score = inside @ per_gram.T                                                 # filters x names
        score[(bits.astype(np.float32) @ outside.T) > 0] = -np.inf                  # a bit no pattern explains
        top2 = np.sort(score, axis=1)[:, -2:] if len(names) > 1 else np.c_[np.full(len(part), -np.inf), score]
        best, runner_up = top2[:, -1], np.where(np.isfinite(top2[:, 0]), top2[:, 0], 0.0)
        winner = score.argmax(axis=1)
        for k in np.flatnonzero(np.isfinite(best) & (best >= MIN_SCORE) & (best - runner_up >= MARGIN)):
            out[part[k]] = names[int(winner[k])]
    return out


def bloom_attack(filters: pd.Series, reference: Weights, ngram: int, hashes: int = 15,
                 anchors: int = ANCHORS, structured: bool = True) -> dict[bytes, str]:
    """Guess the name behind each distinct filter; returns {filter bytes: guessed core name}.

    ``filters`` holds one filter per record (bytes or None); ``reference`` maps core names to weights.
    ``structured`` is False for folded or balanced filters: only identical-filter alignment applies.
    """
    counts = Counter(f for f in filters.dropna().tolist())
    if not counts:
        return {}
    if not structured:
        # Folded or balanced filters no longer show an n-gram's bits directly (the manifest says which
        # hardening was used), but a deterministic filter still repeats as often as its name does.
        return align(counts, reference)
    n_bits = 8 * len(next(iter(counts)))
    guesses = length_aware_align(counts, reference, ngram, n_bits, hashes, anchors)
    guesses = consistent_anchors(guesses, reference, ngram, n_bits, hashes)
    as_int = {f: int.from_bytes(f, "big") for f in counts}
    for _ in range(ROUNDS):
        positions = gram_positions({as_int[f]: name for f, name in guesses.items()}, ngram)
        # Only names whose every n-gram has an estimated pattern can be decoded.
        candidates = {name: sorted(grams) for name in reference
                      if (grams := ngrams(name, ngram)) and grams <= positions.keys()}
        found = decode_all([as_int[f] for f in counts], positions, candidates, n_bits)
        decoded = {f: found[as_int[f]] for f in counts if as_int[f] in found}
        guesses = {**decoded, **guesses} if _ == 0 else decoded
    return guesses
