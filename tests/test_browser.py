"""Every report renders offline in a real headless Chromium: no console errors, every chart drawn with data.

The report is copied with a probe script added after the inlined Vega libraries: it records console
errors and uncaught exceptions, waits for every ``vegaEmbed`` call, counts the data marks each chart drew
(axes, legends and titles excluded) and writes the findings into the page, which Chromium's
``--dump-dom`` prints. Network access is not needed and not allowed (reports must open air-gapped).
Skipped when no Chromium is installed (.ci/run installs Debian's ``chromium``).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

BROWSER = next((b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)
pytestmark = [pytest.mark.browser, pytest.mark.skipif(BROWSER is None, reason="no Chromium installed")]

EARLY = """<script>
window.__errors = [];
(function () {
  const origError = console.error;
  console.error = function (...args) {
    window.__errors.push(args.map(String).join(' ')); origError.apply(console, args); };
  const origWarn = console.warn;
  console.warn = function (...args) {
    window.__errors.push('warn: ' + args.map(String).join(' ')); origWarn.apply(console, args); };
  window.addEventListener('error', e => window.__errors.push('uncaught: ' + e.message));
})();
</script>"""

PROBE = """<script>
(function () {
  window.__embeds = [];
  if (window.vegaEmbed) {
    const orig = window.vegaEmbed;
    window.vegaEmbed = function (el, spec, opts) {
      const p = orig(el, spec, opts); window.__embeds.push([el, p]); return p; };
  }
  function dataMarks(node) {
    let n = 0;
    if (node.marktype && node.marktype !== 'group' && node.role === 'mark') n += (node.items || []).length;
    for (const item of node.items || []) { if (item.items) n += dataMarks(item); }
    return n;
  }
  window.addEventListener('load', async () => {
    const charts = [];
    for (const [el, p] of window.__embeds) {
      try { const r = await p; charts.push({el: el, marks: dataMarks(r.view.scenegraph().root)}); }
      catch (e) { charts.push({el: el, marks: -1, error: String(e)}); }
    }
    const out = document.createElement('pre');
    out.id = '__probe';
    out.textContent = JSON.stringify({errors: window.__errors, charts: charts,
                                      divs: document.querySelectorAll("[data-kind='vega-lite']").length});
    document.body.appendChild(out);
  });
})();
</script>"""


def render(report: Path, tmp_path: Path) -> dict:
    """Open a copy of ``report`` with the probe in headless Chromium; return the probe's findings."""
    text = report.read_text(encoding="utf-8")
    # Console capture first of all; the chart probe after the inlined libraries (our reports end their head
    # with "</head><body><h1>"; the vega sources themselves contain "</head><body>").
    head = re.search(r"<head[^>]*>", text)
    assert head, f"no <head> in {report}"
    text = text[:head.end()] + EARLY + text[head.end():]
    head_end = text.find("</head><body><h1>")
    if head_end < 0:  # a Splink dashboard: only errors are probed, at the end of the body
        head_end = text.rindex("</body>")
    probed = tmp_path / f"probed-{report.parent.name}-{report.name}"
    probed.write_text(text[:head_end] + PROBE + text[head_end:], encoding="utf-8")
    cmd = [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
           "--virtual-time-budget=30000", "--proxy-server=127.0.0.1:9", "--dump-dom", probed.as_uri()]
    dom = subprocess.run(cmd, capture_output=True, text=True, timeout=180).stdout
    match = re.search(r"<pre id=\"__probe\">(.*?)</pre>", dom, re.S)
    assert match, f"probe did not report for {report}"
    return json.loads(match.group(1).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
                      .replace("&quot;", '"'))


def screenshot(report: Path, png: Path, height: int = 3000) -> None:
    """A 1280-px-wide screenshot of a report (used to refresh the pictures in docs/)."""
    subprocess.run([BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    "--virtual-time-budget=30000", f"--window-size=1280,{height}", f"--screenshot={png}",
                    report.as_uri()], capture_output=True, timeout=180, check=True)


@pytest.fixture(scope="module")
def reports(demo) -> dict[str, Path]:
    # conftest's demo run (1,500 people, release audits on, fixed key), shared with test_demo: rendering needs
    # only its reports, and a second demo run of its own cost this file ~40 s.
    _, summary = demo
    found = {"link": Path(summary["reports"]["link"]), "cohort": Path(summary["reports"]["cohort"])}
    found.update({f"dashboard:{p.stem}": p for p in Path(summary["reports"]["link"]).parent.glob("*dashboard*.html")})
    return found


@pytest.mark.parametrize("name", ["link", "cohort"])
def test_report_renders_offline_without_errors_and_every_chart_has_data(reports, tmp_path, name):
    found = render(reports[name], tmp_path)
    assert found["errors"] == []
    assert found["divs"] == len(found["charts"]) > 0
    empty = [c for c in found["charts"] if c["marks"] <= 0]
    assert not empty, f"charts without data marks: {empty}"


@pytest.mark.parametrize("name", ["comparison_viewer", "cluster_studio"])
def test_splink_dashboards_render_offline_without_errors_or_tokens(reports, tmp_path, name):
    """Splink's own dashboards: they render (Splink's charts log warnings of their own; errors fail), and
    no token of any encoded extract appears in them: agreement levels only."""
    import pandas as pd

    path = reports["link"].parent / f"{name}.html"
    found = render(path, tmp_path)
    assert [e for e in found["errors"] if not e.startswith("warn:")] == []
    text = path.read_text(encoding="utf-8")
    assert "gamma_" in text
    for folder in (reports["link"].parents[2] / "linkage-unit" / "identifiers").iterdir():
        tokens = pd.read_parquet(folder / "tokens.parquet")
        for column in tokens.columns.drop(["record_id", "identity_id"]):
            values = [v for v in tokens[column].dropna().head(30) if isinstance(v, str) and len(v) >= 8]
            assert not [v for v in values if v in text], f"{column} tokens in {name}"


def test_probe_catches_a_broken_and_an_empty_chart(tmp_path):
    """The probe is not blind: a chart with no rows and a chart that fails to compile are both reported."""
    from linkage.report import HtmlReport

    rep = HtmlReport(title="broken")
    rep.add_chart({"data": {"values": []}, "mark": "bar", "encoding": {"x": {"field": "a", "type": "nominal"}}})
    rep.add_chart({"data": {"values": [{"a": 1}]}, "mark": "no-such-mark"})
    path = tmp_path / "broken.html"
    rep.write(path)
    found = render(path, tmp_path)
    assert [c["marks"] for c in found["charts"]][0] == 0
    assert found["charts"][1]["marks"] == -1 or found["errors"]
