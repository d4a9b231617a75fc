"""One detector registry: detect(), the rule validator, the engine's per-frequency settings and the CLI read it."""
from __future__ import annotations

import copy

import pytest
import yaml
from typer.testing import CliRunner

from affectwatch.settings import REPO_ROOT
from alerts.rules import RuleError, load_rules, parse_rules
from analytics import detect as detect_mod
from analytics.detectors import registry

SHIPPED = REPO_ROOT / "config" / "alert_rules.yaml"


def test_detect_runs_exactly_the_registry_methods():
    assert detect_mod.METHODS == registry.METHODS
    assert set(registry.ALL_METHODS) == set(registry.METHODS) | {"affect-anomaly", "forecast-exceedance"}
    assert registry.for_frequency("weekly") == ("farrington", "noufaily", "serfling", "forecast-exceedance")
    assert {"ewma", "switch", "ears-c2", "cusum", "affect-anomaly"} <= set(registry.for_frequency("daily"))


def test_weekly_signals_of_the_shipped_rules_use_seasonal_detectors():
    rules = load_rules(SHIPPED)
    ili = rules.signals["ili"]
    assert ili.frequency == "weekly" and ili.measure == "percent"
    assert {d.method for d in ili.detectors} <= {"farrington", "noufaily", "serfling"}
    for rule in rules.signals.values():  # anything else on weekly data is flagged in the file itself
        for d in rule.detectors:
            assert rule.frequency in registry.get(d.method).frequencies or d.allow_off_frequency, (rule, d.name)


def _ili_with(detectors: list[dict]) -> dict:
    doc = copy.deepcopy(yaml.safe_load(SHIPPED.read_text()))
    doc["signals"]["ili"]["detectors"] = detectors
    doc["signals"]["ili"]["levels"] = {"yellow": {"when": [{"detector": detectors[0]["name"], "p_below": 0.01}]}}
    return doc


def test_a_daily_detector_on_weekly_data_is_refused_unless_flagged():
    with pytest.raises(RuleError) as err:
        parse_rules(_ili_with([{"name": "e", "method": "ewma"}]), "rules.yaml")
    msg = str(err.value)
    assert "signals.ili" in msg and "not suited to weekly data" in msg and "e (ewma: daily)" in msg
    assert "farrington" in msg and "allow_off_frequency" in msg
    ok = parse_rules(_ili_with([{"name": "e", "method": "ewma", "allow_off_frequency": True}]))
    assert ok.signals["ili"].detectors[0].method == "ewma"


def test_unknown_method_lists_the_registry():
    with pytest.raises(RuleError, match="unknown method 'magic'; choose one of: ears-c1, .*forecast-exceedance"):
        parse_rules(_ili_with([{"name": "m", "method": "magic"}]))


def test_rule_params_override_registry_defaults_for_the_frequency(monkeypatch):
    info = registry.REGISTRY["farrington"]
    monkeypatch.setitem(registry.REGISTRY, "farrington",
                        registry.DetectorInfo(**{**info.__dict__, "defaults": {"weekly": {"b": 3, "w": 2}}}))
    rule = parse_rules(_ili_with([{"name": "f", "method": "farrington", "params": {"w": 1}}])).signals["ili"]
    assert rule.detector_params(rule.detectors[0]) == {"b": 3, "w": 1}


def test_cli_lists_the_registry():
    from affectwatch.cli import app

    res = CliRunner().invoke(app, ["detectors"])
    assert res.exit_code == 0, res.output
    for name in registry.ALL_METHODS:
        assert name in res.output
    assert "farrington" in res.output and "daily,weekly" in res.output
