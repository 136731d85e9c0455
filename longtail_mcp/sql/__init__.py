"""SQL over the runtime's database for people and agents: untrusted read-only statements, and reports."""
