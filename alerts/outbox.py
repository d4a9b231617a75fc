"""Email outbox in the warehouse: queue one message per (alert or digest, recipient), send it once.

Delivery guarantee - why there is no loss and no duplicate
----------------------------------------------------------
* Queueing is idempotent. The Message-ID is derived from what the message is about (alert id +
  the notification it carries + recipient, or subscription + digest date), and a message whose
  Message-ID is already in ``email_outbox`` is never queued again: re-running detection, a
  scheduler restart or two schedulers racing cannot create a second message.
* The whole RFC 5322 message is rendered once and frozen in ``email_outbox.message``. Every
  retry sends exactly those bytes, with the same Message-ID.
* Each attempt is journalled in ``email_attempts``: a ``sending`` row is committed BEFORE the
  SMTP transaction, in the same transaction that claims the message for one lease (so two
  senders - two schedulers, or a scheduler and a manual ``send-pending`` - never both send it), and ``sent`` (with the outbox row marked sent, in one transaction) or
  ``error`` after it. A failed attempt (server down, 4xx, 5xx, timeout) is retried with
  exponential backoff (``backoff_base_s * 2**(n-1)``, capped at 1 h) up to ``max_attempts``;
  then the row is ``failed`` and ``affectwatch alerts send-pending --retry-failed`` requeues it.
  Nothing is dropped silently.
* The remaining window is a crash after the server accepted the message (250 after DATA) but
  before ``sent`` was committed. No SMTP client can learn afterwards whether the server kept the
  message (SMTP has no "did you get Message-ID X?" command), so a sender must choose between
  at-most-once (skip: risks LOSS) and at-least-once (resend: risks a second transmission). We
  choose at-least-once transmission with an idempotency key: on restart, a message whose last
  attempt is an unfinished ``sending`` is re-sent with the SAME Message-ID and the same bytes,
  and the attempt is logged as a ``recovery`` so an operator can see it. (It becomes due again
  when the claim's lease - ``max(60 s, 3 x smtp.timeout_s)`` - expires.) Receivers that
  de-duplicate by Message-ID (our ``affectwatch smtp-sink``, Dovecot's Sieve ``duplicate`` test
  RFC 7352, archivers such as piler, and mail clients threading by Message-ID) then hold one
  copy: the recipient sees no duplicate, and no alert is lost. The window is kept to the time
  between the server's 250 and one catalog commit.

Sending at scale
----------------
Each alert's image is drawn once per queueing pass and shared by every recipient's message. A
pass claims ``smtp.batch_size`` due messages in one transaction (a 'sending' row for each, before
any SMTP traffic), hands them to ``smtp.workers`` threads that each keep one SMTP connection open
(re-opened after an error), and journals every outcome of the batch in one transaction. A
message belongs to exactly one batch and one worker, so a pass never sends it twice; the crash
window above becomes "between the server's 250 and the batch's commit", recovered the same way.
"""
from __future__ import annotations

import hashlib
import json
import smtplib
import ssl
from contextlib import closing
from datetime import date, datetime, time as dtime, timedelta, timezone
from email import policy
from email.parser import BytesHeaderParser
from zoneinfo import ZoneInfo

import duckdb

from affectwatch.logs import get_logger
from affectwatch.settings import Settings, get_settings
from affectwatch.warehouse import session, transaction
from affectwatch.warehouse import rows as _rows
from alerts import render
from alerts.lifecycle import NOTIFY_EVENTS
from alerts.rules import LEVEL_RANK
from alerts.subscriptions import Subscription, active_subscriptions

log = get_logger(__name__)

MAX_BACKOFF_S = 3600.0


class TransientSmtpError(Exception):
    """The server was down, timed out, or answered with a 4xx/5xx code; the message will be retried."""


class SmtpUnavailable(TransientSmtpError):
    """No connection could be made (server down, TLS or login failure): the pass stops early."""


def _now(now: datetime | None) -> datetime:
    now = now or datetime.now(timezone.utc)
    return now if now.tzinfo else now.replace(tzinfo=timezone.utc)


def _aware(ts):
    return ts if ts is None or ts.tzinfo else ts.replace(tzinfo=timezone.utc)


def message_id(key: str, settings: Settings) -> str:
    """A stable RFC 5322 Message-ID: the same key always gives the same id."""
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}@{render._domain(settings)}>"


