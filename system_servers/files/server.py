"""The files server: read, write, edit, list, search, move and delete files under one root, safely."""

import base64
import binascii
from typing import Any, Literal

from mcp.server import Server
from pydantic import BaseModel, ConfigDict, Field

from longtail_mcp import files
from longtail_mcp.errors import PolicyDenied
from longtail_mcp.events import Event
from longtail_mcp.files import FileRoot
from longtail_mcp.files.edits import MAX_EDITS
from longtail_mcp.files.search import DEFAULT_FILE_BYTES, MAX_PATTERN_CHARS, MAX_RESULTS
from longtail_mcp.mcp_glue.server import PrincipalSource, build_server
from longtail_mcp.tools.prompts import PromptSpec
from longtail_mcp.tools.resources import Contents, Listed, ResourceSpec, uri_of
from longtail_mcp.tools.spec import Approvable, Args, Image, Services, ToolCall, ToolSpec

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


class ReplacementIn(Args):
    old_text: str = Field(min_length=1, max_length=MAX_CONTENT_CHARS,
                          description="Exact text to replace (whitespace and line breaks included); it must occur "
                                      "exactly once in the file as the edits before it left it")
    new_text: str = Field(max_length=MAX_CONTENT_CHARS, description="The text to put in its place")


class EditIn(PathArgs):
    edits: list[ReplacementIn] = Field(min_length=1, max_length=MAX_EDITS,
                                       description="Replacements {old_text, new_text} made in order, each on the "
                                                   "result of the ones before; if one fails, nothing is written")
    dry_run: bool = Field(False, description="Only return the diff; write nothing")


class EditOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    path: str
    diff: str = Field(description="Unified diff of the edit (empty when it changes nothing)")
    replacements: int
    size: int = Field(description="Size of the edited file in bytes")
    written: bool = Field(description="The file was replaced on disk: false for a dry run or an edit that "
                                      "changes nothing")


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


class SearchIn(Args, Approvable):
    path: str = Field(".", min_length=1, max_length=4096, description="Folder to search under, relative to the "
                      "root ('.' is the root)")
    name: str | None = Field(None, min_length=1, max_length=4096,
                             description="Glob on file names ('*.py', 'README*'), or with '/' on paths under the "
                                         "folder ('src/**/*.md')")
    content: str | None = Field(None, min_length=1, max_length=MAX_PATTERN_CHARS,
                                description="Text to find within lines (a substring, or a regular expression "
                                            "with regex=true)")
    regex: bool = Field(False, description="content is a Python regular expression (run with a time limit)")
    ignore_case: bool = Field(False, description="Match name and content without regard to case")
    max_results: int = Field(100, ge=1, le=MAX_RESULTS, description="Stop after this many matches")
    max_file_bytes: int = Field(DEFAULT_FILE_BYTES, ge=1, description="Search only the first bytes of each file "
                                "(capped by the server's LONGTAIL_FILES_MAX_BYTES)")


class MatchOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    path: str
    type: Literal["file", "dir"]
    line: int | None = Field(None, description="Line number (from 1), for a content match")
    column: int | None = Field(None, description="Character of the line where the match starts (from 1)")
    text: str | None = Field(None, description="The line, from a little before the match, cut at 300 characters")


class SearchOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    matches: list[MatchOut]
    files_searched: int = Field(description="Files whose content was searched")
    files_skipped: int = Field(description="Files not searched: binary, with other hard links, or unreadable")
    files_cut: int = Field(description="Files longer than max_file_bytes: only their start was searched")
    truncated: bool = Field(description="The search stopped early (max_results reached, or too many entries or "
                                        "bytes); there may be more: narrow it")


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


async def edit_file(call: ToolCall, args: EditIn) -> EditOut:
    edited = await files.edit_file(_root(call), args.path, [files.Replacement(e.old_text, e.new_text)
                                                            for e in args.edits],
                                   dry_run=args.dry_run, approved=call.approved)
    if edited.written:
        await files.announce(call.client.db, [Event("file.written", id=edited.path)])
    return EditOut.model_validate(edited)


async def search_files(call: ToolCall, args: SearchIn) -> SearchOut:
    return SearchOut.model_validate(await files.search_files(
        _root(call), args.path, name=args.name, content=args.content, regex=args.regex, ignore_case=args.ignore_case,
        max_results=args.max_results, max_file_bytes=args.max_file_bytes, approved=call.approved))


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


# Formats a client can show, each with the bytes it starts with.
IMAGE_SIGNATURES = {"image/png": (b"\x89PNG\r\n\x1a\n",), "image/jpeg": (b"\xff\xd8\xff",),
                    "image/gif": (b"GIF87a", b"GIF89a"), "image/webp": (b"RIFF",)}


