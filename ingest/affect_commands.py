"""`affectwatch load-affect` (survey affect into the warehouse) and `affectwatch forecast lift-real`
(the real-data lift analysis with its negative and positive controls)."""
from __future__ import annotations

from pathlib import Path

import typer

from affectwatch.settings import REPO_ROOT

AFFECT_DIR = REPO_ROOT / "data" / "affect_real"
AFFECT_FILES = tuple(AFFECT_DIR / f"ctis_smoothed_{s}.csv.gz" for s in ("wdepressed_7d", "wworried_finances", "wili"))
TARGET_FILES = {"covid": AFFECT_DIR / "hhs_confirmed_admissions_covid_1d_7dav.csv.gz",
                "flu": AFFECT_DIR / "hhs_confirmed_admissions_influenza_1d_prop_7dav.csv.gz"}


def load_affect(
    files: list[Path] = typer.Argument(..., exists=True, dir_okay=False, help="COVIDcast or plain CSV file(s), .csv or .csv.gz."),
    fmt: str = typer.Option("covidcast", "--format", help="covidcast | csv (region_id, date, indicator, value, stderr, sample_size, issue, source)."),
) -> None:
    """Load survey affect indicators (modality survey, REAL) into the warehouse; revisions by issue kept.

    Rows with invalid values go to the dead-letter table (topic 'file:<name>') with a named reason.
    """
    from ingest.load_affect import AffectFileError, load_file

    failed = False
    for f in files:
        try:
            res = load_file(f, fmt=fmt)
        except AffectFileError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        typer.echo(f"{f.name}: {res.summary()}")
        if res.dead_letters:
            typer.echo(f"{res.dead_letters} row(s) of {f.name} were rejected to dead_letters (topic 'file:{f.name}'); "
                       f"reasons: {res.reason_counts}", err=True)
            failed |= res.rows == 0 and res.unchanged == 0
    if failed:
        raise typer.Exit(1)


def lift_real(
    affect_csv: list[Path] = typer.Option(list(AFFECT_FILES), exists=True, dir_okay=False,
                                          help="Survey affect COVIDcast files (wdepressed_7d, wworried_finances, wili)."),
    covid_csv: Path = typer.Option(TARGET_FILES["covid"], exists=True, dir_okay=False, help="HHS COVID-19 admissions (COVIDcast)."),
    flu_csv: Path = typer.Option(TARGET_FILES["flu"], exists=True, dir_okay=False, help="HHS influenza admissions per 100k (COVIDcast)."),
    targets: str = typer.Option("covid,flu", help="Targets to test."),
    freqs: str = typer.Option("W,D", help="W = weekly (horizons 0-3 weeks), D = daily (horizons 1-14 days)."),
    states: str = typer.Option("", help="Comma-separated 2-digit FIPS codes; default every state."),
    variants: str = typer.Option("", help="Comma-separated covariate variants (affect, wdepressed_7d, wworried_finances, "
                                           "permuted_state, shifted, wili); default all."),
    daily_every: int = typer.Option(14, help="Days between daily reference dates."),
    shift_days: int = typer.Option(56, help="Delay of the 'shifted' negative control (days)."),
    seed: int = typer.Option(0, help="Seed of the permuted-state control and the bootstrap."),
    n_boot: int = typer.Option(2000, help="Bootstrap replicates of the WIS-ratio interval."),
    jobs: int = typer.Option(2, help="Worker processes (reference dates in parallel)."),
    out: Path = typer.Option(Path("lift_real"), help="Directory for lift_real.csv, forecasts and scores."),
    reuse: bool = typer.Option(False, help="Reuse scores already in --out from an earlier run with the same options."),
) -> None:
    """WIS(symptom-only)/WIS(+ real survey affect) on HHS admissions, with negative and positive controls.

    Prints the overall rows per target, frequency and variant; the last line is one JSON object.
    """
    import pandas as pd

    from analytics.lift_real import VARIANTS, LiftRealConfig, run, summary, summary_json

    cfg = LiftRealConfig(targets=tuple(t for t in targets.split(",") if t), freqs=tuple(f for f in freqs.split(",") if f),
                         states=tuple(s for s in states.split(",") if s) or None, daily_every=daily_every,
                         variants=tuple(v for v in variants.split(",") if v) or VARIANTS,
                         shift_days=shift_days, seed=seed, n_boot=n_boot, n_jobs=jobs, reuse=reuse)
    unknown = set(cfg.targets) - {"covid", "flu"}
    if unknown or not set(cfg.freqs) <= {"W", "D"} or not set(cfg.variants) <= set(VARIANTS):
        typer.echo(f"error: targets must be covid/flu, freqs W/D, variants among {', '.join(VARIANTS)}; "
                   f"got {targets!r}, {freqs!r}, {variants!r}", err=True)
        raise typer.Exit(2)
    out.mkdir(parents=True, exist_ok=True)
    table = run({"covid": covid_csv, "flu": flu_csv}, affect_csv, cfg, out)
    pd.set_option("display.width", 220)
    typer.echo("Real survey affect (REAL, modality survey) — WIS ratio symptom-only / fused, overall rows; "
               "per-state intervals Bonferroni-adjusted")
    typer.echo(summary(table).round(3).to_string(index=False))
    typer.echo(f"wrote {out / 'lift_real.csv'}")
    typer.echo(summary_json(table))


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add this area's commands to the `affectwatch` app (and `forecast lift-real`)."""
    from analytics.commands import forecast_app

    app.command("load-affect", help=load_affect.__doc__)(load_affect)
    forecast_app.command("lift-real", help=lift_real.__doc__)(lift_real)
