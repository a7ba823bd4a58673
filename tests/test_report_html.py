"""report.html of scans and simulations: self-contained (no network references), escaped, capped
for big scans; and rendered by a real headless Chromium with its script run and no network, a
header click sorting rows, and a screenshot of the demo report (docs/report-screenshot.png when
AUDIT_SAVE_SCREENSHOT names it)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from html import unescape
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from audit import scan
from audit.report.html import MAX_TABLE_ROWS, MAX_THUMBNAILS, html_report
from audit.report.tally import Listed
from loops import SimConfig, simulate
from tests.conftest import noise_image

HOSTILE = "<script>alert(1)</script>.png"  # its "/" makes it a folder "<script>alert(1)<" + "script>.png"
A1111 = "a cat\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Model hash: abc123"
REMOTE = re.compile(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", re.IGNORECASE)
CHROMIUM = Path("/usr/bin/chromium")


def _generated(path: Path, seed: int) -> None:
    info = PngInfo()
    info.add_text("parameters", A1111)
    noise_image((64, 64), seed=seed).save(path, pnginfo=info)


@pytest.fixture(scope="module")
def scanned(tmp_path_factory):
    root = tmp_path_factory.mktemp("html-src")
    for i in range(3):
        noise_image((64, 64), seed=10 + i).save(root / f"real_{i}.png")
    _generated(root / "a1111.png", 1)
    hostile = root / HOSTILE
    hostile.parent.mkdir()
    _generated(hostile, 2)
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    out = tmp_path_factory.mktemp("html-out")
    result = scan(str(root), out, workers=0)
    return result, (out / "report.html").read_text(encoding="utf-8")


def test_scan_report_is_self_contained_and_shows_the_estimate(scanned):
    result, html = scanned
    assert not REMOTE.search(html), REMOTE.search(html)
    assert "flagged fraction (uncorrected)" in html and "hard lower bound" in html
    flagged = result.summary["estimate"]["flagged_fraction"]
    assert f"{100 * flagged:.2f}%" in html
    assert "a1111.png" in html and "png:parameters" in html  # a flagged id with its evidence
    assert "broken.png" in html and "corrupt image" in html  # the error row
    assert html.count('<img class="thumb"') == 2  # both flagged images are local files


def test_hostile_ids_are_escaped(scanned):
    result, html = scanned
    assert HOSTILE in {r["id"] for r in result.rows if r["flagged"]}
    assert HOSTILE not in html and "alert(1)" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.png" in html
    assert html.count("<script>") == 1  # the report's own script only


def test_big_scans_cap_rows_and_thumbnails(scanned):
    result, _ = scanned
    template = next(r for r in result.rows if r["id"] == "a1111.png")
    rows = [{**template, "seq": i, "id": f"img_{i:05d}.png"} for i in range(MAX_TABLE_ROWS + 500)]
    html = html_report(
        {**result.summary, "counts": {**result.summary["counts"], "flagged": len(rows)}}, Listed.of(rows)
    )
    assert html.count('<img class="thumb"') == MAX_THUMBNAILS
    assert html.count("img_0") == MAX_TABLE_ROWS
    assert f"500 of {MAX_TABLE_ROWS + 500} rows left out" in html
    assert len(html) < 5_000_000


def test_probe_scores_get_a_histogram(scanned):
    result, _ = scanned
    rows = [{**r, "probe_score": float(s)} for r, s in zip(result.rows, np.linspace(0, 1, len(result.rows)))]
    html = html_report(result.summary, Listed.of(rows))
    assert "probe scores" in html and html.count('src="data:image/png;base64,') == 1


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim-out")
    simulate(
        SimConfig(loop="fresh", contamination=0.5, repeats=2, generations=2, samples_per_gen=30), preset=False, out=out
    )
    return (out / "report.html").read_text(encoding="utf-8")


def test_simulation_report_is_self_contained(simulated):
    assert not REMOTE.search(simulated)
    assert 'alt="metric curves" style="max-width:100%" src="data:image/png;base64,' in simulated
    assert 'id="final"' in simulated and 'id="configs"' in simulated and "fresh" in simulated


# --- a real browser -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def chromium() -> Path:
    """/usr/bin/chromium, installed from Debian packages when missing and we are root."""
    if not CHROMIUM.exists():
        if not shutil.which("apt-get") or os.geteuid() != 0:
            pytest.skip("chromium is not installed and cannot be (needs apt-get and root)")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "--no-install-recommends", "chromium", "chromium-driver"]
        done = subprocess.run(install, capture_output=True, text=True, timeout=600, env=env)
        if done.returncode != 0:  # stale or missing package lists on a fresh machine
            subprocess.run(["apt-get", "update"], capture_output=True, timeout=300, env=env)
            done = subprocess.run(install, capture_output=True, text=True, timeout=600, env=env)
        if done.returncode != 0 or not CHROMIUM.exists():
            pytest.skip(f"could not install chromium: {done.stderr.strip()[-500:]}")
    return CHROMIUM


def _headless(chromium: Path, profile: Path, *args: str) -> subprocess.CompletedProcess:
    command = [
        str(chromium),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_chromium_renders_the_report_offline(chromium, scanned, tmp_path):
    _, html = scanned
    page = tmp_path / "report.html"
    page.write_text(html, encoding="utf-8")
    dom = _headless(chromium, tmp_path / "profile", "--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert 'data-report-js="ready"' in dom.stdout  # the script ran to its end
    assert re.search(r'<table class="sortable" id="flagged"[^>]*data-shown="2"', dom.stdout)
    assert 'class="filter"' in dom.stdout and "a1111.png" in dom.stdout


# Appended to a copy of a report: clicks the id header of the flagged table twice and types in its
# filter box, recording the id column after each step in <pre id="clicked"> for --dump-dom.
CLICK_SCRIPT = """<script>(function(){
var table=document.getElementById('flagged'),header=table.tHead.rows[0].cells[1],seen={};
function ids(){return Array.prototype.map.call(table.tBodies[0].rows,function(r){return r.cells[1].textContent;});}
seen.before=ids();header.click();seen.ascending=ids();header.click();seen.descending=ids();
var box=table.previousElementSibling;box.value='img_1';box.dispatchEvent(new Event('input'));
seen.shown=Number(table.getAttribute('data-shown'));
var pre=document.createElement('pre');pre.id='clicked';pre.textContent=JSON.stringify(seen);document.body.appendChild(pre);
})();</script>"""


def test_clicking_a_header_sorts_the_rows_in_chromium(chromium, scanned, tmp_path):
    result, _ = scanned
    template = next(r for r in result.rows if r["id"] == "a1111.png")
    ids = [f"img_{i}.png" for i in np.random.default_rng(0).permutation(12)]
    html = html_report(result.summary, Listed.of({**template, "seq": i, "id": name} for i, name in enumerate(ids)))
    page = tmp_path / "report.html"
    page.write_text(html.replace("</body>", CLICK_SCRIPT + "\n</body>"), encoding="utf-8")
    dom = _headless(chromium, tmp_path / "profile", "--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    found = re.search(r'<pre id="clicked">(.*?)</pre>', dom.stdout, re.DOTALL)
    assert found, dom.stdout[-2000:]
    seen = json.loads(unescape(found.group(1)))
    assert seen["before"] == ids != sorted(ids)
    assert seen["ascending"] == sorted(ids) and seen["descending"] == sorted(ids, reverse=True)
    assert seen["shown"] == sum("img_1" in i for i in ids) == 3  # img_1, img_10, img_11


@pytest.fixture(scope="module")
def demo_report(demo_images, clip_encoder) -> Path:
    """report.html of the demo folder, scanned from its parent as `audit demo` does (source `demo/images`,
    against the bank of its marked images)."""
    from audit import ScanConfig
    from audit.demo import demo_bank

    root = demo_images.parents[1]
    bank = demo_bank(demo_images, root / "demo-bank", embedder=clip_encoder)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        scan("demo/images", "demo-out", config=ScanConfig(bank=str(bank)), workers=0)
    return root / "demo-out" / "report.html"


def test_chromium_screenshot_of_the_demo_report(chromium, demo_report, tmp_path):
    """Also makes docs/report-screenshot.png: AUDIT_SAVE_SCREENSHOT=docs/report-screenshot.png."""
    shot = tmp_path / "shot.png"
    rendered = _headless(
        chromium,
        tmp_path / "profile",
        f"--screenshot={shot}",
        "--window-size=1000,1500",
        "--hide-scrollbars",
        demo_report.as_uri(),
    )
    assert rendered.returncode == 0 and shot.exists(), rendered.stderr[-2000:]
    with Image.open(shot) as im:
        pixels = np.asarray(im.convert("L"), dtype=float)
        assert pixels.shape == (1500, 1000) and pixels.var() > 0
        if os.environ.get("AUDIT_SAVE_SCREENSHOT"):
            im.convert("RGB").quantize(colors=256).save(os.environ["AUDIT_SAVE_SCREENSHOT"], optimize=True)
