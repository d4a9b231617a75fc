"""AffectWatch dashboard entry point: ``streamlit run dashboard/app.py`` (or ``affectwatch dashboard``).

Settings come from the environment (``AFFECTWATCH_DATA_DIR``, ``AFFECTWATCH_DASHBOARD__*``).
Sign-in happens before any page is registered, so no page runs for an anonymous visitor.
The page scripts live in ``app_pages/``, not ``pages/``: Streamlit treats a ``pages/`` folder
next to the entry script as legacy auto-discovered pages and would run ``pages/alerts.py``
directly (without this entry script and its sign-in) for a URL such as ``/alerts``.
"""
from __future__ import annotations

import streamlit as st

from dashboard import auth, data, state, ui

PAGES = [  # (script, title, icon, url path)
    ("app_pages/overview.py", "Overview map", ":material/map:", "overview"),
    ("app_pages/region.py", "Region detail", ":material/monitoring:", "region"),
    ("app_pages/alerts.py", "Alerts", ":material/notifications_active:", "alerts"),
    ("app_pages/data_quality.py", "Data quality", ":material/fact_check:", "data_quality"),
    ("app_pages/model_trust.py", "Model trust", ":material/balance:", "model_trust"),
    ("app_pages/subscriptions.py", "Subscriptions", ":material/mail:", "subscriptions"),  # admin only
]
ADMIN_ONLY = {"subscriptions"}


def _sign_in_page(url_path: str, default: bool):
    """The sign-in form under a page's URL, so a shared link (/region?region=48) opens there after sign-in."""

    def sign_in():
        auth.login_page(settings)

    sign_in.__name__ = f"sign_in_{url_path}"
    return st.Page(sign_in, title="Sign in", url_path=url_path, default=default)


st.set_page_config(page_title="AffectWatch", page_icon=":material/map:", layout="wide")

settings = ui.load_settings()
try:
    user = auth.current_user(settings)
except auth.UsersFileError as exc:  # a configured users file that is missing or malformed
    st.error(str(exc))
    st.stop()
if user is None:
    st.navigation([_sign_in_page(path, i == 0) for i, (_, _, _, path) in enumerate(PAGES)], position="hidden").run()
    st.stop()

state.restore()
ctx = ui.Context(settings=settings, key=data.warehouse_key(settings), user=user)
ui.set_context(ctx)

pages = [st.Page(script, title=title, icon=icon, url_path=path, default=i == 0)
         for i, (script, title, icon, path) in enumerate(PAGES) if path not in ADMIN_ONLY or user.can("subscriptions")]
page = st.navigation(pages)
st.sidebar.markdown("### AffectWatch")
auth.logout_button(user, settings)
auth.keep_session_cookie(settings)
try:
    data.connection(ctx.key)
except data.WarehouseUnavailable as exc:
    st.error(str(exc))
    st.stop()
page.run()
