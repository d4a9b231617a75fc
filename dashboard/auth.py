"""Access control: no anonymous access when authentication is configured.

Order of precedence:
1. OIDC through ``st.login`` when ``[auth]`` is configured in ``.streamlit/secrets.toml``; roles of
   OIDC users come from ``[affectwatch_roles]`` (email = "role") or the users file, default
   ``official``.
2. A local users file (``AFFECTWATCH_DASHBOARD__USERS_FILE``; YAML or TOML) with bcrypt password
   hashes and roles, and a login form. ``affectwatch users add`` writes it.
3. Nothing configured: the app runs open ONLY when Streamlit is bound to a loopback address, and
   says so in a banner; bound to any other address it refuses to serve data.

Roles: ``official`` (view, acknowledge alerts), ``analyst`` (view, download data), ``admin``
(everything, including subscriptions).
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

import bcrypt
import yaml

from affectwatch.logs import get_logger
from affectwatch.settings import Settings

log = get_logger(__name__)

ROLES = ("official", "analyst", "admin")
PERMISSIONS = {
    "view": {"official", "analyst", "admin"},
    "acknowledge": {"official", "admin"},
    "download": {"analyst", "admin"},
    "subscriptions": {"admin"},
    "operator_counts": {"admin"},  # feed counts of cells below the privacy minimums (data quality)
}
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
_NAME_RE = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
_SESSION_KEY = "_aw_user"
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
    return address in LOOPBACK or address.startswith("127.")


def current_user(settings: Settings) -> User | None:
    """The signed-in user of this session, or None when the login page must be shown."""
    import streamlit as st

    if _oidc_configured():
        if not st.user.get("is_logged_in", False):  # fail closed when the runtime has no user info
            return None
        return _oidc_user(settings)
    path = users_file_path(settings)
    if settings.dashboard.users_file or path.exists():
        user = st.session_state.get(_SESSION_KEY)
        return user if isinstance(user, User) else None
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
    path = users_file_path(settings)
    if settings.dashboard.users_file or path.exists():
        _login_form(path)
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


def _login_form(path: Path) -> None:
    import streamlit as st

    try:
        users = load_users(path)
    except UsersFileError as exc:
        st.error(f"Login is configured but the users file cannot be used: {exc}")
        return
    st.caption("Access is restricted to authorised public-health staff.")
    with st.form("login"):
        name = st.text_input("User name", key="login_name")
        password = st.text_input("Password", type="password", key="login_password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if submitted:
        user = check_password(users, name.strip(), password)
        if user is None:
            log.warning("dashboard login failed", user=name.strip()[:64])
            st.error("Wrong user name or password.")
        else:
            log.info("dashboard login", user=user.name, role=user.role)
            st.session_state[_SESSION_KEY] = user
            st.rerun()


def logout_button(user: User) -> None:
    import streamlit as st

    st.sidebar.caption(f"Signed in as **{user.name}** ({user.role})")
    if user.method == "local" and st.sidebar.button("Sign out"):
        st.session_state.pop(_SESSION_KEY, None)
        st.rerun()
    elif user.method == "oidc":
        st.sidebar.button("Sign out", on_click=st.logout)
