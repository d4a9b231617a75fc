"""Access control: no anonymous access when authentication is configured.

Order of precedence:
1. OIDC through ``st.login`` when ``[auth]`` is configured in ``.streamlit/secrets.toml``; roles of
   OIDC users come from ``[affectwatch_roles]`` (email = "role") or the users file, default
   ``official``.
2. A local users file (``AFFECTWATCH_DASHBOARD__USERS_FILE``; YAML or TOML) with bcrypt password
   hashes and roles, and a login form. ``affectwatch users add`` writes it. A configured file that
   does not exist is an error, never an empty user list. A sign-in is a signed, expiring token
   (``dashboard.sessions``) kept in a browser cookie, so reloads and shared links open directly
   until it expires or the user signs out (which revokes it). Failed sign-ins are rate-limited per
   user name and per client address.
3. Nothing configured: the app runs open ONLY when Streamlit is bound to a loopback address (parsed:
   an IP literal in 127.0.0.0/8 or ::1, or ``localhost`` resolving only to those), and says so in a
   banner; bound to any other address it refuses to serve data.

Roles: ``official`` (view, acknowledge alerts), ``analyst`` (view, download data), ``admin``
(everything, including subscriptions).
"""
from __future__ import annotations

import functools
import ipaddress
import re
import socket
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

import bcrypt
import yaml

from affectwatch.logs import get_logger
from affectwatch.settings import Settings
from dashboard import sessions

log = get_logger(__name__)

ROLES = ("official", "analyst", "admin")
PERMISSIONS = {
    "view": {"official", "analyst", "admin"},
    "acknowledge": {"official", "admin"},
    "download": {"analyst", "admin"},
    "subscriptions": {"admin"},
    "operator_counts": {"admin"},  # feed counts of cells below the privacy minimums (data quality)
}
_NAME_RE = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
_TOKEN_KEY = "_aw_session_token"  # st.session_state: the token of this browser tab's sign-in
_COOKIE_JS = """<script>
document.cookie = "%s=%s; Path=/; Max-Age=%d; SameSite=Strict" + (location.protocol === "https:" ? "; Secure" : "");
</script>"""
# Hash of a random string, checked for unknown users so both failures take the same time.
_DUMMY_HASH = b"$2b$12$tD6BXbUstAQT1.PaUU0d0el8cPTGt8HXFdCvT/4tZ..CG8AUOBWWa"


class UsersFileError(ValueError):
    """The users file is malformed (names the user and the bad field)."""


@dataclass(frozen=True)
class User:
    name: str
    role: str
    method: str  # 'oidc' | 'local' | 'open'

    def can(self, permission: str) -> bool:
        if permission not in PERMISSIONS:
            raise KeyError(f"unknown permission {permission!r}; known: {sorted(PERMISSIONS)}")
        return self.role in PERMISSIONS[permission]


# --- users file -------------------------------------------------------------------------------
def users_file_path(settings: Settings) -> Path:
    """The configured users file, else ``<data_dir>/dashboard_users.yaml`` (used only if it exists)."""
    if settings.dashboard.users_file:
        return Path(settings.dashboard.users_file).expanduser()
    return settings.data_dir / "dashboard_users.yaml"


def load_users(path: Path) -> dict[str, dict]:
    """{name: {"password_hash": str, "role": str}} from a YAML or TOML users file, validated."""
    if not path.exists():
        raise UsersFileError(f"users file {path} does not exist")
    text = path.read_text()
    raw = tomllib.loads(text) if path.suffix == ".toml" else (yaml.safe_load(text) or {})
    users = raw.get("users", {}) if isinstance(raw, dict) else None
    if not isinstance(users, dict):
        raise UsersFileError(f"users file {path}: expected a top-level 'users' mapping")
    out = {}
    for name, entry in users.items():
        if not isinstance(entry, dict):
            raise UsersFileError(f"users file {path}: user {name!r} must be a mapping with password_hash and role")
        role, pw = entry.get("role"), entry.get("password_hash")
        if role not in ROLES:
            raise UsersFileError(f"users file {path}: user {name!r} has role {role!r}; roles are {', '.join(ROLES)}")
        if not isinstance(pw, str) or not pw.startswith("$2"):
            raise UsersFileError(f"users file {path}: user {name!r} has no bcrypt password_hash")
        out[str(name)] = {"password_hash": pw, "role": role}
    return out


