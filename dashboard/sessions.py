"""Dashboard sessions that survive reloads and shared links: signed, expiring, revocable tokens.

A token is ``v1.<payload>.<signature>`` (base64url): the payload names the user, when it was issued,
when it expires and a random id; the signature is HMAC-SHA256 with the session secret
(``AFFECTWATCH_DASHBOARD__SESSION_SECRET``, else a random secret generated once into
``<data_dir>/dashboard_session_secret`` with 0600 permissions). Signing out appends the token id to
``<data_dir>/dashboard_revoked_sessions.jsonl`` (server-side revocation, pruned when entries expire).
The role is not in the token: it is read from the users file at every check, so removing a user or
changing a role takes effect at once.

``LoginLimiter`` rate-limits failed sign-ins per user name and per client address (in the memory of
the dashboard server process: a restart clears it).

No Streamlit here: ``dashboard.auth`` puts the token in a cookie and checks it.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from affectwatch.settings import Settings

COOKIE = "affectwatch_session"
_VERSION = "v1"


class InvalidToken(ValueError):
    """A token that must not open a session; the message names why (bad_format, bad_signature, ...)."""


@dataclass(frozen=True)
class SessionToken:
    user: str
    issued: float
    expires: float
    token_id: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def secret_file(settings: Settings) -> Path:
    return settings.data_dir / "dashboard_session_secret"


def revocation_file(settings: Settings) -> Path:
    return settings.data_dir / "dashboard_revoked_sessions.jsonl"


def session_secret(settings: Settings) -> bytes:
    """The configured secret, else the generated one in the data dir (created 0600 on first use)."""
    configured = settings.dashboard.session_secret
    if configured is not None and configured.get_secret_value():
        value = configured.get_secret_value()
        if len(value) < 32:
            raise ValueError("AFFECTWATCH_DASHBOARD__SESSION_SECRET must have at least 32 characters")
        return value.encode()
    path = secret_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):  # another process may be writing it right now
            value = path.read_text().strip()
            if value:
                return value.encode()
            time.sleep(0.02)
        raise ValueError(f"session secret file {path} is empty; delete it to generate a new one") from None
    with os.fdopen(fd, "w") as out:
        out.write(secrets.token_urlsafe(48) + "\n")
    return path.read_text().strip().encode()


def _sign(secret: bytes, body: str) -> str:
    return _b64(hmac.new(secret, f"{_VERSION}.{body}".encode(), hashlib.sha256).digest())


def issue(settings: Settings, user: str, now: float | None = None) -> str:
    now = time.time() if now is None else now
    payload = {"u": user, "iat": int(now), "exp": int(now + settings.dashboard.session_hours * 3600),
               "jti": secrets.token_urlsafe(12)}
    body = _b64(json.dumps(payload, separators=(",", ":")).encode())
    return f"{_VERSION}.{body}.{_sign(session_secret(settings), body)}"


def verify(settings: Settings, token: str, now: float | None = None) -> SessionToken:
    """The session a token opens; raises InvalidToken (bad_format, bad_signature, expired, revoked)."""
    now = time.time() if now is None else now
    parts = token.split(".") if isinstance(token, str) and len(token) < 4096 else []
    if len(parts) != 3 or parts[0] != _VERSION:
        raise InvalidToken("bad_format")
    if not hmac.compare_digest(parts[2], _sign(session_secret(settings), parts[1])):
        raise InvalidToken("bad_signature")
    try:
        p = json.loads(_unb64(parts[1]))
        tok = SessionToken(user=str(p["u"]), issued=float(p["iat"]), expires=float(p["exp"]), token_id=str(p["jti"]))
    except (ValueError, KeyError, TypeError):
        raise InvalidToken("bad_format") from None
    if tok.expires <= now:
        raise InvalidToken("expired")
    if tok.token_id in revoked_ids(settings, now):
        raise InvalidToken("revoked")
    return tok


_revoked_lock = threading.Lock()
_revoked_cache: dict[Path, tuple[float, int, set[str]]] = {}  # path -> (mtime, size, ids)


def revoked_ids(settings: Settings, now: float | None = None) -> set[str]:
    """Ids of revoked, not yet expired tokens (re-read only when the file changed)."""
    path = revocation_file(settings)
    try:
        st = path.stat()
    except FileNotFoundError:
        return set()
    with _revoked_lock:
        cached = _revoked_cache.get(path)
        if cached and cached[:2] == (st.st_mtime, st.st_size):
            return cached[2]
        ids = {e["jti"] for e in _read_revocations(path) if e["exp"] > (time.time() if now is None else now)}
        _revoked_cache[path] = (st.st_mtime, st.st_size, ids)
        return ids


def _read_revocations(path: Path) -> list[dict]:
    out = []
    for line in path.read_text().splitlines():
        try:
            entry = json.loads(line)
            out.append({"jti": str(entry["jti"]), "exp": float(entry["exp"])})
        except (ValueError, KeyError, TypeError):
            continue  # a torn line from a crash mid-write: skip it
    return out


def revoke(settings: Settings, token: str, now: float | None = None) -> bool:
    """Revoke a valid token (sign-out); expired entries are pruned. False if the token was not valid."""
    now = time.time() if now is None else now
    try:
        tok = verify(settings, token, now)
    except InvalidToken:
        return False
    path = revocation_file(settings)
    with _revoked_lock:
        kept = [e for e in (_read_revocations(path) if path.exists() else []) if e["exp"] > now]
        kept.append({"jti": tok.token_id, "exp": tok.expires})
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text("".join(json.dumps(e) + "\n" for e in kept))
        tmp.chmod(0o600)
        tmp.replace(path)
        _revoked_cache.pop(path, None)
    return True


class LoginLimiter:
    """At most ``max_failures`` failed sign-ins per user name (and ``5 x`` that per client address)
    within ``window_s``; a success clears the user's count."""

    def __init__(self, max_failures: int = 5, window_s: float = 900.0) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _keys(self, user: str, client: str) -> list[tuple[str, int]]:
        return [(f"user:{user.lower()}", self.max_failures), (f"client:{client}", 5 * self.max_failures)]

    def retry_after(self, user: str, client: str, now: float | None = None) -> float:
        """Seconds until a sign-in may be tried again (0 = allowed now)."""
        now = time.monotonic() if now is None else now
        wait = 0.0
        with self._lock:
            for key, limit in self._keys(user, client):
                times = self._failures.get(key)
                while times and times[0] <= now - self.window_s:
                    times.popleft()
                if times and len(times) >= limit:
                    wait = max(wait, times[0] + self.window_s - now)
        return wait

    def failed(self, user: str, client: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            if len(self._failures) > 10_000:  # names an attacker makes up must not grow memory forever
                self._failures = {k: t for k, t in self._failures.items() if t and t[-1] > now - self.window_s}
            for key, _ in self._keys(user, client):
                self._failures.setdefault(key, deque()).append(now)

    def succeeded(self, user: str) -> None:
        with self._lock:
            self._failures.pop(f"user:{user.lower()}", None)
