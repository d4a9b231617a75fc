"""CLI: ``affectwatch forecast run|backtest|score|lift|simulate-affect`` and
``affectwatch bench forecast|forecast-scale`` (thin orchestrators; heavy imports inside)."""
from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path

import typer

from affectwatch import target_data as TD
from affectwatch.syndromes import FLU_ADMISSIONS

forecast_app = typer.Typer(help="Forecasts with uncertainty, backtests, scoring and affect lift.", no_args_is_help=True)


def _split(text: str | None) -> list[str] | None:
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


@forecast_app.command("run")
def run_cmd(
    syndrome: str = typer.Option(None, help="Only this syndrome (default: every syndrome in symptom_reports)."),
    reference_date: str = typer.Option(None, help="Saturday to forecast for (default: the week after the last observed week)."),
    freq: str = typer.Option("W", help="W (MMWR weeks, horizons 0..3) or D (days, horizons 1..14)."),
    jobs: int = typer.Option(2, help="Worker processes."),
) -> None:
    """Refresh forecasts for the latest reference date from the warehouse and write them to `forecasts`."""
    from analytics.forecast_run import run_latest

    typer.echo(json.dumps(run_latest(syndrome=syndrome, reference_date=reference_date, freq=freq, n_jobs=jobs), default=str))


@contextmanager
def _input_errors():
    """A target, model-output or affect file that does not fit is an error message and exit status 2, not a traceback."""
    from analytics.hubverse import FormatError

    try:
        yield
    except FormatError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def _read_target(path: Path, locations=None, target: str | None = None):
    from analytics.hubverse import read_target_csv

    with _input_errors():
        return read_target_csv(path, locations, target)


@forecast_app.command("backtest")
def backtest_cmd(
    target_csv: Path = typer.Option(..., exists=True, help=TD.HELP),
    target: str = typer.Option(None, help="With a target column: the target to read (default: the file's only one, else 'wk inc flu hosp')."),
    out: Path = typer.Option(..., help="Hubverse CSV to write (quantile rows + model column)."),
    reference_dates: str = typer.Option(None, help="Comma-separated Saturdays, e.g. 2022-12-03,2022-12-10."),
    start: str = typer.Option(None, help="Or: every Saturday from START ..."),
    end: str = typer.Option(None, help="... to END."),
    models: str = typer.Option("baseline,glm,qr,ets,ensemble", help="Comma-separated: baseline, glm, qr, ets, ensemble, and glm_affect, qr_affect, ensemble_affect (need --affect-csv)."),
    latency_weeks: int = typer.Option(0, help="Hide the last N periods before each reference date (reporting latency)."),
    horizons: str = typer.Option(None, help="Comma-separated horizons (default 0,1,2,3 weeks; 1..14 days)."),
    affect_csv: Path = typer.Option(None, exists=True, dir_okay=False, help="Affect features: location, date, feature columns."),
    affect_features: str = typer.Option(None, help="Affect columns the fused models use (default: all numeric feature columns)."),
    locations: str = typer.Option(None, help="Only these locations (comma-separated)."),
    syndrome: str = typer.Option(None, help="Names the target: 'wk inc <syndrome>' (default: the file's own target name when it has a target column, e.g. the hub's 'wk inc flu hosp'; else flu_admissions). flu_admissions or FluSight's 'flu hosp' mean NHSN influenza admissions (a file starting in the fall gets the vendored NHSN history)."),
    freq: str = typer.Option("W", help="W (weekly) or D (daily)."),
    jobs: int = typer.Option(2, help="Worker processes (reference dates run in parallel)."),
    to_warehouse: bool = typer.Option(False, help="Also write the forecasts to the warehouse."),
) -> None:
    """Rolling-origin backtest on a FluSight-format CSV; no warehouse or Kafka needed."""
    import pandas as pd

    from analytics.backtest import backtest, saturdays
    from analytics.forecast import target_name
    from analytics.hubverse import read_affect_csv, write_hub_csv

    if reference_dates:
        refs = [pd.Timestamp(d) for d in _split(reference_dates)]
    elif start and end:
        refs = saturdays(start, end) if freq == "W" else list(pd.date_range(start, end, freq="D"))
    else:
        raise typer.BadParameter("give --reference-dates, or --start and --end")
    target_df = _read_target(target_csv, _split(locations), target)
    # the forecasts' target: --syndrome, else the name the file itself gives (a hub file: 'wk inc flu hosp')
    name = target_name(syndrome, freq) if syndrome else target_df.attrs.get("target") or target_name(FLU_ADMISSIONS, freq)
    affect = read_affect_csv(affect_csv) if affect_csv else None
    hz = [int(h) for h in _split(horizons)] if horizons else None
    fc = backtest(target_df, refs, models=_split(models), horizons=hz, latency=latency_weeks, freq=freq, affect=affect,
                  affect_features=_split(affect_features), target_name=name, n_jobs=jobs)
    write_hub_csv(fc, out)
    fb = fc.attrs.get("fallbacks", [])
    typer.echo(f"wrote {len(fc)} rows ({fc['model'].nunique()} models, {fc['location'].nunique()} locations, "
               f"{len(refs)} reference dates) to {out}; {len(fb)} series fell back to the baseline")
    if to_warehouse:
        from affectwatch.warehouse import session
        from analytics.store import write_forecasts

        with session() as con:
            write_forecasts(con, fc)


