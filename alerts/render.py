"""Render alert emails (immediate and daily digest): plain text + HTML with inline PNG sparklines.

The MIME tree is ``multipart/alternative`` [text/plain, ``multipart/related`` [text/html,
image/png ...]]; the HTML refers to each image by ``cid:``. Only privacy-safe numbers are shown:
an affect cell whose suppression code (computed once, in SQL, by the cell definition and stored
in the alert's evidence) is not 0 is shown as its label, never as a number (privacy rule 3), in
text, HTML and images. Evidence without a code (older alerts) is treated as suppressed.
"""
from __future__ import annotations

import hashlib
import io
import json
import math
from datetime import datetime, timezone
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from affectwatch.privacy import Suppression
from affectwatch.settings import Settings, get_settings
from affectwatch.regions import region_name

TEMPLATES = Path(__file__).parent / "templates"
AFFECT_SIGNALS_PREFIX = "affect"
LEVEL_COLORS = {"red": "#c62828", "yellow": "#f9a825", "insufficient_data": "#757575"}

_env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=lambda name: bool(name) and ".html" in name,  # *.html.j2 escaped, *.txt.j2 not
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _fmt(x, digits: int = 2) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    if isinstance(x, float) and abs(x) < 0.001 and x != 0:
        return f"{x:.1e}"
    return f"{x:,.{digits}f}" if isinstance(x, float) else str(x)


def _fmt_p(p) -> str:
    if p is None or (isinstance(p, float) and not math.isfinite(p)):
        return "n/a"
    return "< 0.0001" if p < 0.0001 else f"{p:.4f}"


def is_affect(signal: str) -> bool:
    return signal.startswith(AFFECT_SIGNALS_PREFIX)


def cell_suppression(alert: dict, settings: Settings) -> Suppression:
    """Privacy code of the alert's current cell (affect signals only; symptom counts are not affect cells)."""
    if not is_affect(alert["signal"]):
        return Suppression.NOT_SUPPRESSED
    cell = (alert.get("evidence_obj") or {}).get("cell") or {}
    return _code(cell.get("suppression"))


def _code(value) -> Suppression:
    """The stored code; a missing or unknown one fails closed (suppressed)."""
    try:
        return Suppression(int(value))
    except (TypeError, ValueError):
        return Suppression.TOO_FEW_DEVICES


def _safe_series(alert: dict, settings: Settings) -> dict:
    """The evidence series with every affect point that fails the privacy rules blanked out."""
    s = (alert.get("evidence_obj") or {}).get("series") or {}
    dates = s.get("dates") or []
    obs = list(s.get("observed") or [None] * len(dates))
    thr = list(s.get("threshold") or [None] * len(dates))
    if is_affect(alert["signal"]):
        codes = s.get("suppression") or [None] * len(dates)
        for i in range(len(dates)):
            if _code(codes[i] if i < len(codes) else None) != Suppression.NOT_SUPPRESSED:
                obs[i] = None
    return {"dates": dates, "observed": obs, "threshold": thr}


