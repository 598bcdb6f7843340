"""Per-child traits shared by all three partners' histories, and the row-table helpers they use.

A trait (mental-health concern, substance use, gang involvement, going missing, exploitation, special
educational need, offending level) is drawn once per child from the latent risk, so the same underlying
fact shows up consistently in school, social-care and police records — the property that makes linked
risk-factor profiles meaningful. Each source module turns traits into dated events.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from linkage.synth.population import Households, People
from linkage.synth.timeutil import sigmoid

Rows = dict[str, np.ndarray]
SEN_NEEDS = np.array(["SPLD", "MLD", "SLD", "PMLD", "SEMH", "SLCN", "ASD", "HI", "VI", "MSI", "PD", "OTH"],
                     dtype=object)


@dataclass
class Traits:
    mh: np.ndarray
    self_harm: np.ndarray
    substance: np.ndarray
    gang: np.ndarray
    cce: np.ndarray
    cse: np.ndarray
    missing: np.ndarray
    sen_need: np.ndarray        # "" or a SEN need code
    ehcp: np.ndarray
    offending: np.ndarray       # offending propensity (continuous)
    co_offends: np.ndarray


def draw_traits(rng: np.random.Generator, people: People, hh: Households) -> Traits:
    P = len(people)
    r, child, male = people.risk, people.is_child, people.male

    def trait(logit: np.ndarray) -> np.ndarray:
        return child & (rng.random(P) < sigmoid(logit))

    mh = trait(-2.6 + 0.7 * r + 0.5 * hh.parental_mh[people.hh])
    self_harm = mh & (rng.random(P) < np.where(male, 0.2, 0.4))
    substance = trait(-3.3 + 0.85 * r + 0.5 * hh.parental_substance[people.hh])
    gang = trait(-5.0 + 1.1 * r + 0.5 * male)
    cce = trait(-4.6 + 1.0 * r + 0.4 * male) | (gang & (rng.random(P) < 0.3))
    cse = trait(-4.2 + 0.8 * r - 1.2 * male)
    missing = trait(-3.4 + 0.8 * r) | ((cse | cce) & (rng.random(P) < 0.5))
    has_sen = trait(-1.9 + 0.45 * r)
    # SEMH and ASD/SLCN are more common among higher-risk children; sensory needs are not
    base = np.array([8, 12, 2, 0.5, 18, 18, 14, 2, 1, 0.3, 2, 4])
    semh_boost = np.zeros(len(base))
    semh_boost[4] = 1.0
    logits = np.log(base)[None, :] + np.clip(r, -2, 4)[:, None] * semh_boost[None, :] * 0.6
    p = np.exp(logits)
    p /= p.sum(axis=1, keepdims=True)
    need = SEN_NEEDS[(p.cumsum(axis=1) > rng.random((P, 1))).argmax(axis=1)]
    sen_need = np.where(has_sen, need, "").astype(object)
    ehcp = has_sen & (rng.random(P) < np.where(np.isin(sen_need, ["SLD", "PMLD", "ASD", "MSI"]), 0.5, 0.15))
    # offending shares the latent risk but has a large individual part, so high-harm young people carry
    # several risk factors without carrying all of them
    offending = np.where(child, 0.6 * r + 0.9 * rng.normal(size=P) + 0.5 * gang + 0.3 * substance, -9.0)
    co_offends = child & (gang | (rng.random(P) < sigmoid(-2.2 + 0.5 * r)))
    return Traits(mh, self_harm, substance, gang, cce, cse, missing, sen_need, ehcp, offending, co_offends)


def concat_rows(parts: list[Rows]) -> Rows:
    parts = [p for p in parts if len(p["person"])]
    if not parts:
        return {}
    keys = parts[0].keys()
    return {k: np.concatenate([p[k] for p in parts]) for k in keys}


def take(rows: Rows, mask: np.ndarray) -> Rows:
    return {k: v[mask] for k, v in rows.items()}


def categorical(rng: np.random.Generator, weights: np.ndarray) -> np.ndarray:
    """One draw per row of a (n, k) non-negative weight matrix."""
    cum = np.cumsum(weights, axis=1)
    return (cum > rng.random((len(weights), 1)) * cum[:, -1:]).argmax(axis=1)


def uniform_days(rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """A day uniformly in [lo, hi] (callers drop rows with hi < lo)."""
    span = np.maximum(hi - lo, 0) + 1
    return lo + (rng.random(len(lo)) * span).astype(np.int64)
