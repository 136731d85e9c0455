"""Searching under the root: files by name glob and lines by substring or regular expression, bounded.

The walk is `listing.Walk` (no links followed, denied and escaping entries left out); a file is read
through a descriptor opened with `O_NOFOLLOW` in its directory's descriptor, only its first bytes,
and binary files and files with other hard links are skipped. A regular expression runs in a child
process with a deadline: Python's `re` can take exponential time (`(a+)+$`) and cannot be interrupted
in a thread, so a pattern chosen by a caller must never run inside the server.
"""

import json
import os
import re
import stat
import subprocess
import sys
from contextlib import closing
from dataclasses import dataclass, field
from typing import Literal

from longtail_mcp.errors import InvalidInput
from longtail_mcp.files.guard import FileRoot, check_syntax, locate
from longtail_mcp.files.listing import Walk, glob_regex
from longtail_mcp.files.store import pread_all, run

MAX_RESULTS = 1000
MAX_PATTERN_CHARS = 1000
MAX_SEARCH_BYTES = 32 * 1024 * 1024  # read in all by one search
DEFAULT_FILE_BYTES = 1024 * 1024
REGEX_SECONDS = 10.0
SNIPPET_CHARS = 300  # of a matching line, from a little before the match
_BEFORE_MATCH = 60
_READ_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOFOLLOW
_BINARY_SNIFF = 8192  # a NUL byte in the first bytes: a binary file

# Run by `python -I -S -c`: reads {pattern, flags, limit, texts} as JSON, writes [[text index, line, column], ...].
_MATCHER = """
import json, re, sys
job = json.load(sys.stdin)
rx, found = re.compile(job["pattern"], job["flags"]), []
for i, text in enumerate(job["texts"]):
    for n, line in enumerate(text.split("\\n"), 1):
        m = rx.search(line)
        if m is not None:
            found.append([i, n, m.start()])
            if len(found) >= job["limit"]:
                break
    if len(found) >= job["limit"]:
        break
json.dump(found, sys.stdout)
"""


@dataclass(frozen=True)
class Match:
    path: str
    type: Literal["file", "dir"]
    line: int | None = None
    column: int | None = None
    text: str | None = None


@dataclass
class Found:
    matches: list[Match] = field(default_factory=list)
    files_searched: int = 0
    files_skipped: int = 0
    files_cut: int = 0
    truncated: bool = False


def _name_matcher(name: str, ignore_case: bool) -> tuple[re.Pattern[str], bool]:
    """(regex, whole): a glob for the entry's name, or with '/' for its path under the searched folder."""
    check_syntax(name, "name")
    if name.startswith("/") or ".." in name.split("/"):
        raise InvalidInput("name is a glob like '*.py' or 'src/**/*.md', relative to the searched folder, "
                           "without '/' at the start or '..'")
    regex = glob_regex("/".join(p for p in name.split("/") if p not in ("", ".")))
    return re.compile(regex.pattern, regex.flags | (re.IGNORECASE if ignore_case else 0)), "/" in name


def _content_matcher(content: str, regex: bool, ignore_case: bool) -> tuple[str, int]:
    """(pattern, flags) for a line search, checked here (a syntax error is the caller's, and shown)."""
    if "\n" in content or "\r" in content:
        raise InvalidInput("content is matched within one line; remove the line break")
    if len(content) > MAX_PATTERN_CHARS:
        raise InvalidInput(f"content is {len(content)} characters; the limit is {MAX_PATTERN_CHARS}")
    flags = re.IGNORECASE if ignore_case else 0
    pattern = content if regex else re.escape(content)
    try:
        re.compile(pattern, flags)
    except (re.error, OverflowError, RecursionError) as exc:
        raise InvalidInput(f"content is not a valid regular expression: {exc}") from None
    return pattern, flags


def _snippet(line: str, column: int) -> str:
    start = max(0, column - _BEFORE_MATCH)
    return line[start:start + SNIPPET_CHARS]


def _read_text(dfd: int, name: str, limit: int, approved: bool) -> tuple[str | None, bool]:
    """(text, cut): the first `limit` bytes of a regular file as text, or None for a file not searched
    (binary, another hard link to it, a link or a special file swapped in, unreadable)."""
    try:
        fd = os.open(name, _READ_FLAGS, dir_fd=dfd)
    except OSError:
        return None, False
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or (st.st_nlink > 1 and not approved):
            return None, False  # another hard link may be a file from outside the root
        data = pread_all(fd, min(st.st_size, limit), 0)
    except OSError:
        return None, False
    finally:
        os.close(fd)
    if b"\x00" in data[:_BINARY_SNIFF]:
        return None, False
    return data.decode("utf-8", errors="replace"), st.st_size > limit


