"""The tools registry: built-in and registered MCP servers, their tool manifests, discovery, calls."""