def add_user(path: Path, name: str, role: str, password: str) -> None:
    """Create or update one user in a YAML users file (bcrypt hash, never the password)."""
    if not _NAME_RE.match(name):
        raise ValueError(f"user name {name!r} must be 1-64 characters of letters, digits, _ . @ -")
    if role not in ROLES:
        raise ValueError(f"role {role!r} is not one of {', '.join(ROLES)}")
    if len(password) < 8:
        raise ValueError("password must have at least 8 characters")
    if path.suffix == ".toml":
        raise ValueError(f"{path}: `users add` writes YAML; use a .yaml/.yml users file")
    users = load_users(path) if path.exists() else {}
    users[name] = {"password_hash": bcrypt.hashpw(password.encode(), bcrypt.gensalt()).decode(), "role": role}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text("# AffectWatch dashboard users (bcrypt hashes). Edit with `affectwatch users add`.\n"
                   + yaml.safe_dump({"users": users}, sort_keys=True))
    tmp.chmod(0o600)
    tmp.replace(path)


def check_password(users: dict[str, dict], name: str, password: str) -> User | None:
    entry = users.get(name)
    hashed = entry["password_hash"].encode() if entry else _DUMMY_HASH
    try:
        ok = bcrypt.checkpw(password.encode(), hashed)
    except ValueError:
        ok = False
    if entry and ok:
        return User(name=name, role=entry["role"], method="local")
    return None


# --- streamlit gate ---------------------------------------------------------------------------
def _oidc_configured() -> bool:
    import streamlit as st

    try:
        return "auth" in st.secrets
    except Exception:  # no secrets.toml at all
        return False


def server_address() -> str:
    import streamlit as st

    return str(st.get_option("server.address") or "")


def is_loopback(address: str) -> bool:
    """True only for a loopback IP literal, or ``localhost`` when every address it resolves to is one.
    Any other host name is refused (``127.evil.example`` is a name, not an address)."""
    address = address.strip().strip("[]")
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        pass
    if address.lower().rstrip(".") != "localhost":
        return False
    try:
        infos = socket.getaddrinfo("localhost", None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0].split("%")[0]).is_loopback for info in infos)


def local_login_configured(settings: Settings) -> bool:
    """True when sign-in uses a users file; a configured users file that does not exist is an error."""
    if settings.dashboard.users_file:
        path = users_file_path(settings)
        if not path.is_file():
            raise UsersFileError(f"the configured users file {path} (AFFECTWATCH_DASHBOARD__USERS_FILE) does not "
                                 "exist; create it with `affectwatch users add NAME --role official` or unset the setting")
        return True
    return users_file_path(settings).exists()


def current_user(settings: Settings) -> User | None:
    """The signed-in user of this session, or None when the login page must be shown."""
    import streamlit as st

    if _oidc_configured():
        if not st.user.get("is_logged_in", False):  # fail closed when the runtime has no user info
            return None
        return _oidc_user(settings)
    if local_login_configured(settings):
        return _session_user(settings)
    if not is_loopback(server_address()):
        return None  # open mode is refused off loopback: login_page explains
    return User(name="local", role="admin", method="open")


def login_page(settings: Settings) -> None:
    """The only page an anonymous visitor gets: OIDC button, login form, or the loopback refusal."""
    import streamlit as st

    st.title("AffectWatch")
    if _oidc_configured():
        st.write("Sign in with your organisation's identity provider to continue.")
        st.button("Log in", on_click=st.login, type="primary")
        return
    if local_login_configured(settings):
        _login_form(settings)
        return
    address = server_address()
    st.error(
        f"Authentication is not configured and the dashboard is bound to {address or 'all interfaces'}. "
        "Without login it only runs on a loopback address (127.0.0.1). Configure `[auth]` (OIDC) in "
        "secrets.toml or a users file (`affectwatch users add NAME --role official`)."
    )


def _oidc_user(settings: Settings) -> User | None:
    import streamlit as st

    email = str(st.user.get("email") or st.user.get("sub") or "")
    role = "official"
    try:
        role = str(st.secrets.get("affectwatch_roles", {}).get(email, role))
    except Exception:
        pass
    path = users_file_path(settings)
    if path.exists():
        role = load_users(path).get(email, {}).get("role", role)
    if role not in ROLES:
        st.error(f"Your account {email} has an unknown role {role!r}; ask an administrator.")
        st.stop()
    return User(name=email, role=role, method="oidc")


