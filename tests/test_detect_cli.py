"""Input validation through detect() and the `affectwatch detect` CLI; the CLI's output table."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from affectwatch.cli import app
from analytics.detect import METHODS, OUTPUT_COLUMNS, DetectInputError, detect

FIXTURE = Path(__file__).parent / "data" / "detect" / "rki_two_series.csv"


def good(n=12) -> pd.DataFrame:
    return pd.DataFrame({"series": "a", "t": range(1, n + 1), "observed": [3, 4, 2, 5, 3, 4, 2, 3, 5, 4, 3, 9][:n]})


def with_value(col, row, value) -> pd.DataFrame:
    df = good().astype(object)
    df.loc[row, col] = value
    return df


# (frame, method, params, fragments the error message must contain)
BAD_INPUTS = [
    (good().drop(columns=["observed"]), "ears-c1", {}, ["missing required column", "observed", "columns available"]),
    (good().drop(columns=["series", "t"]), "ewma", {}, ["series", "t"]),
    (with_value("observed", 2, "abc"), "ears-c2", {}, ["'observed'", "row 2", "'abc'"]),
    (with_value("observed", 4, None), "cusum", {}, ["'observed'", "row 4", "missing"]),
    (with_value("observed", 5, -3), "farrington", {}, ["negative", "row 5", "-3"]),
    (with_value("t", 1, 1.5), "ears-c3", {}, ["'t'", "integers", "row 1"]),
    (with_value("t", 3, 3), "ewma", {}, ["duplicate", "row 2", "row 3"]),
    (good().drop(index=[6]), "regression", {}, ["consecutive", "'a'", "t=8"]),
    (good().assign(date=["2025-01-01"] * 11 + ["not a date"]), "switch", {}, ["'date'", "row 11", "not a date"]),
    (good().iloc[:0], "ears-c1", {}, ["no rows"]),
    (good(), "c4", {}, ["unknown method", "'c4'", "ears-c1"]),
    (good(), "cusum", {"kk": 1}, ["unknown parameter", "kk", "allowed", "h"]),
    (good(), "farrington", {"threshold_method": "xyz"}, ["threshold_method", "xyz"]),
    (good(), "ewma", {"smoothing": 1.5}, ["smoothing", "1.5"]),
]


@pytest.mark.parametrize("frame,method,params,fragments", BAD_INPUTS)
def test_detect_rejects_bad_input_with_named_values(frame, method, params, fragments):
    with pytest.raises(ValueError) as exc:
        detect(frame, method, **params)
    for frag in fragments:
        assert frag in str(exc.value), (frag, str(exc.value))


def test_validation_reports_all_problems_at_once():
    df = with_value("observed", 2, "x")
    df.loc[7, "observed"] = -1
    with pytest.raises(DetectInputError) as exc:
        detect(df, "ears-c1")
    assert "row 2" in str(exc.value) and "row 7" in str(exc.value)


@pytest.mark.parametrize("method", METHODS)
def test_every_method_returns_the_contract_columns(method):
    df = pd.read_csv(FIXTURE)
    out = detect(df, method)
    assert list(out.columns) == [c for c in OUTPUT_COLUMNS if c != "date"]
    assert len(out) == len(df)
    assert out["alarm"].dtype == bool
    assert set(out["level"].dropna()) <= {"red", "yellow"}
    assert set(out["reason"].dropna()) <= {"insufficient_baseline", "too_few_recent_cases"}
    # no verdict without a baseline: expected NaN and never an alarm
    nob = out["reason"].eq("insufficient_baseline")
    assert out.loc[nob, "expected"].isna().all() and not out.loc[nob, "alarm"].any()
    # alarms carry a level, non-alarms none
    assert out.loc[out["alarm"], "level"].notna().all() and out.loc[~out["alarm"], "level"].isna().all()


def test_dates_are_passed_through_and_define_the_period():
    days = 400
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"series": "d", "t": range(days), "observed": rng.poisson(4, days),
                       "date": pd.date_range("2024-01-01", periods=days).strftime("%Y-%m-%d")})
    out = detect(df, "farrington")  # daily dates -> period 365: one year + w = 368 days before a verdict
    assert "date" in out.columns and str(out["date"].iloc[0]) == "2024-01-01"
    assert out["reason"].iloc[:368].eq("insufficient_baseline").all() and out["expected"].iloc[368:].notna().all()


runner = CliRunner()


def test_cli_writes_the_output_columns(tmp_path):
    out = tmp_path / "alarms.csv"
    res = runner.invoke(app, ["detect", "--input", str(FIXTURE), "--method", "ears-c3", "--out", str(out)])
    assert res.exit_code == 0, res.output
    table = pd.read_csv(out)
    assert list(table.columns) == [c for c in OUTPUT_COLUMNS if c != "date"]
    assert len(table) == 160 and set(table["series"]) == {"k1", "s1"}
    assert table["alarm"].sum() == detect(pd.read_csv(FIXTURE), "ears-c3")["alarm"].sum()
    assert "alarms" in res.output


def test_cli_passes_period_and_params(tmp_path):
    out = tmp_path / "a.csv"
    res = runner.invoke(app, ["detect", "-i", str(FIXTURE), "-m", "cusum", "-o", str(out), "--param", "h=2.5",
                              "--param", "k=1"])
    assert res.exit_code == 0, res.output
    expected = detect(pd.read_csv(FIXTURE), "cusum", h=2.5, k=1.0)
    assert pd.read_csv(out)["alarm"].tolist() == expected["alarm"].tolist()
    res = runner.invoke(app, ["detect", "-i", str(FIXTURE), "-m", "ewma", "-o", str(out), "--param", "smoothing=0.4,0.9"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["detect", "-i", str(FIXTURE), "-m", "farrington", "-o", str(out), "--period", "26"])
    assert res.exit_code == 0, res.output
    assert pd.read_csv(out)["expected"].notna().sum() > 0


@pytest.mark.parametrize("frame,method,params,fragments", [b for b in BAD_INPUTS if b[2] == {} and len(b[0])])
def test_cli_rejects_bad_input(tmp_path, frame, method, params, fragments):
    src = tmp_path / "in.csv"
    frame.to_csv(src, index=False)
    res = runner.invoke(app, ["detect", "-i", str(src), "-m", method, "-o", str(tmp_path / "o.csv")])
    assert res.exit_code == 2
    text = res.output
    for frag in fragments:
        if frag.startswith("'") and frag.endswith("'") and frag.strip("'").isdigit():
            continue
        assert frag in text, (frag, text)
    assert not (tmp_path / "o.csv").exists()


def test_cli_bad_param_syntax(tmp_path):
    res = runner.invoke(app, ["detect", "-i", str(FIXTURE), "-m", "cusum", "-o", str(tmp_path / "o.csv"), "--param", "h"])
    assert res.exit_code != 0 and "key=value" in res.output
