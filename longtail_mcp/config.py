"""Settings: the one place that reads the environment."""

import os
from pathlib import Path

from pydantic import BaseModel, Field


class Settings(BaseModel):
    """Process-wide configuration. Every field has an environment variable (see `load_settings`)."""

    database_url: str | None = Field(None, description="Postgres DSN; unset means the embedded server")
    home: Path = Field(default_factory=lambda: Path.home() / ".longtail-mcp")
    schema_name: str = Field("longtail", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    pg_port: int = Field(54329, ge=1, le=65535, description="port of the embedded Postgres on 127.0.0.1")
    pg_user: str | None = Field(None, description="OS user that runs the embedded Postgres when started as root")
    host: str = "127.0.0.1"
    port: int = Field(8420, ge=0, le=65535)
    lease_seconds: float = Field(30.0, gt=0, description="a run whose worker stops renewing is taken over after this")
    poll_seconds: float = Field(1.0, gt=0, description="workers poll this often even without NOTIFY")
    concurrency: int = Field(200, ge=1, description="runs one worker process executes at once")
    pool_size: int = Field(16, ge=2, le=500, description="most database connections one process's pool opens")
    admin_key: str | None = Field(None, repr=False, description="the first admin API key to register (else one is made)")

    @property
    def data_dir(self) -> Path:
        return self.home / "pgdata"


_ENV = {
    "home": "LONGTAIL_HOME",
    "schema_name": "LONGTAIL_SCHEMA",
    "pg_port": "LONGTAIL_PG_PORT",
    "pg_user": "LONGTAIL_PG_USER",
    "host": "LONGTAIL_HOST",
    "port": "LONGTAIL_PORT",
    "lease_seconds": "LONGTAIL_LEASE_SECONDS",
    "poll_seconds": "LONGTAIL_POLL_SECONDS",
    "concurrency": "LONGTAIL_CONCURRENCY",
    "pool_size": "LONGTAIL_POOL_SIZE",
    "admin_key": "LONGTAIL_ADMIN_KEY",
}


def load_settings(**overrides: object) -> Settings:
    """Build Settings from the environment; keyword overrides win over it."""
    values: dict[str, object] = {}
    url = os.environ.get("LONGTAIL_DATABASE_URL") or os.environ.get("DATABASE_URL")
    if url:
        values["database_url"] = url
    for field, var in _ENV.items():
        if os.environ.get(var):
            values[field] = os.environ[var]
    values.update({k: v for k, v in overrides.items() if v is not None})
    settings = Settings.model_validate(values)
    settings.home = settings.home.expanduser().absolute()
    return settings