def read_images(result: dict[str, Any]) -> list[Image]:
    """A whole png, jpeg, gif or webp file read by read_file, as an image (its bytes must match its name)."""
    mime = result.get("mime")
    if mime not in IMAGE_SIGNATURES or result.get("offset") != 0 or result.get("more"):
        return []
    content = str(result.get("content", ""))
    try:
        data = base64.b64decode(content, validate=True) if result.get("encoding") == "base64" else content.encode()
    except (binascii.Error, ValueError):
        return []
    if not data.startswith(IMAGE_SIGNATURES[mime]) or (mime == "image/webp" and data[8:12] != b"WEBP"):
        return []
    return [Image(data=content if result.get("encoding") == "base64" else base64.b64encode(data).decode("ascii"),
                  mime=mime, field="content")]


REFUSALS = ("Paths outside the root, on the deny list (LONGTAIL_FILES_DENY) or through symbolic links are "
            "refused; with request_approval=true an approver can allow one refused call.")
TOOLS = [
    ToolSpec("read_file", "Read a file under the files root: UTF-8 text, or base64 for binary data; a whole png, "
             "jpeg, gif or webp image also comes as image content. Large files: read in pieces with offset/length "
             "while 'more' is true. " + REFUSALS,
             ReadIn, ReadOut, read_file, read_only=True, idempotent=True, tags=TAGS, images=read_images),
    ToolSpec("write_file", "Write a whole file atomically (text or base64), replacing it unless create_only. "
             "Parent directories must exist unless make_dirs. " + REFUSALS,
             WriteIn, WriteOut, write_file, destructive=True, idempotent=True, tags=TAGS),
    ToolSpec("edit_file", "Edit a text file with exact-text replacements [{old_text, new_text}], made in order; each "
             "old_text must occur exactly once, else nothing is written. Returns a unified diff; dry_run=true "
             "only shows it. The file is replaced atomically. " + REFUSALS,
             EditIn, EditOut, edit_file, destructive=True, tags=TAGS),
    ToolSpec("search_files", "Search under a folder for files whose name matches a glob and/or lines containing "
             "text (or a regular expression with regex=true); returns paths with line numbers and lines, at most "
             "max_results. Binary files are skipped and only the start of large files is read. Denied entries "
             "and links are never searched or shown. " + REFUSALS,
             SearchIn, SearchOut, search_files, read_only=True, idempotent=True, tags=TAGS),
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


FILE_URI = "longtail://files/{+path}"
LISTED_FILES = 50  # top-level files shown in a resources listing (the rest by template or list_files)
BINARY = ("image/", "audio/", "video/")  # always sent as blobs, even when the bytes happen to be valid UTF-8


async def read_resource(call: ToolCall, uri: dict[str, str]) -> Contents:
    try:
        read = await files.read_file(_root(call), uri["path"])
    except PolicyDenied as exc:  # a resource cannot carry an approval; the tool can
        raise PolicyDenied(f"{exc.message}; read_file with request_approval: true can ask the approver role to "
                           "allow it once", rule=exc.rule) from None
    meta = {"io.longtail/file": {"path": read.path, "size": read.size}}
    if read.encoding == "base64":
        return Contents(mime=read.mime, data=base64.b64decode(read.content), meta=meta)
    if read.mime.startswith(BINARY):
        return Contents(mime=read.mime, data=read.content.encode(), meta=meta)
    mime = "text/plain" if read.mime == "application/octet-stream" else read.mime
    return Contents(mime=mime, text=read.content, meta=meta)


async def top_files(call: ToolCall) -> list[Listed]:
    listing = await files.list_files(_root(call), "*", limit=LISTED_FILES)
    return [Listed(uri=uri_of(FILE_URI, path=e.path), name=e.path, title=e.name, description=f"{e.size} bytes")
            for e in listing.entries if e.type == "file"]


RESOURCES = [
    ResourceSpec(FILE_URI, "file", "A file under the files root: text, or a base64 blob for binary data and "
                 "images; the top-level files are listed. Paths outside the root, on the deny list "
                 "(LONGTAIL_FILES_DENY), through symbolic links or over the size limit are refused.", read_resource,
                 listing=top_files),
]
PROMPTS: list[PromptSpec] = []


def build(services: Services, principal_of: PrincipalSource) -> Server[Any]:
    return build_server(NAME, TOOLS, services, principal_of, resources=RESOURCES, prompts=PROMPTS,
                        instructions="Files under one root directory (LONGTAIL_FILES_ROOT).")
