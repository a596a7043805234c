"""The live views in a real browser: JupyterLab + Debian's Chromium driven by Playwright.

Opens the notebook(s) named in ``tests/browser/targets.py``, runs every cell, drags a slider of
the metric playground and checks that the IoU shown changes, and checks that the training
dashboard shows predicted masks after training. Screenshots go to ``artifacts/browser/``.
Skips locally and fails on CI when Chromium or Playwright is missing (``skip_or_fail``).
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from browser import lab
from browser.targets import METRIC_CLASS, METRIC_PLAYGROUND, METRIC_SLIDER, OTHER_VIEWS, TRAINING_DASHBOARD
from support import skip_or_fail

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "artifacts" / "browser"

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def browser_page(tmp_path_factory):
    if not lab.CHROMIUM.exists():
        skip_or_fail(f"Chromium not found at {lab.CHROMIUM} (Debian: apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_or_fail("Python playwright is not installed (requirements-test.txt)")
    notebooks = sorted({t.notebook for t in (METRIC_PLAYGROUND, TRAINING_DASHBOARD, *OTHER_VIEWS)})
    missing = [n for n in notebooks if not (REPO / n).exists()]
    if missing:
        pytest.fail(f"browser test targets missing notebooks {missing}; see tests/browser/targets.py")
    workdir = tmp_path_factory.mktemp("lab")
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    server = lab.start(REPO, notebooks, workdir)
    try:
        with sync_playwright() as p:
            context = p.chromium.launch_persistent_context(
                str(workdir / "chromium-profile"), executable_path=str(lab.CHROMIUM), headless=True,
                args=lab.CHROMIUM_ARGS, viewport={"width": 1400, "height": 1000})
            try:
                page = context.pages[0] if context.pages else context.new_page()
                page.set_default_timeout(30_000)
                yield server, page, {}
            finally:
                context.close()
    finally:
        lab.stop(server)
        shutil.copy(server.log, ARTIFACTS / "jupyterlab.log")


def ran(state, page, server, notebook):
    """Open and run each notebook once per module, however many targets it hosts."""
    if state.get("current") != notebook:
        lab.open_and_run_all(page, server, notebook, timeout_s=900)  # lessons 06 and 08 train models
        page.screenshot(path=ARTIFACTS / f"{Path(notebook).stem}_after_run_all.png", full_page=True)
        state["current"] = notebook


def test_metric_playground_slider_changes_the_iou_shown(browser_page):
    server, page, state = browser_page
    ran(state, page, server, METRIC_PLAYGROUND.notebook)
    view = page.locator(METRIC_PLAYGROUND.view)
    readout = view.locator(METRIC_PLAYGROUND.readout)
    image = view.locator(METRIC_PLAYGROUND.image)
    assert lab.image_size(image)[0] > 0, "the metric playground shows no figure"
    before_text = readout.inner_text()
    before = lab.parse_metric_table(before_text)
    assert before[METRIC_CLASS][0] == 1.0, f"the playground should start from a perfect prediction: {before}"
    view.screenshot(path=ARTIFACTS / "metric_playground_before.png")
    slider = view.locator(".widget-slider", has_text=METRIC_SLIDER)
    handle, track = slider.locator(".noUi-handle"), slider.locator(".noUi-target")
    handle_box, track_box = handle.bounding_box(), track.bounding_box()
    start_x, y = handle_box["x"] + handle_box["width"] / 2, handle_box["y"] + handle_box["height"] / 2
    page.mouse.move(start_x, y)
    page.mouse.down()
    page.mouse.move(start_x + track_box["width"] * 0.2, y, steps=8)  # about 3 of 16 steps to the right
    page.mouse.up()
    shown = slider.locator(".widget-readout")
    page.wait_for_function("el => parseInt(el.textContent) > 0", arg=shown.element_handle())
    page.wait_for_function("([el, old]) => el.innerText !== old", arg=[readout.element_handle(), before_text])
    lab.wait_until_settled(page)  # the kernel has handled every slider step
    after = lab.parse_metric_table(readout.inner_text())
    shift = int(shown.inner_text())
    view.screenshot(path=ARTIFACTS / "metric_playground_after.png")
    assert shift > 0 and after[METRIC_CLASS][0] < before[METRIC_CLASS][0], (shift, before, after)


def test_training_dashboard_shows_masks_after_training(browser_page):
    server, page, state = browser_page
    ran(state, page, server, TRAINING_DASHBOARD.notebook)
    view = page.locator(TRAINING_DASHBOARD.view)
    readout = view.locator(TRAINING_DASHBOARD.readout).inner_text()
    assert re.search(r"epoch [1-9]\d* \| train loss \d", readout), readout
    width, height = lab.image_size(view.locator(TRAINING_DASHBOARD.image))
    # plot_dashboard: 11 x (3 + 2.3 rows) inches at 72 dpi; the waiting message is 1.5 inches high
    assert width == 11 * 72 and height >= int((3.0 + 2.3) * 72), (width, height)
    view.screenshot(path=ARTIFACTS / "training_dashboard.png")
    assert "Error displaying widget" not in page.content()


def test_every_other_view_renders_a_figure(browser_page):
    server, page, state = browser_page
    for target in OTHER_VIEWS:
        ran(state, page, server, target.notebook)
        view = page.locator(target.view)
        assert lab.image_size(view.locator(target.image))[0] > 0, f"{target.view} shows no figure"
        assert view.locator(target.readout).inner_text().strip(), f"{target.view} shows no values"
        view.screenshot(path=ARTIFACTS / f"{target.view.strip('.')}.png")