class _Batch:
    """Messages to queue in one transaction: ids already queued are read once, rows inserted together."""

    COLUMNS = ("message_id", "recipient", "kind", "alert_ids", "subject", "status", "attempts", "next_attempt_at",
               "last_error", "created_at", "sent_at", "message", "subscription_id", "trigger")

    def __init__(self, con, now: datetime):
        self.con, self.now = con, now
        self.known = {r[0] for r in con.execute("select message_id from email_outbox").fetchall()}
        self.rows: list[tuple] = []

    def has(self, mid: str) -> bool:
        return mid in self.known

    def add(self, msg, *, recipient: str, kind: str, alert_ids: list[str], subscription_id: str, trigger: str) -> bool:
        mid = msg["Message-ID"]
        if mid in self.known:
            return False
        self.known.add(mid)
        self.rows.append((mid, recipient, kind, ",".join(alert_ids), str(msg["Subject"]), "pending", 0, self.now, None,
                          self.now, None, msg.as_bytes(policy=policy.SMTP), subscription_id, trigger))
        return True

    def write(self) -> int:
        if self.rows:
            import pandas as pd

            df = pd.DataFrame(self.rows, columns=list(self.COLUMNS))
            df["next_attempt_at"] = pd.to_datetime(df["next_attempt_at"], utc=True)
            df["created_at"] = pd.to_datetime(df["created_at"], utc=True)
            df["sent_at"] = pd.Series([None] * len(df), dtype="datetime64[us, UTC]")
            df["last_error"] = df["last_error"].astype("string")
            self.con.register("_outbox_new", df)
            try:
                cols = ", ".join(self.COLUMNS)
                self.con.execute(f"insert into email_outbox ({cols}) select {cols} from _outbox_new")
            finally:
                self.con.unregister("_outbox_new")
        return len(self.rows)


# -- immediate alerts ------------------------------------------------------------------------

def queue_immediate(con: duckdb.DuckDBPyConnection, settings: Settings | None = None, now: datetime | None = None) -> int:
    """Queue one email per (newest notifying alert event, immediate subscriber who wants it)."""
    s = settings or get_settings()
    now = _now(now)
    subs = active_subscriptions(con, "immediate")
    if not subs:
        return 0
    events = _rows(con, f"""
        select e.alert_id, e.event, e.level as event_level, e.detail, e.event_at, a.*
        from alert_events e join alerts a using (alert_id)
        where e.event in ({','.join('?' * len(NOTIFY_EVENTS))})
          and json_extract(e.detail, '$.notify')::boolean
        qualify row_number() over (partition by e.alert_id order by e.event_at desc) = 1
        order by e.event_at""", list(NOTIFY_EVENTS))
    queued = 0
    images: dict = {}  # each alert's sparkline is drawn once, not once per recipient

    def work():
        nonlocal queued
        batch = _Batch(con, now)
        for ev in events:
            level = ev["event_level"]
            detail = json.loads(ev["detail"] or "{}")
            trigger = f"{ev['event']}:{level}:{detail.get('data_end')}"
            for sub in subs:
                if _aware(ev["event_at"]) < _aware(sub.created_at) or not sub.wants(ev["region_id"], level):
                    continue
                if LEVEL_RANK[ev["level"]] < LEVEL_RANK[sub.min_level]:
                    continue
                mid = message_id(f"immediate|{ev['alert_id']}|{trigger}|{sub.recipient.lower()}", s)
                if batch.has(mid):
                    continue
                msg = render.render_immediate(ev, sub.recipient, mid, event=ev["event"], settings=s, now=now,
                                              image_cache=images)
                batch.add(msg, recipient=sub.recipient, kind="immediate", alert_ids=[ev["alert_id"]],
                          subscription_id=sub.subscription_id, trigger=trigger)
        queued = batch.write()

    transaction(con, work, what="email outbox")
    if queued:
        log.info("immediate emails queued", count=queued)
    return queued


# -- daily digests ---------------------------------------------------------------------------

def digest_due(sub: Subscription, now: datetime) -> date | None:
    """The local date whose digest is due for this subscription now, or None.

    A digest is due once the subscriber's local clock has passed ``digest_time``; a scheduler
    that was down at that moment catches up as soon as it runs again (same day, same Message-ID).
    Digests scheduled before the subscription existed are not sent.
    """
    tz = ZoneInfo(sub.timezone or get_settings().alerts.timezone)
    local = now.astimezone(tz)
    hh, mm = (int(x) for x in (sub.digest_time or "07:00").split(":"))
    due_at = datetime.combine(local.date(), dtime(hh, mm), tzinfo=tz)
    if local < due_at or due_at < _aware(sub.created_at):
        return None
    return local.date()


