"""Attacks on the files server: each is refused with a useful message and changes nothing, inside or outside the root.

Every test lays out a temp tree: `root/` (the files root, holding `inside.txt`), `outside/secret.txt`
(what an attacker wants) and `root-evil/loot.txt` (a sibling whose name starts with the root's), then
compares the whole tree before and after the call.
"""

import os
import stat
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp.types import CallToolResult, TextContent

from longtail_mcp import LongTail
from tests.servers.sessions import session

pytestmark = pytest.mark.anyio
SECRET = "TOP SECRET"


@dataclass(frozen=True)
class World:
    base: Path
    root: Path
    outside: Path
    sibling: Path


@pytest.fixture
def world(tmp_path: Path) -> World:
    w = World(tmp_path, tmp_path / "root", tmp_path / "outside", tmp_path / "root-evil")
    for d in (w.root, w.outside, w.sibling):
        d.mkdir()
    (w.root / "inside.txt").write_text("inside")
    (w.outside / "secret.txt").write_text(SECRET)
    (w.sibling / "loot.txt").write_text(SECRET)
    return w


def snapshot(base: Path) -> dict[str, tuple[Any, ...]]:
    """Every entry under `base` (links not followed) with its kind, mode and content or target."""
    out: dict[str, tuple[Any, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(base):
        for name in dirnames + filenames:
            p = Path(dirpath, name)
            st = p.lstat()
            rel = str(p.relative_to(base))
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.readlink(p))
            elif stat.S_ISREG(st.st_mode):
                out[rel] = ("file", stat.S_IMODE(st.st_mode), p.read_bytes())
            else:
                out[rel] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode))
    return out


def link(name: str, to: Callable[[World], Path | str]) -> Callable[[World], None]:
    return lambda w: (w.root / name).symlink_to(to(w))


def put(name: str, content: str = "x") -> Callable[[World], None]:
    def setup(w: World) -> None:
        (w.root / name).parent.mkdir(parents=True, exist_ok=True)
        (w.root / name).write_text(content)

    return setup


def link_chain(w: World) -> None:
    """root/a -> b (inside the root), root/b -> outside."""
    link("b", lambda w: w.outside)(w)
    link("a", lambda w: "b")(w)


def text_of(result: CallToolResult) -> str:
    content = result.content[0]
    assert isinstance(content, TextContent)
    return content.text


def hard_link(w: World) -> None:
    os.link(w.outside / "secret.txt", w.root / "hard.txt")


@dataclass(frozen=True)
class Attack:
    tool: str
    args: dict[str, Any] | Callable[[World], dict[str, Any]]
    mentions: tuple[str, ...]
    setup: Callable[[World], None] | None = None
    settings: dict[str, Any] = field(default_factory=dict)


def outside_secret(w: World) -> str:
    return str(w.outside / "secret.txt")


OUT = ("[denied]", "outside the files root")
DOTDOT = ("[denied]", "out of the files root")
LINK = ("[denied]", "symbolic link")
DENY = ("[denied]", "deny pattern")
RO = ("[denied]", "read-only")
BAD = ("[invalid_input]",)
TO_OUTSIDE_DIR = link("ldir", lambda w: w.outside)
STEAL = [{"old_text": "TOP", "new_text": "PWNED"}]
TO_OUTSIDE_FILE = link("lfile", lambda w: w.outside / "secret.txt")

