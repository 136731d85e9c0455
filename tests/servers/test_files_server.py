"""The files server through a real MCP client session: reading, writing, listing, moving and deleting under one root."""

import base64
import hashlib
import json
import os
import stat
import struct
import zlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import jsonschema
import pytest
from mcp import Client as McpClient
from mcp.types import CallToolResult, ImageContent, TextContent

from longtail_mcp import LongTail
from longtail_mcp.errors import PolicyDenied
from longtail_mcp.files import FileRoot, file_info, read_file, search, write_file
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


def lay_out(root: Path, files: dict[str, str] | dict[str, bytes]) -> None:
    for rel, content in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            (root / rel).write_bytes(content)
        else:
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
    assert {n for n, h in hints.items() if h.read_only_hint and h.idempotent_hint} == {
        "read_file", "list_files", "file_info", "search_files"}
    assert {n for n, h in hints.items() if h.destructive_hint} == {"write_file", "delete_file", "move_file",
                                                                   "edit_file"}
    assert not any(hints[n].read_only_hint for n in ("write_file", "delete_file", "move_file", "edit_file"))
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


def png(width: int = 2, height: int = 1) -> bytes:
    """A real PNG image (8-bit grey), made here so the test needs no file or image library."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + bytes(range(width)) for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_edit_file_replaces_exact_text_in_order_and_returns_a_unified_diff(
        make_app: Callable[..., LongTail], root: Path, transport: str) -> None:
    lay_out(root, {"src/app.py": "def main():\n    print('hello')\n    return 0\n"})
    os.chmod(root / "src" / "app.py", 0o640)
    edits = [{"old_text": "print('hello')", "new_text": "print('hello, world')"},
             {"old_text": "hello, world", "new_text": "bonjour"},  # the second sees the first's result
             {"old_text": "return 0\n", "new_text": "return 1"}]
    diff = ("--- a/src/app.py\n+++ b/src/app.py\n@@ -1,3 +1,3 @@\n def main():\n-    print('hello')\n"
            "-    return 0\n+    print('bonjour')\n+    return 1\n\\ No newline at end of file\n")
    async with files_session(make_app(), transport) as c:
        preview = await call(c, "edit_file", {"path": "src/app.py", "edits": edits, "dry_run": True})
        assert preview == {"path": "src/app.py", "diff": diff, "replacements": 3, "size": 45, "written": False}
        assert (root / "src" / "app.py").read_text() == "def main():\n    print('hello')\n    return 0\n"
        done = await call(c, "edit_file", {"path": "src/app.py", "edits": edits})
        assert done == {**preview, "written": True}
        assert (root / "src" / "app.py").read_text() == "def main():\n    print('bonjour')\n    return 1"
        same = await call(c, "edit_file", {"path": "src/app.py", "edits": [{"old_text": "main", "new_text": "main"}]})
        assert (same["diff"], same["written"]) == ("", False)
    assert stat.S_IMODE(os.stat(root / "src" / "app.py").st_mode) == 0o640, "the mode is kept"
    assert tree(root) == ["src", "src/app.py"], "no temporary file is left behind"


async def test_an_edit_that_cannot_apply_names_the_old_text_and_writes_nothing(
        make_app: Callable[..., LongTail], root: Path) -> None:
    original = "alpha\nbeta\nbeta\ngamma\n"
    lay_out(root, {"notes.txt": original})
    lay_out(root, {"blob.bin": b"\xff\xfe\x00binary"})
    app = make_app()
    async with files_session(app) as c, app.events.subscribe(["file.*"]) as feed:
        await refused(c, "edit_file", {"path": "notes.txt", "edits": [{"old_text": "alpha", "new_text": "A"},
                                                                      {"old_text": "delta", "new_text": "D"}]},
                      "[invalid_input]", "edit 2", "'delta'", "is not in 'notes.txt'", "Nothing was written")
        await refused(c, "edit_file", {"path": "notes.txt", "edits": [{"old_text": "beta\n", "new_text": "B"}]},
                      "[invalid_input]", "edit 1", "'beta\\n'", "more than once")
        await refused(c, "edit_file", {"path": "notes.txt", "edits": [{"old_text": "a\nbeta\nbet", "new_text": ""},
                                                                      {"old_text": "a", "new_text": ""}]},
                      "edit 2", "more than once")
        await refused(c, "edit_file", {"path": "notes.txt", "edits": []}, "[invalid_input]", "edits")
        await refused(c, "edit_file", {"path": "notes.txt", "edits": [{"old_text": "", "new_text": "x"}]},
                      "[invalid_input]", "old_text")
        await refused(c, "edit_file", {"path": "blob.bin", "edits": [{"old_text": "binary", "new_text": "x"}]},
                      "[invalid_input]", "not UTF-8 text")
        await refused(c, "edit_file", {"path": "missing.txt", "edits": [{"old_text": "a", "new_text": "b"}]},
                      "[not_found]")
        await call(c, "edit_file", {"path": "notes.txt", "edits": [{"old_text": "gamma", "new_text": "GAMMA"}]})
        with anyio.fail_after(5):
            event = await feed.__anext__()
        assert (event.type, event.id) == ("file.written", "notes.txt"), "only the edit that wrote announced"
    assert (root / "notes.txt").read_text() == original.replace("gamma", "GAMMA")


async def test_edit_file_respects_the_size_limit_and_read_only_mode_but_a_dry_run_still_shows_the_diff(
        make_app: Callable[..., LongTail], root: Path) -> None:
    lay_out(root, {"a.txt": "0123456789"})
    async with files_session(make_app(files_max_bytes=12)) as c:
        await refused(c, "edit_file", {"path": "a.txt", "edits": [{"old_text": "9", "new_text": "9abc"}]},
                      "[denied]", "13 bytes", "12-byte limit")
    async with files_session(make_app(files_read_only=True)) as c:
        await refused(c, "edit_file", {"path": "a.txt", "edits": [{"old_text": "0", "new_text": "zero"}]},
                      "[denied]", "read-only")
        shown = await call(c, "edit_file", {"path": "a.txt", "edits": [{"old_text": "0", "new_text": "zero"}],
                                            "dry_run": True})
        assert "+zero123456789" in shown["diff"] and not shown["written"]
    assert (root / "a.txt").read_text() == "0123456789"


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_search_files_finds_names_and_lines_under_a_folder(make_app: Callable[..., LongTail], root: Path,
                                                                 transport: str) -> None:
    lay_out(root, {"README.md": "# Project\nTODO: write docs\n", "src/app.py": "import os\n\ndef main():  # TODO\n",
                   "src/util/strings.py": "def shout(s):\n    return s.upper()  # todo later\n",
                   "docs/guide.md": "No tasks here.\n", "logs/old.log": "x" * 100 + "TODO far away\n"})
    lay_out(root, {"src/icon.bin": b"\x89PNG\x00\x00TODO inside binary"})
    async with files_session(make_app(), transport) as c:
        by_name = await call(c, "search_files", {"name": "*.py"})
        assert [(m["path"], m["type"], m["line"]) for m in by_name["matches"]] == [
            ("src/app.py", "file", None), ("src/util/strings.py", "file", None)]
        assert [m["path"] for m in (await call(c, "search_files", {"name": "util"}))["matches"]] == ["src/util"]
        under = await call(c, "search_files", {"path": "src", "name": "util/*.py"})
        assert [m["path"] for m in under["matches"]] == ["src/util/strings.py"], "a glob with '/' is under the folder"

        todos = await call(c, "search_files", {"content": "TODO"})
        assert [(m["path"], m["line"], m["column"]) for m in todos["matches"]] == [
            ("README.md", 2, 1), ("logs/old.log", 1, 101), ("src/app.py", 3, 16)]
        assert todos["matches"][0]["text"] == "TODO: write docs"
        assert todos["matches"][1]["text"] == "x" * 60 + "TODO far away", "a long line is shown from near the match"
        assert (todos["files_searched"], todos["files_skipped"], todos["truncated"]) == (5, 1, False)
        any_case = await call(c, "search_files", {"content": "todo", "ignore_case": True, "name": "*.py"})
        assert [(m["path"], m["line"]) for m in any_case["matches"]] == [("src/app.py", 3), ("src/util/strings.py", 2)]
        regex = await call(c, "search_files", {"content": r"def \w+\(s?\):", "regex": True})
        assert [(m["path"], m["line"], m["text"]) for m in regex["matches"]] == [
            ("src/app.py", 3, "def main():  # TODO"), ("src/util/strings.py", 1, "def shout(s):")]
        first = await call(c, "search_files", {"content": "TODO", "max_results": 1})
        assert len(first["matches"]) == 1 and first["truncated"]
        cut = await call(c, "search_files", {"path": "logs", "content": "TODO", "max_file_bytes": 50})
        assert cut["matches"] == [] and cut["files_cut"] == 1

        await refused(c, "search_files", {}, "[invalid_input]", "name", "content")
        await refused(c, "search_files", {"content": "(unclosed", "regex": True}, "[invalid_input]",
                      "not a valid regular expression")
        await refused(c, "search_files", {"content": "two\nlines"}, "[invalid_input]", "one line")
        await refused(c, "search_files", {"path": "README.md", "name": "*"}, "[invalid_input]", "not a directory")
        await refused(c, "search_files", {"path": "nowhere", "name": "*"}, "[not_found]")


async def test_a_runaway_regular_expression_is_stopped_and_the_server_keeps_answering(
        make_app: Callable[..., LongTail], root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(search, "REGEX_SECONDS", 1.5)  # the limit, shortened for the test
    lay_out(root, {"a.txt": "a" * 40 + "!\n", "b.txt": "fine\n"})
    async with files_session(make_app()) as c:
        answered_at: list[float] = []

        async def read_meanwhile() -> None:
            await anyio.sleep(0.3)
            await call(c, "read_file", {"path": "b.txt"})
            answered_at.append(anyio.current_time())

        started = anyio.current_time()
        with anyio.fail_after(20):
            async with anyio.create_task_group() as tg:
                tg.start_soon(read_meanwhile)
                text = await refused(c, "search_files", {"content": "(a+)+$", "regex": True}, "[invalid_input]",
                                     "did not finish within 1.5 s", "nested repeats")
                finished = anyio.current_time()
        assert answered_at and answered_at[0] < finished, "another call was answered while the regex ran"
        assert finished - started < 10
        assert "a" * 40 not in text


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_reading_an_image_returns_image_content_beside_the_structured_result(
        make_app: Callable[..., LongTail], root: Path, transport: str) -> None:
    picture = png()
    lay_out(root, {"dot.png": picture, "fake.png": b"not a picture"})
    async with files_session(make_app(), transport) as c:
        tool = next(t for t in (await c.list_tools()).tools if t.name == "read_file")
        result = await c.call_tool("read_file", {"path": "dot.png"})
        assert not result.is_error
        images = [block for block in result.content if isinstance(block, ImageContent)]
        assert len(images) == 1 and images[0].mime_type == "image/png"
        assert base64.b64decode(images[0].data) == picture
        structured = result.structured_content
        assert structured is not None and structured["mime"] == "image/png" and structured["encoding"] == "base64"
        assert base64.b64decode(structured["content"]) == picture
        assert tool.output_schema is not None
        jsonschema.validate(structured, tool.output_schema)
        text = json.loads(text_of(result))
        assert text == {**structured, "content": f"(image/png, {len(picture)} bytes: in the image content)"}, \
            "the text block is the JSON result, naming the image instead of repeating its base64"
        for args in ({"path": "fake.png"}, {"path": "dot.png", "length": 10}):
            other = await c.call_tool("read_file", args)
            assert not other.is_error and not [b for b in other.content if isinstance(b, ImageContent)], args
