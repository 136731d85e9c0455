"""The db-query server: read-only questions about runs, escalations and the system, and read-only SQL."""

from typing import Any

from mcp.server import Server
from pydantic import BaseModel, ConfigDict, Field

from longtail_mcp.humans import inbox
from longtail_mcp.humans.models import Escalation, EscalationSort, EscalationStats, EscalationStatus
from longtail_mcp.mcp_glue.server import PrincipalSource, build_server
from longtail_mcp.runtime.models import FoundRun, RunStatus
from longtail_mcp.sql import readonly, reports
from longtail_mcp.tools.progress import reporting
from longtail_mcp.tools.prompts import PromptSpec
from longtail_mcp.tools.resources import Contents, ResourceSpec, json_contents, parse_values
from longtail_mcp.tools.spec import Approvable, Args, NoArgs, Services, ToolCall, ToolSpec

NAME = "db-query"
TAGS = ("database", "query", "analytics")


class FindRunsIn(Args):
    state: dict[str, Any] | None = Field(None, description="Runs whose entity state contains this object (@>)")
    path: str | None = Field(None, max_length=2000, description="SQL/JSON path predicate on the state, e.g. "
                                                                "'$.total ? (@ > 100)'")
    status: RunStatus | None = None
    name: str | None = Field(None, max_length=200, description="Workflow type")
    limit: int = Field(50, ge=1, le=1000)




class FindRunsOut(BaseModel):
    runs: list[FoundRun]


class FindEscalationsIn(Args):
    status: EscalationStatus | None = None
    role: str | None = Field(None, max_length=100)
    type: str | None = Field(None, max_length=100)
    priority: int | None = Field(None, ge=1, le=5)
    metadata: dict[str, Any] | None = Field(None, description="Escalations whose metadata contains this object")
    workflow_id: str | None = Field(None, max_length=200)
    sort: EscalationSort = Field("newest", description="newest or oldest first, or priority: most urgent first")
    limit: int = Field(50, ge=1, le=1000)


class FindEscalationsOut(BaseModel):
    escalations: list[Escalation]


class SummaryIn(Args):
    name: str | None = Field(None, max_length=200, description="Only this workflow type")
    since_hours: float = Field(24 * 7, gt=0, le=24 * 366, description="Runs started in this many past hours")


class ProcessSummary(BaseModel):
    name: str
    runs: int
    by_status: dict[str, int]
    avg_seconds: float | None = Field(None, description="Mean duration of the completed runs")
    p50_seconds: float | None = None
    p95_seconds: float | None = None
    last_started_at: str | None = None


class SummaryOut(BaseModel):
    workflow_types: list[ProcessSummary]




class HealthOut(BaseModel):
    runs: dict[str, int] = Field(description="Runs by status")
    tasks: dict[str, int] = Field(description="Certified-workflow tasks by status")
    escalations: dict[str, int] = Field(description="Escalations by status")
    workers_alive: int
    migration: int
    servers: list[dict[str, Any]] = Field(description="MCP servers (built in and registered) with tool counts")
    pipelines: dict[str, int] = Field(description="Pipelines by status")


class SchemaIn(Args):
    table: str | None = Field(None, max_length=63, description="One table (default: all)")


class Table(BaseModel):
    table: str
    comment: str | None = None
    estimated_rows: int
    readable_by_run_sql: bool
    columns: list[dict[str, Any]]


class SchemaOut(BaseModel):
    tables: list[Table]


class SqlIn(Approvable):
    model_config = ConfigDict(extra="forbid")

    sql: str = Field(min_length=1, max_length=readonly.MAX_SQL_CHARS,
                     description="Exactly one SQL statement; it runs read-only (writes are refused by the database)")
    max_rows: int | None = Field(None, ge=1, le=100_000, description="Row cap (default and ceiling: the server's "
                                                                     "LONGTAIL_SQL_MAX_ROWS)")
    timeout_ms: int | None = Field(None, ge=1, le=600_000, description="Statement timeout (default and ceiling: "
                                                                       "LONGTAIL_SQL_TIMEOUT_MS)")


class Column(BaseModel):
    name: str
    type: str


class SqlOut(BaseModel):
    columns: list[Column]
    rows: list[list[Any]]
    row_count: int
    truncated: bool = Field(description="True when more rows existed than the cap")
    command: str | None = Field(None, description="The command tag of an approved write, e.g. 'DELETE 3'")


async def find_runs(call: ToolCall, args: FindRunsIn) -> FindRunsOut:
    rows = await reports.find_runs(call.client.db, call.principal, **args.model_dump())
    return FindRunsOut(runs=rows)


