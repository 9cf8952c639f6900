"""A real browser: JupyterLab runs 07_interactive.ipynb in chromium, and a mouse drag on the box tool is answered.

Debian's chromium is driven through the playwright package (never `playwright install`). Without
/usr/bin/chromium the test is skipped locally and fails in CI (CI=true), where `.ci/run` installs it.
"""

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "07_interactive.ipynb"
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
# Lab settings for a quiet, complete page: no news or update checks, and every cell in the DOM (no windowing).
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def lab(tmp_path):
    """JupyterLab on 127.0.0.1 with a token, serving a copy of the notebook; yields its URL."""
    if not CHROMIUM.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing in CI: .ci/run installs it with `apt-get install -y chromium`.")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install -y chromium)")
    root, home = tmp_path / "root", tmp_path / "home"
    root.mkdir()
    nb = json.loads(NOTEBOOK.read_text())  # the browser saves a copy, never the course's notebook
    for cell in nb["cells"]:  # a learner who has solved the exercises: 07.3 points the app at the tour's CT
        if "parameters" in cell["metadata"].get("tags", []):
            source = "".join(cell["source"])
            assert "solutions = False" in source
            cell["source"] = source.replace("solutions = False", "solutions = True")
    (root / NOTEBOOK.name).write_text(json.dumps(nb))
    for name, values in LAB_SETTINGS.items():
        path = home / "lab-settings" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    port, token = free_port(), secrets.token_hex(16)
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(home / "lab-settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
        "MIMO_EDU_SMOKE": "1",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}", "--ServerApp.allow_root=True", "--LabApp.expose_app_in_browser=True",
         "--LabApp.extension_manager=readonly"],
        env=env, stdout=subprocess.DEVNULL, stderr=open(tmp_path / "lab.log", "w"), start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
                break
            except OSError:
                assert server.poll() is None, (tmp_path / "lab.log").read_text()[-2000:]
                assert time.monotonic() < deadline, "JupyterLab did not start in 60 s"
                time.sleep(0.5)
        yield f"{url}/lab/tree/{NOTEBOOK.name}?token={token}"
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)  # the server and the kernels it started
            server.wait(timeout=30)


def drag(page, element, start: tuple[float, float], end: tuple[float, float]) -> None:
    """Press the mouse at `start` and release it at `end`, both as fractions of the element's width and height."""
    area = element.bounding_box()
    page.mouse.move(area["x"] + start[0] * area["width"], area["y"] + start[1] * area["height"])
    page.mouse.down()
    page.mouse.move(area["x"] + end[0] * area["width"], area["y"] + end[1] * area["height"], steps=12)
    page.mouse.up()


def test_drag_a_box_in_jupyterlab_and_get_a_grounded_answer(lab):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        ARTIFACTS.mkdir(exist_ok=True)
        try:
            page.goto(lab)
            page.wait_for_function("window.jupyterapp && document.querySelector('.jp-Notebook .jp-Cell')", timeout=60_000)
            page.wait_for_function(  # the kernel is up: its status shows in the notebook toolbar
                "document.querySelector('.jp-Notebook') && window.jupyterapp.shell.currentWidget"
                " && window.jupyterapp.shell.currentWidget.sessionContext.session?.kernel?.status === 'idle'",
                timeout=60_000,
            )
            page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
            expect(page.locator(".jp-OutputArea-output").get_by_text("With your box:")).to_be_visible(
                timeout=150_000
            )

            app = page.locator(".mimo-app").first
            app.scroll_into_view_if_needed()
            app.locator("button[title='Clear prompts']").click()
            app.get_by_role("button", name="Box", exact=True).click()
            picture = app.locator("img").first  # the box tool's picture, 512 px wide
            expect(picture).to_be_visible()
            drag(page, picture, (0.25, 0.30), (0.55, 0.65))

            status = app.locator(".widget-html-content").last
            side = 128  # the exercise image shown last is a 128 px synthetic CT, 4 display pixels per pixel
            expected = (0.25 * side, 0.30 * side, 0.55 * side, 0.65 * side)
            drawn = None
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not drawn:  # the widget also syncs the box while it grows
                found = re.search(r"prompts: box \((\d+), (\d+), (\d+), (\d+)\)", status.inner_text())
                box = tuple(map(int, found.groups())) if found else ()
                drawn = box if box and all(abs(a - b) <= 2 for a, b in zip(box, expected, strict=True)) else None
                time.sleep(0.2)
            assert drawn, f"Python did not receive the dragged box {expected}: status {status.inner_text()!r}"

            before = picture.get_attribute("src")
            app.locator("button[title='Ask']").click()
            expect(status).to_contain_text("answered in", timeout=30_000)
            masks = int(re.search(r"(\d+) masks", status.inner_text()).group(1))
            expect(app.locator(".mimo-answer .mimo-term")).to_have_count(masks)
            assert masks > 0, "the answer grounded no term, so no overlay was drawn"
            titles = [app.locator(".mimo-answer .mimo-term").nth(k).get_attribute("title") for k in range(masks)]
            pixels = sum(int(re.search(r"(\d+) pixels", t).group(1)) for t in titles)  # "mask k: N pixels"
            assert pixels > 0, "every grounded mask is empty, so the overlay cannot show"
            expect(picture).not_to_have_attribute("src", before)  # the overlay changed the picture
            page.screenshot(path=str(ARTIFACTS / "browser_07_box.png"))

            app.get_by_role("button", name="Point +", exact=True).click()  # the canvas replaces the box view
            canvas = app.locator("canvas.mimo-canvas")
            expect(canvas).to_be_visible()
            expect(canvas).to_have_attribute("data-tool", "positive")
            area = canvas.bounding_box()
            page.mouse.click(area["x"] + 0.4 * area["width"], area["y"] + 0.5 * area["height"])
            expect(status).to_contain_text("1 points (1 positive)", timeout=20_000)
            app.get_by_role("button", name="Scribble", exact=True).click()
            expect(canvas).to_have_attribute("data-tool", "scribble")  # the kernel passed the new tool on
            drag(page, canvas, (0.6, 0.6), (0.7, 0.7))
            expect(status).to_contain_text("1 points (1 positive); 1 scribble", timeout=20_000)
            app.locator("button[title='Ask']").click()
            expect(status).to_contain_text(re.compile(r"answered in .*box .*1 points .*1 scribble"), timeout=30_000)
        finally:
            page.screenshot(path=str(ARTIFACTS / "browser_07_interactive.png"))
            browser.close()