def _match_lines(pattern: str, flags: int, texts: list[str], limit: int) -> list[tuple[int, int, int]]:
    """(text index, line number, column) of the first `limit` matching lines, found by a child process.

    Raises:
        InvalidInput: the expression ran out of time (it backtracks too much, or there is too much text).
    """
    job = json.dumps({"pattern": pattern, "flags": flags, "limit": limit, "texts": texts}).encode()
    try:
        done = subprocess.run([sys.executable, "-I", "-S", "-c", _MATCHER], input=job, capture_output=True,
                              timeout=REGEX_SECONDS, check=False)
    except subprocess.TimeoutExpired:
        raise InvalidInput(f"the regular expression did not finish within {REGEX_SECONDS:g} s; simplify it (nested "
                           "repeats like (a+)+ take exponential time) or search a smaller folder") from None
    if done.returncode != 0:
        raise InvalidInput("the regular expression could not be run over these files (out of memory?); simplify "
                           "it or search a smaller folder")
    return [(i, n, col) for i, n, col in json.loads(done.stdout)]


async def search_files(root: FileRoot, path: str = ".", *, name: str | None = None, content: str | None = None,
                       regex: bool = False, ignore_case: bool = False, max_results: int = 100,
                       max_file_bytes: int = DEFAULT_FILE_BYTES, approved: bool = False) -> Found:
    """Files under the folder `path` whose name matches the glob `name`, and, with `content`, their lines
    containing it (a substring, or a regular expression with `regex`), in walk order, at most `max_results`.

    Only the first `max_file_bytes` of a file are searched (at most the root's size limit) and at most
    32 MiB in all; binary files (a NUL byte) and files with other hard links are skipped. Without
    `content`, directories whose name matches are found too.

    Raises:
        InvalidInput: neither name nor content, a malformed glob or expression, an expression out of time.
        NotFound: no such folder. PolicyDenied (`outside_root`, `denied_path`, `symlink` for the folder;
        unless approved: an approved search may also see denied entries and files with hard links).
    """
    if name is None and content is None:
        raise InvalidInput("give name (a glob like '*.py'), content (text to find in lines), or both")
    if not 1 <= max_results <= MAX_RESULTS:
        raise InvalidInput(f"max_results must be between 1 and {MAX_RESULTS}")
    if max_file_bytes < 1:
        raise InvalidInput("max_file_bytes must be at least 1")
    per_file = min(max_file_bytes, root.max_bytes)
    names = _name_matcher(name, ignore_case) if name is not None else None
    lines = _content_matcher(content, regex, ignore_case) if content is not None else None
    literal = re.compile(*lines) if lines is not None and not regex else re.compile("")

    def search() -> Found:
        base = locate(root, path, approved=approved, allow_root=True)
        skip = 0 if base.is_root else len(base.path) + 1  # a path under the searched folder, for globs with '/'
        walk = Walk(root, base, approved)
        found = Found()
        texts: list[tuple[str, str]] = []  # (path, text) for the child process
        read = 0
        with closing(walk.entries()) as entries:
            for seen in entries:
                is_dir, is_file = stat.S_ISDIR(seen.stat.st_mode), stat.S_ISREG(seen.stat.st_mode)
                if names is not None:
                    glob, whole = names
                    if not glob.fullmatch(seen.path[skip:] if whole else seen.name):
                        continue
                if lines is None:
                    if is_dir or is_file:
                        found.matches.append(Match(seen.path, "dir" if is_dir else "file"))
                        if len(found.matches) >= max_results:
                            found.truncated = True
                            break
                    continue
                if not is_file:
                    continue
                if read >= MAX_SEARCH_BYTES:
                    found.truncated = True
                    break
                text, cut = _read_text(seen.dfd, seen.name, min(per_file, MAX_SEARCH_BYTES - read), approved)
                if text is None:
                    found.files_skipped += 1
                    continue
                read += min(seen.stat.st_size, per_file)
                found.files_searched += 1
                found.files_cut += cut
                if regex:
                    texts.append((seen.path, text))
                    continue
                for number, line in enumerate(text.split("\n"), 1):
                    if (hit := literal.search(line)) is not None:  # an escaped literal: linear, safe in process
                        found.matches.append(Match(seen.path, "file", number, hit.start() + 1,
                                                   _snippet(line, hit.start())))
                        if len(found.matches) >= max_results:
                            break
                if len(found.matches) >= max_results:
                    found.truncated = True
                    break
        found.truncated = found.truncated or walk.truncated
        if lines is not None and regex and texts:
            hits = _match_lines(*lines, [t for _, t in texts], max_results)
            for i, number, column in hits:
                line = texts[i][1].split("\n", number)[number - 1]
                found.matches.append(Match(texts[i][0], "file", number, column + 1, _snippet(line, column)))
            found.truncated = found.truncated or len(hits) >= max_results
        return found

    return await run(search)
