"""CLI commands for this area (registered by affectwatch.cli).

`affectwatch dashboard [--host] [--port]`, `affectwatch users add NAME --role R`,
`affectwatch bench dashboard`.
"""
from __future__ import annotations

import os
from pathlib import Path

import typer

DASHBOARD_DIR = Path(__file__).resolve().parent
users_app = typer.Typer(help="Local dashboard users (bcrypt-hashed passwords and roles).", no_args_is_help=True)


def streamlit_command(host: str, port: int) -> list[str]:
    """The `streamlit run` command line of the dashboard (also used by the browser test)."""
    import sys

    return [
        sys.executable, "-m", "dashboard.serve", "run", str(DASHBOARD_DIR / "app.py"),
        "--server.address", host, "--server.port", str(port), "--server.headless", "true",
        "--server.enableStaticServing", "true", "--server.fileWatcherType", "none",
        "--browser.gatherUsageStats", "false",
    ]


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add this area's commands to the `affectwatch` app and its `bench` group."""
    app.add_typer(users_app, name="users")

    @app.command("dashboard")
    def dashboard(
        host: str = typer.Option("127.0.0.1", help="Address to bind. Anything but loopback requires authentication."),
        port: int = typer.Option(None, help="Port (default: settings.dashboard.port, 8501)."),
        users_file: Path = typer.Option(None, help="Users file (sets AFFECTWATCH_DASHBOARD__USERS_FILE)."),
    ) -> None:
        """Start the Streamlit dashboard (multipage: map, region, alerts, data quality, model trust)."""
        from affectwatch.settings import Settings, get_settings
        from dashboard.auth import UsersFileError, is_loopback, local_login_configured
        from dashboard.sessions import session_secret

        if users_file:
            os.environ["AFFECTWATCH_DASHBOARD__USERS_FILE"] = str(users_file.resolve())
        s = Settings() if users_file else get_settings()
        try:
            has_users = local_login_configured(s)
            if has_users:
                session_secret(s)  # fail now on a too-short secret; create the generated one once
        except (UsersFileError, ValueError) as exc:
            raise typer.BadParameter(str(exc), param_hint="--users-file") from None
        has_oidc = (DASHBOARD_DIR / ".streamlit" / "secrets.toml").exists()
        if not is_loopback(host) and not (has_users or has_oidc):
            raise typer.BadParameter(
                f"--host {host} is not loopback and no authentication is configured; add users with "
                "`affectwatch users add NAME --role official` or configure [auth] in dashboard/.streamlit/secrets.toml",
                param_hint="--host")
        from dashboard.maps import warm_geo_cache

        warm_geo_cache()  # simplify the boundaries once, before the first visitor waits for it
        cmd = streamlit_command(host, port or s.dashboard.port)
        typer.echo(f"AffectWatch dashboard on http://{host}:{port or s.dashboard.port}/  (data dir {s.data_dir})")
        # Become the Streamlit server (exec): signals from a supervisor reach it directly, no orphan.
        os.chdir(DASHBOARD_DIR)
        os.execve(cmd[0], cmd, dict(os.environ))

    @users_app.command("add")
    def users_add(
        name: str = typer.Argument(..., help="User name (letters, digits, _ . @ -)."),
        role: str = typer.Option(..., "--role", help="official (view, acknowledge) | analyst (view, download) | admin"),
        users_file: Path = typer.Option(None, help="Users file (default: settings.dashboard.users_file or <data_dir>/dashboard_users.yaml)."),
        password_env: str = typer.Option("AFFECTWATCH_NEW_PASSWORD", help="Read the password from this environment variable if set; else prompt."),
    ) -> None:
        """Create or update a dashboard user; stores only a bcrypt hash of the password."""
        from affectwatch.settings import get_settings
        from dashboard.auth import ROLES, add_user, users_file_path

        if role not in ROLES:
            raise typer.BadParameter(f"role {role!r} is not one of {', '.join(ROLES)}", param_hint="--role")
        path = users_file or users_file_path(get_settings())
        password = os.environ.get(password_env) or typer.prompt("Password", hide_input=True, confirmation_prompt=True)
        try:
            add_user(path, name, role, password)
        except ValueError as exc:
            raise typer.BadParameter(str(exc))
        typer.echo(f"user {name!r} ({role}) written to {path}")
        if not get_settings().dashboard.users_file and users_file:
            typer.echo(f"start the dashboard with AFFECTWATCH_DASHBOARD__USERS_FILE={path} (or --users-file)")

    @users_app.command("list")
    def users_list(users_file: Path = typer.Option(None, help="Users file.")) -> None:
        """List users and roles (never hashes)."""
        from affectwatch.settings import get_settings
        from dashboard.auth import load_users, users_file_path

        path = users_file or users_file_path(get_settings())
        for name, entry in sorted(load_users(path).items()):
            typer.echo(f"{name}\t{entry['role']}")

    @bench_app.command("dashboard")
    def bench_dashboard(
        counties: int = typer.Option(3100, help="County regions with a week of affect data."),
        devices: int = typer.Option(4, help="Devices per county."),
        runs: int = typer.Option(3, help="Timed runs per page (first run is cold)."),
    ) -> None:
        """Server-side time to build the overview map (3,000+ counties, one week) and a region detail page."""
        from dashboard.bench import run_bench

        run_bench(counties=counties, devices=devices, runs=runs, echo=typer.echo)
