"""The files server: read, write, list, move and delete files under one root, safely."""

from typing import Any, Literal

from mcp.server import Server
from pydantic import BaseModel, ConfigDict, Field

from longtail_mcp import files
from longtail_mcp.events import Event
from longtail_mcp.files import FileRoot
from longtail_mcp.mcp_glue.server import PrincipalSource, build_server
from longtail_mcp.tools.spec import Approvable, Args, Services, ToolCall, ToolSpec

NAME = "files"
TAGS = ("storage", "files", "io")
MAX_CONTENT_CHARS = 64 * 1024 * 1024  # the transport's bound; LONGTAIL_FILES_MAX_BYTES is the real limit
PATH_HELP = "Path relative to the files root, with '/' between directories (e.g. 'notes/today.txt')"


class PathArgs(Args, Approvable):
    path: str = Field(min_length=1, max_length=4096, description=PATH_HELP)


class ReadIn(PathArgs):
    offset: int = Field(0, ge=0, description="First byte to read")
    length: int | None = Field(None, ge=0, description="Most bytes to read (default: to the end, within the "
                                                       "server's size limit)")
    encoding: Literal["auto", "base64"] = Field("auto", description="'auto': UTF-8 text when the bytes are "
                                                                    "valid UTF-8, else base64; 'base64': always")


class ReadOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    path: str
    content: str = Field(description="The bytes read, as text or base64 (see encoding)")
    encoding: Literal["utf-8", "base64"]
    mime: str
    size: int = Field(description="Size of the whole file in bytes")
    offset: int
    length: int = Field(description="Bytes returned")
    more: bool = Field(description="More bytes follow: read again from offset + length")


class WriteIn(PathArgs):
    content: str = Field(max_length=MAX_CONTENT_CHARS, description="Text, or base64 when encoding is 'base64'")
    encoding: Literal["utf-8", "base64"] = "utf-8"
    create_only: bool = Field(False, description="Fail (changing nothing) if the file already exists")
    make_dirs: bool = Field(False, description="Create missing parent directories")


class WriteOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    path: str
    size: int
    created: bool = Field(description="True for a new file, false when an existing one was replaced")


class ListIn(Args, Approvable):
    pattern: str = Field("*", min_length=1, max_length=4096,
                         description="Glob relative to the root: '*' top level, 'docs/*.md', '**/*.txt' at any depth")
    offset: int = Field(0, ge=0, description="Skip this many matches (use next_offset from the previous page)")
    limit: int = Field(100, ge=1, le=1000)


class EntryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    name: str
    path: str
    type: Literal["file", "dir", "symlink", "other"]
    size: int
    modified: str


class ListOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    entries: list[EntryOut]
    total: int = Field(description="Matches in all pages")
    next_offset: int | None = Field(description="Offset of the next page, or null on the last one")
    truncated: bool = Field(description="The walk stopped early (too many entries); narrow the pattern")


class DeleteIn(PathArgs):
    directory: bool = Field(False, description="Allow deleting a directory (only when it is empty)")


class DeleteOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    path: str
    type: Literal["file", "dir", "symlink", "other"]


class MoveIn(Args, Approvable):
    source: str = Field(min_length=1, max_length=4096, description=PATH_HELP)
    destination: str = Field(min_length=1, max_length=4096, description=PATH_HELP)
    overwrite: bool = Field(False, description="Replace an existing destination file (never a directory)")
    make_dirs: bool = Field(False, description="Create missing parent directories of the destination")


class MoveOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    source: str
    destination: str
    overwritten: bool


class InfoIn(PathArgs):
    path: str = Field(min_length=1, max_length=4096, description=PATH_HELP + "; '.' is the root")
    sha256: bool = Field(False, description="Also compute the SHA-256 of a regular file")


class InfoOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    path: str
    exists: bool
    type: Literal["file", "dir", "symlink", "other"] | None = None
    size: int | None = None
    mime: str | None = None
    modified: str | None = Field(None, description="Last modification, ISO 8601 UTC")
    sha256: str | None = None


