"""Real browser: `streamlit run` on a loopback port + Debian chromium (Playwright), fixture warehouse, users file."""
from __future__ import annotations

import math
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from affectwatch.settings import REPO_ROOT

pytestmark = [pytest.mark.slow, pytest.mark.browser]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--enable-unsafe-swiftshader"]
PASSWORD = "correct-horse-battery"
SCREENSHOTS = REPO_ROOT / "docs" / "screenshots"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def dashboard_url(populated_settings, tmp_path_factory):
    """The dashboard served by a real `streamlit run` subprocess; killed at teardown."""
    from dashboard.auth import add_user

    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (apt-get install -y chromium)")
    users = tmp_path_factory.mktemp("dash-users") / "users.yaml"
    add_user(users, "olivia", "official", PASSWORD)
    port = _free_port()
    env = dict(os.environ, AFFECTWATCH_DATA_DIR=str(populated_settings.data_dir),
               AFFECTWATCH_DASHBOARD__USERS_FILE=str(users))
    log = tmp_path_factory.mktemp("dash-log") / "streamlit.log"
    with open(log, "wb") as out:
        # `affectwatch dashboard` (which execs `streamlit run` with the static-serving flags)
        proc = subprocess.Popen([sys.executable, "-m", "affectwatch.cli", "dashboard", "--host", "127.0.0.1",
                                 "--port", str(port), "--users-file", str(users)],
                                cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"streamlit did not start: {log.read_text()[-2000:]}")
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def _keep_screenshot(path: Path) -> None:
    """Copy to docs/screenshots/ (README) when missing or when AFFECTWATCH_UPDATE_SCREENSHOTS=1."""
    target = SCREENSHOTS / path.name
    if not target.exists() or os.environ.get("AFFECTWATCH_UPDATE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target)


def lnglat_to_pixel(box: dict, lng: float, lat: float) -> tuple[float, float]:
    """Screen position of a point on the overview map (Web Mercator, the deck's initial view state)."""
    from dashboard.maps import INITIAL_VIEW

    world = 512 * 2 ** INITIAL_VIEW["zoom"]  # deck.gl world size in pixels at this zoom

    def merc(la: float) -> float:
        return math.log(math.tan(math.pi / 4 + math.radians(la) / 2))

    x = box["x"] + box["width"] / 2 + (lng - INITIAL_VIEW["longitude"]) * world / 360
    y = box["y"] + box["height"] / 2 + (merc(INITIAL_VIEW["latitude"]) - merc(lat)) * world / (2 * math.pi)
    return x, y


def coloured_pixels(png: bytes) -> int:
    """Pixels with clear colour (not the white/grey blank style, borders, or no-data grey)."""
    import io

    import numpy as np
    from PIL import Image

    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    return int(((rgb.max(axis=2) - rgb.min(axis=2)) > 40).sum())


def test_login_map_and_region_forecast_in_chromium(dashboard_url, browser, tmp_path):
    static = urllib.request.urlopen(f"{dashboard_url}/app/static/blank_style.json", timeout=5).read()
    assert b'"version": 8' in static  # offline map style is served

    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    page.goto(f"{dashboard_url}/?signal=distress&week=2023-06-11&geo=state")
    page.get_by_role("textbox", name="User name").fill("olivia")
    page.get_by_role("textbox", name="Password").fill("wrong-password")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("Wrong user name or password").wait_for(timeout=20_000)
    assert page.locator("canvas").count() == 0

    page.get_by_role("textbox", name="Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Overview map").wait_for(timeout=30_000)
    chart = page.locator('[data-testid="stDeckGlJsonChart"]')
    chart.locator("canvas").first.wait_for(timeout=30_000)
    # deck.gl draws with software WebGL: poll until the choropleth is painted.
    count, deadline = 0, time.monotonic() + 40
    while time.monotonic() < deadline:
        count = coloured_pixels(chart.screenshot())
        if count > 5_000:
            break
        time.sleep(1)
    page.screenshot(path=str(tmp_path / "overview.png"))
    assert count > 5_000, f"map area is blank ({count} coloured pixels)"
    assert "signal=distress" in page.url and "week=2023-06-11" in page.url
    _keep_screenshot(tmp_path / "overview.png")

    # Clicking Texas on the map selects it (pydeck selection -> `region` query parameter).
    box = chart.bounding_box()
    x, y = lnglat_to_pixel(box, -99.0, 31.5)
    link = page.get_by_role("link", name=re.compile(r"Open region detail: Texas \(48\)"))
    for _ in range(5):  # the deck may still be wiring its handlers right after the first paint
        page.mouse.move(x, y)
        page.mouse.click(x, y)
        try:
            link.wait_for(timeout=5_000)
            break
        except Exception:
            continue
    page.screenshot(path=str(tmp_path / "after_click.png"))
    assert "region=48" in page.url, page.url
    link.click()
    page.get_by_role("heading", name="Region detail: Texas (48)").wait_for(timeout=30_000)
    fan = page.locator('[data-testid="stVegaLiteChart"]').first
    fan.wait_for(timeout=30_000)
    fan.locator("canvas, svg").first.wait_for(timeout=30_000)
    time.sleep(1.5)  # let vega finish drawing before the screenshot
    assert "region=48" in page.url
    assert page.get_by_text("Forecast fan:").count() >= 1
    assert coloured_pixels(fan.screenshot()) > 500  # the blue forecast bands are drawn
    page.screenshot(path=str(tmp_path / "region.png"))
    _keep_screenshot(tmp_path / "region.png")
    page.close()


def test_shared_link_reopens_the_same_view_after_sign_in(dashboard_url, browser):
    context = browser.new_context(viewport={"width": 1300, "height": 900})  # a colleague's fresh session
    page = context.new_page()
    try:
        page.goto(f"{dashboard_url}/region?region=06&past=2&syndrome=flu_admissions")
        page.get_by_role("textbox", name="User name").fill("olivia")
        page.get_by_role("textbox", name="Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("heading", name="Region detail: California (06)").wait_for(timeout=30_000)
        assert "/region?" in page.url and "past=2" in page.url
        assert page.get_by_text("Page not found").count() == 0
    finally:
        context.close()
