"""Settings: the one place that reads the environment (and the optional `longtail.yaml`).

One pydantic-settings model. Precedence, highest first: keyword arguments (`LongTail(**overrides)`,
`load_settings(**overrides)`), environment variables (`LONGTAIL_<FIELD>`, with the exceptions each field's
`validation_alias` names: `DATABASE_URL`, `LONGTAIL_SCHEMA`, `ANTHROPIC_API_KEY`), the YAML file named by
`LONGTAIL_CONFIG` (or `--config`), else `./longtail.yaml` when there is one, then the defaults. An empty
variable counts as unset. `python -m longtail_mcp.config` prints the README's table, generated from here.
"""

import os
import sys
from pathlib import Path
from typing import Annotated, Any

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

LOOPBACK = ("127.0.0.1", "localhost", "::1")  # addresses `serve --dev` may listen on
FILES_DENY = (".env", ".env.*", "*.pem", "*.key", "id_*", ".git", ".ssh")
CONFIG_FILE = "longtail.yaml"
CommaList = Annotated[list[str], NoDecode]  # `a,b` in the environment; a list in YAML or Python


class SettingsInvalid(ValueError):
    """A setting has a value it cannot take; the message names each one with its variable."""


def _config_file() -> Path | None:
    named = os.environ.get("LONGTAIL_CONFIG")
    if named:
        path = Path(named).expanduser()
        if not path.is_file():
            raise SettingsInvalid(f"LONGTAIL_CONFIG={named}: no such file")
        return path
    local = Path(CONFIG_FILE)
    return local if local.is_file() else None


