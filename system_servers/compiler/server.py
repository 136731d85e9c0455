"""The compiler server: compile a run into a pipeline, write pipelines as YAML, verify them, and move them
through their lifecycle (draft -> deployed -> active -> archived). An active pipeline is a tool of its own."""

from typing import Any

from mcp.server import Server
from pydantic import BaseModel, Field

from longtail_mcp.agents import designer
from longtail_mcp.agents.designer import DesignResult
from longtail_mcp.mcp_glue.server import PrincipalSource, build_server
from longtail_mcp.pipelines import service as pipelines
from longtail_mcp.pipelines import store
from longtail_mcp.pipelines.model import NAME_PATTERN
from longtail_mcp.pipelines.records import PipelineInfo, PipelineStatus, PipelineVersion
from longtail_mcp.tools.prompts import PromptSpec
from longtail_mcp.tools.resources import Contents, Listed, ResourceSpec, parse_values, uri_of
from longtail_mcp.tools.spec import Args, Services, ToolCall, ToolSpec
from system_servers.runnables import Started, start_for

NAME = "compiler"
TAGS = ("pipelines", "compiler", "automation")


class NameIn(Args):
    name: str = Field(pattern=NAME_PATTERN, description="The pipeline (also its tool name)")


class CompileIn(Args):
    workflow_id: str = Field(min_length=1, max_length=200, description="A finished run whose tool calls to compile")
    name: str | None = Field(None, pattern=NAME_PATTERN, description="The pipeline's name (default: from the run)")
    description: str | None = Field(None, max_length=4000)
    request: str | None = Field(None, max_length=10_000,
                                description="The request the run answered: recorded as a prompt template")


class Compiled(BaseModel):
    pipeline: PipelineInfo
    yaml: str
    notes: list[str] = Field(description="What the compiler decided and why")


class CreateIn(Args):
    yaml: str = Field(min_length=1, max_length=1024 * 1024, description="The pipeline as YAML (docs/pipelines.md)")


class GetIn(NameIn):
    version: int | None = Field(None, ge=1, description="A version (default: the latest)")


class PipelineOut(BaseModel):
    pipeline: PipelineInfo
    version: int
    yaml: str


class ListIn(Args):
    status: PipelineStatus | None = None
    tags: list[str] | None = Field(None, max_length=20, description="Only pipelines with one of these tags")
    query: str | None = Field(None, max_length=500, description="Words in names, descriptions, tags, tools")
    limit: int = Field(50, ge=1, le=500)


class ListOut(BaseModel):
    pipelines: list[PipelineInfo]


class ActivateIn(NameIn):
    force: bool = Field(False, description="Activate without a passed verification of this version")


class VersionsOut(BaseModel):
    versions: list[PipelineVersion]


async def compile_run(call: ToolCall, args: CompileIn) -> Compiled:
    info, text, notes = await pipelines.compile_run(
        call.client.db, call.principal, args.workflow_id, tools=await call.client.tool_catalog(), name=args.name,
        description=args.description, request=args.request)
    return Compiled(pipeline=info, yaml=text, notes=notes)


async def create_pipeline(call: ToolCall, args: CreateIn) -> PipelineInfo:
    return await store.save(call.client.db, call.principal, args.yaml, tools=await call.client.tool_catalog())


async def get_pipeline(call: ToolCall, args: GetIn) -> PipelineOut:
    info = await store.get(call.client.db, args.name)
    found = await store.version(call.client.db, args.name, args.version)
    return PipelineOut(pipeline=info, version=found.version, yaml=found.yaml or "")


async def list_pipelines(call: ToolCall, args: ListIn) -> ListOut:
    return ListOut(pipelines=await store.search(call.client.db, status=args.status, tags=args.tags,
                                                query=args.query, limit=args.limit))


async def verify_pipeline(call: ToolCall, args: NameIn) -> PipelineInfo:
    return await pipelines.verify(call.client.db, call.principal, args.name, tools=await call.client.tool_catalog())


async def deploy_pipeline(call: ToolCall, args: NameIn) -> PipelineInfo:
    return await store.deploy(call.client.db, call.principal, args.name)


async def activate_pipeline(call: ToolCall, args: ActivateIn) -> PipelineInfo:
    return await store.activate(call.client.db, call.principal, args.name, force=args.force)


async def archive_pipeline(call: ToolCall, args: NameIn) -> PipelineInfo:
    return await store.archive(call.client.db, call.principal, args.name)


async def restore_pipeline(call: ToolCall, args: NameIn) -> PipelineInfo:
    return await store.restore(call.client.db, call.principal, args.name)


class Deleted(BaseModel):
    deleted: str


async def delete_pipeline(call: ToolCall, args: NameIn) -> Deleted:
    await store.delete(call.client.db, call.principal, args.name)
    return Deleted(deleted=args.name)


async def list_pipeline_versions(call: ToolCall, args: NameIn) -> VersionsOut:
    return VersionsOut(versions=await store.versions(call.client.db, args.name))


