"""Pipelines: deterministic YAML DAGs of tool calls (and human steps), their lifecycle, and the compiler."""
