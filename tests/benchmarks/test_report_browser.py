"""The report in a real headless browser (Chromium from Debian's ``chromium`` and
``chromium-driver`` packages, driven by selenium): every image of the index and of every
page it links loads with a non-zero natural size, every link resolves to a local file (or
an anchor on its page), and the console shows no error. A screenshot of the index is saved
in the test's temporary folder.

Skipped, with the reason, only where Chromium or its driver is not installed (``.ci/run``
installs both).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from benchmarks.__main__ import main
from benchmarks.execution.suite_run import run_suite
from tests.helpers import harness_plugin as hp

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")

pytestmark = pytest.mark.skipif(
    CHROMIUM is None or DRIVER is None,
    reason="needs Chromium and its driver: apt-get install chromium chromium-driver",
)

_IMAGES = (
    "return Array.from(document.images).map(i => "
    "[i.getAttribute('src'), i.complete, i.naturalWidth, i.naturalHeight])"
)
_LINKS = "return Array.from(document.links).map(a => a.href)"
_IDS = "return Array.from(document.querySelectorAll('[id]')).map(e => e.id)"


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1440,2400"):
        opts.add_argument(arg)
    opts.add_argument("--disable-dev-shm-usage")
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    try:
        yield driver
    finally:
        driver.quit()


def _check_page(driver, url: str) -> tuple[list, list[str]]:
    """Open ``url``; assert its images load and the console is clean; return its images
    and links."""
    driver.get(url)
    images = driver.execute_script(_IMAGES)
    broken = [src for src, complete, w, h in images if not (complete and w > 0 and h > 0)]
    assert not broken, f"{url}: images that did not load: {broken}"
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, f"{url}: console errors: {errors}"
    return images, driver.execute_script(_LINKS)


def _browse(driver, index: Path) -> dict[str, int]:
    """Check the index and every HTML page it links; assert every link resolves. Returns
    the counts of the index (images, links) and of the pages visited."""
    images, links = _check_page(driver, index.as_uri())
    ids = set(driver.execute_script(_IDS))
    counts = {"index_images": len(images), "index_links": len(links), "pages": 1}
    pages = []
    for link in links:
        url = urlparse(link)
        assert url.scheme == "file", f"not a local link: {link}"
        path = Path(unquote(url.path))
        if path == index and url.fragment:
            assert url.fragment in ids, f"no anchor #{url.fragment} on the index"
            continue
        assert path.is_file(), f"broken link {link}"
        if path.suffix == ".html" and path not in pages:
            pages.append(path)
    for page in pages:
        sub_images, sub_links = _check_page(driver, page.as_uri())
        counts["pages"] += 1
        counts["page_images"] = counts.get("page_images", 0) + len(sub_images)
        for link in sub_links:
            assert Path(unquote(urlparse(link).path)).is_file(), f"{page}: broken {link}"
    return counts


def test_report_of_a_tiny_suite_in_the_browser(tmp_path, monkeypatch, browser, plugin):
    suite = hp.tiny_suite(
        inits=("gaussian", "cap"),
        sampler_params={"ula": {"step_size": 1e6}},  # diverges: a placeholder panel
    )
    out = tmp_path / "results"
    run_suite(suite, out_root=out, progress=False, curve_every=2, command="python -m x")
    (out / "study").mkdir()
    (out / "study" / "notes.md").write_text("# A study\n\nProduced by: `x`\n\n![fig](p.png)\n")
    shutil.copy(REPO / "results" / "dmps" / "shell_experiment.png", out / "study" / "p.png")
    assert main(["report", "--out", str(out)]) == 0
    counts = _browse(browser, out / "index.html")
    # heatmap, particles, two metric figures, the critical-difference figure (ula diverges
    # everywhere, so it is ranked last beside svgd: two ranked samplers), study PNG
    assert counts["index_images"] == 6
    browser.get((out / "index.html").as_uri())
    assert browser.save_screenshot(str(tmp_path / "index.png"))
    assert (tmp_path / "index.png").stat().st_size > 10_000


def test_report_of_the_committed_results_in_the_browser(tmp_path, browser):
    """The committed ``results/`` (copied; pages rebuilt without figures, so this takes
    seconds): the page a reader opens."""
    out = tmp_path / "results"
    shutil.copytree(REPO / "results", out)
    assert main(["report", "--out", str(out), "--no-figures"]) == 0
    counts = _browse(browser, out / "index.html")
    n_png = len(list(out.rglob("*.png")))
    assert counts["index_links"] >= len([p for p in out.rglob("*") if p.is_file()]) - 1
    assert counts["index_images"] + counts.get("page_images", 0) >= n_png
    browser.get((out / "index.html").as_uri())
    assert browser.save_screenshot(str(tmp_path / "index.png"))
    (tmp_path / "counts.json").write_text(json.dumps(counts))
    print(f"screenshot {tmp_path / 'index.png'}; counts {counts}")
