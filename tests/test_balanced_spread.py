"""Balanced Bloom Dice thresholds follow the filters' layout (bits, hashes, n-gram), and BLIP on balanced filters
is refused (its flips break the half-set filters the balanced thresholds rely on)."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from linkage.config import BloomSettings
from linkage.encode.bloom import BloomEncoder, dice
from linkage.link.levels import BALANCED_SPREAD, BloomDiceLevel, balanced_spread, bind_bloom_sizes

KEY = bytes(range(32))
NAMES = ["amelia", "oliver", "harris", "jordan", "taylor", "walker", "brooke", "sophie", "khalid", "connor"]


def _measured_spread(bits: int, hashes: int, ngram: int, xor_fold: bool = False) -> float:
    enc = BloomEncoder(KEY, "p", "surname", bits, hashes, ngram, xor_fold=xor_fold)
    width = bits // 2 if xor_fold else bits
    counts = [np.unpackbits(np.frombuffer(enc.encode(n), np.uint8)).sum() for n in NAMES]
    return float(2 * np.mean(counts) / width)


@pytest.mark.parametrize("bits,hashes,ngram,fold", [(512, 15, 2, False), (1024, 30, 2, False), (256, 10, 3, False),
                                                    (1024, 15, 2, True)])
def test_spread_is_the_filters_expected_fill(bits, hashes, ngram, fold):
    assert balanced_spread(bits, hashes, ngram, fold) == pytest.approx(_measured_spread(bits, hashes, ngram, fold),
                                                                       rel=0.08)


def test_balanced_dice_is_plain_dice_rescaled_by_the_spread():
    plain = BloomEncoder(KEY, "p", "surname", 512, 30, 2)
    balanced = BloomEncoder(KEY, "p", "surname", 512, 30, 2, balanced=True)
    spread = balanced_spread(512, 30, 2)
    assert abs(spread - BALANCED_SPREAD) > 0.2  # the shipped constant would misplace every threshold here
    for a, b in [("harris", "harries"), ("oliver", "olivia"), ("amelia", "connor")]:
        d = dice(plain.encode(a), plain.encode(b))
        assert dice(balanced.encode(a), balanced.encode(b)) == pytest.approx(1 - (1 - d) * spread, abs=0.06)


def test_bound_levels_take_the_layout_spread():
    level = BloomDiceLevel("surname__bloom", 0.8)
    bind_bloom_sizes([type("C", (), {"create_comparison_levels": lambda self: [level]})()], {"surname__bloom": 128},
                     {"bits": 512, "hashes": 30, "ngram": 2, "balanced": True})
    assert level.spread == pytest.approx(balanced_spread(512, 30, 2))
    from splink.internals.dialects import SplinkDialect

    sql = level.create_sql(SplinkDialect.from_string("duckdb"))
    assert repr(round(1 - 0.2 * level.spread, 4)) in sql


def test_balanced_and_blip_are_refused():
    with pytest.raises(ValidationError, match="balanced and blip"):
        BloomSettings(balanced=True, blip=0.02)
    assert BloomSettings(balanced=True).balanced and BloomSettings(blip=0.02).blip
