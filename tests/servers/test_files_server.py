"""The files server through a real MCP client session: reading, writing, listing, moving and deleting under one root."""

import base64
import hashlib
import os
import stat
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client as McpClient
from mcp.types import CallToolResult, TextContent

from longtail_mcp import LongTail
from longtail_mcp.errors import PolicyDenied
from longtail_mcp.files import FileRoot, file_info, read_file, write_file
from system_servers.files import server as files_server
from tests.servers.sessions import session

pytestmark = pytest.mark.anyio




@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "root"


@pytest.fixture
def make_app(dsn: str, root: Path) -> Callable[..., LongTail]:
    def make(**overrides: Any) -> LongTail:
        return LongTail(dsn, poll_seconds=0.2, lease_seconds=5, files_root=root, **overrides)

    return make


@asynccontextmanager
async def files_session(app: LongTail, transport: str = "memory") -> AsyncIterator[McpClient]:
    async with app, session(transport, app, "files") as c:
        yield c


def text_of(result: CallToolResult) -> str:
    content = result.content[0]
    assert isinstance(content, TextContent)
    return content.text


async def call(c: McpClient, tool: str, args: dict[str, Any]) -> Any:
    result = await c.call_tool(tool, args)
    assert not result.is_error, text_of(result)
    return result.structured_content


async def refused(c: McpClient, tool: str, args: dict[str, Any], *mentions: str) -> str:
    result = await c.call_tool(tool, args)
    text = text_of(result)
    assert result.is_error, f"{tool} {args} should have failed: {text}"
    for word in mentions:
        assert word in text, (word, text)
    return text


TRANSPORTS = ["memory", "jsonrpc", "stdio"]


