"""Toy Splink linkers for the link-model tests: the model ``build_settings`` makes for a set of token columns
(default ``LinkConfig``, one deduplicated source), over a frame the test supplies or over two records that
disagree on everything (enough to read the model's comparisons and levels)."""

from __future__ import annotations

import logging

import pandas as pd
from splink import DuckDBAPI, Linker

from linkage.link.config import LinkConfig
from linkage.link.model import build_settings

#: Token columns whose names end so hold token lists (the model explodes them in blocking and compares overlaps).
LIST_SUFFIXES = ("near_dob", "near_pc", "del1")


def linker_of(df: pd.DataFrame, cols: set[str]) -> Linker:
    """A dedupe-only linker over ``df`` (identity_id, record_id, source and the token columns) modelling ``cols``."""
    return Linker([DuckDBAPI().register(df)], build_settings(cols, LinkConfig(), "dedupe_only", ""),
                  log_level=logging.ERROR)


def two_records(cols: set[str]) -> pd.DataFrame:
    """Two records of one source with different tokens in every column of ``cols`` (one-token lists where the
    column holds lists)."""
    df = pd.DataFrame({"identity_id": ["a-0", "b-0"], "record_id": ["a", "b"], "source": ["x", "x"]})
    for col in sorted(cols):
        df[col] = [["1"], ["2"]] if col.endswith(LIST_SUFFIXES) else ["1", "2"]
    return df


def toy_linker(cols: set[str]) -> Linker:
    """The linker of ``cols`` over two records that disagree on everything."""
    return linker_of(two_records(cols), cols)
