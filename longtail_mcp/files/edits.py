"""Editing a text file in place: exact-text replacements checked as a whole, shown as a unified diff, written
atomically through the same guard and temporary-file path as `write_file`."""

import difflib
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass

from longtail_mcp.errors import Conflict, InvalidInput
from longtail_mcp.files.atomic import write_atomically
from longtail_mcp.files.guard import FileRoot, locate, open_parent, refuse
from longtail_mcp.files.store import open_regular, pread_all, run

MAX_EDITS = 100
_SHOWN_CHARS = 60  # of an old_text named in an error


@dataclass(frozen=True)
class Replacement:
    """Replace `old_text`, which must occur exactly once, by `new_text`."""

    old_text: str
    new_text: str


@dataclass(frozen=True)
class Edited:
    path: str
    diff: str
    replacements: int
    size: int
    written: bool


def _shown(text: str) -> str:
    return repr(text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS] + "...")


def apply_edits(text: str, edits: Sequence[Replacement], shown: str) -> str:
    """`text` with each replacement made in order, each on the result of the ones before.

    Raises:
        InvalidInput: an old_text is empty, missing, or occurs more than once (the error names it).
    """
    for number, edit in enumerate(edits, 1):
        if not edit.old_text:
            raise InvalidInput(f"edit {number}: old_text is empty; give the exact text to replace")
        at = text.find(edit.old_text)
        if at == -1:
            raise InvalidInput(f"edit {number}: old_text {_shown(edit.old_text)} is not in {shown!r} (after the "
                               "edits before it); copy the exact text, whitespace and line breaks included. "
                               "Nothing was written")
        if text.find(edit.old_text, at + 1) != -1:  # from at + 1: overlapping occurrences count too
            raise InvalidInput(f"edit {number}: old_text {_shown(edit.old_text)} occurs more than once in "
                               f"{shown!r}; include surrounding text so that it occurs once. Nothing was written")
        text = text[:at] + edit.new_text + text[at + len(edit.old_text):]
    return text


def unified_diff(before: str, after: str, path: str) -> str:
    """A unified diff (3 lines of context) from `a/<path>` to `b/<path>`; empty when nothing changed."""
    lines = difflib.unified_diff(before.splitlines(keepends=True), after.splitlines(keepends=True),
                                 fromfile=f"a/{path}", tofile=f"b/{path}")
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines)


async def edit_file(root: FileRoot, path: str, edits: Sequence[Replacement], *, dry_run: bool = False,
                    approved: bool = False) -> Edited:
    """Make exact-text replacements in a UTF-8 text file and return the unified diff; with `dry_run`,
    only the diff (nothing is written). A real edit replaces the file atomically, keeping its mode.

    Raises:
        InvalidInput: no edits, an old_text missing or not unique, a file that is not UTF-8 text.
        Conflict: the file changed while it was being edited (nothing written).
        NotFound, PolicyDenied (`read_only` unless a dry run, `outside_root`, `denied_path`, `symlink`,
        `hard_link`, `too_large`; unless approved).
    """
    if not edits:
        raise InvalidInput("edits is empty; give at least one {old_text, new_text}")
    if len(edits) > MAX_EDITS:
        raise InvalidInput(f"{len(edits)} edits in one call; the limit is {MAX_EDITS}")
    if root.read_only and not dry_run:
        refuse("read_only", "the files server is read-only (LONGTAIL_FILES_READ_ONLY); nothing was written "
                            "(dry_run=true still shows the diff)", approved)

    def edit() -> Edited:
        target = locate(root, path, approved=approved)
        with open_parent(target, approved=approved) as dfd:
            fd, st = open_regular(dfd, target, approved)
            try:
                if st.st_size > root.max_bytes:
                    refuse("too_large", f"{target.path!r} is {st.st_size} bytes, over the {root.max_bytes}-byte "
                                        "limit (LONGTAIL_FILES_MAX_BYTES)", approved)
                data = pread_all(fd, st.st_size, 0)
            finally:
                os.close(fd)
            try:
                before = data.decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidInput(f"{target.path!r} is not UTF-8 text; edit_file edits text files "
                                   "(use write_file for others)") from None
            after = apply_edits(before, edits, target.path)
            content = after.encode("utf-8")
            if len(content) > root.max_bytes:
                refuse("too_large", f"the edited {target.path!r} would be {len(content)} bytes, over the "
                                    f"{root.max_bytes}-byte limit (LONGTAIL_FILES_MAX_BYTES)", approved)
            written = not dry_run and after != before
            if written:
                # Another writer between our read and the rename would lose its change: refuse instead.
                now = os.stat(target.name, dir_fd=dfd, follow_symlinks=approved)
                if (now.st_ino, now.st_dev, now.st_size, now.st_mtime_ns) != (
                        st.st_ino, st.st_dev, st.st_size, st.st_mtime_ns):
                    raise Conflict(f"{target.path!r} changed while it was being edited; nothing was written, "
                                   "read it again and retry")
                write_atomically(dfd, target.name, content, mode=stat.S_IMODE(st.st_mode), shown=target.path)
        return Edited(path=target.path, diff=unified_diff(before, after, target.path), replacements=len(edits),
                      size=len(content), written=written)

    return await run(edit)
