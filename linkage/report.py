"""Self-contained HTML reports: sections of text, tables and Vega-Lite charts that tell the truth.

Reports must open on an air-gapped machine, so the Vega JavaScript is inlined from the copy that ships
inside the splink package rather than loaded from a CDN. Charts are plain Vega-Lite spec dicts, so any
stage can build them without a plotting library; Splink's own charts (which are Vega-Lite too) drop in
via :meth:`HtmlReport.add_chart`, which declares them against the one Vega-Lite version inlined.

The chart helpers here encode the rules every report follows: shares are never stacked (groups sit side
by side), a share's denominator is named in its title, prevalences carry 95% Wilson intervals, a group
with no denominator is drawn as the words "no data" rather than as a zero-length bar, share axes run 0-100%
(so a 0.4% bar looks small), and counts with long tails use a log axis. Tables get human column labels
and formatted numbers, and scroll inside their own box instead of widening the page.
"""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd

_JS_FILES = ("vega@5.31.0", "vega-lite@5.2.0", "vega-embed@6.20.2")
#: The one Vega-Lite version inlined; every chart (ours and Splink's) is declared against it.
VEGA_LITE_SCHEMA = "https://vega.github.io/schema/vega-lite/v5.2.0.json"
#: Export (SVG/PNG) on; the source and editor links are off (the editor is a web site, and reports are offline).
EMBED_OPTIONS = {"actions": {"export": True, "source": False, "compiled": False, "editor": False}}
NO_DATA = "no data"


@lru_cache(maxsize=1)
def _vega_scripts() -> str:
    import splink

    js_dir = Path(splink.__file__).parent / "internals" / "files" / "external_js"
    parts = []
    for name in _JS_FILES:
        path = js_dir / name
        if path.is_file():
            parts.append(f"<script>{path.read_text(encoding='utf-8')}</script>")
    return "\n".join(parts)


# --- tables --------------------------------------------------------------------------------------

def human_label(name: str) -> str:
    """``persons_in_two_or_more_sources`` -> ``Persons in two or more sources``; ``n_records`` -> ``Records``."""
    text = re.sub(r"^n_", "", str(name)).replace("__", " ").replace("_", " ").strip()
    return text[:1].upper() + text[1:] if text else text


