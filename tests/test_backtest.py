"""Backtests on FluSight-format CSVs: only data known at each reference date, reporting latency,
as-of vintages, hubverse output, the CLI as a user runs it, and errors on bad input."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from affectwatch.cli import app
from analytics.backtest import backtest, build_panel, vintage
from analytics.hubverse import FormatError, read_hub_csv, read_target_csv, write_hub_csv

STATES = ["06", "36", "48"]


@pytest.fixture(scope="module")
def small_target(tmp_path_factory, data_dir) -> tuple:
    df = read_target_csv(data_dir / "flusight" / "target-hospital-admissions.csv", locations=STATES)
    path = tmp_path_factory.mktemp("bt") / "target.csv"
    df.assign(date=df["date"].dt.strftime("%Y-%m-%d")).to_csv(path, index=False)
    return df, path


def test_only_data_on_or_before_reference_date_and_latency(small_target):
    df, _ = small_target
    ref = pd.Timestamp("2023-01-07")
    p0 = build_panel(df, ref, latency=0)
    p2 = build_panel(df, ref, latency=2)
    assert p0.y.index[-1] == ref
    assert p2.y.index[-1] == ref - pd.Timedelta(weeks=2)
    fc = backtest(df, [ref], models=["baseline"], latency=2, n_jobs=1)
    # horizons stay relative to the reference date whatever the last observed date
    assert sorted(fc["horizon"].unique()) == [0, 1, 2, 3]
    assert set(pd.to_datetime(fc["target_end_date"])) == {ref + pd.Timedelta(weeks=h) for h in range(4)}
    # the baseline median is the last *visible* value (two weeks before the reference date)
    med = fc[(fc.output_type_id == 0.5) & (fc.location == "06")]["value"].unique()
    last_visible = df[(df.location == "06") & (df.date == ref - pd.Timedelta(weeks=2))]["value"].iloc[0]
    assert med.tolist() == [last_visible]


def test_as_of_vintages_use_what_was_known_then():
    dates = pd.date_range("2022-06-04", periods=20, freq="7D")
    first = pd.DataFrame({"date": dates, "location": "01", "value": np.arange(20.0) + 10, "as_of": dates + pd.Timedelta(days=4)})
    revised = first.iloc[-3:].assign(value=lambda d: d["value"] * 10, as_of=pd.Timestamp("2022-11-05"))
    target = pd.concat([first, revised], ignore_index=True)
    ref = pd.Timestamp("2022-10-22")
    known = vintage(target, ref)
    assert known["date"].max() == dates[dates + pd.Timedelta(days=4) <= ref].max()
    assert (known["value"] < 100).all()  # the revision of 2022-11-05 was not known on 2022-10-22
    later = vintage(target, pd.Timestamp("2022-11-05"))
    assert later.set_index("date").loc[dates[-1], "value"] == 290.0
    fc = backtest(target, [ref], models=["baseline"], latency=0, n_jobs=1)
    last_known = known.sort_values("date")["value"].iloc[-1]
    gap = (ref - known["date"].max()).days // 7
    h = fc[(fc.output_type_id == 0.5) & (fc.horizon == 0)]
    assert gap == 1 and h["value"].iloc[0] == last_known


def test_reference_dates_must_be_saturdays(small_target):
    df, _ = small_target
    with pytest.raises(ValueError, match="2023-01-05"):
        backtest(df, ["2023-01-05"], models=["baseline"], n_jobs=1)


def test_hub_csv_round_trip_and_validation(tmp_path, small_target):
    df, _ = small_target
    fc = backtest(df, ["2023-01-07", "2023-01-14"], models=["baseline", "qr"], latency=1, n_jobs=1)
    path = write_hub_csv(fc, tmp_path / "hub.csv")
    header = path.read_text().splitlines()[0].split(",")
    assert header == ["reference_date", "horizon", "target", "target_end_date", "location", "output_type",
                      "output_type_id", "value", "model"]
    back = read_hub_csv(path)
    assert len(back) == len(fc) and set(back["model"]) == {"baseline", "qr"}
    broken = pd.read_csv(path, dtype={"location": str})
    i = broken.index[(broken.model == "qr") & (broken.output_type_id == 0.99)][0]
    broken.loc[i, "value"] = -5
    broken.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(FormatError, match="quantiles cross.*-5"):
        read_hub_csv(tmp_path / "bad.csv")
    broken.drop(columns=["output_type"]).to_csv(tmp_path / "nocol.csv", index=False)
    with pytest.raises(FormatError, match=r"columns needed \['output_type'\]"):
        read_hub_csv(tmp_path / "nocol.csv")


@pytest.mark.parametrize("content,message", [
    ("day,location,value\n2023-01-07,06,3\n", r"columns needed \['date'\]"),
    ("date,location,value\n2023-01-07,06,-3\n", "negative value -3"),
    ("date,location,value\nnot-a-date,06,3\n", "not-a-date"),
])
def test_bad_target_csv_is_named(tmp_path, content, message):
    p = tmp_path / "t.csv"
    p.write_text(content)
    with pytest.raises(FormatError, match=message):
        read_target_csv(p)


def _cli_backtest(runner, target_csv, models: str, out):
    """``forecast backtest`` as the README runs it: two December 2022 Saturdays, latency 1 week."""
    r = runner.invoke(app, ["forecast", "backtest", "--target-csv", str(target_csv), "--reference-dates", "2022-12-03,2022-12-10",
                            "--models", models, "--latency-weeks", "1", "--out", str(out), "--jobs", "1"])
    assert r.exit_code == 0, r.output
    return r


def test_cli_backtest_then_score(tmp_path, small_target):
    _, path = small_target
    runner = CliRunner()
    hub = tmp_path / "hub.csv"
    r = _cli_backtest(runner, path, "baseline,glm,qr,ensemble", hub)
    assert "wrote" in r.output and hub.exists()
    # a file without a target column: the product's own name (the warehouse's syndrome)
    assert set(pd.read_csv(hub)["target"]) == {"wk inc flu_admissions"}
    out = tmp_path / "scores"
    r = runner.invoke(app, ["forecast", "score", "--forecasts", str(hub), "--truth", str(path), "--out-dir", str(out)])
    assert r.exit_code == 0, r.output
    summary = pd.read_csv(out / "summary.csv")
    assert set(summary["model"]) == {"baseline", "glm", "qr", "ensemble"}
    assert summary.set_index("model").loc["baseline", "rel_wis"] == 1.0
    assert summary["n"].eq(2 * 3 * 4).all()  # 2 reference dates x 3 states x 4 horizons
    assert (out / "pit.csv").exists() and "PIT histogram" in r.output


def _hub_submissions(ours: pd.DataFrame, folder) -> None:
    """Our qr forecasts written as a FluSight hub model's submissions: one file per reference date,
    named <date>-<model>.csv, no model column, the hub's target name, and the rows a hub file also holds
    (rate-change pmf, sample trajectories, a peak target without horizon)."""
    folder.mkdir(parents=True)
    qr = ours[ours.model == "qr"].drop(columns="model").assign(target="wk inc flu hosp")
    for ref, g in qr.groupby("reference_date"):
        extra = pd.DataFrame([
            {**g.iloc[0].to_dict(), "target": "wk flu hosp rate change", "output_type": "pmf", "output_type_id": "increase", "value": 0.4},
            {**g.iloc[0].to_dict(), "output_type": "sample", "output_type_id": "s7", "value": 120.0},
            {**g.iloc[0].to_dict(), "target": "peak inc flu hosp", "horizon": None, "target_end_date": None, "output_type_id": "0.5"},
            {**g.iloc[0].to_dict(), "target": "wk inc flu prop ed visits", "output_type_id": "0.5", "value": 0.03},
        ])
        pd.concat([g, extra]).to_csv(folder / f"{ref}-Hub-model.csv", index=False)


def test_cli_score_with_a_hub_models_folder(tmp_path, small_target):
    """A FluSight hub model's folder of submissions is scored next to our backtest, on the same forecasts."""
    _, path = small_target
    runner = CliRunner()
    ours = tmp_path / "ours.csv"
    _cli_backtest(runner, path, "baseline,qr", ours)
    folder = tmp_path / "model-output" / "Hub-model"
    _hub_submissions(pd.read_csv(ours, dtype={"location": str}), folder)
    back = read_hub_csv(folder)
    assert set(back["model"]) == {"Hub-model"} and set(back["target"]) == {"wk inc flu hosp"}
    assert set(back["output_type"]) == {"quantile"} and len(back) == 2 * 3 * 4 * 23
    ed = read_hub_csv(folder, target="wk inc flu prop ed visits")  # a second quantile target, chosen by name
    assert set(ed["target"]) == {"wk inc flu prop ed visits"} and len(ed) == 2
    assert len(read_hub_csv(ours, target="wk inc flu hosp")) == len(pd.read_csv(ours))  # one target: read whatever its name
    out = tmp_path / "scores"
    r = runner.invoke(app, ["forecast", "score", "--forecasts", str(ours), "--forecasts", str(folder), "--truth", str(path),
                            "--out-dir", str(out)])
    assert r.exit_code == 0, r.output
    assert "all are scored against the same truth" in r.output
    s = pd.read_csv(out / "summary.csv").set_index("model")
    assert set(s.index) == {"baseline", "qr", "Hub-model"} and s["n"].eq(2 * 3 * 4).all()
    assert s.loc["Hub-model", "wis"] == pytest.approx(s.loc["qr", "wis"])  # the same forecasts score the same
    assert s.loc["Hub-model", "rel_wis"] == pytest.approx(s.loc["qr", "rel_wis"])
    r = runner.invoke(app, ["forecast", "score", "--forecasts", str(ours), "--forecasts", str(ours), "--truth", str(path)])
    assert r.exit_code != 0 and "more than one input" in r.output
    # the hub model against our qr as the reference; a reference that is not an input is an error
    r = runner.invoke(app, ["forecast", "score", "--forecasts", str(ours), "--forecasts", str(folder), "--truth", str(path),
                            "--out-dir", str(out), "--baseline", "qr"])
    assert r.exit_code == 0, r.output
    assert pd.read_csv(out / "summary.csv").set_index("model")["rel_wis"].to_dict() == pytest.approx(
        {"qr": 1.0, "Hub-model": 1.0, "baseline": s.loc["baseline", "rel_wis"] / s.loc["qr", "rel_wis"]})
    r = runner.invoke(app, ["forecast", "score", "--forecasts", str(folder), "--truth", str(path), "--baseline", "FluSight-baseline"])
    said = " ".join(r.output.replace("│", " ").split())  # the error panel wraps long lines
    assert r.exit_code == 2 and "'FluSight-baseline' is not among the inputs' models ['Hub-model']" in said, said
    # one hub model alone: scored, with a note that relative WIS needs a baseline
    r = runner.invoke(app, ["forecast", "score", "--forecasts", str(folder), "--truth", str(path), "--out-dir", str(out)])
    assert r.exit_code == 0 and "relative WIS is left empty" in r.output, r.output
    alone = pd.read_csv(out / "summary.csv")
    assert list(alone["model"]) == ["Hub-model"] and alone["rel_wis"].isna().all() and alone["wis"].notna().all()
    only_pmf = tmp_path / "pmf.csv"
    pd.read_csv(folder / "2022-12-03-Hub-model.csv").query("output_type == 'pmf'").to_csv(only_pmf, index=False)
    r = runner.invoke(app, ["forecast", "score", "--forecasts", str(only_pmf), "--truth", str(path)])
    assert r.exit_code == 2 and "no quantile forecasts" in r.output