def _digest_alerts(con, sub: Subscription, now: datetime) -> list[dict]:
    """Active and recently resolved red/yellow alerts the subscriber wants, plus the regions where
    the system currently abstains (insufficient data) - so silence is never mistaken for 'all clear'."""
    rows = _rows(con, """
        select * from alerts
        where (level in ('red', 'yellow') and (status in ('open', 'ongoing') or resolved_at >= ?))
           or (level = 'insufficient_data' and status in ('open', 'ongoing'))
        order by case level when 'red' then 0 when 'yellow' then 1 else 2 end, data_end desc, region_id""",
                 [now - timedelta(hours=24)])
    return [r for r in rows if sub.wants(r["region_id"], r["level"])
            or (r["level"] == "insufficient_data" and sub.covers(r["region_id"]))]


def queue_digests(con: duckdb.DuckDBPyConnection, settings: Settings | None = None, now: datetime | None = None) -> int:
    """Queue today's digest for every digest subscription whose local digest time has passed."""
    s = settings or get_settings()
    now = _now(now)
    queued = 0
    images: dict = {}  # an alert in many digests is drawn once

    def work():
        nonlocal queued
        batch = _Batch(con, now)
        for sub in active_subscriptions(con, "digest"):
            day = digest_due(sub, now)
            if day is None:
                continue
            mid = message_id(f"digest|{sub.subscription_id}|{sub.recipient.lower()}|{day}", s)
            if batch.has(mid):
                continue
            alerts = _digest_alerts(con, sub, now)
            msg = render.render_digest(alerts, sub.recipient, mid, str(day), settings=s, now=now, image_cache=images)
            batch.add(msg, recipient=sub.recipient, kind="digest", alert_ids=[a["alert_id"] for a in alerts],
                      subscription_id=sub.subscription_id, trigger=f"digest:{day}")
        queued = batch.write()

    transaction(con, work, what="email outbox")
    if queued:
        log.info("digests queued", count=queued)
    return queued


# -- sending ---------------------------------------------------------------------------------

class SmtpConnection:
    """A lazily opened smtplib connection configured from settings.smtp (STARTTLS/SSL, login)."""

    def __init__(self, settings: Settings):
        self.cfg = settings.smtp
        self.client: smtplib.SMTP | None = None

    def open(self) -> smtplib.SMTP:
        if self.client is not None:
            return self.client
        c = self.cfg
        try:
            ctx = ssl.create_default_context(cafile=c.ca_file) if c.security != "none" else None
            if c.security == "ssl":
                client = smtplib.SMTP_SSL(c.host, c.port, timeout=c.timeout_s, context=ctx)
            else:
                client = smtplib.SMTP(c.host, c.port, timeout=c.timeout_s)
                if c.security == "starttls":
                    client.starttls(context=ctx)
            if c.username:
                if c.password is None:
                    raise SmtpUnavailable("smtp.username is set but AFFECTWATCH_SMTP__PASSWORD is not")
                client.login(c.username, c.password.get_secret_value())
        except (OSError, smtplib.SMTPException) as exc:
            raise SmtpUnavailable(f"cannot connect to {c.host}:{c.port}: {exc}") from exc
        self.client = client
        return client

    def send(self, raw: bytes, sender: str, recipient: str) -> None:
        client = self.open()
        try:
            refused = client.sendmail(sender, [recipient], raw)
        except (OSError, smtplib.SMTPException) as exc:
            self.close()
            raise TransientSmtpError(f"{type(exc).__name__}: {exc}") from exc
        if refused:
            raise TransientSmtpError(f"recipient refused: {refused}")

    def close(self) -> None:
        if self.client is not None:
            try:
                self.client.quit()
            except Exception:  # noqa: BLE001 - the connection may already be gone
                pass
            self.client = None


def _record_sent(con, mid: str, attempt: int, now: datetime) -> None:
    con.execute("insert into email_attempts (message_id, attempt, attempted_at, outcome, error) values (?, ?, ?, 'sent', null)",
                [mid, attempt, now])
    con.execute("update email_outbox set status = 'sent', sent_at = ?, attempts = ?, last_error = null "
                "where message_id = ?", [now, attempt, mid])


