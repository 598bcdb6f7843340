"""Report helpers that keep charts and tables truthful, and the calibrated chain-guard ranking."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

from linkage.link.report import chain_guard_review
from linkage.report import (
    VEGA_LITE_SCHEMA,
    HtmlReport,
    bar_chart,
    format_table,
    format_value,
    share_chart,
    wilson_interval,
)


def test_values_are_formatted_for_people():
    assert format_value(34570.0) == "34,570"
    assert format_value(True) == "yes" and format_value(False) == "no"
    assert format_value(["dob__exact", "sex__exact"]) == "dob__exact, sex__exact"
    assert format_value(float("nan")) == "" and format_value(None) == ""
    table = format_table(pd.DataFrame({"persons_in_two_or_more_sources": [1], "n_records": [2.0]}))
    assert list(table.columns) == ["Persons in two or more sources", "Records"]


def test_wilson_interval_brackets_the_share_and_is_not_degenerate_at_zero():
    lo, hi = wilson_interval(0, 20)
    assert lo == 0 and 0.1 < hi < 0.2
    lo, hi = wilson_interval(30, 100)
    assert lo < 0.3 < hi and hi - lo < 0.2


def test_share_chart_draws_no_data_as_words_not_as_a_zero_bar_and_never_stacks():
    df = pd.DataFrame({"factor": ["a", "b", "c"], "k": [5, 0, 0], "n": [50, 40, 0]})
    spec = share_chart(df, "factor", "k", "n", "Share (denominator: people linked to social care)")
    rows = {r["label"]: r for r in spec["data"]["values"]}
    assert rows["c"]["share"] is None and rows["c"]["text"] == "no data"
    assert rows["b"]["share"] == 0.0 and rows["b"]["hi"] > 0  # a real zero keeps its interval
    bars = spec["layer"][0]
    assert bars["transform"] == [{"filter": "datum.share != null"}]
    assert bars["encoding"]["x"]["scale"]["domain"] == [0, 1]
    grouped = bar_chart(df, "factor", "k", "t", color="n")
    assert "xOffset" in grouped["encoding"]  # side by side, not stacked


def test_charts_declare_the_inlined_vega_lite_version_and_export_is_on():
    rep = HtmlReport(title="t")
    rep.add_chart({"$schema": "https://vega.github.io/schema/vega-lite/v5.9.3.json", "mark": "bar",
                   "data": {"values": [{"a": 1}]}})
    html = rep.render()
    assert VEGA_LITE_SCHEMA in html and "v5.9.3" not in html.split("</head>")[-1]
    assert '"export": true' in html and '"editor": false' in html


def test_chain_guard_review_ranks_by_the_strongest_links_holding_each_person():
    con = duckdb.connect()
    con.execute("""CREATE TABLE _crosswalk AS SELECT * FROM (VALUES
        ('P1', 's', 'a'), ('P1', 's', 'b'), ('P1', 't', 'c'), ('P2', 's', 'd'), ('P2', 't', 'e'))
        t(person_id, source, record_id)""")
    con.execute("""CREATE TABLE _edges AS SELECT * FROM (VALUES
        ('a', 'b', 0.99), ('b', 'c', 0.90), ('a', 'c', 0.70), ('d', 'e', 0.999999))
        t(node_id_l, node_id_r, match_probability)""")
    con.execute("""CREATE TABLE _flags AS SELECT * FROM (VALUES ('P1', 3, true, false), ('P2', 2, true, false))
        t(person_id, n_records, identifier_conflict, oversized)""")
    review = chain_guard_review(con, threshold=0.6)
    assert list(review.person_id) == ["P1", "P2"]
    p1 = review.iloc[0]
    # The spanning tree uses 0.99 and 0.90 (0.70 is a redundant, weaker path): 1 - 0.99 * 0.90.
    assert p1.p_false_merge == pytest.approx(1 - 0.99 * 0.90)
    assert p1.weakest_link == pytest.approx(0.90)
    assert p1.sources == "s, t"
    # Edges below the threshold do not hold a person together.
    assert chain_guard_review(con, threshold=0.95).iloc[0].p_false_merge == pytest.approx(1 - 0.99)