class Settings(BaseSettings):
    """Process-wide configuration. Every field has an environment variable (the README's table)."""

    model_config = SettingsConfigDict(env_prefix="LONGTAIL_", env_ignore_empty=True, extra="ignore",
                                      validate_by_name=True, validate_by_alias=True)

    database_url: str | None = Field(
        None, validation_alias=AliasChoices("LONGTAIL_DATABASE_URL", "DATABASE_URL"),
        description="Postgres to use; unset means the embedded server.")
    home: Path = Field(default_factory=lambda: Path.home() / ".longtail-mcp",
                       description="Where the embedded cluster, its password and log live.")
    schema_name: str = Field("longtail", pattern=r"^[a-z_][a-z0-9_]{0,62}$", validation_alias="LONGTAIL_SCHEMA",
                             description="Schema holding every table.")
    pg_port: int = Field(54329, ge=1, le=65535, description="Port of the embedded Postgres on 127.0.0.1.")
    pg_user: str | None = Field(None, description="OS user that runs the embedded Postgres when started as root "
                                                  "(unset: `longtail-pg`).")
    pg_idle_seconds: float = Field(300.0, ge=0, description="The embedded Postgres stops by itself once no "
                                   "process has been connected to it for this long (0: never).")
    host: str = Field("127.0.0.1", description="Address `serve` listens on (`--host` wins).")
    port: int = Field(8420, ge=0, le=65535, description="Port `serve` listens on (`--port` wins).")
    lease_seconds: float = Field(30.0, gt=0, description="A run whose worker stops renewing its lease is taken "
                                                         "over after this.")
    poll_seconds: float = Field(1.0, gt=0, description="Workers look for due runs at least this often, "
                                                       "notifications or not.")
    concurrency: int = Field(200, ge=1, description="Runs one worker executes at once.")
    pool_size: int = Field(16, ge=2, le=500, description="Most database connections one process's pool opens.")
    admin_key: SecretStr | None = Field(None, description="An `ltk_...` key to register for `admin` on first "
                                                          "`serve` (else one is generated and printed once).")
    # -- safe system servers (docs/security.md) --
    files_root: Path | None = Field(None, description="The files server's root (unset: `$LONGTAIL_HOME/files`): "
                                                      "nothing outside it is reachable.")
    files_deny: CommaList = Field(default_factory=lambda: list(FILES_DENY),
                                  description="Comma-separated globs (any path component) the files server "
                                              "refuses; replaces the defaults.")
    files_read_only: bool = Field(False, description="Refuse every write, move and delete.")
    files_max_bytes: int = Field(10 * 1024 * 1024, ge=1, description="Most bytes one files call reads or writes.")
    http_allow: CommaList = Field(default_factory=list, description="Comma-separated hosts or CIDRs http-fetch may "
                                                                    "reach although they are internal.")
    http_max_bytes: int = Field(5 * 1024 * 1024, ge=1, description="Largest response body http-fetch reads "
                                                                   "(then `truncated`).")
    http_timeout: float = Field(30.0, gt=0, le=300, description="Longest http-fetch exchange, redirects included, "
                                                                "in seconds.")
    sql_timeout_ms: int = Field(5000, ge=1, le=600_000, description="Statement timeout of `run_sql` (a call may "
                                                                    "ask for less).")
    sql_max_rows: int = Field(1000, ge=1, le=100_000, description="Most rows `run_sql` returns (then `truncated`).")
    approver_role: str = Field("approver", min_length=1, max_length=100,
                               description="Role asked to approve a call a safety policy refused.")
    allow_self_approval: bool = Field(False, description="Let the account that asked for an approval decide it "
                                                         "(single-person installs; otherwise separation of duties "
                                                         "applies to everyone, superadmins included).")
    tool_wait_seconds: float = Field(30.0, ge=0, le=3600,
                                     description="How long a call of a pipeline or workflow tool waits for its run "
                                                 "(sending progress notifications) before answering `done: false` "
                                                 "with the run's id, to follow with `wait_for_run`.")
    remote_idle_seconds: float = Field(300.0, gt=0, description="A registered MCP server's session unused this "
                                                               "long is closed (a stdio server's process stops); "
                                                               "the next call opens a new one.")
    # -- agents and routers (docs/agents.md) --
    llm: str | None = Field(None, exclude=True, description="Short form of the model settings: `anthropic`, or "
                            "`scripted:<script.yaml>`; the `LONGTAIL_LLM_*` variables win over it.")
    llm_provider: str = Field("anthropic", pattern="^(anthropic|scripted)$",
                              description="The model behind agents and routers: `anthropic`, or `scripted` "
                                          "(offline, [docs/agents.md](docs/agents.md#the-scripted-model)).")
    llm_model: str = Field("claude-sonnet-4-5", min_length=1, description="The model name sent to the Messages "
                                                                          "API.")
    anthropic_api_key: SecretStr | None = Field(None, validation_alias="ANTHROPIC_API_KEY",
                                                description="The Anthropic API key (never logged or shown).")
    llm_base_url: str | None = Field(None, description="Another Messages API address: a proxy, or a running "
                                                       "scripted server.")
    llm_script: Path | None = Field(None, description="The scripted model's script (YAML); the server starts in "
                                                      "the process on first use.")
    llm_delay: float | None = Field(None, ge=0, le=600, description="Seconds the scripted model waits per turn "
                                                                    "(else the script's `delay`).")
    auto_compile: str = Field("off", pattern="^(off|draft|activate)$",
                              description="What a router's successful agent run becomes when no policy is set: "
                                          "`off`, `draft`, or `activate` (verified, then published as a tool).")

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource,
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _config_file()
        if path is not None:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=path))
        return tuple(sources)

    @field_validator("home", "files_root", "llm_script", mode="after")
    @classmethod
    def _absolute(cls, value: Path | None) -> Path | None:
        return value.expanduser().absolute() if value is not None else None

    @model_validator(mode="after")
    def _short_llm(self) -> "Settings":
        """`LONGTAIL_LLM` (design.md §9) sets the provider and script unless they are set themselves."""
        if not self.llm:
            return self
        kind, _, script = self.llm.strip().partition(":")
        if kind not in ("anthropic", "scripted") or (kind == "scripted") != bool(script):
            raise ValueError(f"LONGTAIL_LLM={self.llm!r}: use 'anthropic' or 'scripted:<script.yaml>'")
        if "llm_provider" not in self.model_fields_set:
            self.llm_provider = kind
        if script and "llm_script" not in self.model_fields_set:
            self.llm_script = Path(script).expanduser().absolute()
        return self

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


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment and the YAML file; keyword overrides (None: not given) win over both.

    Raises:
        SettingsInvalid: one line per bad value, naming its environment variable.
    """
    try:
        return Settings.model_validate({k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        lines = []
        for error in exc.errors(include_url=False, include_input=False):
            field = str(error["loc"][0]) if error["loc"] else ""
            where = f"{field} ({', '.join(env_names(field))})" if field in Settings.model_fields else field
            message = str(error["msg"]).removeprefix("Value error, ")
            lines.append(f"{where}: {message}" if where else message)
        raise SettingsInvalid("invalid settings: " + "; ".join(lines)) from None


def env_names(field: str) -> list[str]:
    """The environment variables of a field, in order of precedence."""
    info = Settings.model_fields[field]
    alias = info.validation_alias
    if isinstance(alias, AliasChoices):
        return [str(c) for c in alias.choices]
    return [str(alias)] if alias else [f"LONGTAIL_{field.upper()}"]


def _shown(field: str) -> str:
    info = Settings.model_fields[field]
    if field == "home":
        return "`~/.longtail-mcp`"
    if info.default_factory is not None:
        value: Any = info.default_factory()  # type: ignore[call-arg]
    else:
        value = info.default
    if value is None or value == []:
        return "unset"
    if isinstance(value, list):
        return f"`{','.join(value)}`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"`{value}`"


def settings_table() -> str:
    """The README's settings table, generated from the model (tests/test_settings.py keeps it current)."""
    rows = ["| Variable | Field | Default | Meaning |", "|---|---|---|---|"]
    for field, info in Settings.model_fields.items():
        names = ", ".join(f"`{n}`" for n in env_names(field))
        rows.append(f"| {names} | `{field}` | {_shown(field)} | {info.description} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    sys.stdout.write(settings_table())