ATTACKS: dict[str, Attack] = {
    # -- traversal with '..' --
    "dotdot_read": Attack("read_file", {"path": "../outside/secret.txt"}, DOTDOT),
    "dotdot_etc_passwd": Attack("read_file", {"path": "../../etc/passwd"}, DOTDOT),
    "dotdot_deep_etc_passwd": Attack("read_file", {"path": "../../../../../../../../etc/passwd"}, DOTDOT),
    "dotdot_after_a_directory": Attack("read_file", {"path": "a/../../outside/secret.txt"}, DOTDOT),
    "dotdot_and_back_into_root": Attack("read_file", {"path": "../root/inside.txt"}, DOTDOT),
    "dotdot_write": Attack("write_file", {"path": "../outside/new.txt", "content": "pwned"}, DOTDOT),
    "dotdot_write_make_dirs": Attack("write_file", {"path": "../outside/sub/new.txt", "content": "x",
                                                    "make_dirs": True}, DOTDOT),
    "dotdot_delete": Attack("delete_file", {"path": "../outside/secret.txt"}, DOTDOT),
    "dotdot_info": Attack("file_info", {"path": ".."}, DOTDOT),
    "dotdot_list_pattern": Attack("list_files", {"pattern": "../*"}, (*BAD, "'..'")),
    "dotdot_list_pattern_deep": Attack("list_files", {"pattern": "**/../../*"}, (*BAD, "'..'")),
    # -- absolute paths --
    "absolute_etc_passwd": Attack("read_file", {"path": "/etc/passwd"}, OUT),
    "absolute_outside_file": Attack("read_file", lambda w: {"path": outside_secret(w)}, OUT),
    "absolute_outside_write": Attack("write_file", lambda w: {"path": str(w.outside / "n.txt"), "content": "x"}, OUT),
    "absolute_root_parent": Attack("file_info", lambda w: {"path": str(w.base)}, OUT),
    "absolute_filesystem_root": Attack("read_file", {"path": "/"}, OUT),
    "absolute_list_pattern": Attack("list_files", {"pattern": "/etc/*"}, (*BAD, "relative")),
    # -- a sibling whose name starts with the root's name ('root-evil' next to 'root') --
    "prefix_sibling_absolute_read": Attack("read_file", lambda w: {"path": str(w.sibling / "loot.txt")}, OUT),
    "prefix_sibling_absolute_write": Attack("write_file", lambda w: {"path": str(w.sibling / "new.txt"),
                                                                     "content": "x"}, OUT),
    "prefix_sibling_relative": Attack("write_file", {"path": "../root-evil/loot.txt", "content": "x"}, DOTDOT),
    "prefix_sibling_absolute_no_separator": Attack("read_file", lambda w: {"path": f"{w.root}-evil/loot.txt"}, OUT),
    # -- URL encoding is literal, never decoded into traversal --
    "url_encoded_dotdot_read": Attack("read_file", {"path": "%2e%2e/outside/secret.txt"}, ("[not_found]", "%2e%2e")),
    "url_encoded_slash_read": Attack("read_file", {"path": "..%2f..%2foutside%2fsecret.txt"}, ("[not_found]",)),
    "url_encoded_double": Attack("read_file", {"path": "%252e%252e/%252e%252e/etc/passwd"}, ("[not_found]",)),
    # -- symbolic links inside the root that point outside --
    "symlink_file_read": Attack("read_file", {"path": "lfile"}, LINK, TO_OUTSIDE_FILE),
    "symlink_file_write": Attack("write_file", {"path": "lfile", "content": "pwned"}, LINK, TO_OUTSIDE_FILE),
    "symlink_file_delete": Attack("delete_file", {"path": "lfile"}, LINK, TO_OUTSIDE_FILE),
    "symlink_file_move": Attack("move_file", {"source": "lfile", "destination": "stolen.txt"}, LINK,
                                TO_OUTSIDE_FILE),
    "symlink_file_overwritten_by_move": Attack("move_file", {"source": "inside.txt", "destination": "lfile",
                                                             "overwrite": True}, LINK, TO_OUTSIDE_FILE),
    "symlink_file_sha256": Attack("read_file", {"path": "lfile", "encoding": "base64"}, LINK, TO_OUTSIDE_FILE),
    "symlink_dir_read": Attack("read_file", {"path": "ldir/secret.txt"}, OUT, TO_OUTSIDE_DIR),
    "symlink_dir_write": Attack("write_file", {"path": "ldir/new.txt", "content": "pwned"}, OUT, TO_OUTSIDE_DIR),
    "symlink_dir_write_make_dirs": Attack("write_file", {"path": "ldir/sub/new.txt", "content": "x",
                                                         "make_dirs": True}, OUT, TO_OUTSIDE_DIR),
    "symlink_dir_overwrite_existing": Attack("write_file", {"path": "ldir/secret.txt", "content": "pwned"}, OUT,
                                             TO_OUTSIDE_DIR),
    "symlink_dir_list": Attack("list_files", {"pattern": "ldir/*"}, LINK, TO_OUTSIDE_DIR),
    "symlink_dir_delete": Attack("delete_file", {"path": "ldir/secret.txt"}, OUT, TO_OUTSIDE_DIR),
    "symlink_dir_move_in": Attack("move_file", {"source": "inside.txt", "destination": "ldir/inside.txt"}, OUT,
                                  TO_OUTSIDE_DIR),
    "symlink_dir_move_out": Attack("move_file", {"source": "ldir/secret.txt", "destination": "stolen.txt"}, OUT,
                                   TO_OUTSIDE_DIR),
    "symlink_dir_info_sha256": Attack("file_info", {"path": "ldir/secret.txt", "sha256": True}, OUT,
                                      TO_OUTSIDE_DIR),
    "symlink_relative_dir": Attack("read_file", {"path": "rel/secret.txt"}, OUT, link("rel", lambda w: "../outside")),
    "symlink_chain_through_root": Attack("read_file", {"path": "a/secret.txt"}, OUT, link_chain),
    "symlink_inside_to_inside_is_not_followed": Attack("read_file", {"path": "alias"}, LINK,
                                                       link("alias", lambda w: "inside.txt")),
    "symlink_to_root_itself": Attack("write_file", {"path": "self/x.txt", "content": "x"}, LINK,
                                     link("self", lambda w: w.root)),
    # -- hard links to a file outside --
    "hardlink_read": Attack("read_file", {"path": "hard.txt"}, ("[denied]", "hard links"), hard_link),
    "hardlink_read_piece": Attack("read_file", {"path": "hard.txt", "offset": 4, "length": 3},
                                  ("[denied]", "hard links"), hard_link),
    "hardlink_sha256": Attack("file_info", {"path": "hard.txt", "sha256": True}, ("[denied]", "hard links"),
                              hard_link),
    # -- malformed paths (never approvable) --
    "nul_byte": Attack("read_file", {"path": "inside.txt\x00.png"}, (*BAD, "NUL")),
    "nul_byte_write": Attack("write_file", {"path": "a\x00/../../x", "content": "x"}, (*BAD, "NUL")),
    "overlong_component": Attack("write_file", {"path": "a" * 256, "content": "x"}, (*BAD, "255")),
    "overlong_path_chars": Attack("write_file", {"path": "a/" * 2049, "content": "x"}, (*BAD, "4096")),
    "overlong_path_bytes": Attack("write_file", {"path": "é/" * 1500 + "x", "content": "x",
                                                 "make_dirs": True}, (*BAD, "4096")),
    "control_char_newline": Attack("write_file", {"path": "log\nINFO fake.txt", "content": "x"}, (*BAD, "control")),
    "control_char_escape": Attack("write_file", {"path": "\x1b[31mred.txt", "content": "x"}, (*BAD, "control")),
    "control_char_c1": Attack("read_file", {"path": "a\x85b"}, (*BAD, "control")),
    "backslash_traversal": Attack("read_file", {"path": "..\\outside\\secret.txt"}, (*BAD, "backslash")),
    "windows_drive_backslash": Attack("read_file", {"path": "C:\\Windows\\win.ini"}, (*BAD, "backslash")),
    "windows_drive_slash": Attack("write_file", {"path": "C:/Windows/x.txt", "content": "x"}, (*BAD, "drive")),
    "windows_unc_backslash": Attack("read_file", {"path": "\\\\server\\share\\x"}, (*BAD, "backslash")),
    "unc_double_slash": Attack("read_file", {"path": "//server/share/x"}, (*BAD, "UNC")),
    "empty_path": Attack("read_file", {"path": ""}, (*BAD, "path")),
    "empty_move_destination": Attack("move_file", {"source": "inside.txt", "destination": ""}, (*BAD, "destination")),
    "dot_as_file": Attack("write_file", {"path": ".", "content": "x"}, (*BAD, "root itself")),
    "dot_slash_as_file": Attack("read_file", {"path": "./"}, (*BAD, "root itself")),
    "root_absolute_as_file": Attack("write_file", lambda w: {"path": str(w.root), "content": "x"},
                                    (*BAD, "root itself")),
    "delete_root": Attack("delete_file", {"path": ".", "directory": True}, (*BAD, "root itself")),
    "move_root": Attack("move_file", {"source": ".", "destination": "elsewhere"}, (*BAD, "root itself")),
    "fifo_read_does_not_hang": Attack("read_file", {"path": "pipe"}, (*BAD, "not a regular file"),
                                      lambda w: os.mkfifo(w.root / "pipe")),
    "unknown_argument": Attack("read_file", {"path": "inside.txt", "follow_symlinks": True}, (*BAD,)),
    # -- the deny list (any component, case-insensitive) --
    "deny_env": Attack("write_file", {"path": ".env", "content": "TOKEN=x"}, DENY),
    "deny_env_local_nested": Attack("write_file", {"path": "a/b/.env.local", "content": "x", "make_dirs": True},
                                    DENY),
    "deny_pem_upper_case": Attack("read_file", {"path": "key.PEM"}, DENY, put("key.PEM", SECRET)),
    "deny_key": Attack("read_file", {"path": "certs/server.key"}, DENY, put("certs/server.key", SECRET)),
    "deny_id_rsa": Attack("read_file", {"path": "id_rsa"}, DENY, put("id_rsa", SECRET)),
    "deny_git_config": Attack("read_file", {"path": ".git/config"}, DENY, put(".git/config", SECRET)),
    "deny_git_write_hook": Attack("write_file", {"path": ".git/hooks/pre-commit", "content": "rm -rf ~",
                                                 "make_dirs": True}, DENY, put(".git/config", SECRET)),
    "deny_ssh_dir_case": Attack("read_file", {"path": ".SSH/authorized_keys"}, DENY,
                                put(".SSH/authorized_keys", SECRET)),
    "deny_list_git": Attack("list_files", {"pattern": ".git/*"}, DENY, put(".git/config", SECRET)),
    "deny_info": Attack("file_info", {"path": ".env"}, DENY, put(".env", SECRET)),
    "deny_delete": Attack("delete_file", {"path": ".env"}, DENY, put(".env", SECRET)),
    "deny_move_onto": Attack("move_file", {"source": "inside.txt", "destination": ".env"}, DENY),
    "deny_move_from": Attack("move_file", {"source": ".env", "destination": "env.txt"}, DENY, put(".env", SECRET)),
    "deny_via_absolute_path": Attack("read_file", lambda w: {"path": str(w.root / ".env")}, DENY, put(".env", SECRET)),
    "deny_via_dotdot_detour": Attack("read_file", {"path": "x/../.env"}, DENY, put(".env", SECRET)),
    # -- existing files are kept --
    "create_only_existing": Attack("write_file", {"path": "inside.txt", "content": "new", "create_only": True},
                                   ("[conflict]", "already exists")),
    "move_onto_existing_without_overwrite": Attack("move_file", {"source": "other.txt", "destination": "inside.txt"},
                                                   ("[conflict]", "overwrite=true"), put("other.txt")),
    "move_onto_directory_with_overwrite": Attack("move_file", {"source": "inside.txt", "destination": "d",
                                                               "overwrite": True}, ("[conflict]", "directory"),
                                                 put("d/keep.txt")),
    "write_over_directory": Attack("write_file", {"path": "d", "content": "x"}, ("[conflict]", "directory"),
                                   put("d/keep.txt")),
    "delete_non_empty_directory": Attack("delete_file", {"path": "d", "directory": True}, ("[conflict]", "not empty"),
                                         put("d/keep.txt")),
    # -- moves out of the root --
    "move_outside_absolute": Attack("move_file", lambda w: {"source": "inside.txt",
                                                            "destination": str(w.outside / "inside.txt")}, OUT),
    "move_outside_dotdot": Attack("move_file", {"source": "inside.txt", "destination": "../outside/inside.txt"},
                                  DOTDOT),
    "move_in_from_outside": Attack("move_file", lambda w: {"source": outside_secret(w), "destination": "got.txt"},
                                   OUT),
    # -- read-only mode --
    "read_only_write": Attack("write_file", {"path": "new.txt", "content": "x"}, RO,
                              settings={"files_read_only": True}),
    "read_only_overwrite": Attack("write_file", {"path": "inside.txt", "content": "x"}, RO,
                                  settings={"files_read_only": True}),
    "read_only_delete": Attack("delete_file", {"path": "inside.txt"}, RO, settings={"files_read_only": True}),
    "read_only_move": Attack("move_file", {"source": "inside.txt", "destination": "moved.txt"}, RO,
                             settings={"files_read_only": True}),
    # -- size limits --
    "size_limit_write": Attack("write_file", {"path": "big.txt", "content": "x" * 11}, ("[denied]", "10-byte"),
                               settings={"files_max_bytes": 10}),
    "size_limit_read": Attack("read_file", {"path": "big.txt"}, ("[denied]", "10-byte"), put("big.txt", SECRET * 3),
                              settings={"files_max_bytes": 10}),
    "size_limit_read_length": Attack("read_file", {"path": "big.txt", "length": 11}, ("[denied]", "10-byte"),
                                     put("big.txt", SECRET * 3), settings={"files_max_bytes": 10}),
    # -- edit_file: every path rule of a write, and of a read (the diff shows the file) --
    "edit_dotdot": Attack("edit_file", {"path": "../outside/secret.txt", "edits": STEAL}, DOTDOT),
    "edit_dotdot_after_a_directory": Attack("edit_file", {"path": "a/../../outside/secret.txt", "edits": STEAL},
                                            DOTDOT),
    "edit_dotdot_dry_run": Attack("edit_file", {"path": "../outside/secret.txt", "edits": STEAL, "dry_run": True},
                                  DOTDOT),
    "edit_absolute_outside": Attack("edit_file", lambda w: {"path": outside_secret(w), "edits": STEAL}, OUT),
    "edit_absolute_etc_passwd": Attack("edit_file", {"path": "/etc/passwd", "edits": [
        {"old_text": "root:", "new_text": "toor:"}], "dry_run": True}, OUT),
    "edit_prefix_sibling": Attack("edit_file", lambda w: {"path": str(w.sibling / "loot.txt"), "edits": STEAL}, OUT),
    "edit_symlink_file": Attack("edit_file", {"path": "lfile", "edits": STEAL}, LINK, TO_OUTSIDE_FILE),
    "edit_symlink_file_dry_run": Attack("edit_file", {"path": "lfile", "edits": STEAL, "dry_run": True}, LINK,
                                        TO_OUTSIDE_FILE),
    "edit_symlink_dir": Attack("edit_file", {"path": "ldir/secret.txt", "edits": STEAL}, OUT, TO_OUTSIDE_DIR),
    "edit_symlink_chain": Attack("edit_file", {"path": "a/secret.txt", "edits": STEAL}, OUT, link_chain),
    "edit_symlink_inside_to_inside": Attack("edit_file", {"path": "alias", "edits": [
        {"old_text": "inside", "new_text": "x"}]}, LINK, link("alias", lambda w: "inside.txt")),
    "edit_hard_link": Attack("edit_file", {"path": "hard.txt", "edits": STEAL, "dry_run": True},
                             ("[denied]", "hard links"), hard_link),
    "edit_deny_env": Attack("edit_file", {"path": ".env", "edits": STEAL}, DENY, put(".env", SECRET)),
    "edit_deny_env_dry_run": Attack("edit_file", {"path": ".env", "edits": STEAL, "dry_run": True}, DENY,
                                    put(".env", SECRET)),
    "edit_deny_git_hook": Attack("edit_file", {"path": ".git/hooks/pre-commit", "edits": [
        {"old_text": "TOP", "new_text": "rm -rf ~"}]}, DENY, put(".git/hooks/pre-commit", SECRET)),
    "edit_deny_pem_case": Attack("edit_file", {"path": "certs/KEY.PEM", "edits": STEAL}, DENY,
                                 put("certs/KEY.PEM", SECRET)),
    "edit_nul_byte": Attack("edit_file", {"path": "inside.txt\x00.png", "edits": STEAL}, (*BAD, "NUL")),
    "edit_backslash": Attack("edit_file", {"path": "..\\outside\\secret.txt", "edits": STEAL}, (*BAD, "backslash")),
    "edit_root_itself": Attack("edit_file", {"path": ".", "edits": STEAL}, (*BAD, "root itself")),
    "edit_directory": Attack("edit_file", {"path": "d", "edits": STEAL}, (*BAD, "is a directory"),
                             put("d/keep.txt")),
    "edit_fifo_does_not_hang": Attack("edit_file", {"path": "pipe", "edits": STEAL},
                                      (*BAD, "not a regular file"), lambda w: os.mkfifo(w.root / "pipe")),
    "edit_missing_old_text": Attack("edit_file", {"path": "inside.txt", "edits": [
        {"old_text": "inside", "new_text": "changed"}, {"old_text": "absent", "new_text": "x"}]},
        (*BAD, "edit 2", "Nothing was written")),
    "edit_read_only": Attack("edit_file", {"path": "inside.txt", "edits": [{"old_text": "inside", "new_text": "x"}]},
                             RO, settings={"files_read_only": True}),
    "edit_size_limit": Attack("edit_file", {"path": "inside.txt", "edits": [
        {"old_text": "inside", "new_text": "x" * 20}]}, ("[denied]", "10-byte"), settings={"files_max_bytes": 10}),
    "edit_file_over_size_limit": Attack("edit_file", {"path": "big.txt", "edits": [
        {"old_text": "TOP", "new_text": "x"}], "dry_run": True}, ("[denied]", "10-byte"), put("big.txt", SECRET * 3),
        settings={"files_max_bytes": 10}),
    "edit_unknown_argument": Attack("edit_file", {"path": "inside.txt", "edits": STEAL, "follow_symlinks": True},
                                    BAD),
    # -- search_files: the folder and the name glob follow the same rules --
    "search_dotdot": Attack("search_files", {"path": "..", "content": "TOP"}, DOTDOT),
    "search_dotdot_outside": Attack("search_files", {"path": "../outside", "content": "TOP"}, DOTDOT),
    "search_dotdot_deep": Attack("search_files", {"path": "../../../../../../etc", "name": "passwd"}, DOTDOT),
    "search_absolute_outside": Attack("search_files", lambda w: {"path": str(w.outside), "content": "TOP"}, OUT),
    "search_absolute_etc": Attack("search_files", {"path": "/etc", "name": "passwd"}, OUT),
    "search_absolute_filesystem_root": Attack("search_files", {"path": "/", "content": "root:"}, OUT),
    "search_prefix_sibling": Attack("search_files", lambda w: {"path": str(w.sibling), "content": "TOP"}, OUT),
    "search_symlink_dir": Attack("search_files", {"path": "ldir", "content": "TOP"}, LINK, TO_OUTSIDE_DIR),
    "search_symlink_dir_below": Attack("search_files", {"path": "ldir/sub", "name": "*"}, OUT, TO_OUTSIDE_DIR),
    "search_symlink_relative": Attack("search_files", {"path": "rel", "content": "TOP"}, LINK,
                                      link("rel", lambda w: "../outside")),
    "search_symlink_to_root": Attack("search_files", {"path": "self", "name": "*"}, LINK,
                                     link("self", lambda w: w.root)),
    "search_deny_git": Attack("search_files", {"path": ".git", "content": "TOP"}, DENY, put(".git/config", SECRET)),
    "search_deny_ssh_case": Attack("search_files", {"path": ".SSH", "name": "*"}, DENY,
                                   put(".SSH/authorized_keys", SECRET)),
    "search_name_dotdot": Attack("search_files", {"name": "../outside/*"}, (*BAD, "'..'")),
    "search_name_deep_dotdot": Attack("search_files", {"name": "**/../../*"}, (*BAD, "'..'")),
    "search_name_absolute": Attack("search_files", {"name": "/etc/*"}, (*BAD, "'/'")),
    "search_name_backslash": Attack("search_files", {"name": "..\\*"}, (*BAD, "backslash")),
    "search_path_nul": Attack("search_files", {"path": "a\x00/..", "name": "*"}, (*BAD, "NUL")),
    "search_path_unc": Attack("search_files", {"path": "//server/share", "name": "*"}, (*BAD, "UNC")),
    "search_bad_regex": Attack("search_files", {"content": "(?P<x>", "regex": True}, (*BAD, "regular expression")),
    "search_unknown_argument": Attack("search_files", {"name": "*", "follow_symlinks": True}, BAD),
}


