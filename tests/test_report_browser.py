"""The demo's report as a reader sees it: headless Chromium at 1366x768 and 1920x1080.

A probe script, appended to a copy of the report, measures the page after layout (page scroll
width against the window, where the scoreboard sits) and reads every scoreboard cell's text;
the checks compare those with claims.tsv, not with the report's own code. Screenshots are
taken at both sizes (kept in PREPOST_SCREENSHOTS when that is set, for a person to look at).
"""

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
SIZES = [(1366, 768), (1920, 1080)]
MARKS = {"reproduced": "\u2714", "same direction, not significant": "\u2197", "contradicted": "\u2718",
         "opposite direction, not significant": "\u2198", "not testable": "\u2013",
         "not significant in the source": "\u2218"}

PROBE = """<script>
(function () {
  var b = document.getElementById("scoreboard-table"), r = b.getBoundingClientRect();
  var first = b.tBodies[0].rows[0].getBoundingClientRect();
  var out = {scrollWidth: document.scrollingElement.scrollWidth, innerWidth: window.innerWidth,
    innerHeight: window.innerHeight, boardTop: r.top, firstRowBottom: first.bottom,
    datasets: Array.prototype.map.call(b.tHead.rows[0].cells, function (th) { return th.innerText; }),
    rows: Array.prototype.map.call(b.tBodies[0].rows, function (tr) {
      return {claim: tr.dataset.claim, cells: Array.prototype.map.call(tr.cells, function (td) {
        return td.innerText; })}; })};
  var pre = document.createElement("pre"); pre.id = "probe"; pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
</script></body>"""

pytestmark = [pytest.mark.slow, pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")]


def _flags(tmp_path, size):
    return ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}", f"--window-size={size[0]},{size[1]}"]


@pytest.fixture(scope="module")
def measured(demo_run, tmp_path_factory):
    """{size: (probe dict, screenshot path)} for the demo's report."""
    tmp = tmp_path_factory.mktemp("browser")
    html = (demo_run / "results/report.html").read_text()
    probe_page = tmp / "probe.html"
    probe_page.write_text(html.replace("</body>", PROBE, 1))
    keep = os.environ.get("PREPOST_SCREENSHOTS")
    out = {}
    for size in SIZES:
        dom = subprocess.run([CHROMIUM, *_flags(tmp, size), "--virtual-time-budget=5000", "--dump-dom",
                              probe_page.as_uri()], capture_output=True, text=True, timeout=180)
        assert dom.returncode == 0, dom.stderr[-2000:]
        text = dom.stdout.split('<pre id="probe">', 1)[1].split("</pre>", 1)[0]
        probe = json.loads(text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&"))
        shot = tmp / f"report_{size[0]}x{size[1]}.png"
        run = subprocess.run([CHROMIUM, *_flags(tmp, size), f"--screenshot={shot}",
                              (demo_run / "results/report.html").as_uri()],
                             capture_output=True, text=True, timeout=180)
        assert run.returncode == 0 and shot.exists(), run.stderr[-2000:]
        if keep:
            Path(keep).mkdir(parents=True, exist_ok=True)
            shutil.copy(shot, Path(keep) / shot.name)
        out[size] = (probe, shot)
    return out


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_scoreboard_is_the_first_screen_and_nothing_scrolls_sideways(measured, size):
    probe, shot = measured[size]
    assert probe["innerWidth"] == size[0]
    assert probe["scrollWidth"] <= probe["innerWidth"], "the page scrolls horizontally"
    assert 0 <= probe["boardTop"] < probe["innerHeight"] / 3
    assert probe["firstRowBottom"] <= probe["innerHeight"], "the first claim is not fully in the first screen"
    from PIL import Image

    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.shape[1] == size[0] and pixels.std() > 10  # rendered, not blank


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_every_demo_claim_is_on_the_scoreboard_with_its_verdicts(measured, demo_run, size):
    probe, _ = measured[size]
    claims = pd.read_csv(demo_run / "results/claims.tsv", sep="\t", keep_default_na=False, na_values=["NA"])
    meta = pd.read_csv(demo_run / "results/claims_meta.tsv", sep="\t", keep_default_na=False, na_values=["NA"])
    ids = [c["id"] for c in yaml.safe_load((ROOT / "config/claims.yaml").read_text())["claims"]]
    rows = {r["claim"]: r["cells"] for r in probe["rows"]}
    assert list(rows) == ids  # every claim, in the catalogue's order
    header = probe["datasets"]
    datasets = sorted(claims["dataset"].unique())
    assert header[1:-1] == datasets and header[-1].startswith("pooled")
    for cid in ids:
        cells = rows[cid]
        assert cells[0].splitlines()[0].strip()  # the statement
        for j, ds in enumerate(datasets, start=1):
            g = claims[(claims.claim == cid) & (claims.dataset == ds)]
            text = cells[j]
            if len(g) == 1:  # one gene or set: the cell's verdict is the row's, mark and word
                v = g["verdict"].iloc[0]
                assert text.splitlines()[0] == f"{MARKS[v]} {v}", (cid, ds, text)
            else:  # several genes: each named with its own verdict's mark (the first six)
                for r in g.head(6).itertuples():
                    if r.verdict != "not testable":
                        assert f"{MARKS[r.verdict]} {r.feature}" in text, (cid, ds, r.feature, text)
                if (g["verdict"] == "not testable").all():
                    assert text.startswith(f"{MARKS['not testable']} not testable")
        pooled = meta[meta.claim == cid]
        if len(pooled) == 1:
            v = pooled["verdict"].iloc[0]
            assert cells[-1].splitlines()[0] == f"{MARKS[v]} {v}", (cid, cells[-1])
