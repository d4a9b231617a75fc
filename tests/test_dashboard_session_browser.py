"""Real browser (chromium via Playwright, real `affectwatch dashboard` server): a sign-in lasts across reloads
and shared links in the same browser; signing out revokes it everywhere, even for a copied cookie."""
from __future__ import annotations

import time

import pytest

from dashboard.sessions import COOKIE
from tests.test_dashboard_browser import PASSWORD, browser, dashboard_url  # noqa: F401 - fixtures

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def _session_cookies(context) -> list[dict]:
    return [c for c in context.cookies() if c["name"] == COOKIE and c["value"]]


def _sign_in(page) -> None:
    page.get_by_role("textbox", name="User name").fill("olivia")
    page.get_by_role("textbox", name="Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def test_sign_in_lasts_across_reloads_and_shared_links_until_sign_out(dashboard_url, browser):  # noqa: F811
    context = browser.new_context(viewport={"width": 1300, "height": 900})
    try:
        page = context.new_page()
        page.goto(f"{dashboard_url}/?geo=state")
        _sign_in(page)
        page.get_by_role("heading", name="Overview map").wait_for(timeout=30_000)
        deadline = time.monotonic() + 30
        while not _session_cookies(context) and time.monotonic() < deadline:
            time.sleep(0.3)
        cookies = _session_cookies(context)
        assert cookies, "the session cookie was not written"
        assert cookies[0]["sameSite"] == "Strict" and cookies[0]["expires"] > time.time() + 3600

        page.reload()  # a reload opens directly
        page.get_by_role("heading", name="Overview map").wait_for(timeout=30_000)
        assert page.get_by_role("textbox", name="Password").count() == 0

        shared = context.new_page()  # a shared link opened in the same browser opens directly, on its view
        shared.goto(f"{dashboard_url}/region?region=06&past=2&syndrome=flu_admissions")
        shared.get_by_role("heading", name="Region detail: California (06)").wait_for(timeout=30_000)
        assert shared.get_by_role("textbox", name="Password").count() == 0
        assert "region=06" in shared.url
        page.close()  # one WebGL map page at a time: software rendering on a shared 2-core machine

        shared.get_by_role("button", name="Sign out").click()
        shared.get_by_role("textbox", name="Password").wait_for(timeout=30_000)
        shared.reload()  # signed out: a reload asks again
        shared.get_by_role("textbox", name="Password").wait_for(timeout=30_000)
        assert shared.get_by_role("heading", name="Region detail: California (06)").count() == 0
        again = context.new_page()  # and so does the shared link in another tab
        again.goto(f"{dashboard_url}/?geo=state")
        again.get_by_role("textbox", name="Password").wait_for(timeout=30_000)
    finally:
        context.close()

    # The revoked token is refused server-side, even when the cookie is replayed from another browser.
    other = browser.new_context()
    try:
        other.add_cookies([{k: cookies[0][k] for k in ("name", "value", "domain", "path")}])
        page = other.new_page()
        page.goto(f"{dashboard_url}/region?region=06")
        page.get_by_role("textbox", name="Password").wait_for(timeout=30_000)
        assert page.get_by_role("heading", name="Region detail: California (06)").count() == 0
    finally:
        other.close()
