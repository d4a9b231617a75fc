"""Render the documented example environment file from the Settings declaration.

`affectwatch config-example > config/affectwatch.example.env`; a test checks the committed file
lists every setting, so the one place where configuration is documented cannot drift.
"""
from __future__ import annotations

from pydantic import BaseModel, SecretStr

from affectwatch.settings import Settings

SECTION_DOCS = {
    "kafka": "Kafka connection (bootstrap list, TLS, SASL), topics, consumer group, batching",
    "warehouse": "DuckLake warehouse: catalog (SQLite file or postgres:...) and data path (local or s3://)",
    "privacy": "k-anonymity minimums and window sanity limits",
    "smtp": "SMTP server for alert emails (password only from the environment)",
    "alerts": "alert rules file, abstention minimums, cooldown, digest time zone",
    "dashboard": "dashboard users file, basemap style URL, staleness threshold",
}


def _fmt(value) -> str:
    if value is None:
        return ""
    if isinstance(value, SecretStr):
        return ""
    return str(value)


def render() -> str:
    lines = [
        "# AffectWatch configuration: every setting, its environment variable and default.",
        "# Generated from affectwatch/settings.py by `affectwatch config-example`; do not edit by hand.",
        "# Copy to .env (docker compose) or export in your shell. Secrets (passwords) only from the environment.",
        "",
    ]
    defaults = Settings.model_construct()
    for name, field in Settings.model_fields.items():
        value = getattr(defaults, name, field.default)
        if isinstance(value, BaseModel):
            lines.append(f"# --- {name}: {SECTION_DOCS.get(name, '')}")
            for sub, subfield in type(value).model_fields.items():
                env = f"AFFECTWATCH_{name.upper()}__{sub.upper()}"
                lines.append(f"# {env}={_fmt(getattr(value, sub))}")
            lines.append("")
        else:
            lines.append(f"# AFFECTWATCH_{name.upper()}={_fmt(value) if name != 'data_dir' else './var'}")
    return "\n".join(lines) + "\n"
