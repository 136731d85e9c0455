"""Where a caller's path may lead: syntax, containment under the root, the deny list, and safe opening.

Every operation names a `Target` found by `locate()` and reaches it through `open_parent()`, which
walks from the root's directory descriptor one component at a time with `O_NOFOLLOW`, so a symbolic
link swapped in after the checks cannot lead the operation out of the root.
"""

import errno
import fnmatch
import os
import re
import stat
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from longtail_mcp.config import Settings
from longtail_mcp.errors import Conflict, InvalidInput, NotFound, PolicyDenied

MAX_PATH_BYTES = 4096
MAX_NAME_BYTES = 255
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_DRIVE = re.compile(r"^[A-Za-z]:")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class FileRoot:
    """The files server's policy: one root directory, the deny globs, read-only mode and the size limit."""

    root: Path
    deny: tuple[str, ...] = ()
    read_only: bool = False
    max_bytes: int = 10 * 1024 * 1024

    @classmethod
    def from_settings(cls, settings: Settings) -> "FileRoot":
        return cls(root=Path(settings.files_dir).expanduser().absolute(), deny=tuple(settings.files_deny),
                   read_only=settings.files_read_only, max_bytes=settings.files_max_bytes)

    def real(self) -> str:
        """The root with every symbolic link resolved, created (mode 0o700) if it does not exist yet."""
        if not self.root.exists():
            self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        return os.path.realpath(self.root)

    def denied(self, parts: tuple[str, ...]) -> str | None:
        """The deny glob matching a component of `parts` (or, for a glob with `/`, the whole path)."""
        whole = "/".join(parts).casefold()
        for pattern in self.deny:
            folded = pattern.casefold()
            if "/" in folded:
                if fnmatch.fnmatchcase(whole, folded.strip("/")):
                    return pattern
            elif any(fnmatch.fnmatchcase(part.casefold(), folded) for part in parts):
                return pattern
        return None


@dataclass(frozen=True)
class Target:
    """A checked path: `parts` below `anchor` (the real root, or `/` for an approved path outside it)."""

    anchor: str
    parts: tuple[str, ...]
    path: str  # as reported back: root-relative with `/`, or absolute when outside the root

    @property
    def name(self) -> str:
        return self.parts[-1]

    @property
    def is_root(self) -> bool:
        return not self.parts


def refuse(rule: str, message: str, approved: bool) -> None:
    """Raise PolicyDenied for `rule`, unless an approver allowed this exact call.

    Raises:
        PolicyDenied: not approved.
    """
    if not approved:
        raise PolicyDenied(message, rule=rule)