def format_value(value: Any) -> str:
    """A cell as a reader wants it: 34,570 not 34570.0, yes/no not True/False, lists joined, blanks empty."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if hasattr(value, "item") and not isinstance(value, str | bytes):  # numpy scalars
        try:
            value = value.item()
        except (ValueError, AttributeError):
            pass
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return f"{int(value):,}"
        return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.1f}"
    if isinstance(value, list | tuple | set):
        return ", ".join(format_value(v) for v in value)
    if hasattr(value, "tolist"):
        return format_value(value.tolist())
    return str(value)


def format_table(df: pd.DataFrame, labels: Mapping[str, str] | None = None,
                 percent: Sequence[str] = ()) -> pd.DataFrame:
    """Human labels and formatted text cells; ``percent`` columns (0-1 shares) shown as percentages."""
    labels = labels or {}
    out = pd.DataFrame(index=df.index)
    for column in df.columns:
        values = df[column]
        if column in percent:
            text = [("" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * float(v):.2f}%")
                    for v in values]
        else:
            text = [format_value(v) for v in values]
        out[labels.get(column, human_label(column))] = text
    return out


_NUMBER = re.compile(r"^[-+]?[\d,]*\.?\d+%?$")


def _table_html(shown: pd.DataFrame) -> str:
    """Escaped HTML table; columns of numbers are right-aligned and kept on one line, text wraps at words."""
    # Short non-numbers (a disclosure symbol such as "c") do not make a column of numbers into text.
    numeric = [all(not v or len(v) <= 2 or _NUMBER.match(v) for v in shown[c])
               and any(_NUMBER.match(v) for v in shown[c]) for c in shown.columns]
    cls = ["num" if n else "txt" for n in numeric]
    head = "".join(f"<th class='{k}'>{html.escape(str(c))}</th>" for c, k in zip(shown.columns, cls, strict=True))
    rows = "".join("<tr>" + "".join(f"<td class='{k}'>{html.escape(str(v))}</td>" for v, k in
                                    zip(row, cls, strict=True)) + "</tr>" for row in shown.itertuples(index=False))
    return f"<table class='tbl'><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


# --- the report ----------------------------------------------------------------------------------

@dataclass
class HtmlReport:
    """Accumulates sections and renders one standalone HTML file."""

    title: str
    sections: list[str] = field(default_factory=list)
    _n_charts: int = 0

    def add_heading(self, text: str, level: int = 2) -> None:
        self.sections.append(f"<h{level}>{html.escape(text)}</h{level}>")

    def add_text(self, text: str) -> None:
        self.sections.append(f"<p>{html.escape(text)}</p>")

    def add_html(self, fragment: str) -> None:
        """A trusted HTML fragment built by the caller (escape every value in it)."""
        self.sections.append(fragment)

    def add_table(self, df: pd.DataFrame, caption: str | None = None, max_rows: int = 200,
                  labels: Mapping[str, str] | None = None, percent: Sequence[str] = ()) -> None:
        """A table with human column labels and formatted numbers, scrolling inside its own box when wide."""
        shown = format_table(df.head(max_rows), labels, percent)
        table = _table_html(shown)
        cap = f"<p class='cap'>{html.escape(caption)}</p>" if caption else ""
        more = (f"<p class='cap'>First {max_rows:,} of {len(df):,} rows shown.</p>" if len(df) > max_rows else "")
        self.sections.append(f"{cap}<div class='tblwrap'>{table}</div>{more}")

    def add_chart(self, spec: dict[str, Any], caption: str | None = None) -> None:
        """Add a Vega-Lite chart given as a spec dict (declared against the inlined Vega-Lite version)."""
        self._n_charts += 1
        div = f"chart{self._n_charts}"
        spec = {**spec, "$schema": VEGA_LITE_SCHEMA}
        cap = f"<p class='cap'>{html.escape(caption)}</p>" if caption else ""
        payload = json.dumps(spec, default=str).replace("</", "<\\/")
        self.sections.append(
            f"{cap}<div class='chart' id='{div}' data-kind='vega-lite'></div>"
            f"<script>vegaEmbed('#{div}', {payload}, {json.dumps(EMBED_OPTIONS)});</script>")

    @property
    def n_charts(self) -> int:
        return self._n_charts

    def render(self) -> str:
        style = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
                 ".tblwrap{overflow-x:auto;max-width:100%;margin:.5em 0}"
                 ".tbl{border-collapse:collapse;font-size:.92em}.tbl td,.tbl th{padding:3px 8px;"
                 "border-bottom:1px solid #ddd;vertical-align:top}.tbl th{vertical-align:bottom;font-weight:600;"
                 "min-width:4em;max-width:12em}.num{text-align:right;white-space:nowrap}.txt{text-align:left;"
                 "min-width:6em;max-width:24em;overflow-wrap:break-word}.tbl th.num{white-space:normal}"
                 ".cap{color:#555;font-size:.9em}.chart{margin:1em 0;max-width:100%;overflow-x:auto}"
                 ".note{background:#f6f6f6;border-left:3px solid #888;padding:.4em .8em}")
        body = "\n".join(self.sections)
        return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(self.title)}"
                f"</title><style>{style}</style>{_vega_scripts()}</head><body>"
                f"<h1>{html.escape(self.title)}</h1>\n{body}\n</body></html>\n")

    def write(self, path: str | Path) -> None:
        Path(path).write_text(self.render(), encoding="utf-8")


# --- charts --------------------------------------------------------------------------------------

def _values(df: pd.DataFrame) -> list[dict[str, Any]]:
    return json.loads(df.to_json(orient="records"))


def wilson_interval(k: float, n: float, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a proportion k/n (sensible at 0 and at small n); (nan, nan) when n = 0."""
    if not n or n <= 0:
        return float("nan"), float("nan")
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def bar_chart(df: pd.DataFrame, x: str, y: str, title: str, color: str | None = None,
              horizontal: bool = False, x_type: str = "nominal", y_type: str = "quantitative",
              log: bool = False) -> dict:
    """A small Vega-Lite bar chart spec. With ``color``, groups sit side by side (never stacked)."""
    value_axis: dict[str, Any] = {"field": y, "type": y_type, "title": human_label(y)}
    if log:
        value_axis["scale"] = {"type": "symlog"}
        value_axis["stack"] = None
    category: dict[str, Any] = {"field": x, "type": x_type, "title": human_label(x)}
    enc: dict[str, Any] = {"x": category, "y": value_axis,
                           "tooltip": [{"field": c, "title": human_label(c)} for c in df.columns]}
    if horizontal:
        enc["x"], enc["y"] = value_axis, {**category, "sort": "-x"}
    if color:
        enc["color"] = {"field": color, "type": "nominal", "title": human_label(color)}
        enc["yOffset" if horizontal else "xOffset"] = {"field": color}
    return {"$schema": VEGA_LITE_SCHEMA, "title": title, "data": {"values": _values(df)},
            "mark": "bar", "encoding": enc, "width": 600}