def _session_user(settings: Settings) -> User | None:
    """The user of this tab's token, else of the browser's session cookie (a reload, a shared link)."""
    import streamlit as st

    token = st.session_state.get(_TOKEN_KEY) or st.context.cookies.get(sessions.COOKIE)
    if not token:
        return None
    try:
        tok = sessions.verify(settings, token)
    except sessions.InvalidToken as exc:
        st.session_state.pop(_TOKEN_KEY, None)
        log.debug("dashboard session refused", reason=str(exc))
        return None
    entry = load_users(users_file_path(settings)).get(tok.user)
    if entry is None:  # removed from the users file since signing in
        st.session_state.pop(_TOKEN_KEY, None)
        return None
    st.session_state[_TOKEN_KEY] = token
    return User(name=tok.user, role=entry["role"], method="local")


def _set_cookie(value: str, max_age: int) -> None:
    """Write (or, with max_age 0, delete) the session cookie in the browser. Streamlit reads cookies
    (``st.context.cookies``) but has no API to write one (streamlit/streamlit#861, #14730): ``st.html``
    runs one line of our own JavaScript (no user input in it: the token is base64url and dots).
    Not HttpOnly, therefore short-lived, signed and revocable."""
    import streamlit as st

    st.html(_COOKIE_JS % (sessions.COOKIE, value, max_age), unsafe_allow_javascript=True)


def keep_session_cookie(settings: Settings) -> None:
    """Store this tab's sign-in in the browser (rendered on every run; the frame is created once)."""
    import streamlit as st

    token = st.session_state.get(_TOKEN_KEY)
    if token and st.context.cookies.get(sessions.COOKIE) != token:
        try:
            expires = sessions.verify(settings, token).expires
        except sessions.InvalidToken:
            return
        with st.sidebar:
            _set_cookie(token, max(int(expires - time.time()), 0))


@functools.lru_cache(maxsize=64)  # one limiter per data dir in the server process (modules outlive reruns)
def _limiter(data_dir: str, max_failures: int, window_minutes: float) -> sessions.LoginLimiter:
    return sessions.LoginLimiter(max_failures, window_minutes * 60)


def _client_address() -> str:
    import streamlit as st

    return str(getattr(st.context, "ip_address", None) or "unknown")


def _login_form(settings: Settings) -> None:
    import streamlit as st

    path = users_file_path(settings)
    try:
        users = load_users(path)
    except UsersFileError as exc:
        st.error(f"Login is configured but the users file cannot be used: {exc}")
        return
    if st.context.cookies.get(sessions.COOKIE):  # an expired or revoked sign-in: forget it in the browser
        _set_cookie("", 0)
    st.caption("Access is restricted to authorised public-health staff.")
    with st.form("login"):
        name = st.text_input("User name", key="login_name")
        password = st.text_input("Password", type="password", key="login_password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if not submitted:
        return
    name, client = name.strip()[:64], _client_address()
    d = settings.dashboard
    limiter = _limiter(str(settings.data_dir), d.login_max_failures, d.login_window_minutes)
    wait = limiter.retry_after(name, client)
    if wait > 0:
        log.warning("dashboard login rate-limited", user=name, client=client, retry_after_s=round(wait))
        st.error(f"Too many failed sign-ins. Try again in {max(1, round(wait / 60))} minute(s).")
        return
    user = check_password(users, name, password)
    if user is None:
        limiter.failed(name, client)
        log.warning("dashboard login failed", user=name, client=client)
        st.error("Wrong user name or password.")
        return
    limiter.succeeded(name)
    log.info("dashboard login", user=user.name, role=user.role)
    st.session_state[_TOKEN_KEY] = sessions.issue(settings, user.name)
    st.rerun()


def logout_button(user: User, settings: Settings) -> None:
    import streamlit as st

    st.sidebar.caption(f"Signed in as **{user.name}** ({user.role})")
    if user.method == "local" and st.sidebar.button("Sign out"):
        token = st.session_state.pop(_TOKEN_KEY, None)
        if token:
            sessions.revoke(settings, token)  # every tab and shared link with this sign-in now asks again
        log.info("dashboard logout", user=user.name)
        st.rerun()
    elif user.method == "oidc":
        st.sidebar.button("Sign out", on_click=st.logout)
