"""Atomic changes: a temporary file beside its target, and a rename that never replaces what exists."""

import ctypes
import errno
import os
import secrets
import stat
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from longtail_mcp.errors import Conflict

TEMP_PREFIX = ".lt-tmp-"


@contextmanager
def temp_file(dfd: int) -> Iterator[tuple[int, str]]:
    """A new, exclusive temporary file in the directory `dfd`; removed unless renamed away."""
    name = f"{TEMP_PREFIX}{secrets.token_hex(8)}"
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644, dir_fd=dfd)
    try:
        yield fd, name
    finally:
        os.close(fd)
        with suppress(FileNotFoundError):
            os.unlink(name, dir_fd=dfd)


def write_atomically(dfd: int, name: str, content: bytes, *, mode: int | None = None, create_only: bool = False,
                     shown: str | None = None) -> None:
    """Put `content` at `name` in the directory `dfd`: a temporary file, fsync'd, given `mode`, then renamed
    into place (`os.replace`, or never replacing anything when `create_only`); the directory is fsync'd.

    A reader sees the old or the new file, never a mix. The rename replaces the directory entry: a hard
    link or symbolic link at `name` is replaced, never written through.

    Raises:
        Conflict: `create_only` and something was created at `name` first (nothing written).
    """
    with temp_file(dfd) as (fd, temp):
        if mode is not None:
            os.fchmod(fd, mode)
        view = memoryview(content)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
        if create_only:
            try:
                rename_noreplace(dfd, temp, dfd, name)
            except FileExistsError:
                raise Conflict(f"{shown or name!r} was created by someone else first; nothing was written") \
                    from None
        else:
            os.replace(temp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
    os.fsync(dfd)


_RENAME_NOREPLACE = 1


def _find_renameat2() -> Any:
    """libc's renameat2, where there is one (Linux); None elsewhere (the fallbacks below apply)."""
    try:
        found = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    except (OSError, TypeError):  # no C library to open this way (Windows)
        return None
    if found is not None:
        found.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
        found.restype = ctypes.c_int
    return found


_renameat2 = _find_renameat2()


def rename_noreplace(src_dfd: int, src: str, dst_dfd: int, dst: str) -> None:
    """Rename, failing with FileExistsError if `dst` exists, atomically where the system allows.

    Linux `renameat2(RENAME_NOREPLACE)` first; where it is missing, a file moves by `link` + `unlink`
    (also atomic), and a directory by check-then-rename: a directory created at `dst` between the
    check and the rename can be replaced if empty (documented in docs/security.md).
    """
    if _renameat2 is not None:
        if _renameat2(src_dfd, os.fsencode(src), dst_dfd, os.fsencode(dst), _RENAME_NOREPLACE) == 0:
            return
        err = ctypes.get_errno()
        if err not in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
            raise OSError(err, os.strerror(err), dst)
    if not stat.S_ISDIR(os.stat(src, dir_fd=src_dfd, follow_symlinks=False).st_mode):
        os.link(src, dst, src_dir_fd=src_dfd, dst_dir_fd=dst_dfd, follow_symlinks=False)
        os.unlink(src, dir_fd=src_dfd)
        return
    if _exists(dst_dfd, dst):
        raise FileExistsError(errno.EEXIST, "exists", dst)
    os.rename(src, dst, src_dir_fd=src_dfd, dst_dir_fd=dst_dfd)


def _exists(dfd: int, name: str) -> bool:
    try:
        os.stat(name, dir_fd=dfd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True
