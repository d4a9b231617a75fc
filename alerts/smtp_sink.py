"""A local SMTP sink (aiosmtpd) for the demo and the tests: one .eml file per Message-ID.

Each accepted message is written atomically to ``<dir>/<sha256(Message-ID)[:24]>.eml``. A second
transmission with a Message-ID already on disk is acknowledged (250) but not stored again - the
same de-duplication many real receivers apply (RFC 7352 ``duplicate``), which is what makes
the outbox's at-least-once retransmission after a crash invisible to the recipient. Switches
let tests make it refuse (4xx) or reject (5xx) every message; ``stop()``/``start()`` take it down.
"""
from __future__ import annotations

import hashlib
import os
import ssl
import threading
from email import message_from_bytes, policy
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from affectwatch.logs import get_logger
from affectwatch.ports import free_port

log = get_logger(__name__)


def eml_name(message_id: str) -> str:
    return hashlib.sha256(message_id.strip().encode()).hexdigest()[:24] + ".eml"


class SinkHandler:
    """aiosmtpd handler: store, de-duplicate by Message-ID, or refuse on demand."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.refuse_code: str | None = None  # e.g. "451 4.3.0 try again later" or "554 5.0.0 rejected"
        self.received = 0  # every DATA transmission, duplicates included
        self.duplicates = 0
        self._lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd hook name
        if self.refuse_code:
            return self.refuse_code
        raw = envelope.original_content or envelope.content
        raw = raw if isinstance(raw, bytes) else raw.encode()
        msg = message_from_bytes(raw, policy=policy.default)
        mid = (msg.get("Message-ID") or "").strip()
        if not mid:
            mid = "<no-id-" + hashlib.sha256(raw).hexdigest() + ">"
        path = self.folder / eml_name(mid)
        with self._lock:
            self.received += 1
            if path.exists():
                self.duplicates += 1
                log.info("duplicate message ignored", message_id=mid)
                return "250 2.0.0 OK: duplicate Message-ID, already delivered"
            tmp = path.with_suffix(".tmp")
            header = f"X-Sink-Envelope-From: {envelope.mail_from}\r\nX-Sink-Envelope-To: {', '.join(envelope.rcpt_tos)}\r\n"
            tmp.write_bytes(header.encode() + raw)
            os.replace(tmp, path)
        log.info("message stored", message_id=mid, file=path.name, rcpt=len(envelope.rcpt_tos))
        return "250 2.0.0 OK: stored"

    def messages(self) -> list:
        """Every stored message, parsed (email.message.EmailMessage)."""
        return [message_from_bytes(p.read_bytes(), policy=policy.default) for p in sorted(self.folder.glob("*.eml"))]


class SmtpSink:
    """Start/stop an aiosmtpd server on a loopback port, keeping the same folder and port."""

    def __init__(self, folder: Path | str, host: str = "127.0.0.1", port: int | None = None,
                 credentials: tuple[str, str] | None = None, tls: tuple[str, str] | None = None,
                 tls_mode: str = "starttls"):
        """``tls`` = (certfile, keyfile); ``tls_mode`` 'starttls' (required before MAIL) or 'ssl' (implicit TLS)."""
        self.host = host
        self.port = port or free_port(host)
        self.handler = SinkHandler(Path(folder))
        self.credentials = credentials
        self.tls, self.tls_mode = tls, tls_mode
        self.controller: Controller | None = None

    def _authenticator(self, server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword) and self.credentials is not None
              and auth_data.login.decode() == self.credentials[0]
              and auth_data.password.decode() == self.credentials[1])
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 235 / 535 itself

    def start(self) -> "SmtpSink":
        if self.controller is not None:
            return self
        kw: dict = {}
        if self.credentials:
            # with implicit TLS ('ssl') the whole session is encrypted, but aiosmtpd only counts STARTTLS as TLS
            kw.update(authenticator=self._authenticator, auth_required=True,
                      auth_require_tls=self.tls is not None and self.tls_mode == "starttls")
        if self.tls:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(*self.tls)
            if self.tls_mode == "ssl":
                kw["ssl_context"] = ctx
            else:
                kw.update(tls_context=ctx, require_starttls=True)
        self.controller = Controller(self.handler, hostname=self.host, port=self.port, **kw)
        self.controller.start()
        log.info("smtp sink listening", host=self.host, port=self.port, folder=str(self.handler.folder))
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    @property
    def running(self) -> bool:
        return self.controller is not None

    def messages(self) -> list:
        return self.handler.messages()
