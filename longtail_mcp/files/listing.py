"""Walking the tree under the root, and listing it by glob (`*.txt`, `docs/**/*.md`), paged, never leaving it.

The walk opens each directory with `O_NOFOLLOW` relative to its parent's descriptor and never
descends into a symbolic link; denied entries and links that resolve outside the root are left out.
"""

import os
import re
import stat
from collections.abc import Generator, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass

from longtail_mcp.errors import InvalidInput
from longtail_mcp.files.atomic import TEMP_PREFIX
from longtail_mcp.files.guard import FileRoot, Target, check_syntax, locate, open_dir_at, open_parent
from longtail_mcp.files.store import FileType, file_type, modified_at, run

MAX_SCANNED = 100_000
_MAGIC = re.compile(r"[*?\[]")
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC | os.O_NOFOLLOW


@dataclass(frozen=True)
class Entry:
    name: str
    path: str
    type: FileType
    size: int
    modified: str


@dataclass(frozen=True)
class Listing:
    entries: list[Entry]
    total: int
    next_offset: int | None
    truncated: bool


def glob_regex(pattern: str) -> re.Pattern[str]:
    """A regex for a root-relative glob: `*`, `?` and `[...]` within one component, `**` across any."""
    parts = pattern.split("/")
    out = []
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if part == "**":
            out.append(".+" if last else "(?:[^/]+/)*")
            continue
        out.append(_component(part) + ("" if last else "/"))
    return re.compile("".join(out), re.DOTALL)


def _component(part: str) -> str:
    out, i = [], 0
    while i < len(part):
        ch = part[i]
        if ch == "*":
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "[" and (end := part.find("]", i + 2)) != -1:
            body = part[i + 1:end]
            negate = body.startswith("!")
            body = body[1:] if negate else body
            out.append(f"(?!/)[{'^' if negate else ''}{body.replace(chr(92), chr(92) * 2)}]")
            i = end
        else:
            out.append(re.escape(ch))
        i += 1
    return "".join(out)


async def list_files(root: FileRoot, pattern: str = "*", *, offset: int = 0, limit: int = 100,
                     approved: bool = False) -> Listing:
    """Entries whose root-relative path matches `pattern`, sorted by path, `limit` from `offset`.

    Raises:
        InvalidInput: malformed pattern, or one that is absolute or uses `..`.
        PolicyDenied: the pattern's fixed directory is denied or reached through a link (unless approved).
    """
    check_syntax(pattern, "pattern")
    if pattern.startswith("/"):
        raise InvalidInput("pattern is relative to the files root; drop the leading '/'")
    parts = [p for p in pattern.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise InvalidInput("pattern may not contain '..'; list_files only looks under the files root")
    if not parts:
        parts = ["*"]
    if offset < 0 or limit < 1:
        raise InvalidInput("offset must be 0 or more and limit at least 1")
    fixed = 0
    while fixed < len(parts) - 1 and not _MAGIC.search(parts[fixed]):
        fixed += 1
    regex = glob_regex("/".join(parts))
    depth = None if "**" in parts else len(parts) - fixed

    def scan() -> Listing:
        base = locate(root, "/".join(parts[:fixed]) or ".", approved=approved, what="pattern", allow_root=True)
        walk = Walk(root, base, approved, depth)
        with closing(walk.entries()) as seen:
            found = [Entry(name=item.name, path=item.path, type=file_type(item.stat.st_mode), size=item.stat.st_size,
                           modified=modified_at(item.stat)) for item in seen if regex.fullmatch(item.path)]
        found.sort(key=lambda e: e.path)
        page = found[offset:offset + limit]
        more = offset + limit < len(found)
        return Listing(entries=page, total=len(found), next_offset=offset + limit if more else None,
                       truncated=walk.truncated)

    return await run(scan)


@dataclass(frozen=True)
class Seen:
    """An entry met by a `Walk`: its directory's descriptor (valid while the walk is at it), name, path, lstat."""

    dfd: int
    name: str
    path: str
    stat: os.stat_result


class Walk:
    """The entries under `base`, depth first in name order, never leaving the root.

    Each directory is opened with `O_NOFOLLOW` relative to its parent's descriptor and a symbolic link is
    never descended into; temporary files, denied entries (unless approved) and links that resolve outside
    the root are left out. Stops after `MAX_SCANNED` entries (`truncated`). Iterate `entries()` inside
    `contextlib.closing` when you may stop early, so its descriptors are closed.
    """

    def __init__(self, root: FileRoot, base: Target, approved: bool, depth: int | None = None) -> None:
        self.root, self.base, self.approved, self.depth = root, base, approved, depth
        self.scanned = 0
        self.truncated = False

    def entries(self) -> Generator[Seen, None, None]:
        base = self.base
        with _open_dir(base, self.approved) as top:
            first = os.dup(top)
            stack: list[tuple[int, str, int, Iterator[os.DirEntry[str]]]] = []
            try:
                stack.append((first, base.path if not base.is_root else "", 1, _entries(first)))
            except BaseException:
                os.close(first)
                raise
            try:
                while stack:
                    fd, rel, level, entries = stack[-1]
                    entry = next(entries, None)
                    if entry is None:
                        os.close(fd)
                        stack.pop()
                        continue
                    self.scanned += 1
                    if self.scanned > MAX_SCANNED:
                        self.truncated = True
                        return
                    path = f"{rel}/{entry.name}" if rel else entry.name
                    if entry.name.startswith(TEMP_PREFIX) or (
                            not self.approved and self.root.denied(tuple(path.split("/")))):
                        continue
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except FileNotFoundError:
                        continue
                    if stat.S_ISLNK(st.st_mode) and not _link_inside(
                            fd, entry.name, os.path.join(base.anchor, *path.split("/")[:-1]), base.anchor):
                        continue
                    yield Seen(fd, entry.name, path, st)
                    if stat.S_ISDIR(st.st_mode) and (self.depth is None or level < self.depth):
                        try:
                            child = os.open(entry.name, _DIR_FLAGS, dir_fd=fd)
                        except OSError:
                            continue  # replaced or unreadable meanwhile: skipped, never followed
                        try:
                            children = _entries(child)
                        except OSError:
                            os.close(child)
                            continue
                        stack.append((child, path, level + 1, children))
            finally:
                for fd, _, _, _ in stack:
                    os.close(fd)


def _entries(fd: int) -> Iterator[os.DirEntry[str]]:
    return iter(sorted(os.scandir(fd), key=lambda e: e.name))


def _link_inside(dfd: int, name: str, here: str, root: str) -> bool:
    """Whether the symbolic link `name` in the directory `here` (open as `dfd`) resolves under the root."""
    try:
        target = os.readlink(name, dir_fd=dfd)
    except OSError:
        return False
    resolved = os.path.realpath(os.path.join(here, target))
    return os.path.commonpath([resolved, root]) == root


@contextmanager
def _open_dir(base: Target, approved: bool) -> Iterator[int]:
    """The directory `base` names, reached without following links (unless approved)."""
    if base.is_root:
        fd = os.open(base.anchor, _DIR_FLAGS & ~os.O_NOFOLLOW)
    else:
        with open_parent(base, approved=approved) as parent:
            fd = open_dir_at(parent, base.name, base, base.path, approved,
                             missing=f"no directory {base.path!r} under the files root")
    try:
        yield fd
    finally:
        os.close(fd)