class DesignIn(Args):
    description: str = Field(min_length=1, max_length=20_000, description="What the pipeline should do, in plain "
                             "words")
    name: str | None = Field(None, pattern=NAME_PATTERN, description="The pipeline's name (default: the model's)")
    tags: list[str] | None = Field(None, max_length=20, description="Offer only tools of these servers or tags")


DesignOut = Started[DesignResult]


async def design_pipeline(call: ToolCall, args: DesignIn) -> DesignOut:
    return await start_for(call, designer.WORKFLOW, args, DesignResult)


TOOLS = [
    ToolSpec("compile_run", "Compile a finished run's tool calls into a draft pipeline, deterministically: values "
             "from the run's input become inputs, values found in earlier results become wires, the rest "
             "constants; repeated calls over a list become a loop. Returns the YAML and the compiler's notes.",
             CompileIn, Compiled, compile_run, tags=TAGS),
    ToolSpec("create_pipeline", "Create a pipeline from YAML as a draft, or add a version to an existing one. "
             "Every problem is reported with its line and column, and nothing is stored unless it is valid.",
             CreateIn, PipelineInfo, create_pipeline, idempotent=True, tags=TAGS),
    ToolSpec("get_pipeline", "A pipeline: its status and versions, and the YAML of a version (default: latest).",
             GetIn, PipelineOut, get_pipeline, read_only=True, idempotent=True, tags=TAGS),
    ToolSpec("list_pipelines", "Pipelines by status and tags, best match first for words in their names, "
             "descriptions, tags and tools.", ListIn, ListOut, list_pipelines, read_only=True, idempotent=True,
             tags=TAGS),
    ToolSpec("verify_pipeline", "Run the latest version on its example inputs (for a compiled pipeline: the original "
             "run's) and check it completes calling the same tools with results of the same shapes. Its tools "
             "really run. A passed verification lets the version be activated.", NameIn, PipelineInfo,
             verify_pipeline, open_world=True, tags=TAGS),
    ToolSpec("deploy_pipeline", "Mark a draft ready to activate (its owner or a superadmin).", NameIn, PipelineInfo,
             deploy_pipeline, tags=TAGS),
    ToolSpec("activate_pipeline", "Make a deployed pipeline active (superadmins): its latest version becomes an MCP "
             "tool named after it, and its schedule starts. Needs a passed verification unless force.",
             ActivateIn, PipelineInfo, activate_pipeline, tags=TAGS),
    ToolSpec("archive_pipeline", "Archive a pipeline (superadmins): its tool disappears and its schedule stops.",
             NameIn, PipelineInfo, archive_pipeline, destructive=True, tags=TAGS),
    ToolSpec("restore_pipeline", "Bring an archived pipeline back as a draft (superadmins).", NameIn, PipelineInfo,
             restore_pipeline, tags=TAGS),
    ToolSpec("delete_pipeline", "Delete a draft or archived pipeline and all its versions (superadmins).", NameIn,
             Deleted, delete_pipeline, destructive=True, tags=TAGS),
    ToolSpec("design_pipeline", "Describe what you need: a model drafts a pipeline over the registered tools, the "
             "parser's problems go back to it (at most 3 drafts), and a valid draft is saved, to verify and activate "
             "like any other. When no tool can do a part of the job, it says which capability is missing.",
             DesignIn, DesignOut, design_pipeline, tags=TAGS),
    ToolSpec("list_pipeline_versions", "A pipeline's versions, newest first.", NameIn, VersionsOut,
             list_pipeline_versions, read_only=True, idempotent=True, tags=TAGS),
]


PIPELINE_URI = "longtail://pipelines/{name}"
VERSION_URI = "longtail://pipelines/{name}/{version}"
YAML = "application/yaml"


async def read_pipeline(call: ToolCall, uri: dict[str, str]) -> Contents:
    found = await get_pipeline(call, parse_values(GetIn, uri))
    return Contents(mime=YAML, text=found.yaml, meta={"io.longtail/pipeline": {
        "status": found.pipeline.status, "version": found.version, "latest": found.pipeline.version}})


async def active_pipelines(call: ToolCall) -> list[Listed]:
    return [Listed(uri=uri_of(PIPELINE_URI, name=p.name), name=p.name, title=f"Pipeline {p.name} (active)",
                   description=p.description) for p in await store.search(call.client.db, status="active", limit=50)]


RESOURCES = [
    ResourceSpec(PIPELINE_URI, "pipeline", "A pipeline's latest version as YAML (get_pipeline), for anyone (as the "
                 "tool); the active ones are listed.", read_pipeline, mime=YAML, listing=active_pipelines),
    ResourceSpec(VERSION_URI, "pipeline_version", "One version of a pipeline as YAML (list_pipeline_versions names "
                 "them).", read_pipeline, mime=YAML),
]
PROMPTS: list[PromptSpec] = []


def build(services: Services, principal_of: PrincipalSource) -> Server[Any]:
    return build_server(NAME, TOOLS, services, principal_of, resources=RESOURCES, prompts=PROMPTS,
                        instructions="Compile runs into pipelines, write and verify pipelines, and publish them as "
                                     "tools.")