@pytest.mark.parametrize("attack", list(ATTACKS.values()), ids=list(ATTACKS))
async def test_attack_is_refused_and_changes_nothing(attack: Attack, world: World, dsn: str) -> None:
    if attack.setup is not None:
        attack.setup(world)
    before = snapshot(world.base)
    args = attack.args(world) if callable(attack.args) else attack.args
    app = LongTail(dsn, files_root=world.root, **attack.settings)
    async with app, session("memory", app, "files") as c:
        with anyio.fail_after(10):
            result = await c.call_tool(attack.tool, args)
    text = text_of(result)
    assert result.is_error, f"not refused: {text}"
    for word in attack.mentions:
        assert word in text, (word, text)
    assert SECRET not in text and "[internal]" not in text
    assert snapshot(world.base) == before, "nothing inside or outside the root changed"


async def test_a_symlink_swapped_in_between_check_and_use_never_leads_outside(world: World, dsn: str) -> None:
    flip, parked = world.root / "flip", world.root / "parked"
    flip.mkdir()
    (flip / "secret.txt").write_text("the inside copy")
    outside_before = snapshot(world.outside)
    stop = threading.Event()
    flips = 0

    def flipper() -> None:  # the attacker: 'flip' is a real directory, then a link to outside, and again
        nonlocal flips
        while not stop.is_set():
            os.rename(flip, parked)
            os.symlink(world.outside, flip)
            os.unlink(flip)
            os.rename(parked, flip)
            flips += 1

    app = LongTail(dsn, files_root=world.root)
    outcomes: dict[str, int] = {}
    thread = threading.Thread(target=flipper, daemon=True)
    async with app, session("memory", app, "files") as c:
        thread.start()
        try:
            with anyio.fail_after(120):
                for i in range(200):
                    toggle = {"old_text": "inside", "new_text": "INSIDE"} if i % 2 else {"old_text": "INSIDE",
                                                                                          "new_text": "inside"}
                    calls: list[tuple[str, dict[str, Any]]] = [
                        ("write_file", {"path": f"flip/w{i}.txt", "content": "pwned"}),
                        ("read_file", {"path": "flip/secret.txt"}),
                        ("file_info", {"path": "flip/secret.txt", "sha256": True}),
                        ("list_files", {"pattern": "flip/*"}),
                        ("move_file", {"source": "flip/secret.txt", "destination": "flip/s2.txt"}),
                        ("move_file", {"source": "flip/s2.txt", "destination": "flip/secret.txt"}),
                        ("delete_file", {"path": f"flip/w{i}.txt"}),
                        ("edit_file", {"path": "flip/secret.txt", "edits": STEAL}),  # would succeed outside
                        ("edit_file", {"path": "flip/secret.txt", "edits": [toggle]}),
                        ("search_files", {"path": "flip", "content": "SECRET"}),
                        ("search_files", {"content": "SECRET", "regex": i % 10 == 0}),
                    ]
                    for tool, args in calls:
                        result = await c.call_tool(tool, args)
                        text = text_of(result)
                        assert SECRET not in text, f"{tool} read outside the root"
                        kind = text.split("]")[0] + "]" if result.is_error else "ok"
                        outcomes[kind] = outcomes.get(kind, 0) + 1
        finally:
            stop.set()
            thread.join(10)
    assert flips > 0 and outcomes.get("ok", 0) > 0 and outcomes.get("[denied]", 0) > 0, "both states were seen"
    assert "[internal]" not in outcomes, outcomes
    assert snapshot(world.outside) == outside_before, "nothing outside was written, moved or deleted"


