"""The durable runtime: workflows, checkpointed steps, waits, workers."""
