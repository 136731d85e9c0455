"""The pipeline format (YAML, docs/pipelines.md): what a parsed, validated pipeline is.

A pipeline is a small DAG of steps. A step calls one tool (`server/tool`, any tool the registry
knows) or asks a person (`human`); its arguments are JSON in which strings may hold expressions
(`{{ inputs.base }}`, `{{ steps.rates.data | tojson }}`), evaluated in a sandboxed Jinja
environment. A step runs as soon as the steps its expressions name have finished; `when` skips it,
`for_each` runs it once per item of a list (at most `concurrency` at a time).
"""

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

NAME_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"  # also the MCP tool name: unique across the family's tools
STEP_ID_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
STATUSES = ("draft", "deployed", "active", "archived")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Human(Strict):
    """A human step: the run asks `role` and waits durably for the decision (the step's result)."""

    role: str = Field(min_length=1, max_length=100)
    message: str = Field(min_length=1, max_length=10_000, description="May hold expressions")
    data: dict[str, Any] = Field(default_factory=dict, description="Shown with the request; may hold expressions")
    form_schema: dict[str, Any] | None = None
    priority: int = Field(3, ge=1, le=5)
    timeout_seconds: float | None = Field(None, gt=0)


class Step(Strict):
    """One node of the DAG: a tool call or a human step."""

    id: str = Field(pattern=STEP_ID_PATTERN)
    tool: str | None = Field(None, description="server/tool")
    human: Human | None = None
    args: dict[str, Any] = Field(default_factory=dict, description="The tool's arguments; strings may hold expressions")
    when: str | None = Field(None, description="An expression: the step runs only if it is true")
    for_each: str | None = Field(None, description="An expression giving a list: the step runs once per item "
                                                   "(`item`, `index` in its expressions); its result is the list")
    concurrency: int = Field(4, ge=1, le=64, description="Items of for_each run at most this many at a time")
    retries: int = Field(3, ge=1, le=10, description="Attempts of the tool call")
    needs: list[str] = Field(default_factory=list, description="Steps to wait for besides those the expressions name")
    description: str = ""


class Schedule(Strict):
    """Run the pipeline on a cron schedule (5 fields, or 6 with seconds first; UTC), once per tick."""

    cron: str
    input: dict[str, Any] = Field(default_factory=dict)


class Access(Strict):
    """Who may call the pipeline as a tool: superadmins, and members of `roles` (empty: every full-scope
    key). Read-scope keys only if every step is read-only."""

    roles: list[str] = Field(default_factory=list)


class Pipeline(Strict):
    """A pipeline definition, as parsed from YAML."""

    name: str = Field(pattern=NAME_PATTERN)
    description: str = Field("", max_length=4000)
    tags: list[str] = Field(default_factory=list, max_length=50)
    input_schema: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})
    output_schema: dict[str, Any] | None = None
    steps: list[Step] = Field(min_length=1)
    output: Any = None
    schedule: Schedule | None = None
    access: Access = Field(default_factory=Access)
    prompt_template: str | None = Field(None, description="The request it answers, with inputs as {slots} "
                                                          "(recorded by the compiler, matched by the router)")
    examples: list[dict[str, Any]] = Field(default_factory=list, description="Inputs it was compiled or verified with")
