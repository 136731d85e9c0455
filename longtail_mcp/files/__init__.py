"""The files server's core: one root directory, guarded paths, atomic writes (no MCP here)."""

from longtail_mcp.files.edits import Edited, Replacement, edit_file
from longtail_mcp.files.guard import FileRoot
from longtail_mcp.files.listing import Entry, Listing, list_files
from longtail_mcp.files.search import Found, Match, search_files
from longtail_mcp.files.store import (
    Deleted,
    FileContent,
    Info,
    Moved,
    Written,
    announce,
    decode_content,
    delete_file,
    file_info,
    move_file,
    read_file,
    write_file,
)

__all__ = [
    "Deleted", "Edited", "Entry", "FileContent", "FileRoot", "Found", "Info", "Listing", "Match", "Moved",
    "Replacement", "Written", "announce", "decode_content", "delete_file", "edit_file", "file_info", "list_files",
    "move_file", "read_file", "search_files", "write_file",
]
