"""The MCP glue: one way to define a tool, and the servers built from those definitions."""
