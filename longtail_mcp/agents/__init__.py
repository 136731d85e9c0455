"""Agents: LLM providers, the durable agent loop and the routers."""
