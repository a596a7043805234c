"""The course website in a real browser: built from the stored notebooks, served on 127.0.0.1,
opened in Debian's Chromium (driven by Playwright).

The site is built into a temporary folder by ``tools/build_site.py`` (about 10 s), or, when
``UNET_SITE_DIR`` names a site already built by ``make site``, that one is served. Pages opened:
the index, lessons 03 and 06, and exercise 03. Every page must load with no console error, no
uncaught exception and no request that fails or leaves 127.0.0.1; lesson 06 must show the
training dashboard's stored PNG (the static fallback), not a widget placeholder. Screenshots go to
``artifacts/site/``. Skips locally and fails on CI when Chromium, Playwright or Sphinx is missing.
"""
from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import os
import shutil
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest

from browser import lab, static_site
from support import skip_or_fail

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "artifacts" / "site"
LESSON_06 = "notebooks/06_training.ipynb"
DASHBOARD_SOURCE = "TrainingDashboard(class_names"  # the cell of lesson 06 that displays the dashboard
# What a page shows where a widget would need a kernel; the site must show the fallback instead.
PLACEHOLDERS = ("kernel connection", "Error displaying widget", "Loading widget", "model not found")

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def load_build_site():
    spec = importlib.util.spec_from_file_location("build_site", REPO / "tools" / "build_site.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["build_site"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


build_site = load_build_site()


def stored_dashboard_png() -> bytes:
    notebook = json.loads((REPO / LESSON_06).read_text())
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code" and DASHBOARD_SOURCE in "".join(cell["source"]):
            for output in cell["outputs"]:
                if "image/png" in output.get("data", {}):
                    return base64.b64decode(output["data"]["image/png"])
    raise AssertionError(f"{LESSON_06} has no stored PNG in the cell with {DASHBOARD_SOURCE!r}")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """(server, repository): the site served on 127.0.0.1, and the repository its links name."""
    repo = build_site.Repository(build_site.PLACEHOLDER_REPO_URL, "main")
    given = os.environ.get("UNET_SITE_DIR")
    if given:
        root = Path(given)
        if not (root / "index.html").is_file():
            pytest.fail(f"UNET_SITE_DIR={given!r} holds no built site (run `make site`)")
        repo = build_site.Repository(os.environ.get("COURSE_REPO_URL") or repo.url,
                                     os.environ.get("COURSE_REPO_BRANCH") or "main")
    else:
        if importlib.util.find_spec("sphinx") is None or importlib.util.find_spec("myst_nb") is None:
            skip_or_fail("Sphinx / myst-nb are not installed (requirements-site.txt; the site needs Python 3.11+)")
        root = tmp_path_factory.mktemp("site") / "site"
        build_site.build(root, repo)
    workdir = tmp_path_factory.mktemp("server")
    server = static_site.serve(root, workdir / "http.log")
    try:
        yield server, repo
    finally:
        static_site.stop(server)


@pytest.fixture(scope="module")
def browser(site):
    if not lab.CHROMIUM.exists():
        skip_or_fail(f"Chromium not found at {lab.CHROMIUM} (Debian: apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_or_fail("Python playwright is not installed (requirements-test.txt)")
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(lab.CHROMIUM), headless=True, args=lab.CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


class Visit:
    """One page in a fresh browser page, with every problem the browser reported while loading it."""

    def __init__(self, chromium, server, page_path: str):
        self.page = chromium.new_page(viewport={"width": 1280, "height": 900})
        self.problems: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.problems.append(f"console error: {m.text}"))
        self.page.on("pageerror", lambda e: self.problems.append(f"uncaught exception: {e}"))
        self.page.on("requestfailed", lambda r: self.problems.append(f"request failed: {r.url} ({r.failure})"))
        self.page.on("request", self._check_host)
        self.page.on("response", lambda r: r.status >= 400 and self.problems.append(f"HTTP {r.status}: {r.url}"))
        response = self.page.goto(server.url(page_path), wait_until="load")
        assert response is not None and response.status == 200, f"{page_path}: HTTP {response and response.status}"
        self.page.wait_for_load_state("networkidle")

    def _check_host(self, request) -> None:
        host = urlparse(request.url).hostname
        if request.url.startswith("http") and host != "127.0.0.1":
            self.problems.append(f"request outside 127.0.0.1: {request.url}")

    def assert_clean(self) -> None:
        assert not self.problems, "\n".join(self.problems)
        body = self.page.inner_text("body")
        shown = [p for p in PLACEHOLDERS if p.lower() in body.lower()]
        assert not shown, f"the page shows widget placeholders {shown} instead of the static fallback"

    def colab_href(self) -> str:
        link = self.page.locator("a.colab-link")
        assert link.count() == 1, f"expected one 'Open in Colab' link, found {link.count()}"
        return link.get_attribute("href")

    def close(self) -> None:
        self.page.close()


@pytest.fixture
def visit(browser, site):
    server, _ = site
    opened = []

    def open_page(page_path: str) -> Visit:
        opened.append(Visit(browser, server, page_path))
        return opened[-1]

    yield open_page
    for page in opened:
        page.close()


def test_index_lists_every_lesson_and_exercise(visit, site):
    server, _ = site
    page = visit("index.html")
    page.page.screenshot(path=ARTIFACTS / "index.png", full_page=True)
    page.assert_clean()
    hrefs = set(page.page.eval_on_selector_all("article a[href]", "links => links.map(a => a.getAttribute('href'))"))
    for folder in ("notebooks", "exercises"):
        for notebook in sorted((REPO / folder).glob("*.ipynb")):
            target = f"{folder}/{notebook.stem}.html"
            assert target in hrefs, f"the index does not link to {target}"
            assert server.get(target), f"{target} is empty"
    for reference in ("glossary.html", "further_reading.html", "DATA_LICENSES.html"):
        assert reference in hrefs, f"the index does not link to {reference}"
    licences = server.get("DATA_LICENSES.html").decode()
    assert "10.6084/m9.figshare.856713" in licences and "CC BY-NC-SA 3.0" in licences


def test_lesson_03_renders_with_its_colab_link(visit, site):
    _, repo = site
    page = visit("notebooks/03_unet.html")
    page.page.screenshot(path=ARTIFACTS / "03_unet.png")
    page.page.screenshot(path=ARTIFACTS / "03_unet_full.png", full_page=True)
    page.assert_clean()
    assert page.colab_href() == repo.colab_url("notebooks/03_unet.ipynb")
    figures = page.page.locator(".cell_output img")
    assert figures.count() >= 1, "lesson 03 shows no stored figure"
    assert all(lab.image_size(figures.nth(i))[0] > 0 for i in range(figures.count())), "a figure did not load"
    diagram = page.page.locator("div.cell", has_text="plot_unet_diagram(net, (256, 256))")
    assert diagram.count() == 1, f"expected one cell drawing the U-Net diagram, found {diagram.count()}"
    diagram.scroll_into_view_if_needed()
    diagram.screenshot(path=ARTIFACTS / "03_unet_diagram.png")
    image = diagram.locator(".cell_output img")
    assert image.count() == 1 and lab.image_size(image)[0] > 0, "lesson 03 does not show the U-Net diagram"


def test_lesson_06_shows_the_dashboard_fallback_image(visit, site):
    server, repo = site
    page = visit("notebooks/06_training.html")
    page.page.screenshot(path=ARTIFACTS / "06_training.png")
    page.assert_clean()
    assert page.colab_href() == repo.colab_url(LESSON_06)
    cell = page.page.locator("div.cell", has_text=DASHBOARD_SOURCE)
    assert cell.count() == 1, f"expected one cell displaying the dashboard, found {cell.count()}"
    image = cell.locator(".cell_output img")
    assert image.count() == 1, "the dashboard cell shows no image"
    cell.scroll_into_view_if_needed()
    cell.screenshot(path=ARTIFACTS / "06_dashboard.png")
    width, height = lab.image_size(image)
    assert width > 0 and height > 0, "the dashboard's image did not load"
    served = server.get(f"notebooks/{image.get_attribute('src')}")
    assert hashlib.sha256(served).hexdigest() == hashlib.sha256(stored_dashboard_png()).hexdigest(), \
        "the image shown is not the PNG stored with the dashboard"


def test_exercise_page_opens_in_colab_and_downloads_the_notebook(visit, site):
    server, repo = site
    page = visit("exercises/ex06_dice_loss.html")
    page.page.screenshot(path=ARTIFACTS / "ex06_dice_loss.png")
    page.assert_clean()
    assert page.colab_href() == repo.colab_url("exercises/ex06_dice_loss.ipynb")
    links = page.page.locator("a[href$='_sources/exercises/ex06_dice_loss.ipynb']")  # ours and the theme's button
    assert page.page.locator("a.download-link").count() == 1, "the exercise page has no download link"
    for href in {links.nth(i).get_attribute("href") for i in range(links.count())}:
        served = server.get(f"exercises/{href}")
        assert served == (REPO / "exercises" / "ex06_dice_loss.ipynb").read_bytes(), \
            f"the download {href} is not the exercise notebook as in the repository"
