"""CLI commands for the device-fleet simulator and the symptom file loader (registered by affectwatch.cli)."""
from __future__ import annotations

from pathlib import Path

import typer

from affectwatch import target_data as TD

SIMULATED_NOTE = "The affect data are SIMULATED (synthetic device fleet); symptom values come from the real series."


def _split_regions(regions: str | None) -> list[str] | None:
    return [r.strip() for r in regions.split(",") if r.strip()] if regions else None


def simulate(
    scenario: str = typer.Option("lead", help="lead: affect rises --lead-days before symptoms; null: affect unrelated to symptoms (negative control)."),
    start: str = typer.Option(None, help="First day (YYYY-MM-DD). Default: start of the symptom series."),
    end: str = typer.Option(None, help="Last day, inclusive (YYYY-MM-DD). Default: end of the symptom series."),
    regions: str = typer.Option(None, help="Comma-separated state FIPS codes, e.g. 06,36. Default: every region in the series."),
    devices_per_region: int = typer.Option(20, min=1, help="Simulated devices per region."),
    counties: str = typer.Option(None, help="Comma-separated state FIPS codes whose counties are simulated too "
                                 "(devices by county population proxy, data/geo/county_population_proxy.csv)."),
    h3_resolution: int = typer.Option(None, min=0, max=8, help="Also simulate H3 cells of this resolution covering "
                                      "the --counties states (devices by area-apportioned population)."),
    people_per_device: float = typer.Option(300_000, min=1, help="County / H3 fleet size: one device per N people "
                                            "(at least 3, at most 30 per region)."),
    window_minutes: int = typer.Option(60, min=5, max=1440, help="Window length in minutes (must divide a day)."),
    lead_days: int = typer.Option(14, min=0, help="Days by which simulated affect leads the symptom series (lead scenario)."),
    rate: float = typer.Option(None, min=0.001, help="Messages per second; default: as fast as possible (backfill)."),
    symptoms_csv: Path = typer.Option(None, exists=True, help=TD.HELP + " Drives the fleet. Default: data/flusight/target-hospital-admissions.csv."),
    syndrome: str = typer.Option("flu_admissions", help="Syndrome name of the emitted SymptomReports."),
    source: str = typer.Option("flusight-nhsn", help="Source name of the emitted SymptomReports."),
    revise_share: float = typer.Option(0.0, min=0.0, max=1.0, help="Share of weeks first reported as a SIMULATED provisional undercount, then revised."),
    dp_epsilon: float = typer.Option(None, min=0.0001, help="Laplace noise epsilon applied by the simulated devices (default: none)."),
    seed: int = typer.Option(0, help="Random seed; the same arguments and seed give the same records."),
    no_symptoms: bool = typer.Option(False, "--no-symptoms", help="Do not emit SymptomReports."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Write JSON lines to --out instead of producing to Kafka."),
    out: Path = typer.Option(None, help="JSON-lines output for --dry-run: one {topic, key, simulated, value} object per line."),
) -> None:
    """Simulate a fleet of edge devices: SIMULATED AffectWindows (+ real SymptomReports) to Kafka.

    The affect data produced by this command are SIMULATED and carry the Kafka header aw-simulated=1
    (simulated=true in the warehouse). Symptom reports replay the real weekly values of the series.
    """
    import logging

    import msgspec

    from affectwatch.progress import progress
    from affectwatch.settings import get_settings
    from ingest import simulate as sim

    if dry_run and out is None:
        raise typer.BadParameter("--dry-run needs --out FILE", param_hint="--out")
    s = get_settings()
    try:
        series = sim.load_series(symptoms_csv or sim.DEFAULT_SERIES)
        windows = sim.simulate_windows(
            series, scenario, start, end, _split_regions(regions), devices_per_region, window_minutes, lead_days,
            seed, s, dp_epsilon=dp_epsilon, counties=_split_regions(counties), h3_resolution=h3_resolution,
            people_per_device=people_per_device,
        )
        reports = [] if no_symptoms else list(sim.simulate_symptom_reports(
            series, _split_regions(regions), start, end, syndrome, source, revise_share=revise_share, seed=seed))
        # the first window surfaces argument errors before anything is produced
        first = next(windows, None)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    symptoms_simulated = revise_share > 0
    typer.echo(f"NOTE: {SIMULATED_NOTE}", err=True)
    bar = progress(desc="SIMULATED affect windows", unit="win")

    def all_windows():
        if first is not None:
            yield first
        yield from windows

    if dry_run:
        enc = msgspec.json.Encoder()
        n_win = 0
        with out.open("wb") as fh:
            for rep in reports:
                fh.write(enc.encode({"topic": s.kafka.symptom_topic, "key": rep["region_id"], "simulated": symptoms_simulated, "value": rep}) + b"\n")
            for w in all_windows():
                fh.write(enc.encode({"topic": s.kafka.affect_topic, "key": w["region_id"], "simulated": True, "value": w}) + b"\n")
                n_win += 1
                bar.update()
        bar.close()
        typer.echo(f"wrote {n_win} SIMULATED affect windows and {len(reports)} symptom reports to {out} (dry run, nothing sent)")
        return
    logging.getLogger("kafka").setLevel(logging.WARNING)  # kafka-python's connection chatter
    n_rep = sim.produce(reports, s.kafka.symptom_topic, s, simulated=symptoms_simulated) if reports else 0
    n_win = sim.produce(all_windows(), s.kafka.affect_topic, s, rate=rate, simulated=True, on_sent=bar.update)
    bar.close()
    typer.echo(f"produced {n_win} SIMULATED affect windows to {s.kafka.affect_topic} "
               f"and {n_rep} symptom reports to {s.kafka.symptom_topic} ({s.kafka.bootstrap_servers})")


def load_symptoms(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="CSV file: FluSight target data, an ESSENCE/NSSP export, or an ILINet state file."),
    syndrome: str = typer.Option(None, help="Syndrome name (ili, covid_like, flu_admissions, ...). Default: from the format / a 'syndrome' column."),
    source: str = typer.Option(None, help="Source name stored with each report. Default: from the format."),
    fmt: str = typer.Option("auto", "--format", help="auto | flusight | essence | ilinet"),
    reported_lag_days: int = typer.Option(None, help="Historical backfill: rows without a report time are dated "
                                          "period end + N days (default: the load time)."),
) -> None:
    """Load a symptom CSV into the warehouse as SymptomReports (revisions kept, identical re-loads skipped).

    Rows with invalid values go to the dead-letter table (topic 'file:<name>') with a named reason.
    """
    from ingest.load_symptoms import SymptomFileError, load_file

    try:
        res = load_file(file, syndrome=syndrome, source=source, fmt=fmt, reported_lag_days=reported_lag_days)
    except SymptomFileError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(res.summary())
    if res.dead_letters:
        typer.echo(f"{res.dead_letters} row(s) were rejected to dead_letters (topic 'file:{file.name}'); "
                   f"reasons: {res.reason_counts}", err=True)
        if res.rows == 0 and res.unchanged == 0:
            raise typer.Exit(1)


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add this area's commands to the `affectwatch` app and its `bench` group."""
    app.command("simulate", help=simulate.__doc__)(simulate)
    app.command("load-symptoms", help=load_symptoms.__doc__)(load_symptoms)
