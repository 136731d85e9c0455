-- Keyed journal entries: an operation identified by a stable key (a pipeline step, `fetch:3` for the
-- third item of a loop) rather than by its position in program order, so operations that start in an
-- order only timing decides (a DAG's ready steps, concurrent approvals) replay onto the same entries.
-- A keyed entry's seq comes from a range of its own (>= 1,000,000,000), allocated on first use.
ALTER TABLE step ADD COLUMN key text;
CREATE UNIQUE INDEX step_key ON step (workflow_id, key) WHERE key IS NOT NULL;
