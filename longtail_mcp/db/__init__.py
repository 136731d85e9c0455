"""Database access: pool, migrations, named queries, the embedded server."""

from longtail_mcp.db.pool import Database

__all__ = ["Database"]
