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

st.set_page_config(page_title="AffectWatch", page_icon=":material/map:", layout="wide")

settings = ui.load_settings()
user = auth.current_user(settings)
if user is None:
    login = st.Page(lambda: auth.login_page(settings), title="Sign in", url_path="login", default=True)
    st.navigation([login], position="hidden").run()
    st.stop()

state.restore()
ctx = ui.Context(settings=settings, key=data.warehouse_key(settings), user=user)
ui.set_context(ctx)

pages = [
    st.Page("app_pages/overview.py", title="Overview map", icon=":material/map:", url_path="overview", default=True),
    st.Page("app_pages/region.py", title="Region detail", icon=":material/monitoring:", url_path="region"),
    st.Page("app_pages/alerts.py", title="Alerts", icon=":material/notifications_active:", url_path="alerts"),
    st.Page("app_pages/data_quality.py", title="Data quality", icon=":material/fact_check:", url_path="data_quality"),
    st.Page("app_pages/model_trust.py", title="Model trust", icon=":material/balance:", url_path="model_trust"),
]
page = st.navigation(pages)
st.sidebar.markdown("### AffectWatch")
auth.logout_button(user)
try:
    data.connection(ctx.key)
except data.WarehouseUnavailable as exc:
    st.error(str(exc))
    st.stop()
page.run()