def share_chart(df: pd.DataFrame, label: str, count: str, denominator: str, title: str, *,
                group: str | None = None, interval: bool = True, width: int = 520) -> dict:
    """Horizontal bars of ``count / denominator`` per ``label`` on a 0-100% axis, with 95% Wilson intervals.

    Rows whose denominator is zero or missing are drawn as the words "no data" at the axis origin, not as
    a zero-length bar. With ``group``, groups sit side by side within each label (never stacked). The
    title must name the denominator; callers pass it in ``title``.
    """
    rows = []
    for rec in df.to_dict(orient="records"):
        n = rec.get(denominator)
        k = rec.get(count)
        # A row without a usable count or a positive denominator is drawn as "no data", never as 0%.
        nf = float(n) if n is not None and not (isinstance(n, float) and math.isnan(n)) else math.nan
        kf = float(k) if k is not None and not (isinstance(k, float) and math.isnan(k)) else math.nan
        ok = nf > 0 and not math.isnan(kf)
        lo, hi = wilson_interval(kf, nf) if ok else (float("nan"), float("nan"))
        rows.append({"label": str(rec[label]), "group": str(rec[group]) if group else "",
                     "share": (kf / nf) if ok else None, "lo": lo if ok else None,
                     "hi": hi if ok else None, "k": k if ok else None, "n": n if ok else 0,
                     "text": f"{100 * kf / nf:.1f}%" if ok else NO_DATA})
    values = pd.DataFrame(rows)
    y: dict[str, Any] = {"field": "label", "type": "nominal", "title": None, "sort": None}
    tooltip = [{"field": "label", "title": human_label(label)}, {"field": "k", "title": "count", "format": ","},
               {"field": "n", "title": human_label(denominator), "format": ","},
               {"field": "share", "title": "share", "format": ".1%"},
               {"field": "lo", "title": "95% CI low", "format": ".1%"},
               {"field": "hi", "title": "95% CI high", "format": ".1%"}]
    common: dict[str, Any] = {"y": y}
    if group:
        common["yOffset"] = {"field": "group"}
        common["color"] = {"field": "group", "type": "nominal", "title": human_label(group)}
        tooltip.insert(1, {"field": "group", "title": human_label(group)})
    x = {"field": "share", "type": "quantitative", "title": "share (95% CI)" if interval else "share",
         "scale": {"domain": [0, 1]}, "axis": {"format": "%"}}
    layers: list[dict[str, Any]] = [
        {"transform": [{"filter": "datum.share != null"}], "mark": "bar",
         "encoding": {**common, "x": x, "tooltip": tooltip}},
        {"mark": {"type": "text", "align": "left", "dx": 4, "color": "#333"},
         "encoding": {**common, "x": {"field": "hi" if interval else "share", "type": "quantitative",
                                      "scale": {"domain": [0, 1]}},
                      "text": {"field": "text"}},
         "transform": [{"calculate": "datum.share == null ? 0 : datum.hi", "as": "hi"}] if interval else
         [{"calculate": "datum.share == null ? 0 : datum.share", "as": "share"}]},
    ]
    if interval:
        layers.insert(1, {"transform": [{"filter": "datum.share != null"}], "mark": {"type": "rule", "color": "#222"},
                          "encoding": {**{k: v for k, v in common.items() if k != "color"},
                                       "x": {"field": "lo", "type": "quantitative"}, "x2": {"field": "hi"}}})
    return {"$schema": VEGA_LITE_SCHEMA, "title": title, "data": {"values": _values(values)}, "layer": layers,
            "width": width}


def count_chart(df: pd.DataFrame, x: str, y: str, title: str, *, log: bool = True,
                x_title: str | None = None, y_title: str | None = None) -> dict:
    """Counts per ordered category (e.g. persons per cluster size). Log axis by default: tails stay visible."""
    values = df[[x, y]].copy()
    values[x] = values[x].astype(str)
    sort = list(values[x])
    y_axis: dict[str, Any] = {"field": y, "type": "quantitative", "title": (y_title or human_label(y))
                              + (" (log scale)" if log else "")}
    if log:  # symlog: log-like for the tail, and a bar of 1 still has a visible height above 0
        y_axis["scale"] = {"type": "symlog"}
        y_axis["stack"] = None
    return {"$schema": VEGA_LITE_SCHEMA, "title": title, "data": {"values": _values(values)},
            "mark": "bar",
            "encoding": {"x": {"field": x, "type": "ordinal", "sort": sort, "title": x_title or human_label(x)},
                         "y": y_axis, "tooltip": [{"field": x, "title": x_title or human_label(x)},
                                                  {"field": y, "title": y_title or human_label(y), "format": ","}]},
            "width": 600}