def _root(call: ToolCall) -> FileRoot:
    return FileRoot.from_settings(call.client.settings)


async def read_file(call: ToolCall, args: ReadIn) -> ReadOut:
    return ReadOut.model_validate(await files.read_file(
        _root(call), args.path, offset=args.offset, length=args.length, encoding=args.encoding,
        approved=call.approved))


async def write_file(call: ToolCall, args: WriteIn) -> WriteOut:
    written = await files.write_file(_root(call), args.path, files.decode_content(args.content, args.encoding),
                                     create_only=args.create_only, make_dirs=args.make_dirs, approved=call.approved)
    await files.announce(call.client.db, [Event("file.written", id=written.path)])
    return WriteOut.model_validate(written)


async def list_files(call: ToolCall, args: ListIn) -> ListOut:
    return ListOut.model_validate(await files.list_files(_root(call), args.pattern, offset=args.offset,
                                                         limit=args.limit, approved=call.approved))


async def delete_file(call: ToolCall, args: DeleteIn) -> DeleteOut:
    deleted = await files.delete_file(_root(call), args.path, directory=args.directory, approved=call.approved)
    await files.announce(call.client.db, [Event("file.deleted", id=deleted.path)])
    return DeleteOut.model_validate(deleted)


async def move_file(call: ToolCall, args: MoveIn) -> MoveOut:
    moved = await files.move_file(_root(call), args.source, args.destination, overwrite=args.overwrite,
                                  make_dirs=args.make_dirs, approved=call.approved)
    await files.announce(call.client.db, [Event("file.deleted", id=moved.source),
                                          Event("file.written", id=moved.destination)])
    return MoveOut.model_validate(moved)


async def file_info(call: ToolCall, args: InfoIn) -> InfoOut:
    return InfoOut.model_validate(await files.file_info(_root(call), args.path, sha256=args.sha256,
                                                        approved=call.approved))


REFUSALS = ("Paths outside the root, on the deny list (LONGTAIL_FILES_DENY) or through symbolic links are "
            "refused; with request_approval=true an approver can allow one refused call.")
TOOLS = [
    ToolSpec("read_file", "Read a file under the files root: UTF-8 text, or base64 for binary data. Large files: "
             "read in pieces with offset/length while 'more' is true. " + REFUSALS,
             ReadIn, ReadOut, read_file, read_only=True, idempotent=True, tags=TAGS),
    ToolSpec("write_file", "Write a whole file atomically (text or base64), replacing it unless create_only. "
             "Parent directories must exist unless make_dirs. " + REFUSALS,
             WriteIn, WriteOut, write_file, destructive=True, idempotent=True, tags=TAGS),
    ToolSpec("list_files", "List files and directories matching a glob relative to the root ('**/*.txt'), sorted "
             "by path, a page at a time (next_offset). Denied entries and links leading outside are never shown.",
             ListIn, ListOut, list_files, read_only=True, idempotent=True, tags=TAGS),
    ToolSpec("delete_file", "Delete a file, or an empty directory with directory=true. " + REFUSALS,
             DeleteIn, DeleteOut, delete_file, destructive=True, idempotent=True, tags=TAGS),
    ToolSpec("move_file", "Move or rename a file or directory within the root. An existing destination is kept "
             "unless overwrite=true. " + REFUSALS,
             MoveIn, MoveOut, move_file, destructive=True, tags=TAGS),
    ToolSpec("file_info", "Describe a path without following links: exists, type, size, MIME type, modification "
             "time, optionally its SHA-256.", InfoIn, InfoOut, file_info, read_only=True, idempotent=True,
             tags=TAGS),
]


def build(services: Services, principal_of: PrincipalSource) -> Server[Any]:
    return build_server(NAME, TOOLS, services, principal_of,
                        instructions="Files under one root directory (LONGTAIL_FILES_ROOT).")
