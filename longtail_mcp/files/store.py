"""File operations under the root: read, write, delete, move and describe, each checked by `guard`.

Every function is async (the blocking I/O runs in a worker thread), takes the `FileRoot` policy and
`approved` (an approver allowed this exact call once: its policy checks are lifted, never the syntax
checks). Each call is one worker-thread hop (locate, check, act). Writes go through a temporary file
in the target's directory, fsync'd, then renamed.
"""

import base64
import binascii
import errno
import hashlib
import mimetypes
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, TypeVar

import anyio

from longtail_mcp.db.pool import Database
from longtail_mcp.errors import Conflict, Forbidden, InvalidInput, LongtailError, NotFound, Unavailable
from longtail_mcp.events import Event, emit
from longtail_mcp.files.atomic import rename_noreplace, write_atomically
from longtail_mcp.files.guard import FileRoot, Target, check_leaf, locate, open_parent, refuse

FileType = Literal["file", "dir", "symlink", "other"]
T = TypeVar("T")
_READ_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK  # NONBLOCK: opening a FIFO must not hang


@dataclass(frozen=True)
class FileContent:
    path: str
    content: str
    encoding: Literal["utf-8", "base64"]
    mime: str
    size: int
    offset: int
    length: int
    more: bool


@dataclass(frozen=True)
class Written:
    path: str
    size: int
    created: bool


@dataclass(frozen=True)
class Deleted:
    path: str
    type: FileType


@dataclass(frozen=True)
class Moved:
    source: str
    destination: str
    overwritten: bool


@dataclass(frozen=True)
class Info:
    path: str
    exists: bool
    type: FileType | None = None
    size: int | None = None
    mime: str | None = None
    modified: str | None = None
    sha256: str | None = None


def file_type(mode: int) -> FileType:
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISDIR(mode):
        return "dir"
    return "file" if stat.S_ISREG(mode) else "other"


def mime_of(name: str, mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "inode/directory"
    return mimetypes.guess_type(name, strict=False)[0] or "application/octet-stream"


def modified_at(st: os.stat_result) -> str:
    return datetime.fromtimestamp(st.st_mtime, UTC).isoformat()


async def run(fn: Callable[[], T]) -> T:
    """Run blocking file code in a worker thread, turning OS errors into errors a caller can act on."""
    try:
        return await anyio.to_thread.run_sync(fn)
    except LongtailError:
        raise
    except FileNotFoundError:  # a name vanished between our steps (someone else changed the tree)
        raise NotFound("the file or a directory on its path disappeared meanwhile; list_files shows what exists") \
            from None
    except (NotADirectoryError, IsADirectoryError):
        raise Conflict("a file or directory on the path changed kind meanwhile; look again and retry") from None
    except PermissionError:
        raise Forbidden("the server process has no permission for this file; fix its ownership or mode") from None
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO):
            raise Unavailable(f"the file system refused the change: {os.strerror(exc.errno)}") from None
        if exc.errno == errno.ENAMETOOLONG:
            raise InvalidInput("the path is too long for the file system") from None
        raise