@forecast_app.command("score")
def score_cmd(
    forecasts: list[Path] = typer.Option(..., exists=True, metavar="PATH", help="Hubverse model output: a CSV from backtest, a hub submission file or a hub model's folder (model-output/FluSight-ensemble/); repeat to score several together (relative WIS on their common forecasts)."),
    truth: Path = typer.Option(..., exists=True, help=TD.HELP),
    target: str = typer.Option(None, help="With a target column: the target to score against (default as in backtest); also chooses among a model output's several targets."),
    out_dir: Path = typer.Option(Path("scores"), help="Folder for scores.csv, summary*.csv and pit.csv."),
    baseline: str = typer.Option(None, help="Reference model of relative WIS, one of the inputs' models (default: 'baseline' when an input has it; "
                                            "a hub's is FluSight-baseline)."),
    to_warehouse: bool = typer.Option(False, help="Also write per-forecast scores to `forecast_scores`."),
) -> None:
    """WIS (+ components), relative WIS, 50/80/95% coverage and PIT histograms by model, horizon and location."""
    import pandas as pd

    from analytics.hubverse import read_hub_csv
    from analytics.scoring import pit_histogram, score, summarise

    with _input_errors():
        parts = [read_hub_csv(f, target) for f in forecasts]
    names = list(dict.fromkeys(str(p["target"].iloc[0]) for p in parts))
    if len(names) > 1:  # e.g. 'wk inc flu_admissions' (a file without a target column) and the hub's 'wk inc flu hosp'
        typer.echo(f"note: the inputs name their target {names}; all are scored against the same truth, as {names[0]!r}")
    fc = pd.concat(parts, ignore_index=True).assign(target=names[0])
    dup = fc.duplicated(["model", "location", "reference_date", "horizon", "output_type_id"])
    if dup.any():
        raise typer.BadParameter(f"model {fc.loc[dup, 'model'].iloc[0]!r} is in more than one input: give each model once")
    models = sorted(fc["model"].unique())
    if baseline is not None and baseline not in models:
        raise typer.BadParameter(f"--baseline {baseline!r} is not among the inputs' models {models}")
    if baseline is None:
        baseline = "baseline"
        if baseline not in models:  # e.g. one hub model's folder: WIS and coverage still mean something
            typer.echo(f"note: no model named 'baseline' among {models}: relative WIS is left empty "
                       "(add the baseline's forecasts, e.g. --forecasts model-output/FluSight-baseline, and --baseline FluSight-baseline)")
    scores = score(fc, _read_target(truth, target=target))
    if scores.empty:
        raise typer.BadParameter("no forecast has a truth value (check target_end_date and location against the truth file)")
    out_dir.mkdir(parents=True, exist_ok=True)
    tables = {"summary": summarise(scores, baseline=baseline), "summary_by_horizon": summarise(scores, ["horizon"], baseline),
              "summary_by_location": summarise(scores, ["location"], baseline), "pit": pit_histogram(scores)}
    scores.to_csv(out_dir / "scores.csv", index=False)
    for name, t in tables.items():
        t.to_csv(out_dir / f"{name}.csv", index=False)
    pd.set_option("display.width", 200)
    typer.echo(tables["summary"].round(3).to_string(index=False))
    typer.echo("")
    typer.echo(tables["summary_by_horizon"].round(3).to_string(index=False))
    pit = tables["pit"].pivot_table(index="model", columns="bin_lo", values="share").round(3)
    typer.echo("\nPIT histogram (share per decile; flat = calibrated):")
    typer.echo(pit.to_string())
    typer.echo(f"\nsaved scores.csv, summary.csv, summary_by_horizon.csv, summary_by_location.csv, pit.csv in {out_dir}")
    if to_warehouse:
        from affectwatch.warehouse import session
        from analytics.store import write_scores

        with session() as con:
            write_scores(con, scores)


