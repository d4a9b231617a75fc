"""Smoke test of `affectwatch demo` on a shortened period: the whole pipeline on real data, on real parts
(local Kafka broker, DuckLake warehouse, aiosmtpd sink, Streamlit server), leaving no process behind."""
from __future__ import annotations

import email
import json
import os
import socket
import subprocess
import sys
from email import policy

import pytest

from affectwatch.settings import REPO_ROOT, Settings
from ingest.broker import free_port

pytestmark = [pytest.mark.slow, pytest.mark.kafka]

REGIONS = "06,36,48"


def _port_in_use(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def demo_env(data_dir) -> tuple[dict, dict]:
    """(environment, ports) of a demo run on free ports in ``data_dir``."""
    ports = {"kafka": free_port(), "smtp": free_port(), "dashboard": free_port()}
    env = os.environ | {
        "AFFECTWATCH_DATA_DIR": str(data_dir),
        "AFFECTWATCH_KAFKA__BOOTSTRAP_SERVERS": f"127.0.0.1:{ports['kafka']}",
        "AFFECTWATCH_SMTP__PORT": str(ports["smtp"]),
        "AFFECTWATCH_DASHBOARD__PORT": str(ports["dashboard"]),
        "AFFECTWATCH_LOG_FORMAT": "json",
    }
    return env, ports


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("demo") / "var"
    env, ports = demo_env(data_dir)
    cmd = [sys.executable, "-m", "affectwatch.cli", "demo", "--start", "2022-09-03", "--end", "2023-01-14",
           "--regions", REGIONS, "--devices-per-region", "4", "--backtest-from", "2022-11-05",
           "--backtest-to", "2023-01-07", "--no-serve"]
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"settings": Settings(data_dir=data_dir), "summary": summary, "stdout": proc.stdout, "ports": ports}


def test_demo_fills_the_warehouse_through_kafka(demo_run):
    from affectwatch.warehouse import connect

    con = connect(demo_run["settings"], read_only=True)
    windows, simulated, regions = con.execute(
        "select count(*), bool_and(simulated), string_agg(distinct region_id, ',' order by region_id) from affect_windows"
    ).fetchone()
    assert windows > 1000 and simulated is True
    regions = set(regions.split(","))
    assert {r for r in regions if len(r) == 2} == set(REGIONS.split(","))
    # the county map and the H3 view have data too: the counties and H3 cells of CT, MA and RI
    counties = {r for r in regions if len(r) == 5 and r.isdigit()}
    assert counties and {c[:2] for c in counties} == {"09", "25", "44"}
    assert any(len(r) == 15 for r in regions)  # H3 cell ids
    syndromes = {r[0] for r in con.execute("select distinct syndrome from symptom_reports").fetchall()}
    assert {"flu_admissions", "ili", "ed_flu_share"} <= syndromes
    # the admissions came through Kafka (the simulator emits the real series), the rest from files
    origins = dict(con.execute("select syndrome, min(origin) from symptom_reports group by 1").fetchall())
    assert origins["flu_admissions"].startswith("kafka:") and origins["ili"].startswith("file:")
    assert con.execute("select count(distinct output_type_id) from forecasts").fetchone()[0] == 23
    lift = con.execute("select count(*), bool_and(simulated) from affect_lift").fetchone()
    assert lift[0] >= 1 and lift[1] is True
    assert con.execute("select count(*) from alerts").fetchone()[0] >= 1
    con.close()
    assert "SIMULATED" in demo_run["stdout"]


def test_demo_delivers_alert_emails_to_the_smtp_sink(demo_run):
    from pathlib import Path

    paths = sorted(Path(demo_run["summary"]["mail_dir"]).glob("*.eml"))
    assert len(paths) == demo_run["summary"]["emails"]
    assert paths, "no .eml file in the sink"
    msg = email.message_from_binary_file(open(paths[0], "rb"), policy=policy.default)
    assert msg["Subject"].startswith("[AffectWatch]") and msg["Message-ID"]
    assert any(part.get_content_type() == "image/png" for part in msg.walk())


def test_demo_dashboard_served_and_renders_demo_data(demo_run, monkeypatch):
    assert demo_run["summary"]["dashboard"].endswith(str(demo_run["ports"]["dashboard"]))
    from streamlit import config
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("AFFECTWATCH_DATA_DIR", str(demo_run["settings"].data_dir))
    monkeypatch.delenv("AFFECTWATCH_DASHBOARD__USERS_FILE", raising=False)
    old = config.get_option("server.address")
    config.set_option("server.address", "127.0.0.1")
    try:
        at = AppTest.from_file(str(REPO_ROOT / "dashboard" / "app.py"), default_timeout=90)
        at.query_params["region"] = "48"
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        assert at.get("deck_gl_json_chart"), "the overview map is missing"
        assert any("SIMULATED" in i.value for i in at.info)
    finally:
        config.set_option("server.address", old)


def test_demo_leaves_no_process_behind(demo_run):
    for name, port in demo_run["ports"].items():
        assert not _port_in_use(port), f"{name} still listening on {port}"


def test_demo_publishes_the_analyst_store(demo_run):
    """After loading, the demo publishes the analyst store: `affectwatch sql` answers from it."""
    from analyst.sqlshell import open_session

    session = open_session(demo_run["settings"])
    try:
        assert session.publication >= 1
        assert session.run("select count(*) from affect_region_week where suppression = 0")[1][0][0] > 0
    finally:
        session.con.close()
    assert "Analyst store" in demo_run["stdout"]
