"""FluSight target data in the hub's newer layout (the hubverse time series: ``as_of, target,
target_end_date, location, observation``), as one file or as ``as_of=`` partitions: the backtest
reads it as it reads ``date, location, value, as_of``, picks one target, and treats a single vintage
as final data."""
from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from affectwatch.cli import app
from affectwatch.target_data import HOSP_TARGET, choose_target, partition_as_of
from analytics.hubverse import FormatError, read_target_csv

STATES = ["06", "36", "48"]
VINTAGES = ("2022-12-10", "2022-12-17")


@pytest.fixture(scope="module")
def vintages(data_dir) -> pd.DataFrame:
    """Two vintages of three states' admissions: each holds the weeks before its as_of, and the
    first one's newest week was reported 20% low (revised in the second)."""
    df = read_target_csv(data_dir / "flusight" / "target-hospital-admissions.csv", locations=STATES)
    parts = []
    for as_of in VINTAGES:
        v = df[df["date"] < pd.Timestamp(as_of)].copy()
        newest = v["date"] == v["date"].max()
        if as_of == VINTAGES[0]:
            v.loc[newest, "value"] = (v.loc[newest, "value"] * 0.8).round()
        parts.append(v.assign(as_of=pd.Timestamp(as_of)))
    return pd.concat(parts, ignore_index=True)


def _hub(df: pd.DataFrame, with_as_of: bool = True) -> pd.DataFrame:
    out = pd.DataFrame({"as_of": df["as_of"].dt.strftime("%Y-%m-%d"), "target": HOSP_TARGET,
                        "target_end_date": df["date"].dt.strftime("%Y-%m-%d"), "location": df["location"],
                        "location_name": "x", "observation": df["value"], "weekly_rate": 0.1})
    ed = out.assign(target="wk inc flu prop ed visits", observation=0.02)  # a second target in the same file
    out = pd.concat([out, ed], ignore_index=True)
    return out if with_as_of else out.drop(columns="as_of")


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    key = ["as_of", "location", "date"] if "as_of" in a.columns else ["location", "date"]
    pd.testing.assert_frame_equal(a.sort_values(key).reset_index(drop=True), b.sort_values(key).reset_index(drop=True),
                                  check_dtype=False)


def test_hub_time_series_reads_like_flusight_target_data(vintages, tmp_path):
    legacy = tmp_path / "legacy.csv"
    vintages.to_csv(legacy, index=False, date_format="%Y-%m-%d")
    hub = tmp_path / "time-series.csv"
    _hub(vintages).to_csv(hub, index=False)
    got = read_target_csv(hub)
    _same(got, read_target_csv(legacy))
    assert got["value"].max() > 1  # admissions, not the ED-visit shares of the other target
    ed = read_target_csv(hub, target="wk inc flu prop ed visits")
    assert ed["value"].eq(0.02).all() and len(ed) == len(got)


def test_as_of_partitions_read_like_one_file(vintages, tmp_path):
    root = tmp_path / "time-series"
    for as_of, v in vintages.groupby(vintages["as_of"].dt.strftime("%Y-%m-%d")):
        d = root / f"as_of={as_of}"
        d.mkdir(parents=True)
        _hub(v, with_as_of=as_of != VINTAGES[0]).to_csv(d / "time-series.csv", index=False)  # one without the column
    legacy = tmp_path / "legacy.csv"
    vintages.to_csv(legacy, index=False, date_format="%Y-%m-%d")
    _same(read_target_csv(root), read_target_csv(legacy))
    first = pd.Timestamp(VINTAGES[0])
    _same(read_target_csv(root / f"as_of={VINTAGES[0]}"), read_target_csv(legacy).query("as_of == @first").drop(columns="as_of"))


def test_a_single_vintage_is_final_data(vintages, tmp_path):
    """The hub's latest time-series.csv is one vintage, published after every past reference date:
    read as known data, not as 'nothing was known then'."""
    latest = vintages[vintages["as_of"] == VINTAGES[1]]
    hub = tmp_path / "time-series.csv"
    _hub(latest).to_csv(hub, index=False)
    got = read_target_csv(hub)
    assert "as_of" not in got.columns
    _same(got, latest.drop(columns="as_of"))
    out = tmp_path / "bt.csv"
    r = CliRunner().invoke(app, ["forecast", "backtest", "--target-csv", str(hub), "--reference-dates", "2022-11-26",
                                 "--models", "baseline", "--latency-weeks", "1", "--out", str(out), "--jobs", "1"])
    assert r.exit_code == 0, r.output
    fc = pd.read_csv(out, dtype={"location": str})
    assert set(fc["location"]) == set(STATES) and set(fc["horizon"]) == {0, 1, 2, 3}
    assert set(fc["target"]) == {HOSP_TARGET}  # named as the hub names it, ready to submit


