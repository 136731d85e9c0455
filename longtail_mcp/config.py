"""Settings: the one place that reads the environment."""

import os
from pathlib import Path

from pydantic import BaseModel, Field, field_validator

LOOPBACK = ("127.0.0.1", "localhost", "::1")  # addresses `serve --dev` may listen on
FILES_DENY = (".env", ".env.*", "*.pem", "*.key", "id_*", ".git", ".ssh")


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
    admin_key: str | None = Field(None, repr=False,
                                  description="the first admin API key to register (else one is made)")
    # -- safe system servers (docs/security.md) --
    files_root: Path | None = Field(None, description="the files server's root; default $LONGTAIL_HOME/files")
    files_read_only: bool = Field(False, description="refuse every write, move and delete in the files server")
    files_deny: list[str] = Field(default_factory=lambda: list(FILES_DENY),
                                  description="glob patterns (on any path component) the files server refuses")
    files_max_bytes: int = Field(10 * 1024 * 1024, ge=1, description="most bytes one files call reads or writes")
    http_allow: list[str] = Field(default_factory=list,
                                  description="hosts or CIDRs http-fetch may reach although they are internal")
    http_max_bytes: int = Field(5 * 1024 * 1024, ge=1, description="largest response body http-fetch accepts")
    http_timeout: float = Field(30.0, gt=0, le=300, description="longest http-fetch request, all redirects included")
    sql_timeout_ms: int = Field(5000, ge=1, le=600_000, description="statement timeout of db-query run_sql")
    sql_max_rows: int = Field(1000, ge=1, le=100_000, description="most rows run_sql returns (then truncated=true)")
    approver_role: str = Field("approver", min_length=1, max_length=100,
                               description="role asked to approve calls a safety policy refused")
    allow_self_approval: bool = Field(False, description="let the account that asked for an approval decide it "
                                                         "(single-person installs only; off by default)")
    tool_wait_seconds: float = Field(30.0, ge=0, le=3600,
                                     description="how long a pipeline or workflow tool call waits for its run "
                                                 "before answering with the run's id")
    # -- agents and routers (docs/agents.md) --
    llm_provider: str = Field("anthropic", pattern="^(anthropic|scripted)$",
                              description="the model behind agents and routers: anthropic, or scripted (offline)")
    llm_model: str = Field("claude-sonnet-4-5", min_length=1, description="the model name sent to the API")
    anthropic_api_key: str | None = Field(None, repr=False, description="the Anthropic API key (never logged)")
    llm_base_url: str | None = Field(None, description="another Messages API address (a proxy, a running scripted "
                                                       "server)")
    llm_script: Path | None = Field(None, description="the script of the scripted model (docs/agents.md#scripts)")
    llm_delay: float | None = Field(None, ge=0, le=600, description="seconds the scripted model waits per turn "
                                                                    "(emulates model latency; else the script's)")
    auto_compile: str = Field("off", pattern="^(off|draft|activate)$",
                              description="what a successful routed agent run becomes: nothing, a draft "
                                          "pipeline, or an active one (per router or tag: `longtail-mcp agents set`)")

    @property
    def files_dir(self) -> Path:
        return self.files_root or self.home / "files"

    @field_validator("files_deny", "http_allow", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        """`LONGTAIL_HTTP_ALLOW=a.internal,10.0.0.0/8`: a comma-separated environment value is a list."""
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

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
    "files_root": "LONGTAIL_FILES_ROOT",
    "files_read_only": "LONGTAIL_FILES_READ_ONLY",
    "files_deny": "LONGTAIL_FILES_DENY",
    "files_max_bytes": "LONGTAIL_FILES_MAX_BYTES",
    "http_allow": "LONGTAIL_HTTP_ALLOW",
    "http_max_bytes": "LONGTAIL_HTTP_MAX_BYTES",
    "http_timeout": "LONGTAIL_HTTP_TIMEOUT",
    "sql_timeout_ms": "LONGTAIL_SQL_TIMEOUT_MS",
    "sql_max_rows": "LONGTAIL_SQL_MAX_ROWS",
    "approver_role": "LONGTAIL_APPROVER_ROLE",
    "allow_self_approval": "LONGTAIL_ALLOW_SELF_APPROVAL",
    "tool_wait_seconds": "LONGTAIL_TOOL_WAIT_SECONDS",
    "llm_provider": "LONGTAIL_LLM_PROVIDER",
    "llm_model": "LONGTAIL_LLM_MODEL",
    "anthropic_api_key": "ANTHROPIC_API_KEY",
    "llm_base_url": "LONGTAIL_LLM_BASE_URL",
    "llm_script": "LONGTAIL_LLM_SCRIPT",
    "llm_delay": "LONGTAIL_LLM_DELAY",
    "auto_compile": "LONGTAIL_AUTO_COMPILE",
}


def _llm(value: str) -> dict[str, object]:
    """`LONGTAIL_LLM` (design.md §9), the short form of the model settings: `anthropic`, or
    `scripted:<script.yaml>`. The LONGTAIL_LLM_* variables win over it."""
    kind, _, script = value.strip().partition(":")
    if not kind:
        return {}
    if kind not in ("anthropic", "scripted") or (kind == "scripted") != bool(script):
        raise ValueError(f"LONGTAIL_LLM={value!r}: use 'anthropic' or 'scripted:<script.yaml>'")
    return {"llm_provider": kind, **({"llm_script": script} if script else {})}


def load_settings(**overrides: object) -> Settings:
    """Build Settings from the environment; keyword overrides win over it."""
    values: dict[str, object] = {}
    url = os.environ.get("LONGTAIL_DATABASE_URL") or os.environ.get("DATABASE_URL")
    if url:
        values["database_url"] = url
    values.update(_llm(os.environ.get("LONGTAIL_LLM", "")))
    for field, var in _ENV.items():
        if os.environ.get(var):
            values[field] = os.environ[var]
    values.update({k: v for k, v in overrides.items() if v is not None})
    settings = Settings.model_validate(values)
    settings.home = settings.home.expanduser().absolute()
    if settings.files_root is not None:
        settings.files_root = settings.files_root.expanduser().absolute()
    return settings
