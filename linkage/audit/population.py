"""The attacker's reference population: clear records with the attributes an attacker conditions on.

An attack conditioned on co-released tokens (year of birth, sex, postcode district) needs joint
frequencies, not just name counts: "how many Smiths were born in 2007". This module turns a raw extract
(read with a partner config) into one row per local record holding the core names and those attributes.

Two uses: the **worst case**, where the reference is the audited extract itself (an attacker with
perfect statistics for this population, including the joint ones), and the **realistic** case, where it
is an independent population of the same kind (e.g. ``linkage synth`` with another seed), standing for
census-style tables of the same area. Nothing here is written to disk.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa

from linkage.config import load_partner_config
from linkage.encode.identifiers import IdentifierEncoder, full_name_label
from linkage.encode.reader import iter_chunks

POPULATION_COLUMNS = ("given_name", "surname", "year", "sex", "district", "sector", "postcode", "full_name")


def population_from_input(config_path: str | Path, input_path: str | Path) -> pd.DataFrame:
    """One row per local record: core given name, core surname, year of birth, sex code, postcode district."""
    cfg = load_partner_config(config_path)
    encoder = IdentifierEncoder(cfg, b"\0" * 32)  # cleaning only: no key is used
    needed = list(dict.fromkeys([cfg.local_id] + [c for cols in cfg.identifiers.columns().values() for c in cols]))
    frames = []
    for chunk in iter_chunks(input_path, cfg.input, needed, cfg.chunk_rows):
        clean, _ = encoder.clean(chunk)
        frames.append(population_rows(chunk.column(cfg.local_id).to_pylist(), clean, chunk.num_rows))
    return finish_population(frames)


def population_rows(local_ids: list, clean: dict[str, pa.Array], n: int) -> pd.DataFrame:
    """The population rows of one cleaned chunk (see :func:`population_from_input`)."""
    col = {k: (v.to_pylist() if v is not None else [None] * n) for k, v in clean.items()}
    given = col.get("given", [None] * n)
    surname = col.get("surname", [None] * n)
    dob = col.get("dob", [None] * n)
    frame = pd.DataFrame({
        "local_id": local_ids,
        "given_name": [g.split(" ")[0] if g else None for g in given],
        "surname": [s.replace(" ", "") if s else None for s in surname],
        "year": [d[:4] if d else None for d in dob],
        "sex": col.get("sex", [None] * n),
        "district": col.get("pc_district", [None] * n),
        "sector": col.get("pc_sector", [None] * n),      # postcode-salted filters are attacked within
        "postcode": col.get("pc_full", [None] * n),      # sector and full-postcode groups too
    })
    frame["full_name"] = [full_name_label(g, s) if isinstance(g, str) and isinstance(s, str) and g and s else None
                          for g, s in zip(frame["given_name"], frame["surname"], strict=True)]
    return frame


def finish_population(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Stack chunk rows into one row per local id (its first)."""
    if not frames:
        return pd.DataFrame(columns=["local_id", *POPULATION_COLUMNS])
    return pd.concat(frames, ignore_index=True).drop_duplicates("local_id").reset_index(drop=True)


def pooled_population(pairs: list[tuple[str | Path, str | Path]]) -> pd.DataFrame:
    """Populations of several (config, raw extract) pairs stacked (the attacker pools every partner)."""
    frames = []
    for k, (config, raw) in enumerate(pairs):
        frame = population_from_input(config, raw)
        frame["local_id"] = f"{k}:" + frame["local_id"].astype(str)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(POPULATION_COLUMNS))