def _record_error(con, mid: str, attempt: int, error: str, settings: Settings, now: datetime) -> str:
    cfg = settings.smtp
    final = attempt >= cfg.max_attempts
    delay = min(cfg.backoff_base_s * 2 ** (attempt - 1), MAX_BACKOFF_S)
    status = "failed" if final else "pending"
    con.execute("insert into email_attempts (message_id, attempt, attempted_at, outcome, error) values (?, ?, ?, 'error', ?)",
                [mid, attempt, now, error[:500]])
    con.execute("update email_outbox set status = ?, attempts = ?, last_error = ?, next_attempt_at = ? "
                "where message_id = ?",
                [status, attempt, error[:500], None if final else now + timedelta(seconds=delay), mid])
    return status


def _record_released(con, mid: str, attempt: int, now: datetime) -> None:
    """A claimed message that was never handed to the server (the pass stopped): due again at once.

    The journal says so (an 'error' row starting with 'released'); ``attempts`` - which counts
    real SMTP attempts against ``max_attempts`` - is unchanged.
    """
    con.execute("insert into email_attempts (message_id, attempt, attempted_at, outcome, error) values (?, ?, ?, 'error', ?)",
                [mid, attempt, now, "released: not attempted, SMTP server unavailable"])
    con.execute("update email_outbox set next_attempt_at = ? where message_id = ?", [now, mid])


def _mark_sent(con, row: dict, attempt: int, now: datetime) -> None:
    """The commit point: attempt journalled as sent and the outbox row closed, in one transaction."""
    transaction(con, lambda: _record_sent(con, row["message_id"], attempt, now), what="email outbox")


def _mark_error(con, row: dict, attempt: int, error: str, settings: Settings, now: datetime) -> str:
    return transaction(con, lambda: _record_error(con, row["message_id"], attempt, error, settings, now), what="email outbox")


def _mark_outcomes(con, outcomes: list["Outcome"], settings: Settings, now: datetime) -> dict[str, str]:
    """Journal the result of every send of one batch in ONE transaction (the 'after' half of the journal).

    Returns message_id -> resulting status ('sent', 'pending', 'failed' or 'released').
    """
    if not outcomes:
        return {}
    if len(outcomes) == 1 and outcomes[0].error is None and not outcomes[0].released:
        o = outcomes[0]
        _mark_sent(con, {"message_id": o.message_id}, o.attempt, now)  # one send: the classic commit point
        return {o.message_id: "sent"}

    def work():
        status = {}
        sent = [o for o in outcomes if o.error is None and not o.released]
        _insert_attempts(con, [(o.message_id, o.attempt, now, "sent", None) for o in sent])
        for attempt in sorted({o.attempt for o in sent}):
            con.execute("update email_outbox set status = 'sent', sent_at = ?, attempts = ?, last_error = null "
                        "where list_contains(?, message_id)",
                        [now, attempt, [o.message_id for o in sent if o.attempt == attempt]])
        status.update({o.message_id: "sent" for o in sent})
        for o in outcomes:
            if o.released:
                _record_released(con, o.message_id, o.attempt, now)
                status[o.message_id] = "released"
            elif o.error is not None:
                status[o.message_id] = _record_error(con, o.message_id, o.attempt, o.error, settings, now)
        return status
    return transaction(con, work, what="email outbox")


def lease_seconds(settings: Settings) -> float:
    """How long a claimed message is reserved for its sender (an SMTP transaction's worst case)."""
    return max(60.0, 3 * settings.smtp.timeout_s)


def _insert_attempts(con, rows: list[tuple]) -> None:
    """Journal rows (message_id, attempt, attempted_at, outcome, error) in one statement."""
    if not rows:
        return
    import pandas as pd

    df = pd.DataFrame(rows, columns=["message_id", "attempt", "attempted_at", "outcome", "error"])
    df["attempted_at"] = pd.to_datetime(df["attempted_at"], utc=True)
    df["attempt"] = df["attempt"].astype("int32")
    df["error"] = df["error"].astype("string")
    con.register("_attempts_new", df)
    try:
        con.execute("insert into email_attempts (message_id, attempt, attempted_at, outcome, error) "
                    "select message_id, attempt, attempted_at, outcome, error from _attempts_new")
    finally:
        con.unregister("_attempts_new")