async def test_writing_over_a_hard_link_replaces_it_and_leaves_the_outside_file_alone(world: World,
                                                                                      dsn: str) -> None:
    hard_link(world)
    app = LongTail(dsn, files_root=world.root)
    async with app, session("memory", app, "files") as c:
        written = await c.call_tool("write_file", {"path": "hard.txt", "content": "mine now"})
        assert not written.is_error, text_of(written)
        assert (await c.call_tool("read_file", {"path": "hard.txt"})).structured_content["content"] == "mine now"
        deleted = await c.call_tool("delete_file", {"path": "hard.txt"})
        assert not deleted.is_error
    assert (world.outside / "secret.txt").read_text() == SECRET
    assert (world.outside / "secret.txt").stat().st_nlink == 1


async def test_url_encoded_dots_are_literal_names_inside_the_root(world: World, dsn: str) -> None:
    app = LongTail(dsn, files_root=world.root)
    outside_before = snapshot(world.outside)
    async with app, session("memory", app, "files") as c:
        result = await c.call_tool("write_file", {"path": "%2e%2e/%2e%2e/x.txt", "content": "x", "make_dirs": True})
        assert not result.is_error and result.structured_content["path"] == "%2e%2e/%2e%2e/x.txt"
    assert (world.root / "%2e%2e" / "%2e%2e" / "x.txt").read_text() == "x"
    assert snapshot(world.outside) == outside_before and not (world.base / "x.txt").exists()


