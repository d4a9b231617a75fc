"""Take README screenshots of a running dashboard with Debian chromium (Playwright).

    python scripts/screenshots.py --url http://127.0.0.1:8501 --user demo --password ... --out docs/screenshots

Used on the `make demo` dashboard; waits for the deck.gl canvas and the vega charts to draw.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--enable-unsafe-swiftshader"]
VIEWS = {
    "demo_overview_alerts": ("/?signal=alert&geo=state", "Overview map", "canvas"),
    "demo_overview_distress": ("/?signal=distress&geo=state&week=2022-12-03", "Overview map", "canvas"),
    "demo_region": ("/region?region=06&syndrome=flu_admissions", "Region detail", "canvas, svg"),
    "demo_alerts": ("/alerts", "Alerts", None),
    "demo_model_trust": ("/model_trust", "Model trust", "canvas, svg"),
    "demo_data_quality": ("/data_quality", "Data quality", None),
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default="http://127.0.0.1:8501")
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=a.chromium, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        for name, (path, heading, wait) in VIEWS.items():
            page.goto(a.url + path)
            page.get_by_role("textbox", name="User name").wait_for(timeout=60_000)
            if page.get_by_role("textbox", name="User name").count():
                page.get_by_role("textbox", name="User name").fill(a.user)
                page.get_by_role("textbox", name="Password").fill(a.password)
                page.get_by_role("button", name="Sign in").click()
            page.get_by_text(heading).first.wait_for(timeout=60_000)
            if wait:
                page.locator(wait).first.wait_for(timeout=60_000)
            time.sleep(3)
            page.screenshot(path=str(a.out / f"{name}.png"))
            print(a.out / f"{name}.png")
        browser.close()


if __name__ == "__main__":
    main()
