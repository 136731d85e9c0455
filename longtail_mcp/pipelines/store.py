"""Pipelines in the database: create and edit (content versions), the lifecycle, search, and loading a
version to run.

Lifecycle: draft -> deployed -> active -> archived, and restore (archived -> draft). Any full-scope
account may create drafts, edit its own pipelines, verify and deploy them; activating, archiving,
restoring and deleting are for superadmins (activation needs a passed verification of the version,
unless forced). Editing makes a new version when the content changed; an active pipeline keeps
serving the version it was activated with until it is activated again.
"""

import contextlib
import hashlib
import json
from collections.abc import Awaitable, Callable
from functools import lru_cache
from typing import Any, NamedTuple

from longtail_mcp.db.pool import Conn, Database
from longtail_mcp.db.queries import load
from longtail_mcp.errors import Conflict, Forbidden, InvalidInput, NotFound
from longtail_mcp.events import Event, emit
from longtail_mcp.humans.identity import Principal, audit, require_superadmin, require_write
from longtail_mcp.pipelines.checks import ToolLookup
from longtail_mcp.pipelines.loader import is_read_only, parse, to_yaml
from longtail_mcp.pipelines.model import STATUSES, Pipeline
from longtail_mcp.pipelines.records import PipelineInfo, PipelineVersion
from longtail_mcp.runtime import service
from longtail_mcp.runtime.codec import dumps

Q = load("pipelines")
WORKFLOW = "pipeline"  # the workflow type every pipeline run is (runner.py)


def schedule_name(name: str) -> str:
    return f"pipeline:{name}"


def _derived(pipeline: Pipeline, tools: ToolLookup) -> dict[str, Any]:
    step_tools = sorted({s.tool for s in pipeline.steps if s.tool})
    words = [pipeline.name, pipeline.description, *pipeline.tags, *step_tools]
    return {"description": pipeline.description, "tags": sorted(set(pipeline.tags)), "tools": step_tools,
            "read_only": is_read_only(pipeline, tools), "access_roles": sorted(set(pipeline.access.roles)),
            "prompt_template": pipeline.prompt_template, "search_text": " ".join(w for w in words if w)}


