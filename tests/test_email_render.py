"""Email rendering: privacy-safe numbers only, affect caveats, inline images referenced by cid."""
from __future__ import annotations

import json
from datetime import date, datetime, timezone

from affectwatch.privacy import Suppression
from affectwatch.settings import Settings
from alerts import render

NOW = datetime(2026, 3, 3, 7, 0, tzinfo=timezone.utc)


def _affect_alert(n_devices: int, n_obs: int, code: int | None = 0, **kw) -> dict:
    """An affect alert whose evidence carries the cell codes the SQL cell definition gave (``code`` = current cell)."""
    ev = {
        "detectors": {"affect": {"statistic": 7.77, "threshold": 0.1234, "p_value": 1e-6, "alarm": n_devices >= 3}},
        "cell": {"n_devices": n_devices, "n_scored": n_obs, "suppression": code},
        "series": {"dates": ["2026-02-28", "2026-03-01", "2026-03-02"], "observed": [0.101, 0.555, 0.777],
                   "n_devices": [4, 2, n_devices], "n_scored": [400, 300, n_obs],
                   "suppression": [0, int(Suppression.TOO_FEW_DEVICES), code], "threshold": [0.1234] * 3},
        "simulated": True,
    }
    return {"alert_id": "06|affect_distress|2026-03-02", "region_id": "06", "signal": "affect_distress",
            "level": "red", "status": "open", "rule": "affect_distress", "detectors": "affect", "statistic": 7.77,
            "threshold": 0.1234, "p_value": 1e-6, "probability": None, "observed": 0.777, "expected": 0.1011,
            "data_start": date(2026, 3, 2), "data_end": date(2026, 3, 2), "provisional": True, "reason": None,
            "evidence": json.dumps(ev), **kw}


def _parts(msg):
    text = msg.get_body(preferencelist=("plain",)).get_content()
    html = msg.get_body(preferencelist=("html",)).get_content()
    return text, html


def test_affect_cell_below_privacy_minimums_shows_the_suppression_label_not_numbers():
    s = Settings()
    msg = render.render_immediate(_affect_alert(2, 300, 2), "a@b.example", "<m1@x>", settings=s, now=NOW)
    text, html = _parts(msg)
    label = Suppression.TOO_FEW_DEVICES.label_for(s.privacy)
    assert label == "suppressed: fewer than 3 devices"
    for body in (text, html):
        assert label in body
        assert "0.0001" not in body  # no p-value from a suppressed cell either
        for number in ("0.777", "0.78", "7.77", "0.1234", "0.12", "0.101"):
            assert number not in body, number
    # sparkline data: the 2-device day and the current cell are blanked before drawing
    alert = _affect_alert(2, 300, 2)
    safe = render._safe_series({**alert, "evidence_obj": json.loads(alert["evidence"])}, s)
    assert safe["observed"] == [0.101, None, None]
    # too few observations (k_min = 11) is suppressed as well, with the configured k_min in the label
    few = render.render_immediate(_affect_alert(5, 10, 1), "a@b.example", "<m2@x>", settings=s, now=NOW)
    assert "suppressed: fewer than 11 scored observations" in _parts(few)[0]
    strict = Settings(privacy={"k_min": 25, "min_devices": 4})
    few = render.render_immediate(_affect_alert(5, 10, 1), "a@b.example", "<m2@x>", settings=strict, now=NOW)
    assert "suppressed: fewer than 25 scored observations" in _parts(few)[0]
    # evidence without a code (an alert stored before codes were kept) fails closed
    old = render.render_immediate(_affect_alert(5, 500, None), "a@b.example", "<m5@x>", settings=s, now=NOW)
    assert "0.777" not in _parts(old)[0]


def test_affect_email_says_simulated_and_soft_signal_and_shows_safe_numbers():
    msg = render.render_immediate(_affect_alert(5, 500, 0), "a@b.example", "<m3@x>", settings=Settings(), now=NOW)
    text, html = _parts(msg)
    assert "SIMULATED" in text and "soft, contested signal" in text
    assert "simulated" in html and "soft, contested signal" in html
    assert "Observed:      0.777" in text and "Statistic:     7.77" in text and "p-value:       < 0.0001" in text
    assert "suppressed" not in text.split("About affect")[0]


def test_symptom_email_has_no_affect_caveat_and_escapes_html():
    alert = _affect_alert(5, 500, signal="flu_admissions", region_id="<b>06</b>",
                          alert_id="x|flu_admissions|2026-03-02")
    msg = render.render_immediate(alert, "a@b.example", "<m4@x>", settings=Settings(), now=NOW)
    text, html = _parts(msg)
    assert "About affect" not in text and "simulated" not in html
    assert "<b>06</b>" not in html and "&lt;b&gt;06&lt;/b&gt;" in html
    imgs = [p for p in msg.walk() if p.get_content_type() == "image/png"]
    assert len(imgs) == 1 and f'cid:{imgs[0]["Content-ID"].strip("<>")}' in html
    assert msg["Message-ID"] == "<m4@x>" and msg["From"] == Settings().smtp.sender


def test_empty_digest_says_so():
    msg = render.render_digest([], "a@b.example", "<d1@x>", "2026-03-03", settings=Settings(), now=NOW)
    text, html = _parts(msg)
    assert "No active alerts in your regions." in text and "No active alerts" in html
    assert msg["Subject"] == "[AffectWatch] Daily digest 2026-03-03: 0 red, 0 yellow"
    assert not [p for p in msg.walk() if p.get_content_type() == "image/png"]