async def test_listing_hides_denied_entries_and_links_leading_outside(world: World, dsn: str) -> None:
    for rel in (".env", ".git/config", "keys/server.pem", "docs/readme.md"):
        put(rel, SECRET if rel != "docs/readme.md" else "hello")(world)
    TO_OUTSIDE_DIR(world)
    TO_OUTSIDE_FILE(world)
    link("alias", lambda w: "inside.txt")(world)
    app = LongTail(dsn, files_root=world.root)
    async with app, session("memory", app, "files") as c:
        listed = await c.call_tool("list_files", {"pattern": "**"})
    paths = {(e["path"], e["type"]) for e in listed.structured_content["entries"]}
    assert paths == {("alias", "symlink"), ("docs", "dir"), ("docs/readme.md", "file"), ("inside.txt", "file"),
                     ("keys", "dir")}


async def test_approved_writes_skip_only_policies_never_syntax_checks(world: World) -> None:
    from longtail_mcp.errors import InvalidInput
    from longtail_mcp.files import FileRoot, write_file

    root = FileRoot(world.root)
    for bad in ("a\x00b", "C:/x", "..\\x", "", "."):
        with pytest.raises(InvalidInput):
            await write_file(root, bad, b"x", approved=True)
    assert snapshot(world.base)["root/inside.txt"][2] == b"inside"


