"""The one typed settings object shared by every AffectWatch process.

Every field names its environment variable (``AFFECTWATCH_<SECTION>__<FIELD>`` or the
explicit alias below). Secrets come only from the environment. A documented example
lives in ``config/affectwatch.example.env``.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[1]


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class KafkaSettings(_Section):
    """Connection to a Kafka cluster (local broker by default)."""

    bootstrap_servers: str = "127.0.0.1:9092"  # comma-separated list
    affect_topic: str = "affect.windows.v1"
    symptom_topic: str = "symptoms.reports.v1"
    dlq_topic: str | None = None  # optional dead-letter topic, in addition to the table
    group_id: str = "affectwatch-ingest"
    client_id: str = "affectwatch"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    partitions: int = 4  # used when the local tooling creates topics
    max_message_bytes: int = 16_384  # larger payloads are dead-lettered as `oversized_payload`
    batch_max_records: int = 50_000
    batch_max_seconds: float = 0.5

    def client_kwargs(self) -> dict:
        """Keyword arguments shared by kafka-python producers, consumers and admin clients."""
        kw: dict = {
            "bootstrap_servers": [s.strip() for s in self.bootstrap_servers.split(",") if s.strip()],
            "client_id": self.client_id,
            "security_protocol": self.security_protocol,
        }
        if self.ssl_cafile:
            kw["ssl_cafile"] = self.ssl_cafile
        if self.ssl_certfile:
            kw["ssl_certfile"] = self.ssl_certfile
        if self.ssl_keyfile:
            kw["ssl_keyfile"] = self.ssl_keyfile
        if self.sasl_mechanism:
            kw["sasl_mechanism"] = self.sasl_mechanism
            kw["sasl_plain_username"] = self.sasl_username
            kw["sasl_plain_password"] = self.sasl_password.get_secret_value() if self.sasl_password else None
        return kw


class WarehouseSettings(_Section):
    """DuckLake warehouse: catalog (SQLite default, or PostgreSQL) + Parquet data path."""

    catalog: str = ""  # default: <data_dir>/warehouse/catalog.sqlite ; or "postgres:dbname=... host=..."
    data_path: str = ""  # default: <data_dir>/warehouse/data/ ; or s3://bucket/prefix/
    alias: str = "wh"
    extension_dir: str = ""  # DuckDB extensions (installed from the offline wheels); default <data_dir>/duckdb_extensions
    data_inlining_row_limit: int = 0  # 0 disables DuckLake inlining (rows always go to Parquet)
    # Object storage for the data path (s3://...; e.g. MinIO in docker-compose profile `scale`).
    s3_endpoint: str | None = None  # host:port, e.g. minio:9000; None = AWS
    s3_key_id: str | None = None
    s3_secret: SecretStr | None = None
    s3_region: str = "us-east-1"
    s3_use_ssl: bool = True
    s3_url_style: Literal["vhost", "path"] = "path"
    retention_days_dead_letters: int = 90


class PrivacySettings(_Section):
    """The one set of minimums for windows and region-period affect cells (alert rules may only raise them)."""

    k_min: int = Field(default=11, ge=1)  # minimum scored observations in a window / cell
    min_devices: int = Field(default=3, ge=1)  # minimum distinct devices in a region-period cell
    min_quality: float = Field(default=0.3, ge=0.0, le=1.0)  # minimum capture quality of a cell, [0, 1]
    min_survey_sample_size: int = Field(default=100, ge=1)  # survey affect cells with fewer respondents are suppressed
    clock_skew_seconds: int = 300
    min_window_seconds: int = 300
    max_window_seconds: int = 86_400


class SmtpSettings(_Section):
    host: str = "127.0.0.1"
    port: int = 8025
    security: Literal["none", "starttls", "ssl"] = "none"
    ca_file: str | None = None  # extra CA certificate(s) to trust, e.g. an internal/self-signed relay
    username: str | None = None
    password: SecretStr | None = None
    sender: str = "AffectWatch <alerts@affectwatch.local>"
    timeout_s: float = 10.0
    max_attempts: int = 8
    backoff_base_s: float = 30.0
    workers: int = Field(default=4, ge=1, le=32)  # parallel SMTP connections per delivery pass
    batch_size: int = Field(default=200, ge=1)  # messages claimed (and marked) per warehouse transaction


class AlertSettings(_Section):
    rules_file: str = ""  # default: <repo>/config/alert_rules.yaml
    cooldown_hours: int = 72
    timezone: str = "America/New_York"
    # `affectwatch schedule` jobs (crontab syntax, in `timezone`)
    forecast_cron: str = "0 5 * * *"  # forecast refresh, daily
    detect_cron: str = "15 * * * *"  # detection + alert lifecycle, hourly
    deliver_cron: str = "* * * * *"  # immediate emails, due digests, retries: every minute


class ForecastSettings(_Section):
    # also store the pooled models (gbq, qar and their affect variants) as forecasts of their own in
    # `forecast run`; they always run as the members of the weekly ensemble (analytics.models.ensemble)
    pooled_models: bool = False


class AnalystSettings(_Section):
    """The analyst store: suppressed marts published for `affectwatch sql` (see analyst/store.py)."""

    store_dir: str = ""  # default: <data_dir>/analyst ; one DuckDB file per publication
    grace_hours: float = 72.0  # a period is published only this long after it ends (late windows)
    keep_publications: int = 200  # older publication files are deleted (0 = keep all)
    refresh_cron: str = "40 * * * *"  # `affectwatch schedule` job `analyst-refresh` (crontab, alerts.timezone)


class DashboardSettings(_Section):
    users_file: str = ""  # local users file with bcrypt hashes (see affectwatch users add); must exist if set
    session_secret: SecretStr | None = None  # HMAC key of sign-in sessions (>= 32 chars); unset = generated 0600 file in data_dir
    session_hours: float = 12.0  # a sign-in lasts this long (reloads and shared links open without a new sign-in)
    login_max_failures: int = 5  # failed sign-ins per user name within login_window_minutes (x5 per client address)
    login_window_minutes: float = 15.0
    basemap_style: str = ""  # URL of a map style; empty = offline blank style from static/
    stale_after_hours: float = 36.0
    port: int = 8501


class Settings(BaseSettings):
    """Frozen, typed settings. Nested fields read from ``AFFECTWATCH_KAFKA__BOOTSTRAP_SERVERS`` etc."""

    model_config = SettingsConfigDict(
        env_prefix="AFFECTWATCH_",
        env_nested_delimiter="__",
        env_file=None,
        frozen=True,
        extra="ignore",
    )

    data_dir: Path = Field(default=REPO_ROOT / "var")
    log_level: str = "INFO"
    log_format: Literal["auto", "json", "console"] = "auto"  # auto: coloured lines on a terminal, else JSON
    log_file: str = ""  # library logs + a JSON copy of every event; default <data_dir>/logs/affectwatch.log
    kafka: KafkaSettings = KafkaSettings()
    warehouse: WarehouseSettings = WarehouseSettings()
    privacy: PrivacySettings = PrivacySettings()
    smtp: SmtpSettings = SmtpSettings()
    alerts: AlertSettings = AlertSettings()
    forecast: ForecastSettings = ForecastSettings()
    dashboard: DashboardSettings = DashboardSettings()
    analyst: AnalystSettings = AnalystSettings()

    # -- derived paths -------------------------------------------------------------
    @property
    def extension_dir(self) -> Path:
        """Several data dirs (or a read-only shared install) may use one extension directory."""
        return Path(self.warehouse.extension_dir) if self.warehouse.extension_dir else self.data_dir / "duckdb_extensions"

    @property
    def log_path(self) -> Path:
        return Path(self.log_file).expanduser() if self.log_file else self.data_dir / "logs" / "affectwatch.log"

    @property
    def catalog(self) -> str:
        return self.warehouse.catalog or f"sqlite:{self.data_dir / 'warehouse' / 'catalog.sqlite'}"

    @property
    def data_path(self) -> str:
        return self.warehouse.data_path or str(self.data_dir / "warehouse" / "data") + "/"

    @property
    def analyst_store_dir(self) -> Path:
        return Path(self.analyst.store_dir) if self.analyst.store_dir else self.data_dir / "analyst"

    @property
    def rules_file(self) -> Path:
        return Path(self.alerts.rules_file) if self.alerts.rules_file else REPO_ROOT / "config" / "alert_rules.yaml"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
