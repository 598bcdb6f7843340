"""Self-contained HTML reports: sections of text, tables and Vega-Lite charts.

Reports must open on an air-gapped machine, so the Vega JavaScript is inlined from the copy that ships
inside the splink package rather than loaded from a CDN. Charts are plain Vega-Lite spec dicts, so any
stage can build them without a plotting library; Splink's own charts (which are Vega-Lite too) drop in
unchanged via :meth:`HtmlReport.add_chart`.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd

_JS_FILES = ("vega@5.31.0", "vega-lite@5.2.0", "vega-embed@6.20.2")


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

    def add_table(self, df: pd.DataFrame, caption: str | None = None, max_rows: int = 200) -> None:
        table = df.head(max_rows).to_html(index=False, border=0, classes="tbl", na_rep="")
        cap = f"<p class='cap'>{html.escape(caption)}</p>" if caption else ""
        self.sections.append(cap + table)

    def add_chart(self, spec: dict[str, Any], caption: str | None = None) -> None:
        """Add a Vega-Lite chart given as a spec dict."""
        self._n_charts += 1
        div = f"chart{self._n_charts}"
        cap = f"<p class='cap'>{html.escape(caption)}</p>" if caption else ""
        payload = json.dumps(spec, default=str).replace("</", "<\\/")
        self.sections.append(
            f"{cap}<div class='chart' id='{div}' data-kind='vega-lite'></div>"
            f"<script>vegaEmbed('#{div}', {payload}, {{actions: false}});</script>")

    @property
    def n_charts(self) -> int:
        return self._n_charts

    def render(self) -> str:
        style = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}"
                 ".tbl{border-collapse:collapse;margin:.5em 0}.tbl td,.tbl th{padding:3px 8px;"
                 "border-bottom:1px solid #ddd;text-align:right}.cap{color:#555;font-size:.9em}"
                 ".chart{margin:1em 0}")
        body = "\n".join(self.sections)
        return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(self.title)}"
                f"</title><style>{style}</style>{_vega_scripts()}</head><body>"
                f"<h1>{html.escape(self.title)}</h1>\n{body}\n</body></html>\n")

    def write(self, path: str | Path) -> None:
        Path(path).write_text(self.render(), encoding="utf-8")


def bar_chart(df: pd.DataFrame, x: str, y: str, title: str, color: str | None = None,
              horizontal: bool = False, x_type: str = "nominal", y_type: str = "quantitative") -> dict:
    """A small Vega-Lite bar chart spec from a data frame."""
    enc: dict[str, Any] = {"x": {"field": x, "type": x_type}, "y": {"field": y, "type": y_type},
                           "tooltip": [{"field": c} for c in df.columns]}
    if horizontal:
        enc["x"], enc["y"] = {"field": y, "type": y_type}, {"field": x, "type": x_type, "sort": "-x"}
    if color:
        enc["color"] = {"field": color, "type": "nominal"}
    return {"$schema": "https://vega.github.io/schema/vega-lite/v5.json", "title": title,
            "data": {"values": json.loads(df.to_json(orient="records"))}, "mark": "bar", "encoding": enc,
            "width": 600}