@forecast_app.command("lift")
def lift_cmd(
    forecasts: Path = typer.Option(..., exists=True, dir_okay=False, help="Hubverse CSV with a symptom-only and a fused model."),
    truth: Path = typer.Option(..., exists=True, help=TD.HELP),
    affect_csv: Path = typer.Option(None, exists=True, dir_okay=False, help="Affect features, for the lead estimate."),
    symptom_model: str = typer.Option("ensemble", help="Symptom-only model."),
    fused_model: str = typer.Option("ensemble_affect", help="Affect-fused model."),
    feature: str = typer.Option("distress_share", help="Affect feature of the lead estimate."),
    min_dates: int = typer.Option(8, help="Fewer reference dates than this: 'insufficient data'."),
    block: int = typer.Option(4, help="Bootstrap block length (reference dates)."),
    simulated: bool = typer.Option(False, help="Mark the evidence as coming from simulated affect."),
    adjust_regions: bool = typer.Option(True, help="Bonferroni-adjust per-region intervals for the number of regions."),
    out: Path = typer.Option(Path("affect_lift.csv"), help="CSV to write."),
    to_warehouse: bool = typer.Option(False, help="Also append the rows to `affect_lift`."),
) -> None:
    """WIS(symptom-only)/WIS(fused) with a block-bootstrap 90% interval and the affect lead, per region and overall."""
    import pandas as pd

    from analytics.hubverse import read_affect_csv, read_hub_csv
    from analytics.lift import lift_table
    from analytics.scoring import score

    fc = read_hub_csv(forecasts)
    truth_df = _read_target(truth)
    scores = score(fc, truth_df)
    affect = read_affect_csv(affect_csv) if affect_csv else None
    tname = str(fc["target"].iloc[0]) if len(fc) else ""
    table = lift_table(scores, truth_df, affect, symptom_model=symptom_model, fused_model=fused_model, target_name=tname,
                       min_dates=min_dates, feature=feature, block=block, simulated=simulated,
                       adjust_regions=adjust_regions)
    table.to_csv(out, index=False)
    pd.set_option("display.width", 200)
    cols = ["location", "wis_ratio", "ratio_lo", "ratio_hi", "interval_level", "lead", "lead_lo", "lead_hi", "n_forecasts", "verdict"]
    typer.echo(table[cols].round(3).to_string(index=False))
    typer.echo(f"wrote {out}")
    if to_warehouse:
        from affectwatch.warehouse import session
        from analytics.store import write_lift

        with session() as con:
            write_lift(con, table)


@forecast_app.command("simulate-affect")
def simulate_affect_cmd(
    target_csv: Path = typer.Option(..., exists=True, help=TD.HELP),
    out: Path = typer.Option(..., help="Affect-features CSV to write (location, date, features, n_devices, ...)."),
    scenario: str = typer.Option("lead", help="lead (affect leads symptoms) or null (unrelated)."),
    regions: str = typer.Option(None, help="Comma-separated region ids (default: all in the CSV)."),
    start: str = typer.Option(None), end: str = typer.Option(None),
    devices_per_region: int = typer.Option(10), lead_days: int = typer.Option(14),
    window_minutes: int = typer.Option(1440, help="Simulated window length (5..1440)."),
    seed: int = typer.Option(0),
) -> None:
    """Build an affect-features CSV from the device-fleet simulator (SIMULATED data) for --affect-csv."""
    from analytics.affect_csv import simulate_affect, write_affect_csv

    with _input_errors():
        feats = simulate_affect(target_csv, scenario, regions=_split(regions), start=start, end=end,
                                devices_per_region=devices_per_region, window_minutes=window_minutes,
                                lead_days=lead_days, seed=seed)
    write_affect_csv(feats, out)
    typer.echo(f"wrote {len(feats)} region-weeks ({feats['location'].nunique()} regions, scenario {scenario}) to {out}")


def bench_forecast(
    target_csv: Path = typer.Option(None, help="Default: data/flusight/target-hospital-admissions.csv."),
    start: str = typer.Option("2022-10-15"), end: str = typer.Option("2023-05-27"),
    latency_weeks: int = typer.Option(1), jobs: int = typer.Option(2),
    out: Path = typer.Option(None, help="Also write the hubverse CSV here."),
) -> None:
    """Real-data backtest: WIS, relative WIS vs baseline, 50/80/95% coverage (last line JSON)."""
    from analytics.bench_forecast import real

    real(target_csv, start, end, latency_weeks, jobs, out, echo=typer.echo)


def bench_forecast_scale(weeks: int = typer.Option(150), jobs: int = typer.Option(2)) -> None:
    """3,000+ county series x 150 weeks, one reference date: wall time and peak memory (last line JSON)."""
    from analytics.bench_forecast import scale

    scale(weeks, jobs, echo=typer.echo)


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add this area's commands to the `affectwatch` app and its `bench` group."""
    app.add_typer(forecast_app, name="forecast")
    bench_app.command("forecast")(bench_forecast)
    bench_app.command("forecast-scale")(bench_forecast_scale)
