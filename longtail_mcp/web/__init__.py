"""The HTTP app: health now; MCP endpoints, events and the web view mount here."""
