"""Alert rule file: the shipped rule set is valid; bad rule files fail with errors that name the entry."""
from __future__ import annotations

import copy

import pytest
import yaml

from affectwatch.settings import REPO_ROOT
from alerts.rules import RuleError, load_rules, parse_rules

SHIPPED = REPO_ROOT / "config" / "alert_rules.yaml"


def _doc():
    return yaml.safe_load(SHIPPED.read_text())


def test_shipped_rules_are_valid_and_cover_the_three_signals():
    rules = load_rules(SHIPPED)
    assert set(rules.signals) == {"flu_admissions", "ili", "affect_distress"}
    flu = rules.signals["flu_admissions"]
    assert flu.season_period == 52 and flu.levels["red"].require == 2
    assert {d.method for d in flu.detectors} >= {"farrington", "ewma", "forecast-exceedance"}
    assert rules.signals["affect_distress"].detectors[0].method == "affect-anomaly"


def _set(doc, path, value):
    node = doc
    for key in path[:-1]:
        node = node[key]
    if value is _DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return doc


_DELETE = object()

BAD = [
    (("signals", "ili", "levels", "red", "when", 0, "p_below"), 1.5,
     "signals.ili.levels.red.when[0].p_below: Input should be less than 1 (got 1.5)"),
    (("signals", "ili", "detectors", 0, "method"), "magic", "signals.ili.detectors[0].method"),
    (("signals", "flu_admissions", "levels", "yellow", "when", 2, "detector"), "ears_c9", "unknown detector 'ears_c9'"),
    (("signals", "flu_admissions", "levels", "red", "require"), 5, "require=5 but only 3 condition(s) listed"),
    (("signals", "ili", "syndrome"), _DELETE, "source symptom_reports needs `syndrome`"),
    (("signals", "ili", "levels", "red", "when", 0), {"detector": "ewma", "p_below": 0.01, "alarm": True},
     "needs exactly one of p_below, alarm, probability_above, statistic_above"),
    (("signals", "flu_admissions", "detectors", 3, "threshold_quantile"), _DELETE,
     "forecast-exceedance needs exactly one of `threshold_quantile` or `threshold_value`"),
    (("signals", "affect_distress", "detectors", 0, "method"), "ewma", "affect_windows signals take only affect-anomaly"),
    (("signals", "ili", "min_history"), 1, "signals.ili.min_history: Input should be greater than or equal to 2 (got 1)"),
    (("signals", "ili", "colour"), "blue", "signals.ili.colour: Extra inputs are not permitted"),
    (("version",), 2, "version: Input should be 1"),
    (("signals", "ili", "levels", "orange"), {"when": [{"detector": "ewma", "p_below": 0.1}]}, "signals.ili.levels.orange"),
]


@pytest.mark.parametrize("path,value,message", BAD, ids=[".".join(map(str, b[0])) for b in BAD])
def test_bad_rules_name_the_bad_entry(path, value, message):
    doc = _set(copy.deepcopy(_doc()), path, value)
    with pytest.raises(RuleError) as err:
        parse_rules(doc, "rules.yaml")
    assert message in str(err.value)
    assert str(err.value).startswith("invalid alert rules in rules.yaml:")


def test_unreadable_rule_files(tmp_path):
    with pytest.raises(RuleError, match="alert rule file not found: .*missing.yaml"):
        load_rules(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nsignals: [unclosed\n")
    with pytest.raises(RuleError, match="is not valid YAML"):
        load_rules(bad)
    bad.write_text("- just\n- a list\n")
    with pytest.raises(RuleError, match="top level must be a mapping"):
        load_rules(bad)


def test_rules_command_validates_and_summarises(tmp_path):
    from typer.testing import CliRunner

    from affectwatch.cli import app

    ok = CliRunner().invoke(app, ["alerts", "rules", "--file", str(SHIPPED)])
    assert ok.exit_code == 0, ok.output
    assert "flu_admissions (symptom_reports:flu_admissions, weekly)" in ok.output
    assert "red: 2 of [ewma p_below=0.01, farrington alarm=True, exceedance probability_above=0.8]" in ok.output
    doc = _set(_doc(), ("signals", "ili", "levels", "red", "when", 0, "detector"), "nope")
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(doc))
    res = CliRunner().invoke(app, ["alerts", "rules", "--file", str(bad)])
    assert res.exit_code == 2 and "unknown detector 'nope'" in res.output


def test_affect_minimums_may_only_tighten_the_privacy_settings():
    from affectwatch.settings import Settings

    doc = _doc()
    doc["signals"]["affect_distress"]["min_devices"] = 2
    with pytest.raises(RuleError, match=r"signals.affect_distress.min_devices: 2 is below the privacy minimum 3"):
        parse_rules(doc, "rules.yaml", settings=Settings())
    doc["signals"]["affect_distress"].update(min_devices=5, min_quality=0.5)
    rule = parse_rules(doc, "rules.yaml", settings=Settings()).signals["affect_distress"]
    assert rule.minimums(Settings().privacy) == {"min_devices": 5, "min_observations": 11, "min_quality": 0.5}
    # the same rule file is refused where the privacy settings are stricter than the rule
    with pytest.raises(RuleError, match="min_devices: 5 is below the privacy minimum 6"):
        parse_rules(doc, "rules.yaml", settings=Settings(privacy={"min_devices": 6}))
