"""Smoke test of `affectwatch demo` on a shortened period: the whole pipeline on real data, on real parts
(local Kafka broker, DuckLake warehouse, aiosmtpd sink, Streamlit server), then SIGTERM while it serves: every
child stops and no process or port is left behind. One demo run serves every test here (a run takes minutes)."""
from __future__ import annotations

import email
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from email import policy

import psutil
import pytest

from affectwatch.ports import free_port, port_open, wait_until
from affectwatch.settings import REPO_ROOT, Settings

pytestmark = [pytest.mark.slow, pytest.mark.kafka, pytest.mark.timeout(2400)]

REGIONS = "06,36,48"


def _port_in_use(port: int) -> bool:
    return port_open("127.0.0.1", port)


def http_ok(url: str) -> bool:
    try:
        return urllib.request.urlopen(url, timeout=2).status == 200
    except OSError:
        return False


def alive(procs: list[psutil.Process]) -> list[str]:
    """The processes still alive (zombies count as gone: they hold nothing)."""
    out = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                out.append(f"{p.pid} {' '.join(p.cmdline())[:120]}")
        except psutil.NoSuchProcess:
            pass
    return out


def demo_env(data_dir) -> tuple[dict, dict]:
    """(environment, ports) of a demo run on free ports in ``data_dir``."""
    ports = {"kafka": free_port(), "smtp": free_port(), "dashboard": free_port()}
    env = os.environ | {
        "AFFECTWATCH_DATA_DIR": str(data_dir),
        "AFFECTWATCH_KAFKA__BOOTSTRAP_SERVERS": f"127.0.0.1:{ports['kafka']}",
        "AFFECTWATCH_SMTP__PORT": str(ports["smtp"]),
        "AFFECTWATCH_DASHBOARD__PORT": str(ports["dashboard"]),
        "AFFECTWATCH_LOG_FORMAT": "json",
        "PYTHONUNBUFFERED": "1",
    }
    return env, ports


def _summary(text: str) -> dict:
    """The demo's last stdout line: its JSON summary (printed after every process stopped)."""
    for line in reversed(text.splitlines()):
        if line.startswith("{") and '"mail_dir"' in line:
            return json.loads(line)
    raise AssertionError("no demo summary in the output: " + text[-3000:])


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """Run the demo until it serves, look at what it serves, then SIGTERM it and record how it stopped."""
    data_dir = tmp_path_factory.mktemp("demo") / "var"
    env, ports = demo_env(data_dir)
    log = data_dir.parent / "demo.log"
    cmd = [sys.executable, "-m", "affectwatch.cli", "demo", "--start", "2022-09-03", "--end", "2023-01-14",
           "--regions", REGIONS, "--devices-per-region", "4", "--backtest-from", "2022-11-05",
           "--backtest-to", "2023-01-07"]
    with open(log, "wb") as out:
        demo = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    children: list[psutil.Process] = []
    serving: dict = {}
    try:
        wait_until(lambda: "Press Ctrl-C" in log.read_text(errors="replace"), 2000, "the demo to serve",
                   proc=demo, log=log, interval=0.5)
        serving["health"] = http_ok(f"http://127.0.0.1:{ports['dashboard']}/_stcore/health")
        serving["listening"] = {name: _port_in_use(p) for name, p in ports.items()}
        children = psutil.Process(demo.pid).children(recursive=True)
        serving["children"] = " ".join(" ".join(c.cmdline()) for c in children)
        t0 = time.monotonic()
        demo.send_signal(signal.SIGTERM)
        demo.wait(timeout=180)
        print(f"demo stopped {time.monotonic() - t0:.1f} s after SIGTERM")
    finally:
        if demo.poll() is None:  # a failure above: stop it the way under test, then for sure
            demo.send_signal(signal.SIGTERM)
            try:
                demo.wait(timeout=120)
            except subprocess.TimeoutExpired:
                demo.kill()
        leftover = alive(children)
        for proc in children:  # only after the check: never leave a broker behind a failed test
            try:
                proc.kill()  # psutil refuses if the pid was reused meanwhile
            except psutil.NoSuchProcess:
                pass
    text = log.read_text(errors="replace")
    assert demo.returncode == 0, text[-3000:]
    return {"settings": Settings(data_dir=data_dir), "summary": _summary(text), "stdout": text, "ports": ports,
            "serving": serving, "leftover": leftover}


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


def test_sigterm_to_the_serving_demo_stops_every_child_and_frees_every_port(demo_run):
    """`kill <demo pid>` while it serves: broker, ingest worker, SMTP sink and Streamlit all stop."""
    serving = demo_run["serving"]
    assert serving["health"], "the dashboard did not answer its health check while the demo served"
    assert all(serving["listening"].values()), serving["listening"]
    names = serving["children"]
    assert "kafka.Kafka" in names and "smtp-sink" in names and "dashboard.serve" in names and " ingest" in names, names
    text = demo_run["stdout"]
    assert "SIGTERM: stopping every process the demo started" in text
    assert "stopped dashboard" in text and "stopped smtp-sink" in text and "stopped Kafka broker" in text
    assert not demo_run["leftover"], demo_run["leftover"]
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
