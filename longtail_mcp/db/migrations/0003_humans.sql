-- The human queue: accounts, roles, memberships, API keys, role forms, chains, escalations, audit.

CREATE TABLE account (
    id          text PRIMARY KEY,
    name        text NOT NULL,
    kind        text NOT NULL DEFAULT 'human' CHECK (kind IN ('human', 'bot')),
    email       text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    disabled_at timestamptz
);

CREATE TABLE role (
    name        text PRIMARY KEY,
    description text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE role_member (
    role       text NOT NULL REFERENCES role (name) ON DELETE CASCADE,
    account_id text NOT NULL REFERENCES account (id) ON DELETE CASCADE,
    type       text NOT NULL DEFAULT 'member' CHECK (type IN ('member', 'admin', 'superadmin')),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (role, account_id)
);
CREATE INDEX role_member_account ON role_member (account_id);

-- An API key is shown once: `ltk_<id>_<secret>`; only sha256(secret) is stored.
CREATE TABLE api_key (
    id           text PRIMARY KEY,
    account_id   text NOT NULL REFERENCES account (id) ON DELETE CASCADE,
    name         text NOT NULL DEFAULT '',
    secret_hash  bytea NOT NULL,
    scope        text NOT NULL CHECK (scope IN ('read', 'full')),
    expires_at   timestamptz,
    revoked_at   timestamptz,
    last_used_at timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX api_key_account ON api_key (account_id);

-- Versioned resolution forms (JSON Schema) per role; an escalation pins the version it was made with.
CREATE TABLE role_form (
    role       text NOT NULL REFERENCES role (name) ON DELETE CASCADE,
    version    int NOT NULL,
    schema     jsonb NOT NULL,
    created_by text,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (role, version)
);

-- Chains: an escalation waits `stage_seconds` at `role`, then moves to `next_role`; with no next
-- role it expires. A role with no chain row has no deadline (unless the escalation sets a timeout).
CREATE TABLE escalation_chain (
    role          text PRIMARY KEY REFERENCES role (name) ON DELETE CASCADE,
    next_role     text REFERENCES role (name) ON DELETE SET NULL,
    stage_seconds float8 NOT NULL CHECK (stage_seconds > 0),
    CHECK (next_role IS DISTINCT FROM role)
);

CREATE TABLE escalation (
    id                   text PRIMARY KEY,
    workflow_id          text,                       -- the waiting run (NULL: notification only)
    seq                  int,                        -- its journal entry
    type                 text NOT NULL DEFAULT 'review',
    role                 text NOT NULL REFERENCES role (name),
    message              text NOT NULL,
    data                 jsonb NOT NULL DEFAULT '{}',
    metadata             jsonb NOT NULL DEFAULT '{}',
    form_version         int,
    form_schema          jsonb,
    priority             int NOT NULL DEFAULT 3 CHECK (priority BETWEEN 1 AND 5),  -- 1 most urgent
    status               text NOT NULL DEFAULT 'pending'
                         CHECK (status IN ('pending', 'resolved', 'cancelled', 'expired')),
    assigned_to          text,
    assigned_until       timestamptz,
    deadline_at          timestamptz,
    stage                int NOT NULL DEFAULT 0,
    action_hash          text,                       -- sha256 of the exact action an approval is for
    approval_used_at     timestamptz,
    resolution           jsonb,
    resolved_by          text,
    resolved_at          timestamptz,
    reason               text,
    created_by           text,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX escalation_available ON escalation (role, priority, created_at) WHERE status = 'pending';
-- claim_next reads unclaimed work in priority order straight from this index (no sort of the queue).
CREATE INDEX escalation_unclaimed ON escalation (priority, created_at) WHERE status = 'pending' AND assigned_to IS NULL;
CREATE INDEX escalation_deadline ON escalation (deadline_at) WHERE status = 'pending' AND deadline_at IS NOT NULL;
CREATE INDEX escalation_assignee ON escalation (assigned_to) WHERE status = 'pending';
CREATE INDEX escalation_claim_expiry ON escalation (assigned_until) WHERE status = 'pending' AND assigned_to IS NOT NULL;
CREATE INDEX escalation_workflow ON escalation (workflow_id) WHERE workflow_id IS NOT NULL;
CREATE INDEX escalation_status_created ON escalation (status, created_at DESC);
CREATE INDEX escalation_metadata ON escalation USING gin (metadata jsonb_path_ops);

-- Append-only record of every escalation and identity change.
CREATE TABLE audit (
    id            bigserial PRIMARY KEY,
    at            timestamptz NOT NULL DEFAULT now(),
    actor         text,
    action        text NOT NULL,
    object_type   text NOT NULL,
    object_id     text NOT NULL,
    before_status text,
    after_status  text,
    reason        text,
    data          jsonb
);
CREATE INDEX audit_object ON audit (object_type, object_id, id);

CREATE FUNCTION audit_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only' USING ERRCODE = '42501';
END $$;
CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit
    FOR EACH ROW EXECUTE FUNCTION audit_is_append_only();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
    FOR EACH STATEMENT EXECUTE FUNCTION audit_is_append_only();

ALTER TABLE workflow ADD COLUMN principal jsonb;

ALTER TABLE step DROP CONSTRAINT step_kind_check;
ALTER TABLE step ADD CONSTRAINT step_kind_check
    CHECK (kind IN ('step', 'sleep', 'signal', 'child', 'now', 'uuid', 'random', 'state', 'hooks', 'escalation'));

-- Certified workflows: a task per run, tracked by the interceptor (never-fail: errors escalate).
CREATE TABLE workflow_config (
    name       text PRIMARY KEY,               -- workflow type
    certified  boolean NOT NULL DEFAULT true,
    role       text NOT NULL DEFAULT 'admin',  -- where errors escalate
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE task (
    workflow_id   text PRIMARY KEY,
    name          text NOT NULL,
    status        text NOT NULL DEFAULT 'pending'
                  CHECK (status IN ('pending', 'in_progress', 'needs_intervention', 'completed', 'failed')),
    escalation_id text,
    attempts      int NOT NULL DEFAULT 0,
    error         jsonb,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX task_status ON task (status, updated_at DESC);