def test_cli_backtest_and_score_on_hub_partitions(vintages, tmp_path):
    root = tmp_path / "time-series"
    for as_of, v in vintages.groupby(vintages["as_of"].dt.strftime("%Y-%m-%d")):
        (root / f"as_of={as_of}").mkdir(parents=True)
        _hub(v).to_csv(root / f"as_of={as_of}" / "time-series.csv", index=False)
    out = tmp_path / "bt.csv"
    runner = CliRunner()
    r = runner.invoke(app, ["forecast", "backtest", "--target-csv", str(root), "--reference-dates", "2022-12-10",
                            "--models", "baseline,qr", "--out", str(out), "--jobs", "1"])
    assert r.exit_code == 0, r.output
    fc = pd.read_csv(out, dtype={"location": str})
    assert set(fc["target"]) == {HOSP_TARGET}  # the file's own target name; --syndrome overrides it
    # what was known on 2022-12-10: the first vintage, whose newest week (2022-12-03) was reported low
    med = fc[(fc.model == "baseline") & (fc.output_type_id == 0.5) & (fc.location == "06")]["value"].unique()
    first = vintages[(vintages.location == "06") & (vintages.date == pd.Timestamp("2022-12-03"))].set_index("as_of")["value"]
    assert med.tolist() == [first[pd.Timestamp(VINTAGES[0])]] and first[pd.Timestamp(VINTAGES[0])] < first[pd.Timestamp(VINTAGES[1])]
    # scored against the latest vintage: horizon 0 (the week ending 2022-12-10) has a truth
    r = runner.invoke(app, ["forecast", "score", "--forecasts", str(out), "--truth", str(root), "--out-dir", str(tmp_path / "s")])
    assert r.exit_code == 0, r.output
    assert set(pd.read_csv(tmp_path / "s" / "summary.csv")["model"]) == {"baseline", "qr"}
    # --syndrome names the target instead (the warehouse's name for the same admissions)
    r = runner.invoke(app, ["forecast", "backtest", "--target-csv", str(root), "--reference-dates", "2022-12-10",
                            "--models", "baseline", "--syndrome", "flu_admissions", "--out", str(out), "--jobs", "1"])
    assert r.exit_code == 0 and set(pd.read_csv(out)["target"]) == {"wk inc flu_admissions"}, r.output


def test_target_choice_and_errors(tmp_path):
    assert choose_target(["a"]) == "a"
    assert choose_target(["wk inc flu prop ed visits", HOSP_TARGET]) == HOSP_TARGET
    with pytest.raises(ValueError, match=r"several targets \['a', 'b'\]"):
        choose_target(["a", "b"])
    with pytest.raises(ValueError, match="'c' is not in the file"):
        choose_target(["a", "b"], "c")
    assert partition_as_of("target-data/time-series/as_of=2025-01-11/time-series.csv") == "2025-01-11"
    assert partition_as_of("target-data/time-series.csv") is None
    p = tmp_path / "t.csv"
    p.write_text("as_of,target,target_end_date,location,observation\n2025-01-11,a,2025-01-04,06,3\n2025-01-11,b,2025-01-04,06,4\n")
    with pytest.raises(FormatError, match="several targets"):
        read_target_csv(p)
    r = CliRunner().invoke(app, ["forecast", "backtest", "--target-csv", str(p), "--reference-dates", "2025-01-11",
                                 "--out", str(tmp_path / "o.csv")])
    assert r.exit_code == 2 and "error:" in r.output and "several targets ['a', 'b']" in r.output
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FormatError, match="without CSV files"):
        read_target_csv(empty)
    loose = tmp_path / "loose"
    loose.mkdir()
    (loose / "x.csv").write_text("target_end_date,location,observation\n2025-01-04,06,3\n")
    with pytest.raises(FormatError, match="no 'as_of' column and no as_of=YYYY-MM-DD folder"):
        read_target_csv(loose)


def test_simulator_reads_the_latest_vintage_of_a_hub_file(vintages, tmp_path):
    from ingest.simulate import load_series

    hub = tmp_path / "time-series.csv"
    _hub(vintages).to_csv(hub, index=False)
    got = load_series(hub)
    latest = vintages[vintages["as_of"] == pd.Timestamp(VINTAGES[1])]
    assert len(got) == len(latest) and set(got["region_id"]) == set(STATES)
    ca = got[(got.region_id == "06") & (got.date == pd.Timestamp("2022-12-03"))]["value"].iloc[0]
    assert ca == latest[(latest.location == "06") & (latest.date == pd.Timestamp("2022-12-03"))]["value"].iloc[0]
