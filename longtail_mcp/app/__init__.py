"""The composition root: `Client` and `LongTail` wire the runtime, the human queue and the tools together."""

from longtail_mcp.app.client import Client
from longtail_mcp.app.longtail import LongTail

__all__ = ["Client", "LongTail"]
