"""Pipelines' typed results, defined once: what the services return and the compiler server publishes."""

from typing import Any, Literal

from pydantic import Field

from longtail_mcp.records import Record

PipelineStatus = Literal["draft", "deployed", "active", "archived"]


class PipelineInfo(Record):
    """A pipeline: its lifecycle status, versions, and what it publishes."""

    name: str
    status: PipelineStatus
    version: int = Field(description="The latest version")
    active_version: int | None = Field(None, description="The version served while active")
    description: str = ""
    tags: list[str] = Field(default_factory=list)
    tools: list[str] = Field(default_factory=list, description="The tools its steps call")
    read_only: bool = False
    access_roles: list[str] = Field(default_factory=list)
    prompt_template: str | None = None
    source_run: str | None = None
    verified_version: int | None = None
    verification: dict[str, Any] | None = None
    shipped: bool = False
    created_by: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    rank: float | None = None


class PipelineVersion(Record):
    """One content version (runs pin the version they started with)."""

    name: str
    version: int
    hash: str
    yaml: str | None = None
    definition: dict[str, Any] | None = None
    created_by: str | None = None
    created_at: str | None = None
