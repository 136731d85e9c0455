-- Durable runtime: runs, their step journal, signals and workers.

CREATE TABLE workflow (
    id           text PRIMARY KEY,
    name         text NOT NULL,
    status       text NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'running', 'waiting', 'completed', 'failed', 'cancelled')),
    input        jsonb,
    result       jsonb,
    error        jsonb,
    parent_id    text,
    parent_seq   int,
    owner        text,                       -- worker id holding the lease while running
    lease_epoch  bigint NOT NULL DEFAULT 0,  -- fencing counter: bumped by every claim and by cancel
    due_at       timestamptz,                -- when a worker should (re)claim: start, timer, retry, lease expiry
    wake_seq     bigint NOT NULL DEFAULT 0,  -- bumped by anything that may unblock the run (signal, child done)
    waiting_for  text,                       -- what a waiting run waits on: sleep, signal:NAME, child, retry
    claims       int NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz
);
CREATE INDEX workflow_due ON workflow (due_at) WHERE due_at IS NOT NULL;
CREATE INDEX workflow_created ON workflow (created_at DESC);
CREATE INDEX workflow_status_created ON workflow (status, created_at DESC);
CREATE INDEX workflow_name_created ON workflow (name, created_at DESC);
CREATE INDEX workflow_parent ON workflow (parent_id) WHERE parent_id IS NOT NULL;

-- The journal: one row per checkpointed operation, keyed (workflow_id, seq).
CREATE TABLE step (
    workflow_id  text NOT NULL REFERENCES workflow (id) ON DELETE CASCADE,
    seq          int NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('step', 'sleep', 'signal', 'child', 'now', 'uuid', 'random')),
    name         text NOT NULL,
    status       text NOT NULL CHECK (status IN ('completed', 'failed', 'waiting', 'retrying')),
    input        jsonb,
    output       jsonb,
    error        jsonb,
    attempts     int NOT NULL DEFAULT 1,
    wake_at      timestamptz,                -- sleep end, signal deadline, next retry
    epoch        bigint NOT NULL,            -- lease epoch of the writer
    worker       text,
    started_at   timestamptz,
    completed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workflow_id, seq)
);

-- Signals: buffered until a wait consumes them (oldest first).
CREATE TABLE message (
    id           bigserial PRIMARY KEY,
    workflow_id  text NOT NULL REFERENCES workflow (id) ON DELETE CASCADE,
    name         text NOT NULL,
    payload      jsonb,
    consumed_seq int,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX message_pending ON message (workflow_id, name, id) WHERE consumed_seq IS NULL;

CREATE TABLE worker (
    id           text PRIMARY KEY,
    host         text NOT NULL,
    pid          int NOT NULL,
    workflows    text[] NOT NULL,
    concurrency  int NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now(),
    stopped_at   timestamptz
);