def _lstat(fd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _no_file(target: Target) -> NotFound:
    return NotFound(f"no file {target.path!r} under the files root (list_files shows what exists)")


# -- read -----------------------------------------------------------------------------------------


async def read_file(root: FileRoot, path: str, *, offset: int = 0, length: int | None = None,
                    encoding: Literal["auto", "base64"] = "auto", approved: bool = False) -> FileContent:
    """Read a regular file, or `length` bytes of it from `offset`: UTF-8 text, else (or if asked) base64.

    Raises:
        NotFound, InvalidInput (a directory, bad offset), PolicyDenied (`outside_root`, `denied_path`,
        `symlink`, `hard_link`, `too_large`; unless approved).
    """
    if offset < 0 or (length is not None and length < 0):
        raise InvalidInput("offset and length must be 0 or more")

    def read() -> FileContent:
        target = locate(root, path, approved=approved)
        if length is not None and length > root.max_bytes:
            refuse("too_large", f"length {length} is over the {root.max_bytes}-byte read limit "
                                "(LONGTAIL_FILES_MAX_BYTES); read in smaller pieces", approved)
        with open_parent(target, approved=approved) as dfd:
            fd, st = open_regular(dfd, target, approved)
            try:
                want = st.st_size - offset if length is None else length
                want = max(0, min(want, st.st_size - offset))
                if want > root.max_bytes:
                    refuse("too_large", f"{target.path!r} has {want} bytes to read from offset {offset}, over the "
                                        f"{root.max_bytes}-byte limit (LONGTAIL_FILES_MAX_BYTES); read it in pieces "
                                        f"with offset and length", approved)
                data = pread_all(fd, want, offset)
            finally:
                os.close(fd)
        text = None
        if encoding == "auto":
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                text = None
        return FileContent(
            path=target.path, content=text if text is not None else base64.b64encode(data).decode("ascii"),
            encoding="utf-8" if text is not None else "base64", mime=mime_of(target.name, st.st_mode),
            size=st.st_size, offset=offset, length=len(data), more=offset + len(data) < st.st_size,
        )

    return await run(read)


def open_regular(dfd: int, target: Target, approved: bool) -> tuple[int, os.stat_result]:
    """Open the regular file `target` names in `dfd` for reading, without following a link (unless approved),
    and refuse one with other hard links (it may be a file from outside the root). The caller closes it.

    Raises:
        NotFound, InvalidInput (a directory, a FIFO, a device...), PolicyDenied (`symlink`, `hard_link`).
    """
    try:
        fd = os.open(target.name, _READ_FLAGS | (0 if approved else os.O_NOFOLLOW), dir_fd=dfd)
    except FileNotFoundError:
        raise _no_file(target) from None
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            raise
        check_leaf(stat.S_IFLNK, target, approved)
        raise
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise InvalidInput(f"{target.path!r} is a directory; use list_files to see what it holds")
        if not stat.S_ISREG(st.st_mode):
            raise InvalidInput(f"{target.path!r} is not a regular file")
        if st.st_nlink > 1:
            refuse("hard_link", f"{target.path!r} has {st.st_nlink} hard links, so it may be a file from "
                                "outside the files root; copy it in instead", approved)
    except BaseException:
        os.close(fd)
        raise
    return fd, st


def pread_all(fd: int, size: int, offset: int) -> bytes:
    """Up to `size` bytes of `fd` from `offset` (fewer at the end of the file)."""
    chunks = []
    while size > 0:
        chunk = os.pread(fd, min(size, 1 << 20), offset)
        if not chunk:
            break
        chunks.append(chunk)
        size -= len(chunk)
        offset += len(chunk)
    return b"".join(chunks)


# -- write ----------------------------------------------------------------------------------------


def decode_content(content: str, encoding: Literal["utf-8", "base64"]) -> bytes:
    """The bytes to write. Raises: InvalidInput when base64 content is malformed."""
    if encoding == "utf-8":
        try:
            return content.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidInput("content is not valid Unicode text; send binary data with encoding='base64'") from None
    try:
        return base64.b64decode(content, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput("content is not valid base64") from None


async def write_file(root: FileRoot, path: str, content: bytes, *, create_only: bool = False,
                     make_dirs: bool = False, approved: bool = False) -> Written:
    """Write `content` to `path` atomically (temp file in the same directory, fsync, rename).

    Raises:
        Conflict: `create_only` and the file exists, or a directory is in the way.
        NotFound: the directory is missing and `make_dirs` is false.
        PolicyDenied: `read_only`, `outside_root`, `denied_path`, `symlink`, `too_large` (unless approved).
    """
    if root.read_only:
        refuse("read_only", "the files server is read-only (LONGTAIL_FILES_READ_ONLY); nothing was written", approved)

    def write() -> Written:
        target = locate(root, path, approved=approved)
        if len(content) > root.max_bytes:
            refuse("too_large", f"content is {len(content)} bytes, over the {root.max_bytes}-byte write limit "
                                "(LONGTAIL_FILES_MAX_BYTES)", approved)
        with open_parent(target, approved=approved, make_dirs=make_dirs) as dfd:
            before = _lstat(dfd, target.name)
            if before is not None:
                check_leaf(before.st_mode, target, approved)
                if stat.S_ISDIR(before.st_mode):
                    raise Conflict(f"{target.path!r} is a directory; choose a file name")
                if create_only:
                    raise Conflict(f"{target.path!r} already exists and create_only is set; nothing was written")
            mode = stat.S_IMODE(before.st_mode) if before is not None and stat.S_ISREG(before.st_mode) else None
            write_atomically(dfd, target.name, content, mode=mode, create_only=create_only, shown=target.path)
        return Written(path=target.path, size=len(content), created=before is None)

    return await run(write)


# -- delete and move ----------------------------------------------------------------------------------


async def delete_file(root: FileRoot, path: str, *, directory: bool = False, approved: bool = False) -> Deleted:
    """Delete a file, or an empty directory when `directory` is true. Links are refused, never followed.

    Raises:
        NotFound, Conflict (directory not empty), InvalidInput (a directory without `directory`),
        PolicyDenied (`read_only`, `outside_root`, `denied_path`, `symlink`; unless approved).
    """
    if root.read_only:
        refuse("read_only", "the files server is read-only (LONGTAIL_FILES_READ_ONLY); nothing was deleted", approved)

    def delete() -> Deleted:
        target = locate(root, path, approved=approved)
        with open_parent(target, approved=approved) as dfd:
            st = _lstat(dfd, target.name)
            if st is None:
                raise _no_file(target)
            check_leaf(st.st_mode, target, approved)
            if stat.S_ISDIR(st.st_mode):
                if not directory:
                    raise InvalidInput(f"{target.path!r} is a directory; pass directory=true to delete it "
                                       "(only when empty)")
                try:
                    os.rmdir(target.name, dir_fd=dfd)
                except OSError as exc:
                    if exc.errno != errno.ENOTEMPTY:
                        raise
                    raise Conflict(f"directory {target.path!r} is not empty; delete what it holds first") from None
            else:
                # unlink removes this name only: never a link's target, never other hard links' data.
                os.unlink(target.name, dir_fd=dfd)
            os.fsync(dfd)
        return Deleted(path=target.path, type=file_type(st.st_mode))

    return await run(delete)


async def move_file(root: FileRoot, source: str, destination: str, *, overwrite: bool = False,
                    make_dirs: bool = False, approved: bool = False) -> Moved:
    """Move (rename) a file or directory; both ends under the root. Refuses an existing destination
    unless `overwrite` (never onto a directory).

    Raises:
        NotFound, Conflict (destination exists), InvalidInput (a directory into itself),
        PolicyDenied (`read_only`, `outside_root`, `denied_path`, `symlink`; unless approved).
    """
    if root.read_only:
        refuse("read_only", "the files server is read-only (LONGTAIL_FILES_READ_ONLY); nothing was moved", approved)

    def move() -> Moved:
        src = locate(root, source, approved=approved, what="source")
        dst = locate(root, destination, approved=approved, what="destination")
        with open_parent(src, approved=approved) as sfd:
            st = _lstat(sfd, src.name)
            if st is None:
                raise _no_file(src)
            check_leaf(st.st_mode, src, approved)
            with open_parent(dst, approved=approved, make_dirs=make_dirs) as dfd:
                existing = _lstat(dfd, dst.name)
                if existing is not None:
                    check_leaf(existing.st_mode, dst, approved)
                    if os.path.samestat(st, existing):
                        raise InvalidInput("source and destination are the same file")
                    if not overwrite:
                        raise Conflict(f"{dst.path!r} already exists; pass overwrite=true to replace it")
                    if stat.S_ISDIR(existing.st_mode):
                        raise Conflict(f"{dst.path!r} is a directory; it is never replaced by a move")
                try:
                    if overwrite:
                        os.replace(src.name, dst.name, src_dir_fd=sfd, dst_dir_fd=dfd)
                    else:
                        rename_noreplace(sfd, src.name, dfd, dst.name)
                except FileExistsError:
                    raise Conflict(f"{dst.path!r} was created meanwhile; pass overwrite=true to replace it") from None
                except OSError as exc:
                    if exc.errno == errno.EINVAL:
                        raise InvalidInput(f"cannot move {src.path!r} into itself") from None
                    if exc.errno in (errno.EISDIR, errno.ENOTDIR, errno.ENOTEMPTY, errno.EEXIST):
                        raise Conflict(f"{dst.path!r} is in the way (a directory or a file of another kind)") \
                            from None
                    raise
                os.fsync(dfd)
            os.fsync(sfd)
        return Moved(source=src.path, destination=dst.path, overwritten=existing is not None)

    return await run(move)


# -- describe -----------------------------------------------------------------------------------------


async def file_info(root: FileRoot, path: str, *, sha256: bool = False, approved: bool = False) -> Info:
    """What is at `path` (never following a link): type, size, MIME type, modification time, and
    optionally the SHA-256 of a regular file. A missing path answers `exists: false`.

    Raises:
        PolicyDenied (`outside_root`, `denied_path`, `symlink` on the way, `hard_link` for sha256).
    """

    def describe() -> Info:
        target = locate(root, path, approved=approved, allow_root=True)
        if target.is_root:
            st = os.stat(target.anchor)
            return Info(path=target.path, exists=True, type="dir", size=st.st_size, mime="inode/directory",
                        modified=modified_at(st))
        try:
            with open_parent(target, approved=approved) as dfd:
                st_or_none = _lstat(dfd, target.name)
                if st_or_none is None:
                    return Info(path=target.path, exists=False)
                st = st_or_none
                digest = _sha256(dfd, target, approved) if sha256 and stat.S_ISREG(st.st_mode) else None
        except NotFound:
            return Info(path=target.path, exists=False)
        return Info(path=target.path, exists=True, type=file_type(st.st_mode), size=st.st_size,
                    mime=mime_of(target.name, st.st_mode), modified=modified_at(st), sha256=digest)

    return await run(describe)


def _sha256(dfd: int, target: Target, approved: bool) -> str:
    fd = os.open(target.name, _READ_FLAGS | (0 if approved else os.O_NOFOLLOW), dir_fd=dfd)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise Conflict(f"{target.path!r} changed while it was being read; try again")
        if st.st_nlink > 1:
            refuse("hard_link", f"{target.path!r} has {st.st_nlink} hard links, so it may be a file from outside "
                                "the files root; its hash is not given", approved)
        digest = hashlib.sha256()
        offset = 0
        while chunk := os.pread(fd, 1 << 20, offset):
            digest.update(chunk)
            offset += len(chunk)
        return digest.hexdigest()
    finally:
        os.close(fd)


async def announce(db: Database, events: list[Event]) -> None:
    """Publish file events (`file.written`, `file.deleted`) with the path as `id`."""
    async with db.connection() as conn:
        await emit(conn, db, events)