def _claim_rows(con, mids: list[str], now: datetime, settings: Settings) -> dict[str, tuple[int, bool]]:
    """Claim the still-due messages among ``mids`` (set-based); returns {message_id: (attempt, recovering)}."""
    due = dict(con.execute(
        "select message_id, attempts from email_outbox where list_contains(?, message_id) and status = 'pending' "
        "and (next_attempt_at is null or next_attempt_at <= ?)", [mids, now]).fetchall())
    if not due:
        return {}
    last = {r[0]: (r[1], r[2]) for r in con.execute(
        """select message_id, attempt, outcome from email_attempts where list_contains(?, message_id)
           qualify row_number() over (partition by message_id
                                      order by attempt desc, case outcome when 'sending' then 1 else 0 end) = 1""",
        [list(due)]).fetchall()}
    claims = {}
    for mid, attempts in due.items():
        prev = last.get(mid)
        claims[mid] = (max(attempts, prev[0] if prev else 0) + 1, prev is not None and prev[1] == "sending")
    con.execute("update email_outbox set next_attempt_at = ? where list_contains(?, message_id)",
                [now + timedelta(seconds=lease_seconds(settings)), list(claims)])
    _insert_attempts(con, [(mid, a, now, "sending", "recovery: previous attempt unfinished" if rec else None)
                           for mid, (a, rec) in claims.items()])
    return claims


def _claim(con, row: dict, now: datetime, settings: Settings) -> tuple[int, bool] | None:
    """Claim a due message and journal the 'sending' attempt in ONE transaction, before any SMTP traffic.

    The claim pushes ``next_attempt_at`` one lease ahead, so a second sender (another scheduler,
    a manual ``send-pending``) neither sees it as due nor - if it raced us - can commit its own
    claim (the catalog reports a conflict and the retry finds the message no longer due). A
    sender that dies after claiming leaves a 'sending' attempt; once the lease expires the
    message is due again and is recovered with the same Message-ID.
    """
    return transaction(con, lambda: _claim_rows(con, [row["message_id"]], now, settings), what="email outbox").get(row["message_id"])


def _claim_batch(con, rows: list[dict], now: datetime, settings: Settings) -> list[tuple[dict, int, bool]]:
    """Claim several due messages in one transaction (same rules as ``_claim``); returns the claimed ones."""
    claims = transaction(con, lambda: _claim_rows(con, [r["message_id"] for r in rows], now, settings), what="email outbox")
    return [(r, *claims[r["message_id"]]) for r in rows if r["message_id"] in claims]


def _last_attempt(con, mid: str) -> dict | None:
    rows = _rows(con, "select attempt, outcome from email_attempts where message_id = ? "
                      "order by attempt desc, case outcome when 'sending' then 1 else 0 end limit 1", [mid])
    return rows[0] if rows else None


def _envelope_sender(raw: bytes) -> str:
    """The From address of a frozen message (headers only: the body and images are not parsed)."""
    return BytesHeaderParser(policy=policy.default).parsebytes(raw)["From"].addresses[0].addr_spec


class Outcome:
    """What happened to one claimed message in this pass."""

    __slots__ = ("message_id", "attempt", "error", "unavailable", "released")

    def __init__(self, message_id: str, attempt: int, error: str | None = None, unavailable: bool = False,
                 released: bool = False):
        self.message_id, self.attempt, self.error = message_id, attempt, error
        self.unavailable, self.released = unavailable, released


