"""Full name x postcode-typo composites (``name_postcode_typo_tokens``): the same full name still agrees when the
postcode has one typo and the date of birth is wrong; built on one name they would chain a common name's
neighbours for the token-sharing graph attack, built on the full name they do not."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from pydantic import ValidationError

from linkage import normalise as nz
from linkage.audit.attacks import token_graph_attack
from linkage.audit.suite import graph_columns
from linkage.config import Encodings, PartnerConfig
from linkage.contracts.names import FULL_NAME_COMPOSITES, is_token_list_column
from linkage.encode.identifiers import POSTCODE_TYPO_COUNT, IdentifierEncoder
from linkage.link.model import (
    DEFAULT_BLOCKING,
    FULL_NEAR_PC_LABEL,
    FULL_PC_LABEL,
    near_postcode_params,
)
from tests.toy_linker import toy_linker

KEY = bytes(range(32))
HARDENED = dict(name_variants=["exact"], name_token_salt="dob", name_dob_tolerant_tokens=True,
                name_postcode_tokens=True, composite_name="full", dob_variants=["exact"], postcode_variants=["exact"],
                bloom=None, shared_name_tokens=False)


def encoder(**encodings) -> IdentifierEncoder:
    cfg = PartnerConfig.model_validate({
        "project_id": "t", "source": "s", "local_id": "id",
        "identifiers": {"given_name": {"column": "g"}, "surname": {"column": "s"},
                        "date_of_birth": {"column": "d", "formats": ["%Y%m%d"]}, "postcode": {"column": "p"}},
        "encodings": encodings})
    return IdentifierEncoder(cfg, KEY)


def clean(rows: list[tuple[str, str, str | None, str | None]]) -> dict[str, pa.Array]:
    given, surname, dob, postcode = (list(x) for x in zip(*rows, strict=True))
    return {"given": pa.array(given), "surname": pa.array(surname), "dob": pa.array(dob, pa.string()),
            "pc_full": pa.array(postcode, pa.string())}


def test_typo_tokens_need_full_name_composites():
    with pytest.raises(ValidationError, match="composite_name: full"):
        Encodings(name_postcode_typo_tokens=True)
    assert Encodings(name_postcode_typo_tokens=True, composite_name="full").name_postcode_typo_tokens


def test_same_full_name_agrees_across_a_postcode_typo_only():
    enc = encoder(**HARDENED, name_postcode_typo_tokens=True)
    out = enc.encode(clean([("amy", "patel", "20050101", "LE1 2AB"), ("amy", "patel", "19990707", "LE1 2AD"),
                            ("amy", "patel", None, "LE1 9ZZ"), ("amy", "li", "20050101", "LE1 2AB"),
                            ("amy", "patel", "20050101", None)]))
    lists = out["full_name__near_pc"].to_pylist()
    assert set(lists[0]) & set(lists[1])               # one typo apart, dates unrelated: they agree
    assert not set(lists[0]) & set(lists[2])           # another postcode
    assert not set(lists[0]) & set(lists[3])           # another full name at the same postcode
    assert lists[4] is None                            # no postcode, no composite
    assert {len(v) for v in lists[:4]} == {POSTCODE_TYPO_COUNT}  # the size does not give the postcode's length
    assert "full_name__near_pc" in graph_columns(enc.columns, "full_name")  # the suite's graph attack reads it


def test_the_full_name_composites_the_encoder_emits_are_the_ones_the_model_compares():
    # One definition (contracts.names) for the encoder, the model's levels and its blocking rules.
    enc = encoder(**HARDENED, name_postcode_typo_tokens=True)
    emitted = {c for c in enc.columns if c.startswith("full_name__")}
    assert emitted == set(FULL_NAME_COMPOSITES)
    out = enc.encode(clean([("amy", "patel", "20050101", "LE1 2AB")]))
    assert all(out[c].to_pylist()[0] for c in FULL_NAME_COMPOSITES)
    assert all([c] in DEFAULT_BLOCKING for c in FULL_NAME_COMPOSITES)


def test_per_name_typo_composites_would_chain_a_surname_the_full_name_does_not():
    # A weakened variant (surname x postcode-typo list, which the config refuses) against the profile's list.
    rng = np.random.default_rng(5)
    n = 4000
    surnames = [f"s{k}" for k in range(40)]
    weights = 1.0 / (1 + np.arange(len(surnames))) ** 1.1
    people = pd.DataFrame({"given_name": [f"g{k}" for k in rng.integers(0, 400, size=n)],
                           "surname": rng.choice(surnames, size=n, p=weights / weights.sum())})
    people["full_name"] = people.given_name + " " + people.surname
    # dense streets: unit codes one typo apart share a deletion (LE1 2A?)
    postcodes = [f"LE{d} {u}A{chr(65 + c)}" for d, u, c in zip(rng.integers(1, 4, size=n), rng.integers(1, 4, size=n),
                                                              rng.integers(0, 26, size=n), strict=True)]

    def listed(values: list[str], postcode: list[str]) -> list[list[str]]:
        return [sorted(hashlib.blake2b(f"{v}\x1f{d}".encode(), key=KEY, digest_size=8).hexdigest()
                       for d in nz.deletion_neighbourhood(p.replace(" ", ""))) for v, p in zip(values, postcode,
                                                                                                strict=True)]

    weak = pd.DataFrame({"surname__near_pc": listed(list(people.surname), postcodes)})
    graph = token_graph_attack(weak, ["surname__near_pc"], people, "surname")
    assert float((graph == people.surname).mean()) > 0.5
    enc = encoder(**HARDENED, name_postcode_typo_tokens=True)
    out = enc.encode(clean([(g, s, None, p) for g, s, p in zip(people.given_name, people.surname, postcodes,
                                                               strict=True)]))
    strong = pd.DataFrame({"full_name__near_pc": out["full_name__near_pc"].to_pylist()})
    graph = token_graph_attack(strong, ["full_name__near_pc"], people, "full_name")
    assert float((graph == people.full_name).mean()) < 0.1


def test_postcode_typo_level_block_and_parameters():
    cols = {"given_name__exact", "surname__exact", "dob__exact", "dob__year", "postcode__exact", "postcode__del1",
            "full_name__near_dob", "full_name__exact_pc", "full_name__near_pc"}
    linker = toy_linker(cols)
    comps = {c.output_column_name: {lvl.label_for_charts: lvl for lvl in c.comparison_levels}
             for c in linker._settings_obj.comparisons}
    labels = list(comps["full_name"])
    assert labels.index(FULL_NEAR_PC_LABEL) == labels.index(FULL_PC_LABEL) + 1  # after the exact postcode
    assert FULL_NEAR_PC_LABEL not in comps["surname"]
    assert ["full_name__near_pc"] in DEFAULT_BLOCKING and is_token_list_column("full_name__near_pc")  # exploded
    assert not near_postcode_params(linker)  # the exact-postcode level is not trained yet: nothing to copy
    comps["full_name"][FULL_PC_LABEL].m_probability = 0.06
    comps["full_name"][FULL_PC_LABEL].u_probability = 1e-5
    assert near_postcode_params(linker)
    near = comps["full_name"][FULL_NEAR_PC_LABEL]
    assert (near.m_probability, near.u_probability) == pytest.approx((0.06, 1e-5))


def test_full_name_composites_agree_when_given_name_and_surname_are_swapped():
    enc = encoder(**HARDENED, name_postcode_typo_tokens=True)
    out = enc.encode(clean([("amy", "patel", "20050101", "LE1 2AB"), ("patel", "amy", "19990707", "LE1 2AB"),
                            ("amy", "patel", "19990707", "LE1 2AD"), ("amy", "amy", "20050101", "LE1 2AB")]))
    pc = out["full_name__exact_pc"].to_pylist()
    assert pc[0] == pc[1] != pc[3]  # order-free, yet "amy amy" is not "amy patel"
    near = out["full_name__near_pc"].to_pylist()
    assert set(near[1]) & set(near[2])
    dob = enc.encode(clean([("amy", "patel", "20050101", None), ("patel", "amy", "20050107", None)]))
    lists = dob["full_name__near_dob"].to_pylist()
    assert set(lists[0]) & set(lists[1])


def test_postcode_typo_level_trained_by_em_gets_the_full_name_share_as_m():
    # FEBRL3: an EM session saw the level and gave it m 0.057 (the share of all matches reaching it through a
    # postcode typo and a wrong date), 12 bits: pairs with the same full name, a postcode typo and another date
    # stayed below the threshold. Its m must be P(same full name | match), as at an equal postcode.
    cols = {"given_name__exact", "surname__exact", "dob__exact", "dob__year", "postcode__exact", "postcode__del1",
            "full_name__near_dob", "full_name__exact_pc", "full_name__near_pc"}
    linker = toy_linker(cols)
    comps = {c.output_column_name: {lvl.label_for_charts: lvl for lvl in c.comparison_levels}
             for c in linker._settings_obj.comparisons}
    near = comps["full_name"][FULL_NEAR_PC_LABEL]
    near.m_probability, near.u_probability = 0.057, 1.4e-5  # as EM and random sampling left it
    comps["full_name"][FULL_PC_LABEL].m_probability = 0.06
    comps["full_name"][FULL_PC_LABEL].u_probability = 1e-5
    assert not near_postcode_params(linker)  # no trained exact name levels: no share to take, EM's m stays
    assert near.m_probability == pytest.approx(0.057)
    comps["given_name"]["Exact match on given_name__exact"].m_probability = 0.6
    comps["surname"]["Exact match on surname__exact"].m_probability = 0.5
    comps["dob"]["Exact match on dob__exact"].m_probability = 0.95
    assert near_postcode_params(linker)
    assert near.m_probability == pytest.approx((0.6 / 0.95) * (0.5 / 0.95))
    assert near.u_probability == pytest.approx(1.4e-5)  # its own u: neighbours one typo apart are no household


def test_postcode_typo_level_copied_from_the_exact_postcode_level_takes_the_full_name_share_as_m():
    # FEBRL3 as run: the level untrained, the exact-postcode level with EM's m (0.06, the share of matches with a
    # wrong date that land there) and its sampled u. The copy's m is P(same full name | match), not EM's.
    cols = {"given_name__exact", "surname__exact", "dob__exact", "dob__year", "postcode__exact", "postcode__del1",
            "full_name__near_dob", "full_name__exact_pc", "full_name__near_pc"}
    linker = toy_linker(cols)
    comps = {c.output_column_name: {lvl.label_for_charts: lvl for lvl in c.comparison_levels}
             for c in linker._settings_obj.comparisons}
    comps["full_name"][FULL_PC_LABEL].m_probability = 0.06
    comps["full_name"][FULL_PC_LABEL].u_probability = 1.5e-5
    comps["given_name"]["Exact match on given_name__exact"].m_probability = 0.61
    comps["surname"]["Exact match on surname__exact"].m_probability = 0.60
    comps["dob"]["Exact match on dob__exact"].m_probability = 0.96
    assert near_postcode_params(linker)
    near = comps["full_name"][FULL_NEAR_PC_LABEL]
    assert near.m_probability == pytest.approx((0.61 / 0.96) * (0.60 / 0.96))
    assert near.u_probability == pytest.approx(1.5e-5)
