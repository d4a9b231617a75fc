"""Sign-in that lasts: signed, expiring, revocable session tokens; sign-in rate limits; the loopback
check parses the address; a configured users file that does not exist is an error at start."""
from __future__ import annotations

import stat

import pytest
from typer.testing import CliRunner

from affectwatch.settings import Settings
from dashboard import sessions
from dashboard.auth import UsersFileError, is_loopback, local_login_configured

SECRET = "x" * 40


@pytest.fixture
def s(tmp_path) -> Settings:
    return Settings(data_dir=tmp_path / "var")


def test_token_round_trip_and_expiry(s):
    token = sessions.issue(s, "olivia", now=1_000_000)
    tok = sessions.verify(s, token, now=1_000_000 + 3600)
    assert tok.user == "olivia" and tok.expires == 1_000_000 + s.dashboard.session_hours * 3600
    with pytest.raises(sessions.InvalidToken, match="expired"):
        sessions.verify(s, token, now=tok.expires)
    short = s.model_copy(update={"dashboard": s.dashboard.model_copy(update={"session_hours": 0.5})})
    assert sessions.verify(short, sessions.issue(short, "o", now=0), now=1).expires == 1800


@pytest.mark.parametrize("mangle, reason", [
    (lambda t: t[:-2] + ("AA" if t[-2:] != "AA" else "BB"), "bad_signature"),
    (lambda t: t.replace("v1.", "v2.", 1), "bad_format"),
    (lambda t: "v1." + t.split(".")[1], "bad_format"),
    (lambda t: "", "bad_format"),
    (lambda t: "v1.e30." + t.split(".")[2], "bad_signature"),  # another payload, the old signature
])
def test_tampered_tokens_are_refused_with_a_reason(s, mangle, reason):
    with pytest.raises(sessions.InvalidToken, match=reason):
        sessions.verify(s, mangle(sessions.issue(s, "olivia")))


def test_generated_secret_is_private_and_stable(s):
    token = sessions.issue(s, "olivia")
    path = sessions.secret_file(s)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(path.read_text().strip()) >= 48
    sessions.verify(s, token)  # the same secret is read back
    other = Settings(data_dir=s.data_dir.parent / "other")  # another deployment: another secret
    with pytest.raises(sessions.InvalidToken, match="bad_signature"):
        sessions.verify(other, token)


def test_secret_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("AFFECTWATCH_DASHBOARD__SESSION_SECRET", SECRET)
    a = Settings(data_dir=tmp_path / "a")
    b = Settings(data_dir=tmp_path / "b")
    sessions.verify(b, sessions.issue(a, "olivia"))  # two servers sharing the secret accept each other's tokens
    assert not sessions.secret_file(a).exists()
    monkeypatch.setenv("AFFECTWATCH_DASHBOARD__SESSION_SECRET", "short")
    with pytest.raises(ValueError, match="at least 32"):
        sessions.issue(Settings(data_dir=tmp_path / "c"), "olivia")


def test_sign_out_revokes_only_that_token(s):
    first, second = sessions.issue(s, "olivia"), sessions.issue(s, "olivia")
    assert sessions.revoke(s, first)
    with pytest.raises(sessions.InvalidToken, match="revoked"):
        sessions.verify(s, first)
    assert sessions.verify(s, second).user == "olivia"
    assert not sessions.revoke(s, first)  # already revoked
    assert stat.S_IMODE(sessions.revocation_file(s).stat().st_mode) == 0o600


def test_expired_revocations_are_pruned(s):
    old = sessions.issue(s, "olivia", now=0)
    assert sessions.revoke(s, old, now=10)
    sessions.revoke(s, sessions.issue(s, "anna"))  # written long after `old` expired
    assert len(sessions.revocation_file(s).read_text().splitlines()) == 1


def test_a_torn_revocation_line_does_not_break_sign_in(s):
    token = sessions.issue(s, "olivia")
    sessions.revocation_file(s).write_text('{"jti": "abc", "exp": 9e99}\n{"jti": "trunc')
    assert sessions.verify(s, token).user == "olivia"


def test_login_limiter_per_user_and_per_client():
    lim = sessions.LoginLimiter(max_failures=3, window_s=60)
    for _ in range(3):
        assert lim.retry_after("olivia", "10.0.0.1", now=0) == 0
        lim.failed("olivia", "10.0.0.1", now=0)
    assert lim.retry_after("olivia", "10.0.0.9", now=1) == pytest.approx(59)  # per user, from any client
    assert lim.retry_after("OLIVIA", "10.0.0.9", now=1) > 0
    assert lim.retry_after("anna", "10.0.0.1", now=1) == 0  # another user from the same client
    assert lim.retry_after("olivia", "10.0.0.1", now=61) == 0  # the window passed
    for i in range(15):  # one client guessing many user names: 5 x max_failures
        lim.failed(f"user{i}", "10.0.0.2", now=100)
    assert lim.retry_after("someone-else", "10.0.0.2", now=101) > 0
    lim.succeeded("olivia")
    assert lim.retry_after("olivia", "10.0.0.3", now=30) == 0


@pytest.mark.parametrize("address, ok", [
    ("127.0.0.1", True), ("127.0.1.1", True), ("::1", True), ("[::1]", True), ("localhost", True),
    ("127.evil.example", False), ("127.0.0.1.nip.io", False), ("0.0.0.0", False), ("", False),
    ("10.1.2.3", False), ("::", False), ("example.org", False), ("0x7f.1", False),
])
def test_loopback_check_parses_the_address(address, ok):
    assert is_loopback(address) is ok


def test_configured_users_file_must_exist(tmp_path):
    missing = tmp_path / "nope.yaml"
    s = Settings(data_dir=tmp_path, dashboard={"users_file": str(missing)})
    with pytest.raises(UsersFileError, match="does not exist"):
        local_login_configured(s)
    assert local_login_configured(Settings(data_dir=tmp_path)) is False  # nothing configured: open on loopback


def test_dashboard_command_refuses_a_missing_users_file_and_a_fake_loopback_host(monkeypatch, tmp_path):
    from affectwatch.cli import app

    monkeypatch.setenv("AFFECTWATCH_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("AFFECTWATCH_DASHBOARD__USERS_FILE", "")  # restored after the test (the command sets it)
    runner = CliRunner()
    res = runner.invoke(app, ["dashboard", "--users-file", str(tmp_path / "missing.yaml")])
    assert res.exit_code == 2 and "does not exist" in res.output
    res = runner.invoke(app, ["dashboard", "--host", "127.evil.example"])
    assert res.exit_code == 2 and "not loopback" in res.output
