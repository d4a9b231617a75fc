"""`bench alert-burden` pieces: the replay is prospective (week t's level uses weeks <= t only) and the
per-season bookkeeping (alert-weeks, alert in the 6 weeks before the peak) counts what it says."""
from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import pytest

from affectwatch.settings import REPO_ROOT
from alerts.rules import load_rules
from analytics import bench_alert_burden as bab


@pytest.fixture(scope="module")
def ili_three_states(tmp_path_factory):
    """The real ILINet history of three states, through the product's loader and series builder."""
    lines = bab.ILINET.read_text().splitlines()
    keep = lines[:2] + [ln for ln in lines[2:] if ln.split(",")[1] in ("Alabama", "Oregon", "Vermont")]
    path = tmp_path_factory.mktemp("ili") / "ilinet_three.csv"
    path.write_text("\n".join(keep) + "\n")
    rule = load_rules(REPO_ROOT / "config" / "alert_rules.yaml").signals["ili"]
    return rule, bab.load_series(rule, path)


@pytest.mark.slow
def test_replaying_in_one_pass_equals_cutting_the_history_week_by_week(ili_three_states):
    rule, data = ili_three_states
    assert sorted(data["series"].unique()) == ["01", "41", "50"]
    full = bab.weekly_levels(data, rule).set_index(["series", "t"])["level"]
    ts = sorted(data["t"].unique())
    for cut in (ts[200], ts[330], ts[-40]):  # weeks in three different seasons
        part = bab.weekly_levels(data[data["t"] <= cut], rule).set_index(["series", "t"])["level"]
        for region in ("01", "41", "50"):
            assert part.loc[(region, cut)] == full.loc[(region, cut)], (region, cut)
    assert full.isin(["red", "yellow"]).any()


def _levels(region, start, values, alert_weeks):
    t0 = 2000
    rows = []
    for i, v in enumerate(values):
        d = start + timedelta(weeks=i)
        rows.append({"series": region, "t": t0 + i, "date": pd.Timestamp(d), "period_end": d + timedelta(days=6),
                     "observed": v, "filled": False, "level": "yellow" if i in alert_weeks else None})
    return pd.DataFrame(rows)


def test_state_season_bookkeeping():
    start = date(2016, 10, 2)  # MMWR 2016 week 40 starts on Sunday 2016-10-02
    values = [1.0] * 52
    values[20] = 9.0  # the peak: week 20 of the season
    early = _levels("01", start, values, alert_weeks={14, 30})  # 6 weeks before the peak: counts
    late = _levels("02", start, values, alert_weeks={20, 21})  # at / after the peak: does not
    ss = bab.state_seasons(pd.concat([early, late])).set_index("region")
    assert ss.loc["01", "season"] == 2016 and ss.loc["01", "weeks"] == 52
    assert ss.loc["01", "alert_weeks"] == 2 and bool(ss.loc["01", "alert_before_peak"]) and ss.loc["01", "lead_weeks"] == 6
    assert not ss.loc["02", "alert_before_peak"] and ss.loc["02", "alert_weeks"] == 2
    summary = bab.summarise(ss.reset_index(), (2016,))
    assert summary["alert_week_share"] == round(4 / 104, 4) and summary["pre_peak_share"] == 0.5


def test_validation_and_reported_seasons_do_not_overlap():
    assert not set(bab.VALIDATION) & set(bab.REPORTED)
    assert max(bab.VALIDATION) < min(bab.REPORTED)