def check_syntax(path: str, what: str = "path") -> None:
    """Refuse malformed paths, whatever the policy (never approvable).

    Raises:
        InvalidInput: empty, NUL or control characters, Windows forms, over-long path or component.
    """
    if not path:
        raise InvalidInput(f"{what} is empty: give a path relative to the files root, like 'notes/today.txt'")
    if "\x00" in path:
        raise InvalidInput(f"{what} contains a NUL byte; remove it")
    if _CONTROL.search(path):
        raise InvalidInput(f"{what} contains control characters (newline, tab, escape...); remove them")
    if "\\" in path:
        raise InvalidInput(f"{what} contains a backslash; separate directories with '/'")
    if _DRIVE.match(path):
        raise InvalidInput(f"{what} looks like a Windows drive path; give a path relative to the files root")
    if path.startswith("//"):
        raise InvalidInput(f"{what} looks like a network (UNC) path; give a path relative to the files root")
    try:
        size = len(path.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidInput(f"{what} is not valid Unicode text") from None
    if size > MAX_PATH_BYTES:
        raise InvalidInput(f"{what} is {size} bytes long; the limit is {MAX_PATH_BYTES}")
    for part in path.split("/"):
        if len(part.encode("utf-8")) > MAX_NAME_BYTES:
            raise InvalidInput(f"{what} has a component of {len(part.encode('utf-8'))} bytes "
                               f"('{part[:20]}...'); the limit is {MAX_NAME_BYTES}")


def _inside(path: str, root: str) -> bool:
    # commonpath, never a string prefix: '/srv/root-evil' is not inside '/srv/root'.
    return os.path.commonpath([path, root]) == root


def _relative_parts(path: str, root: FileRoot, real: str, approved: bool) -> tuple[str, ...] | None:
    """The components of `path` below the root, or None for an (approved) path outside it."""
    if os.path.isabs(path):
        absolute = os.path.normpath(path)
        for base in (real, os.path.normpath(root.root)):
            if _inside(absolute, base):
                rel = os.path.relpath(absolute, base)
                return () if rel == "." else tuple(rel.split("/"))
        refuse("outside_root", f"{path!r} is outside the files root; give a path relative to the root", approved)
        return None
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                refuse("outside_root", f"{path!r} leads out of the files root with '..'; "
                                       "give a path that stays under the root", approved)
                return None
            parts.pop()
        else:
            parts.append(part)
    return tuple(parts)


def locate(root: FileRoot, path: str, *, approved: bool, what: str = "path", allow_root: bool = False) -> Target:
    """Check `path` (syntax, containment, deny list) and name what it points to.

    Relative paths are taken from the root; absolute paths only when they lie under it. A symbolic
    link is never followed (see `open_parent`); here the parent's realpath is checked as well, so a
    path through a link that leads outside is refused with a clear reason before anything is opened.

    Raises:
        InvalidInput: malformed path, or the root itself where a file is needed.
        PolicyDenied: outside the root (`outside_root`), on the deny list (`denied_path`), unless approved.
    """
    check_syntax(path, what)
    real = root.real()
    parts = _relative_parts(path, root, real, approved)
    if parts is None:  # an approved call outside the root: taken as the absolute path it names
        absolute = os.path.normpath(os.path.join(real, path))
        target = Target("/", tuple(p for p in absolute.split("/") if p), absolute)
    else:
        target = Target(real, parts, "/".join(parts) or ".")
        pattern = root.denied(parts)
        if pattern is not None:
            refuse("denied_path", f"{target.path!r} matches the deny pattern {pattern!r} "
                                  "(LONGTAIL_FILES_DENY); choose another path", approved)
        if parts:
            try:
                parent = os.path.realpath(os.path.join(real, *parts[:-1]))
            except OSError:  # a link vanished while being resolved: the walk in open_parent decides
                parent = real
            if not _inside(parent, real):
                refuse("outside_root", f"{target.path!r} goes through a symbolic link that leads outside the "
                                       "files root", approved)
    if target.is_root and not allow_root:
        raise InvalidInput(f"{what} {path!r} names the files root itself; name a file under it")
    return target


def _link_refusal(target: Target, shown: str, approved: bool) -> None:
    refuse("symlink", f"{shown!r} is a symbolic link; the files server does not follow links "
                      f"(use the path it points to)", approved)


@contextmanager
def open_parent(target: Target, *, approved: bool, make_dirs: bool = False) -> Iterator[int]:
    """A descriptor of the directory holding `target`, reached without following any symbolic link.

    Unless approved, each component is opened with `O_NOFOLLOW` relative to the previous one, so the
    directory is under the root even if the tree changes while we walk.

    Raises:
        NotFound: a directory on the way is missing (and `make_dirs` is false).
        PolicyDenied: a component is a symbolic link (`symlink`), unless approved.
        InvalidInput: a component is a file, not a directory.
    """
    fd = os.open(target.anchor, _DIR_FLAGS)
    try:
        for i, part in enumerate(target.parts[:-1]):
            shown = "/".join(target.parts[: i + 1])
            missing = (f"no directory {shown!r} under the files root "
                       "(write_file and move_file can create it with make_dirs=true)")
            try:
                child = open_dir_at(fd, part, target, shown, approved, missing=missing)
            except NotFound:
                if not make_dirs:
                    raise
                with suppress(FileExistsError):
                    os.mkdir(part, 0o755, dir_fd=fd)
                child = open_dir_at(fd, part, target, shown, approved, missing=missing)
            os.close(fd)
            fd = child
        yield fd
    finally:
        os.close(fd)


def open_dir_at(fd: int, name: str, target: Target, shown: str, approved: bool, *, missing: str) -> int:
    """Open the directory `name` in `fd` without following a link (unless approved).

    Raises:
        NotFound (message `missing`), PolicyDenied (`symlink`), InvalidInput (a file),
        Conflict (it changed while being opened).
    """
    try:
        return os.open(name, _DIR_FLAGS | (0 if approved else os.O_NOFOLLOW), dir_fd=fd)
    except OSError as exc:
        if exc.errno not in (errno.ENOENT, errno.ELOOP, errno.ENOTDIR):
            raise
    try:
        mode = os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode
    except FileNotFoundError:
        raise NotFound(missing) from None
    if stat.S_ISLNK(mode):
        _link_refusal(target, shown, approved)
    if stat.S_ISDIR(mode) or stat.S_ISLNK(mode):
        raise Conflict(f"{shown!r} changed while it was being opened; try again")
    raise InvalidInput(f"{shown!r} is a file, not a directory")


def check_leaf(mode: int, target: Target, approved: bool) -> None:
    """Refuse to act on a symbolic link itself (reads, writes, moves and deletes never touch links)."""
    if stat.S_ISLNK(mode):
        _link_refusal(target, target.path, approved)