def sparkline_png(alert: dict, settings: Settings) -> bytes:
    """A small PNG: the series (privacy-safe points only), the threshold, the current point in level colour."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = _safe_series(alert, settings)
    fig, ax = plt.subplots(figsize=(3.2, 0.9), dpi=100)
    try:
        x = list(range(len(s["dates"])))
        y = [float("nan") if v is None else float(v) for v in s["observed"]]
        t = [float("nan") if v is None else float(v) for v in s["threshold"]]
        ax.plot(x, y, color="#1565c0", linewidth=1.4)
        if any(math.isfinite(v) for v in t):
            ax.plot(x, t, color="#616161", linewidth=0.9, linestyle="--")
        if y and math.isfinite(y[-1]):
            ax.plot([x[-1]], [y[-1]], "o", color=LEVEL_COLORS.get(alert["level"], "#1565c0"), markersize=4)
        ax.set_axis_off()
        fig.subplots_adjust(left=0.01, right=0.99, top=0.95, bottom=0.05)
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        return buf.getvalue()
    finally:
        plt.close(fig)


def sparkline_once(alert: dict, settings: Settings, cache: dict | None) -> bytes:
    """``sparkline_png``, drawn once per alert state and reused for every recipient/digest in ``cache``."""
    if cache is None:
        return sparkline_png(alert, settings)
    key = (alert["alert_id"], alert["level"], json.dumps(_safe_series(alert, settings), sort_keys=True, default=str))
    if key not in cache:
        cache[key] = sparkline_png(alert, settings)
    return cache[key]


def _view(alert: dict, settings: Settings, idx: int, domain: str) -> dict:
    """Template-ready strings for one alert: numbers formatted, affect cells suppressed when needed."""
    ev = alert.get("evidence_obj")
    if ev is None:
        ev = json.loads(alert["evidence"]) if alert.get("evidence") else {}
        alert = {**alert, "evidence_obj": ev}
    code = cell_suppression(alert, settings)
    hidden = code != Suppression.NOT_SUPPRESSED

    label = code.label_for(settings.privacy)

    def num(x, digits=2):
        return label if hidden else _fmt(x, digits)

    affect = is_affect(alert["signal"])
    return {
        "alert_id": alert["alert_id"],
        "region": alert["region_id"],
        "region_name": region_name(alert["region_id"]),
        "signal": alert["signal"],
        "level": alert["level"],
        "level_color": LEVEL_COLORS.get(alert["level"], "#000"),
        "status": alert.get("status", ""),
        "event": alert.get("event") or alert.get("status", ""),
        "rule": alert.get("rule") or "",
        "detectors": (alert.get("detectors") or "").replace(",", ", ") or "none",
        "statistic": num(alert.get("statistic")),
        "threshold": num(alert.get("threshold")),
        "observed": num(alert.get("observed"), 3 if affect else 0),
        "expected": num(alert.get("expected"), 3 if affect else 1),
        "p_value": label if hidden else _fmt_p(alert.get("p_value")),
        "probability": _fmt(alert.get("probability"), 2) if alert.get("probability") is not None else None,
        "data_start": str(alert.get("data_start") or "n/a"),
        "data_end": str(alert.get("data_end") or "n/a"),
        "provisional": bool(alert.get("provisional")),
        "reason": alert.get("reason"),
        "suppressed_label": label if hidden else None,
        "affect": affect,
        "simulated": bool(ev.get("simulated", affect)),
        "per_detector": [
            {"name": name, "statistic": num(d.get("statistic")), "threshold": num(d.get("threshold")),
             "p_value": label if hidden else _fmt_p(d.get("p_value")), "alarm": bool(d.get("alarm")),
             "probability": _fmt(d.get("probability")) if d.get("probability") is not None else None}
            for name, d in sorted((ev.get("detectors") or {}).items())
        ],
        "cid": f"spark-{idx}-{hashlib.sha256(alert['alert_id'].encode()).hexdigest()[:10]}@{domain}",
        "_alert": alert,
    }


def _domain(settings: Settings) -> str:
    sender = settings.smtp.sender
    return sender.rsplit("@", 1)[-1].strip(" >") if "@" in sender else "affectwatch.local"


def _assemble(subject: str, recipient: str, message_id: str, text: str, html: str, images: list[tuple[str, bytes]],
              settings: Settings, now: datetime) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = settings.smtp.sender
    msg["To"] = recipient
    msg["Message-ID"] = message_id
    msg["Date"] = format_datetime(now)
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-AffectWatch-Kind"] = "alert"
    msg.set_content(text)
    msg.add_alternative(html, subtype="html")
    html_part = msg.get_payload()[1]
    for cid, png in images:
        html_part.add_related(png, maintype="image", subtype="png", cid=f"<{cid}>", filename=cid.split("@")[0] + ".png")
    return msg


def _common(settings: Settings) -> dict:
    return {
        "k_min": settings.privacy.k_min,
        "min_devices": settings.privacy.min_devices,
        "dashboard_url": f"http://localhost:{settings.dashboard.port}/",
    }


def render_immediate(alert: dict, recipient: str, message_id: str, event: str = "opened",
                     settings: Settings | None = None, now: datetime | None = None,
                     image_cache: dict | None = None) -> EmailMessage:
    """One alert, sent at once: level, region, evidence, data period, provisional flag, sparkline."""
    s = settings or get_settings()
    now = now or datetime.now(timezone.utc)
    v = _view({**alert, "event": event}, s, 0, _domain(s))
    label = {"opened": "new alert", "escalated": "escalated", "new_evidence": "update"}.get(event, event)
    subject = (f"[AffectWatch] {v['level'].upper()} {label}: {v['signal']} in {v['region_name']}"
               f" (data to {v['data_end']}{', provisional' if v['provisional'] else ''})")
    ctx = {**_common(s), "a": v, "event_label": label, "generated_at": now.strftime("%Y-%m-%d %H:%M UTC")}
    text = _env.get_template("immediate.txt.j2").render(**ctx)
    html = _env.get_template("immediate.html.j2").render(**ctx)
    image = sparkline_once(v["_alert"], s, image_cache)
    return _assemble(subject, recipient, message_id, text, html, [(v["cid"], image)], s, now)


def render_digest(alerts: list[dict], recipient: str, message_id: str, digest_date: str,
                  settings: Settings | None = None, now: datetime | None = None, max_images: int = 12,
                  image_cache: dict | None = None) -> EmailMessage:
    """The daily digest: active alerts (newest evidence first) and alerts resolved since the last digest."""
    s = settings or get_settings()
    now = now or datetime.now(timezone.utc)
    dom = _domain(s)
    views = [_view(a, s, i, dom) for i, a in enumerate(alerts)]
    thin = [v for v in views if v["level"] == "insufficient_data"]
    active = [v for v in views if v["status"] != "resolved" and v["level"] != "insufficient_data"]
    resolved = [v for v in views if v["status"] == "resolved" and v["level"] != "insufficient_data"]
    n_red = sum(v["level"] == "red" for v in active)
    n_yellow = sum(v["level"] == "yellow" for v in active)
    subject = f"[AffectWatch] Daily digest {digest_date}: {n_red} red, {n_yellow} yellow"
    for i, v in enumerate(active):
        v["has_image"] = i < max_images
    ctx = {**_common(s), "active": active, "resolved": resolved, "thin": thin, "digest_date": digest_date,
           "n_red": n_red, "n_yellow": n_yellow, "any_affect": any(v["affect"] for v in views),
           "generated_at": now.strftime("%Y-%m-%d %H:%M UTC")}
    text = _env.get_template("digest.txt.j2").render(**ctx)
    html = _env.get_template("digest.html.j2").render(**ctx)
    images = [(v["cid"], sparkline_once(v["_alert"], s, image_cache)) for v in active if v["has_image"]]
    return _assemble(subject, recipient, message_id, text, html, images, s, now)