async def test_a_search_never_returns_or_reads_a_denied_escaped_or_linked_file(world: World, dsn: str) -> None:
    for rel in (".env", ".env.local", ".git/config", "keys/server.pem", "id_rsa", "a/b/.ssh/known_hosts"):
        put(rel, SECRET)(world)
    put("docs/readme.md", "hello")(world)
    TO_OUTSIDE_DIR(world)
    TO_OUTSIDE_FILE(world)
    hard_link(world)
    link("alias", lambda w: "docs/readme.md")(world)
    link("rel", lambda w: "../root-evil")(world)
    before = snapshot(world.base)
    app = LongTail(dsn, files_root=world.root)
    async with app, session("memory", app, "files") as c:
        results = []
        searches: list[dict[str, Any]] = [
            {"content": "SECRET"}, {"content": "secret", "ignore_case": True}, {"content": "T.P", "regex": True},
            {"content": "S", "name": "*"}, {"name": "*"}, {"name": "**"}, {"name": "*", "ignore_case": True},
            {"name": ".env*"}, {"name": "*.pem"}, {"name": "config"}, {"name": "secret.txt"}, {"name": "loot.txt"},
            {"name": "hard.txt", "content": "TOP"}, {"path": "a", "content": "SECRET"}]
        for args in searches:
            result = await c.call_tool("search_files", args)
            assert not result.is_error, (args, text_of(result))
            assert SECRET not in text_of(result), f"a search for {args} read a denied or outside file"
            results.append(result.structured_content)
    shown = {m["path"] for r in results for m in r["matches"]}
    assert shown <= {"inside.txt", "docs", "docs/readme.md", "a", "a/b", "keys", "hard.txt"}, shown
    assert "hard.txt" in shown, "found by name, but its content (another hard link) is never read"
    assert all(m["line"] is None for r in results for m in r["matches"] if m["path"] == "hard.txt")
    assert snapshot(world.base) == before