class SenderPool:
    """A small thread pool; each worker thread owns one SMTP connection, reused across messages.

    A connection that fails is closed and re-opened on that worker's next message. Once any
    worker finds the server unavailable (no connection possible), the pool stops handing out
    messages: the rest of the batch is released (not attempted) and the pass ends.
    """

    def __init__(self, settings: Settings, workers: int):
        import threading
        from concurrent.futures import ThreadPoolExecutor

        self.settings = settings
        self._local = threading.local()
        self._conns: list[SmtpConnection] = []
        self._lock = threading.Lock()
        self.unavailable = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="smtp")

    def _conn(self) -> SmtpConnection:
        c = getattr(self._local, "conn", None)
        if c is None:
            c = self._local.conn = SmtpConnection(self.settings)
            with self._lock:
                self._conns.append(c)
        return c

    def _send(self, row: dict, attempt: int) -> Outcome:
        mid = row["message_id"]
        if self.unavailable.is_set():
            return Outcome(mid, attempt, released=True)
        raw = bytes(row["message"])
        sender = _envelope_sender(raw)
        try:
            self._conn().send(raw, sender, row["recipient"])
        except SmtpUnavailable as exc:
            self.unavailable.set()
            return Outcome(mid, attempt, f"{exc}", unavailable=True)
        except TransientSmtpError as exc:
            return Outcome(mid, attempt, str(exc))
        return Outcome(mid, attempt)

    def send_all(self, claimed: list[tuple[dict, int, bool]]) -> list[Outcome]:
        futures = [self._pool.submit(self._send, row, attempt) for row, attempt, _ in claimed]
        return [f.result() for f in futures]

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        for c in self._conns:
            c.close()


def send_pending(
    settings: Settings | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
    now: datetime | None = None,
    limit: int = 5000,
    progress=None,
) -> dict:
    """Send every pending message whose backoff has expired; journal each attempt before and after.

    Messages are claimed ``smtp.batch_size`` at a time (one transaction journals a 'sending' row
    for each, before any of them is handed to the server), sent by ``smtp.workers`` threads that
    each keep one SMTP connection open, and their outcomes are journalled in one transaction per
    batch. A crash between the server's 250 and that commit leaves 'sending' rows that the next
    pass re-sends with the same Message-ID (see the module docstring). ``progress`` (optional) is
    called with the number of messages finished after each batch.
    """
    s = settings or get_settings()
    fixed = now
    clock = (lambda: _now(fixed)) if fixed is not None else (lambda: _now(None))
    out = {"sent": 0, "errors": 0, "failed": 0, "recovered": 0, "deferred": 0}
    with session(s, con=con) as con, closing(SenderPool(s, s.smtp.workers)) as pool:
        now = clock()
        rows = _rows(con, """select message_id, recipient, attempts, message from email_outbox
                             where status = 'pending' and (next_attempt_at is null or next_attempt_at <= ?)
                             order by created_at, message_id limit ?""", [now, limit])
        # the first batch is a single message: a server that is down costs one attempt, not a batch
        bounds = [0, 1] + list(range(1 + s.smtp.batch_size, len(rows), s.smtp.batch_size)) + [len(rows)]
        for lo, hi in zip(bounds, bounds[1:]):
            if lo >= hi:
                continue
            claimed = _claim_batch(con, rows[lo:hi], clock(), s)
            for row, attempt, recovering in claimed:
                if recovering:
                    out["recovered"] += 1
                    log.warning("unfinished send found after a crash; re-sending with the same Message-ID",
                                message_id=row["message_id"], previous_attempt=attempt - 1)
            outcomes = pool.send_all(claimed)
            status = _mark_outcomes(con, outcomes, s, clock())
            for o in outcomes:
                st = status[o.message_id]
                if st == "sent":
                    out["sent"] += 1
                elif st == "released":
                    out["deferred"] += 1
                else:
                    out["errors"] += 1
                    out["failed"] += st == "failed"
                    log.warning("email attempt failed", message_id=o.message_id, attempt=o.attempt,
                                final=st == "failed", error=(o.error or "")[:200])
            if progress is not None:
                progress(len(outcomes))
            if pool.unavailable.is_set():
                out["deferred"] += len(rows) - hi  # server down: stop this pass
                break
    if any(out.values()):
        log.info("outbox pass finished", **out)
    return out


def retry_failed(con: duckdb.DuckDBPyConnection) -> int:
    """Put messages that exhausted their attempts back in the queue (after an operator fixed the server)."""
    n = con.execute("select count(*) from email_outbox where status = 'failed'").fetchone()[0]
    if n:
        con.execute("update email_outbox set status = 'pending', next_attempt_at = null where status = 'failed'")
    return n


def deliver(settings: Settings | None = None, now: datetime | None = None, con: duckdb.DuckDBPyConnection | None = None) -> dict:
    """One delivery pass: queue immediate alerts and due digests, then send what is pending."""
    s = settings or get_settings()
    with session(s, con=con) as con:
        queued_now = queue_immediate(con, s, now)
        digests = queue_digests(con, s, now)
        sent = send_pending(s, con, now)
        return {"queued_immediate": queued_now, "queued_digests": digests, **sent}