def tree(root: Path) -> list[str]:
    """Every path under `root`, relative and sorted."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def lay_out(root: Path, files: dict[str, str]) -> None:
    for rel, content in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(content)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_every_files_tool_works_over_the_transport(make_app: Callable[..., LongTail], root: Path,
                                                         transport: str) -> None:
    async with files_session(make_app(), transport) as c:
        assert {t.name for t in (await c.list_tools()).tools} == {s.name for s in files_server.TOOLS}
        written = await call(c, "write_file", {"path": "notes/today.txt", "content": "héllo\n", "make_dirs": True})
        assert written == {"path": "notes/today.txt", "size": 7, "created": True}
        assert (root / "notes" / "today.txt").read_text() == "héllo\n"
        read = await call(c, "read_file", {"path": "notes/today.txt"})
        assert read == {"path": "notes/today.txt", "content": "héllo\n", "encoding": "utf-8", "mime": "text/plain",
                        "size": 7, "offset": 0, "length": 7, "more": False}
        listed = await call(c, "list_files", {"pattern": "**/*.txt"})
        assert [(e["path"], e["type"], e["size"]) for e in listed["entries"]] == [("notes/today.txt", "file", 7)]
        info = await call(c, "file_info", {"path": "notes/today.txt", "sha256": True})
        assert info["exists"] and info["sha256"] == hashlib.sha256("héllo\n".encode()).hexdigest()
        moved = await call(c, "move_file", {"source": "notes/today.txt", "destination": "archive/2026.txt",
                                            "make_dirs": True})
        assert moved == {"source": "notes/today.txt", "destination": "archive/2026.txt", "overwritten": False}
        assert (await call(c, "file_info", {"path": "notes/today.txt"}))["exists"] is False
        assert await call(c, "delete_file", {"path": "archive/2026.txt"}) == {"path": "archive/2026.txt",
                                                                              "type": "file"}
        await refused(c, "read_file", {"path": "../escape.txt"}, "[denied]", "out of the files root")
    assert tree(root) == ["archive", "notes"]


async def test_the_root_is_created_private_on_first_use(make_app: Callable[..., LongTail], root: Path) -> None:
    assert tree(root.parent) == []
    async with files_session(make_app()) as c:
        assert (await call(c, "list_files", {}))["entries"] == []
    assert stat.S_IMODE(os.stat(root).st_mode) == 0o700


async def test_binary_content_round_trips_as_base64(make_app: Callable[..., LongTail], root: Path) -> None:
    blob = bytes(range(256)) * 4
    async with files_session(make_app()) as c:
        await call(c, "write_file", {"path": "img.png", "content": base64.b64encode(blob).decode(),
                                     "encoding": "base64"})
        assert (root / "img.png").read_bytes() == blob
        read = await call(c, "read_file", {"path": "img.png"})
        assert read["encoding"] == "base64" and read["mime"] == "image/png"
        assert base64.b64decode(read["content"]) == blob
        text = await call(c, "read_file", {"path": "img.png", "offset": 65, "length": 3})
        assert (text["content"], text["encoding"], text["more"]) == ("ABC", "utf-8", True)
        forced = await call(c, "read_file", {"path": "img.png", "offset": 65, "length": 3, "encoding": "base64"})
        assert forced["content"] == base64.b64encode(b"ABC").decode()
        await refused(c, "write_file", {"path": "x.bin", "content": "not base64!", "encoding": "base64"}, "base64")
    assert not (root / "x.bin").exists()


async def test_large_files_are_read_in_pieces_until_more_is_false(make_app: Callable[..., LongTail],
                                                                  root: Path) -> None:
    data = os.urandom(1000).hex()  # 2000 bytes
    lay_out(root, {"big.txt": data})
    async with files_session(make_app(files_max_bytes=800)) as c:
        await refused(c, "read_file", {"path": "big.txt"}, "[denied]", "800-byte limit", "offset and length")
        pieces, offset, more = [], 0, True
        while more:
            piece = await call(c, "read_file", {"path": "big.txt", "offset": offset, "length": 700})
            pieces.append(piece["content"])
            offset, more = offset + piece["length"], piece["more"]
        assert "".join(pieces) == data and len(pieces) == 3
        past = await call(c, "read_file", {"path": "big.txt", "offset": 5000})
        assert (past["content"], past["length"], past["more"]) == ("", 0, False)


async def test_list_files_pages_sorted_matches_with_next_offset(make_app: Callable[..., LongTail],
                                                                root: Path) -> None:
    lay_out(root, {rel: rel for rel in ["a.txt", "b.md", "docs/c.txt", "docs/deep/d.txt", "docs/deep/e.md", "z.txt"]})
    async with files_session(make_app()) as c:
        top = await call(c, "list_files", {"pattern": "*"})
        assert [(e["name"], e["type"]) for e in top["entries"]] == [("a.txt", "file"), ("b.md", "file"),
                                                                    ("docs", "dir"), ("z.txt", "file")]
        deep = await call(c, "list_files", {"pattern": "**/*.txt", "limit": 2})
        assert [e["path"] for e in deep["entries"]] == ["a.txt", "docs/c.txt"]
        assert (deep["total"], deep["next_offset"]) == (4, 2)
        rest = await call(c, "list_files", {"pattern": "**/*.txt", "limit": 2, "offset": 2})
        assert [e["path"] for e in rest["entries"]] == ["docs/deep/d.txt", "z.txt"] and rest["next_offset"] is None
        assert [e["path"] for e in (await call(c, "list_files", {"pattern": "docs/*"}))["entries"]] == [
            "docs/c.txt", "docs/deep"]
        assert [e["path"] for e in (await call(c, "list_files", {"pattern": "docs/**"}))["entries"]] == [
            "docs/c.txt", "docs/deep", "docs/deep/d.txt", "docs/deep/e.md"]
        assert [e["path"] for e in (await call(c, "list_files", {"pattern": "[ab].*"}))["entries"]] == [
            "a.txt", "b.md"]
        await refused(c, "list_files", {"pattern": "nowhere/*"}, "[not_found]", "nowhere")


async def test_create_only_move_overwrite_and_directory_deletes(make_app: Callable[..., LongTail],
                                                                root: Path) -> None:
    async with files_session(make_app()) as c:
        await call(c, "write_file", {"path": "a.txt", "content": "first", "create_only": True})
        await refused(c, "write_file", {"path": "a.txt", "content": "second", "create_only": True},
                      "[conflict]", "already exists")
        assert (await call(c, "write_file", {"path": "a.txt", "content": "third"}))["created"] is False
        await call(c, "write_file", {"path": "b.txt", "content": "bee"})
        await refused(c, "move_file", {"source": "b.txt", "destination": "a.txt"}, "[conflict]", "overwrite=true")
        assert (root / "a.txt").read_text() == "third"
        assert (await call(c, "move_file", {"source": "b.txt", "destination": "a.txt", "overwrite": True}))[
            "overwritten"]
        assert (root / "a.txt").read_text() == "bee" and not (root / "b.txt").exists()
        await refused(c, "write_file", {"path": "sub/x.txt", "content": "x"}, "[not_found]", "make_dirs")
        await call(c, "write_file", {"path": "sub/x.txt", "content": "x", "make_dirs": True})
        await refused(c, "delete_file", {"path": "sub"}, "directory=true")
        await refused(c, "delete_file", {"path": "sub", "directory": True}, "[conflict]", "not empty")
        await refused(c, "read_file", {"path": "sub"}, "is a directory")
        await refused(c, "write_file", {"path": "sub", "content": "x"}, "[conflict]", "is a directory")
        await call(c, "delete_file", {"path": "sub/x.txt"})
        assert (await call(c, "delete_file", {"path": "sub", "directory": True}))["type"] == "dir"
        await call(c, "move_file", {"source": "a.txt", "destination": "dir/a.txt", "make_dirs": True})
        await call(c, "move_file", {"source": "dir", "destination": "renamed"})
        await refused(c, "move_file", {"source": "renamed", "destination": "renamed/inner"}, "into itself")
        await refused(c, "delete_file", {"path": "gone.txt"}, "[not_found]", "gone.txt")
        await refused(c, "read_file", {"path": "gone.txt"}, "[not_found]", "list_files")
    assert tree(root) == ["renamed", "renamed/a.txt"], "no temporary files are left behind"


async def test_writes_keep_the_mode_of_the_file_they_replace(make_app: Callable[..., LongTail], root: Path) -> None:
    lay_out(root, {"run.sh": "echo hi"})
    os.chmod(root / "run.sh", 0o750)
    async with files_session(make_app()) as c:
        await call(c, "write_file", {"path": "run.sh", "content": "echo bye"})
    assert stat.S_IMODE(os.stat(root / "run.sh").st_mode) == 0o750


async def test_writes_moves_and_deletes_emit_file_events(make_app: Callable[..., LongTail]) -> None:
    app = make_app()
    async with files_session(app) as c, app.events.subscribe(["file.*"]) as feed:
        await call(c, "write_file", {"path": "a.txt", "content": "x"})
        await call(c, "move_file", {"source": "a.txt", "destination": "b.txt"})
        await call(c, "delete_file", {"path": "b.txt"})
        seen = []
        with anyio.fail_after(5):
            async for event in feed:
                seen.append((event.type, event.id))
                if len(seen) == 4:
                    break
    assert seen == [("file.written", "a.txt"), ("file.deleted", "a.txt"), ("file.written", "b.txt"),
                    ("file.deleted", "b.txt")]


async def test_file_info_describes_without_following_links(make_app: Callable[..., LongTail], root: Path) -> None:
    lay_out(root, {"a.json": "{}"})
    os.symlink("a.json", root / "link")
    async with files_session(make_app()) as c:
        info = await call(c, "file_info", {"path": "a.json"})
        assert (info["type"], info["size"], info["mime"]) == ("file", 2, "application/json")
        assert (await call(c, "file_info", {"path": "link"}))["type"] == "symlink"
        assert (await call(c, "file_info", {"path": "."}))["type"] == "dir"
        assert (await call(c, "file_info", {"path": "no/such/file"}))["exists"] is False
        await refused(c, "read_file", {"path": "link"}, "[denied]", "symbolic link")


async def test_tools_declare_honest_annotations_and_approvable_inputs(make_app: Callable[..., LongTail]) -> None:
    async with files_session(make_app()) as c:
        tools = {t.name: t for t in (await c.list_tools()).tools}
    hints = {name: tool.annotations for name, tool in tools.items() if tool.annotations is not None}
    assert {n for n, h in hints.items() if h.read_only_hint and h.idempotent_hint} == {"read_file", "list_files",
                                                                                      "file_info"}
    assert {n for n, h in hints.items() if h.destructive_hint} == {"write_file", "delete_file", "move_file"}
    for tool in tools.values():
        assert {"request_approval", "approval_id"} <= set(tool.input_schema["properties"]), tool.name
        assert tool.input_schema["additionalProperties"] is False


async def test_an_approved_call_goes_through_once_at_the_core(root: Path, tmp_path: Path) -> None:
    files = FileRoot(root, deny=(".env",), read_only=False, max_bytes=100)
    with pytest.raises(PolicyDenied) as denied:
        await write_file(files, ".env", b"TOKEN=1")
    assert denied.value.rule == "denied_path" and not (root / ".env").exists()
    assert (await write_file(files, ".env", b"TOKEN=1", approved=True)).created
    assert (root / ".env").read_bytes() == b"TOKEN=1"
    with pytest.raises(PolicyDenied):
        await read_file(files, ".env")  # the approval covered that one call only
    outside = tmp_path / "outside.txt"
    outside.write_text("elsewhere")
    with pytest.raises(PolicyDenied) as far:
        await read_file(files, str(outside))
    assert far.value.rule == "outside_root"
    assert (await read_file(files, str(outside), approved=True)).content == "elsewhere"
    with pytest.raises(PolicyDenied) as big:
        await write_file(files, "big.txt", b"x" * 101)
    assert big.value.rule == "too_large"
    assert (await write_file(files, "big.txt", b"x" * 101, approved=True)).size == 101
    readonly = FileRoot(root, read_only=True)
    with pytest.raises(PolicyDenied) as ro:
        await write_file(readonly, "c.txt", b"c")
    assert ro.value.rule == "read_only" and not (root / "c.txt").exists()
    assert (await write_file(readonly, "c.txt", b"c", approved=True)).created
    assert (await file_info(readonly, "c.txt")).size == 1
