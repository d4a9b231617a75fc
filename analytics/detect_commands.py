"""CLI commands for outbreak detection (registered by affectwatch.cli).

* ``affectwatch detect --input FILE --method M --out alarms.csv [--period P] [--param k=v ...]``
* ``affectwatch bench detect``        — sensitivity/specificity/delay per method on labelled series
* ``affectwatch bench detect-scale``  — wall time of all detectors over 3,000 series x 2 years
* ``affectwatch bench alert-burden``  — alert-weeks and alerts before the peak, ILINet states 2010-2023
* ``affectwatch detectors``           — the detector registry (methods, frequencies)
"""
from __future__ import annotations

import json
from pathlib import Path

import typer

from analytics.detectors.registry import METHODS

METHOD_HELP = ", ".join(METHODS)


def parse_param(text: str) -> tuple[str, object]:
    """Parse one ``--param key=value``: int, float, true/false, or comma-separated numbers."""
    if "=" not in text:
        raise typer.BadParameter(f"--param must look like key=value; got {text!r}")
    key, raw = (s.strip() for s in text.split("=", 1))
    if not key:
        raise typer.BadParameter(f"--param has an empty key: {text!r}")
    low = raw.lower()
    if low in ("true", "false"):
        return key, low == "true"
    if "," in raw:
        try:
            return key, tuple(float(v) for v in raw.split(","))
        except ValueError:
            raise typer.BadParameter(f"--param {key}: comma-separated values must be numbers; got {raw!r}") from None
    for cast in (int, float):
        try:
            return key, cast(raw)
        except ValueError:
            pass
    return key, raw


def read_table(path: Path):
    import pandas as pd

    if not path.exists():
        raise typer.BadParameter(f"input file not found: {path}")
    if path.suffix.lower() in (".parquet", ".pq"):
        return pd.read_parquet(path)
    return pd.read_csv(path)


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add this area's commands to the `affectwatch` app and its `bench` group."""

    @app.command("detect")
    def detect_cmd(
        input: Path = typer.Option(..., "--input", "-i", help="CSV or Parquet with columns series, t, observed [, date]."),
        method: str = typer.Option(..., "--method", "-m", help=f"One of: {METHOD_HELP}."),
        out: Path = typer.Option(..., "--out", "-o", help="Output CSV (one row per series and t)."),
        period: int = typer.Option(None, "--period", help="Seasonal period: 52 weekly, 7 or 365 daily (inferred from date)."),
        param: list[str] = typer.Option(None, "--param", help="Method parameter key=value (repeatable), e.g. k=0.5."),
    ) -> None:
        """Run one outbreak detector over every series of a file and write the alarms table."""
        from analytics.detect import DetectInputError, detect

        params = dict(parse_param(p) for p in (param or []))
        try:
            res = detect(read_table(input), method, period=period, **params)
        except DetectInputError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        except ValueError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        out.parent.mkdir(parents=True, exist_ok=True)
        res.to_csv(out, index=False)
        typer.echo(
            f"{method}: {res['series'].nunique()} series, {len(res)} rows, {int(res['alarm'].sum())} alarms -> {out}"
        )

    @app.command("detectors")
    def detectors_cmd() -> None:
        """List the detector registry: each method, the data frequencies it suits, whether it gives a p-value."""
        from analytics.detectors.registry import table

        typer.echo(f"{'method':<20}{'frequencies':<14}{'p-value':<9}summary")
        for r in table():
            typer.echo(f"{r['method']:<20}{r['frequencies']:<14}{'yes' if r['p_value'] else 'no':<9}{r['summary']}")

    @bench_app.command("detect")
    def bench_detect(
        data: Path = typer.Option(None, help="Labelled weekly CSV (series, t, observed, outbreak)."),
    ) -> None:
        """Sensitivity, specificity, POD and median detection delay per method (last line JSON)."""
        from analytics.detectors.benchmark import LABELLED, accuracy

        path = data or LABELLED
        res = accuracy(path)
        typer.echo(f"{'method':<12}{'sens':>8}{'spec':>8}{'pod':>8}{'delay':>8}{'events':>8}{'fa':>6}")
        for m, r in res.items():
            fmt = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
            typer.echo(
                f"{m:<12}{fmt(r['sensitivity']):>8}{fmt(r['specificity']):>8}{fmt(r['pod']):>8}"
                f"{fmt(r['median_delay']):>8}{r['outbreaks']:>8}{r['false_alarms']:>6}"
            )
        typer.echo(json.dumps({"benchmark": "detect", "data": str(path), "methods": res}))

    @bench_app.command("alert-burden")
    def bench_alert_burden(
        tune: bool = typer.Option(False, "--tune", help="Also search detector/thresholds on the validation seasons."),
        rules_file: Path = typer.Option(None, help="Rule file (default: settings.alerts.rules_file)."),
        per_season: bool = typer.Option(True, "--per-season/--summary-only", help="Print every state-season."),
    ) -> None:
        """Replay the ili rule over ILINet states 2010-2023: alert-weeks and alerts before each season's peak."""
        from analytics.bench_alert_burden import run_bench

        run_bench(rules_file=rules_file, do_tune=tune, per_season=per_season, echo=typer.echo)

    @bench_app.command("detect-scale")
    def bench_detect_scale(
        series: int = typer.Option(3000, help="Number of daily series (regions)."),
        days: int = typer.Option(730, help="Days per series."),
        jobs: int = typer.Option(2, help="Worker processes."),
        seed: int = typer.Option(0),
    ) -> None:
        """Wall time of all detectors over many daily series (target <= 30 s; last line JSON)."""
        from analytics.detectors.benchmark import scale

        res = scale(series, days, jobs, seed)
        for m, r in res["methods"].items():
            typer.echo(
                f"{m:<12} {r['seconds']:>7.2f} s  cpu {r['cpu_seconds']:>7.2f} s  rows {r['rows']:>9}  alarms {r['alarms']:>7}"
            )
        typer.echo(
            f"wall time {res['wall_seconds']:.2f} s (CPU {res['cpu_seconds']:.2f} s) for {series} series x {days} days"
            f" on {jobs} processes; 1-min load average {res['load_average_1m']}"
        )
        typer.echo(json.dumps({"benchmark": "detect-scale", "target_seconds": 30, **res}))