def _hash(pipeline: Pipeline) -> str:
    return hashlib.sha256(json.dumps(pipeline.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()


async def save(db: Database, actor: Principal, text: str, *, tools: ToolLookup, source_run: str | None = None,
               shipped: bool = False) -> PipelineInfo:
    """Create a pipeline from YAML (a draft), or add a version to an existing one (an edit). Nothing is
    stored unless the whole document is valid; the same content again changes nothing.

    Raises:
        PipelineInvalid: every problem found, with its line and column.  Forbidden: a read-only key, or
        editing another account's pipeline without being a superadmin.
    """
    require_write(actor)
    pipeline = parse(text, tools=tools)
    yaml_text = text if text.endswith("\n") else text + "\n"
    derived = _derived(pipeline, tools)
    digest = _hash(pipeline)
    async with db.transaction() as conn:
        row = await (await conn.execute(Q["create_pipeline"], {
            "name": pipeline.name, "status": "draft", "source_run": source_run, "shipped": shipped,
            "by": actor.id, **derived,
        })).fetchone()
        if row is not None:
            await _insert_version(conn, pipeline, 1, yaml_text, digest, actor, read_only=derived["read_only"])
            await audit(conn, actor, "pipeline.create", "pipeline", pipeline.name, after="draft",
                        data={"version": 1, "source_run": source_run})
            return PipelineInfo.of(row)
        current = await (await conn.execute(Q["lock_pipeline"], {"name": pipeline.name})).fetchone()
        if current is None:
            raise Conflict(f"pipeline {pipeline.name!r} changed concurrently; try again")
        if current["created_by"] != actor.id and not actor.superadmin:
            raise Forbidden(f"pipeline {pipeline.name!r} belongs to {current['created_by']}; only a superadmin may "
                            "edit it")
        latest = await (await conn.execute(Q["get_version"], {"name": pipeline.name, "version": None})).fetchone()
        if latest is not None and latest["hash"] == digest:
            return PipelineInfo.of(current)
        version = int(current["version"]) + 1
        await _insert_version(conn, pipeline, version, yaml_text, digest, actor, read_only=derived["read_only"])
        updated = await (await conn.execute(Q["new_version"], {
            "name": pipeline.name, "version": version, "source_run": source_run, **derived,
        })).fetchone()
        await audit(conn, actor, "pipeline.edit", "pipeline", pipeline.name, data={"version": version})
    return PipelineInfo.of(updated)


async def _insert_version(conn: Conn, pipeline: Pipeline, version: int, yaml_text: str, digest: str,
                          actor: Principal, *, read_only: bool) -> None:
    await conn.execute(Q["insert_version"], {
        "name": pipeline.name, "version": version, "yaml": yaml_text,
        "definition": dumps(pipeline.model_dump(mode="json")), "hash": digest, "by": actor.id, "read_only": read_only,
    })


async def get(db: Database, name: str) -> PipelineInfo:
    """Raises NotFound."""
    async with db.connection() as conn:
        row = await (await conn.execute(Q["get_pipeline"], {"name": name})).fetchone()
    if row is None:
        raise NotFound(f"no pipeline named {name!r}")
    return PipelineInfo.of(row)


async def version(db: Database, name: str, number: int | None = None) -> PipelineVersion:
    """A version with its YAML and definition (the latest when `number` is None). Raises NotFound."""
    async with db.connection() as conn:
        row = await (await conn.execute(Q["get_version"], {"name": name, "version": number})).fetchone()
    if row is None:
        raise NotFound(f"no pipeline {name!r}" + (f" version {number}" if number is not None else ""))
    return PipelineVersion.of(row)


async def definition(db: Database, name: str, number: int) -> Pipeline:
    """The definition of a version."""
    return _definition_of(json.dumps((await version(db, name, number)).definition, sort_keys=True))


_PINNED: dict[str, Pipeline] = {}  # content hash -> definition: content-addressed, so never stale


def run_input(name: str, number: int, digest: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """The input of a run of version `number` (whose content hash is `digest`) of pipeline `name`."""
    return {"pipeline": name, "version": number, "hash": digest, "inputs": inputs}


async def pinned(db: Database, name: str, number: int, digest: str | None) -> Pipeline:
    """The definition a run pinned: from memory when its content hash was seen before, else read (and
    checked against the hash, so a pipeline deleted and created again under its name is not mistaken for
    the version the run started with).

    Raises:
        NotFound: the version is gone.  Conflict: its content is not what the run started with.
    """
    if digest is not None and (known := _PINNED.get(digest)) is not None:
        return known
    found = await version(db, name, number)
    if digest is not None and found.hash != digest:
        raise Conflict(f"pipeline {name!r} version {number} is not the one this run started with (it was deleted "
                       "and created again)")
    pipeline = _definition_of(json.dumps(found.definition, sort_keys=True))
    if len(_PINNED) >= 1024:
        _PINNED.clear()
    _PINNED[found.hash] = pipeline
    return pipeline


@lru_cache(maxsize=256)
def _definition_of(text: str) -> Pipeline:
    return Pipeline.model_validate(json.loads(text))


async def versions(db: Database, name: str) -> list[PipelineVersion]:
    await get(db, name)
    async with db.connection() as conn:
        return PipelineVersion.all(await (await conn.execute(Q["list_versions"], {"name": name})).fetchall())


async def search(db: Database, *, status: str | None = None, tags: list[str] | None = None, query: str | None = None,
                 limit: int = 50) -> list[PipelineInfo]:
    """Pipelines by status and tags, best full-text match first when `query` is given (prefixes count)."""
    if status is not None and status not in STATUSES:
        raise InvalidInput(f"unknown status {status!r}; one of {', '.join(STATUSES)}")
    if not 1 <= limit <= 500:
        raise InvalidInput("limit must be between 1 and 500")
    words = [w for w in "".join(c if c.isalnum() else " " for c in (query or "").lower()).split() if w]
    async with db.connection() as conn:
        rows = await (await conn.execute(Q["list_pipelines"], {
            "status": status, "tags": tags or None, "query": query.strip() if query and query.strip() else None,
            "prefix": " | ".join(f"{w}:*" for w in words) or "nothing", "limit": limit,
        })).fetchall()
    return PipelineInfo.all(rows)


# -- lifecycle ------------------------------------------------------------------------------------------

async def _move(db: Database, actor: Principal, name: str, to: str, allowed_from: tuple[str, ...], *,
                active_version: Any = "keep", event: str | None = None,
                then: Callable[[Conn], Awaitable[None]] | None = None) -> tuple[PipelineInfo, PipelineInfo]:
    """Change a pipeline's status (and what else `then` does on the same connection) in one transaction."""
    async with db.transaction() as conn:
        row = await (await conn.execute(Q["lock_pipeline"], {"name": name})).fetchone()
        if row is None:
            raise NotFound(f"no pipeline named {name!r}")
        if row["status"] not in allowed_from:
            raise Conflict(f"pipeline {name!r} is {row['status']}; it can be made {to} only from "
                           f"{' or '.join(allowed_from)}")
        keep = row["active_version"] if active_version == "keep" else active_version
        new = await (await conn.execute(Q["set_status"], {"name": name, "status": to,
                                                           "active_version": keep})).fetchone()
        await audit(conn, actor, f"pipeline.{to}", "pipeline", name, before=row["status"], after=to,
                    data={"version": row["version"], "active_version": keep})
        if then is not None:
            await then(conn)
        if event is not None:
            await emit(conn, db, [Event(event, id=name, name=name, status=to)])
    return PipelineInfo.of(row), PipelineInfo.of(new)


async def deploy(db: Database, actor: Principal, name: str) -> PipelineInfo:
    """draft -> deployed (ready to activate). The owner or a superadmin."""
    require_write(actor)
    info = await get(db, name)
    if info.created_by != actor.id and not actor.superadmin:
        raise Forbidden(f"only the owner of pipeline {name!r} or a superadmin may deploy it")
    return (await _move(db, actor, name, "deployed", ("draft",)))[1]


async def activate(db: Database, actor: Principal, name: str, *, force: bool = False) -> PipelineInfo:
    """deployed (or active, to serve a newer version) -> active: its latest version becomes an MCP tool, and
    its schedule (if any) starts. The version must have passed verify_pipeline unless `force`.

    Raises:
        Forbidden: not a superadmin.  Conflict: not verified (or not deployed).
    """
    require_superadmin(actor, "activate pipelines")
    info = await get(db, name)
    if info.verified_version != info.version and not force:
        raise Conflict(f"pipeline {name!r} version {info.version} has not passed verify_pipeline; verify it "
                       "first (or activate with force)")
    pipeline = await definition(db, name, info.version)
    schedule = pipeline.schedule

    async def reschedule(conn: Conn) -> None:  # the schedule changes with the status, or neither does
        if schedule is not None:
            await service.upsert_schedule(db, schedule_name(name), schedule.cron,
                                          {"pipeline": name, "inputs": schedule.input}, workflow=WORKFLOW, conn=conn)
        else:
            await _unschedule(db, name, conn)

    _, new = await _move(db, actor, name, "active", ("deployed", "active"), active_version=info.version,
                         event="pipeline.activated", then=reschedule)
    return new


async def archive(db: Database, actor: Principal, name: str) -> PipelineInfo:
    """Any status but archived -> archived: no longer a tool, its schedule stops. Superadmins."""
    require_superadmin(actor, "archive pipelines")
    _, new = await _move(db, actor, name, "archived", ("draft", "deployed", "active"), active_version=None,
                         event="pipeline.archived", then=lambda conn: _unschedule(db, name, conn))
    return new


async def restore(db: Database, actor: Principal, name: str) -> PipelineInfo:
    """archived -> draft. Superadmins."""
    require_superadmin(actor, "restore pipelines")
    return (await _move(db, actor, name, "draft", ("archived",)))[1]


async def delete(db: Database, actor: Principal, name: str) -> None:
    """Remove a draft or archived pipeline and its versions, once no run of it is unfinished. Superadmins."""
    require_superadmin(actor, "delete pipelines")
    async with db.transaction() as conn:
        row = await (await conn.execute(Q["delete_pipeline"], {"name": name})).fetchone()
        if row is None:
            info = await get(db, name)
            if info.status in ("draft", "archived"):
                raise Conflict(f"pipeline {name!r} has runs that have not finished; wait for them (or cancel "
                               "them) before deleting it")
            raise Conflict(f"pipeline {name!r} is {info.status}; archive it before deleting it")
        await audit(conn, actor, "pipeline.delete", "pipeline", name, after="deleted")


async def _unschedule(db: Database, name: str, conn: Conn | None = None) -> None:
    with contextlib.suppress(NotFound):
        await service.delete_schedule(db, schedule_name(name), conn=conn)


async def record_verification(db: Database, name: str, number: int, verification: dict[str, Any]) -> PipelineInfo:
    """Record what verify found; only a passed verification counts for activation."""
    async with db.connection() as conn:
        row = await (await conn.execute(Q["set_verification"], {
            "name": name, "version": number if verification.get("passed") else None,
            "verification": dumps(verification),
        })).fetchone()
    if row is None:
        raise NotFound(f"no pipeline named {name!r}")
    return PipelineInfo.of(row)


class Served(NamedTuple):
    """An active pipeline, the definition of the version it serves, and that version's content hash."""

    info: PipelineInfo
    pipeline: Pipeline
    hash: str


async def active_tools(db: Database) -> list[Served]:
    """The active pipelines with the definition each serves: the MCP tools they publish."""
    async with db.connection() as conn:
        rows = await (await conn.execute(Q["active_tools"])).fetchall()
    return [_served(r) for r in rows]


def _served(row: Any) -> Served:
    """An active pipeline as it serves: who may call it is the served version's `access`, as its run checks,
    and whether it only reads is the served version's too (the row's access_roles and read_only follow the
    latest version saved, which may be a draft not yet served)."""
    definition = _definition_of(json.dumps(row["definition"], sort_keys=True))
    return Served(PipelineInfo.of({**row, "status": "active", "version": row["active_version"],
                                   "access_roles": sorted(set(definition.access.roles))}),
                  definition, row["hash"])


async def active_tool(db: Database, name: str) -> Served | None:
    """The active pipeline `name` with the definition it serves, or None (a tool call reads one row, not
    every active pipeline as `active_tools` does for a listing)."""
    async with db.connection() as conn:
        row = await (await conn.execute(Q["active_tool"], {"name": name})).fetchone()
    return _served(row) if row is not None else None


async def active_templates(db: Database) -> tuple[int, list[dict[str, Any]]]:
    """What the router's template index is built from: a stamp that changes with any activation, archive or
    edit of a pipeline, and each active pipeline's served `{name, version, hash, tags, template,
    input_schema}`. `active_stamp` alone reads one row: rebuild only when it changed. The stamp is read
    first, so a change committed in between makes the next check rebuild again, never miss it."""
    async with db.connection() as conn:
        stamp = await (await conn.execute(Q["active_stamp"])).fetchone()
        rows = await (await conn.execute(Q["active_templates"])).fetchall()
    return int((stamp or {}).get("changes") or 0), list(rows)


async def active_stamp(db: Database) -> int:
    async with db.connection() as conn:
        row = await (await conn.execute(Q["active_stamp"])).fetchone()
    return int((row or {}).get("changes") or 0)


def yaml_of(pipeline: Pipeline) -> str:
    return to_yaml(pipeline)