async def find_escalations(call: ToolCall, args: FindEscalationsIn) -> FindEscalationsOut:
    return FindEscalationsOut(escalations=await inbox.find_escalations(call.client.db, call.principal,
                                                                     **args.model_dump()))


async def get_process_summary(call: ToolCall, args: SummaryIn) -> SummaryOut:
    rows = await reports.process_summary(call.client.db, call.principal, name=args.name, since_hours=args.since_hours)
    return SummaryOut(workflow_types=[ProcessSummary.model_validate(r) for r in rows])


async def get_escalation_stats(call: ToolCall, args: NoArgs) -> EscalationStats:
    return await inbox.escalation_stats(call.client.db, call.principal)


async def get_system_health(call: ToolCall, args: NoArgs) -> HealthOut:
    return HealthOut.model_validate(await reports.system_health(call.client.db, call.principal,
                                                                stale_seconds=2 * call.client.settings.lease_seconds))


async def describe_schema(call: ToolCall, args: SchemaIn) -> SchemaOut:
    return SchemaOut(tables=[Table.model_validate(t) for t in await reports.describe_schema(call.client.db,
                                                                                           table=args.table)])


async def run_sql(call: ToolCall, args: SqlIn) -> SqlOut:
    settings = call.client.settings
    timeout_ms = min(args.timeout_ms or settings.sql_timeout_ms, settings.sql_timeout_ms)

    async def status() -> str:
        return f"the statement is running (statement timeout {timeout_ms / 1000:g} s)"

    # A cancelled call cancels the statement in the server (longtail_mcp.sql.readonly).
    return SqlOut.model_validate(await reporting(call.progress, readonly.run_sql(
        call.client.db, call.principal, args.sql, approved=call.approved,
        max_rows=min(args.max_rows or settings.sql_max_rows, settings.sql_max_rows), timeout_ms=timeout_ms,
    ), total=timeout_ms / 1000, status=status))


TOOLS = [
    ToolSpec("find_runs", "Find runs by entity-state containment, a JSON path predicate, status and type, newest "
             "first (only runs you started or that asked one of your roles, unless you are a superadmin).",
             FindRunsIn, FindRunsOut, find_runs, read_only=True, idempotent=True, tags=TAGS),
    ToolSpec("find_escalations", "Find escalations of your roles by status, role, type, priority, metadata or run.",
             FindEscalationsIn, FindEscalationsOut, find_escalations, read_only=True, idempotent=True, tags=TAGS),
    ToolSpec("get_process_summary", "Per workflow type: runs by status and durations (mean, p50, p95) of the "
             "completed ones over a time window.", SummaryIn, SummaryOut, get_process_summary,
             read_only=True, idempotent=True, tags=TAGS),
    ToolSpec("get_escalation_stats", "Escalation counts by status and role, and created/resolved in the last hour "
             "and day (your roles only, unless you are a superadmin).", NoArgs, EscalationStats, get_escalation_stats,
             read_only=True, idempotent=True, tags=TAGS),
    ToolSpec("get_system_health", "System health: runs, tasks and escalations by status, live workers, MCP servers "
             "with tool counts, pipelines by status.", NoArgs, HealthOut, get_system_health,
             read_only=True, idempotent=True, tags=TAGS),
    ToolSpec("describe_schema", "Tables of the runtime's database with their columns and types, estimated rows, and "
             "whether run_sql can read them.", SchemaIn, SchemaOut, describe_schema,
             read_only=True, idempotent=True, tags=TAGS),
    ToolSpec("run_sql", "Run exactly one SQL statement read-only (superadmins only): the database itself refuses "
             "writes and a second statement. Returns columns with types and rows as JSON, capped (truncated=true) "
             "and under a statement timeout. A refused write can be approved once with request_approval.",
             SqlIn, SqlOut, run_sql, read_only=True, idempotent=True, tags=TAGS),
]


async def read_schema(call: ToolCall, uri: dict[str, str]) -> Contents:
    return json_contents(await describe_schema(call, parse_values(SchemaIn, uri)))


RESOURCES = [
    ResourceSpec("longtail://schema", "schema", "The runtime database's tables as JSON: columns (name, type, "
                 "nullable, default), estimated rows, and whether run_sql can read them (describe_schema).",
                 read_schema, mime="application/json", title="Database schema"),
    ResourceSpec("longtail://schema/{table}", "schema_table", "One table of the runtime database, as "
                 "longtail://schema describes it.", read_schema, mime="application/json", title="Database table"),
]
PROMPTS: list[PromptSpec] = []


def build(services: Services, principal_of: PrincipalSource) -> Server[Any]:
    return build_server(NAME, TOOLS, services, principal_of, resources=RESOURCES, prompts=PROMPTS,
                        instructions="Read-only queries over the runtime's database.")
