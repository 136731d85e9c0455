"""HTTP fetching for agents: a guard against internal addresses, pinned requests, pages as Markdown."""

from longtail_mcp.fetch.client import Fetched, Hop, Policy, fetch
from longtail_mcp.fetch.guard import AllowList, Target, check, classify, parse_url
from longtail_mcp.fetch.text import Page, html_to_markdown

__all__ = ["AllowList", "Fetched", "Hop", "Page", "Policy", "Target", "check", "classify", "fetch",
           "html_to_markdown", "parse_url"]
