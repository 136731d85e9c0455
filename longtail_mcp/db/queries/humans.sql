-- create_account --
-- A person or bot.
INSERT INTO account (id, name, kind, email) VALUES (%(id)s, %(name)s, %(kind)s, %(email)s)
ON CONFLICT (id) DO NOTHING RETURNING id, name, kind, email, created_at

-- get_account --
-- One account with its memberships.
SELECT a.id, a.name, a.kind, a.email, a.disabled_at,
       coalesce(jsonb_object_agg(m.role, m.type) FILTER (WHERE m.role IS NOT NULL), '{}') AS roles
FROM account a LEFT JOIN role_member m ON m.account_id = a.id
WHERE a.id = %(id)s GROUP BY a.id

-- list_accounts --
-- Every account with its memberships.
SELECT a.id, a.name, a.kind, a.email, a.disabled_at,
       coalesce(jsonb_object_agg(m.role, m.type) FILTER (WHERE m.role IS NOT NULL), '{}') AS roles
FROM account a LEFT JOIN role_member m ON m.account_id = a.id
GROUP BY a.id ORDER BY a.id

-- create_role --
-- A role.
INSERT INTO role (name, description) VALUES (%(name)s, %(description)s)
ON CONFLICT (name) DO NOTHING RETURNING name

-- list_roles --
-- Roles with member counts, chain and current form version.
SELECT r.name, r.description, c.next_role, c.stage_seconds,
       (SELECT count(*) FROM role_member m WHERE m.role = r.name) AS members,
       (SELECT max(version) FROM role_form f WHERE f.role = r.name) AS form_version
FROM role r LEFT JOIN escalation_chain c ON c.role = r.name ORDER BY r.name

-- set_membership --
-- Add an account to a role (or change its membership type).
INSERT INTO role_member (role, account_id, type) VALUES (%(role)s, %(account)s, %(type)s)
ON CONFLICT (role, account_id) DO UPDATE SET type = excluded.type

-- remove_membership --
-- Take an account out of a role.
DELETE FROM role_member WHERE role = %(role)s AND account_id = %(account)s RETURNING type

-- create_key --
-- Store a new API key's hash.
INSERT INTO api_key (id, account_id, name, secret_hash, scope, expires_at)
VALUES (%(id)s, %(account)s, %(name)s, %(hash)s, %(scope)s, %(expires_at)s)

-- find_key --
-- The key by its public id, with its account.
SELECT k.id, k.account_id, k.secret_hash, k.scope, k.expires_at, k.revoked_at, a.disabled_at
FROM api_key k JOIN account a ON a.id = k.account_id WHERE k.id = %(id)s

-- touch_key --
-- Record a use.
UPDATE api_key SET last_used_at = now() WHERE id = %(id)s

-- list_keys --
-- Keys (never their secrets).
SELECT id, account_id, name, scope, expires_at, revoked_at, last_used_at, created_at
FROM api_key WHERE (%(account)s::text IS NULL OR account_id = %(account)s) ORDER BY created_at

-- revoke_key --
-- Revoke a key; first writer wins.
UPDATE api_key SET revoked_at = now() WHERE id = %(id)s AND revoked_at IS NULL RETURNING id, account_id

-- add_form --
-- A new version of a role's resolution form.
INSERT INTO role_form (role, version, schema, created_by)
SELECT %(role)s, coalesce(max(version), 0) + 1, %(schema)s, %(actor)s FROM role_form WHERE role = %(role)s
RETURNING version

-- current_form --
-- A role's latest form.
SELECT version, schema FROM role_form WHERE role = %(role)s ORDER BY version DESC LIMIT 1

-- set_chain --
-- Where an escalation at `role` goes after `stage_seconds`.
INSERT INTO escalation_chain (role, next_role, stage_seconds) VALUES (%(role)s, %(next_role)s, %(stage_seconds)s)
ON CONFLICT (role) DO UPDATE SET next_role = excluded.next_role, stage_seconds = excluded.stage_seconds

-- get_chain --
-- A role's stage.
SELECT role, next_role, stage_seconds FROM escalation_chain WHERE role = %(role)s

-- append_audit --
-- One audit record.
INSERT INTO audit (actor, action, object_type, object_id, before_status, after_status, reason, data)
VALUES (%(actor)s, %(action)s, %(object_type)s, %(object_id)s, %(before)s, %(after)s, %(reason)s, %(data)s)

-- export_audit --
-- The audit log in order, optionally from an id.
SELECT id, at, actor, action, object_type, object_id, before_status, after_status, reason, data
FROM audit WHERE id > %(after)s ORDER BY id LIMIT %(limit)s

-- set_task --
-- Track a certified run's task; a finished task is not reopened by a replay.
INSERT INTO task (workflow_id, name, status, escalation_id, attempts, error)
VALUES (%(id)s, %(name)s, %(status)s, %(escalation_id)s, %(attempts)s, %(error)s)
ON CONFLICT (workflow_id) DO UPDATE
SET status = excluded.status, escalation_id = coalesce(excluded.escalation_id, task.escalation_id),
    attempts = greatest(task.attempts, excluded.attempts), error = coalesce(excluded.error, task.error),
    updated_at = now()
WHERE task.status NOT IN ('completed', 'failed')

-- get_task --
-- A certified run's task.
SELECT * FROM task WHERE workflow_id = %(id)s

-- list_configs --
-- Workflow types certified by configuration.
SELECT name, certified, role FROM workflow_config

-- set_config --
-- Certify (or de-certify) a workflow type without changing its code.
INSERT INTO workflow_config (name, certified, role) VALUES (%(name)s, %(certified)s, %(role)s)
ON CONFLICT (name) DO UPDATE SET certified = excluded.certified, role = excluded.role, updated_at = now()

-- fail_tasks --
-- Certified runs that were cancelled: their tasks end as failed.
UPDATE task SET status = 'failed', updated_at = now()
WHERE workflow_id = ANY(%(ids)s) AND status NOT IN ('completed', 'failed')

-- role_exists --
-- Whether a role exists.
SELECT 1 AS found FROM role WHERE name = %(role)s

-- is_member --
-- Whether an account may act on a role's escalations (a member of it, or a superadmin).
SELECT 1 AS found FROM role_member WHERE account_id = %(account)s AND (role = %(role)s OR type = 'superadmin')

-- list_role_names --
-- Every role's name.
SELECT name FROM role ORDER BY name

-- lock_membership --
-- An account's membership of a role, locked for the change that follows.
SELECT type FROM role_member WHERE role = %(role)s AND account_id = %(account)s FOR UPDATE

-- lock_named --
-- A transaction-scoped advisory lock on a name (serialises one kind of change).
SELECT pg_advisory_xact_lock(hashtext(%(name)s))

-- account_exists --
-- Whether an account exists.
SELECT 1 AS found FROM account WHERE id = %(id)s

-- lock_chains --
-- Hold every chain still while a new link is checked for cycles.
LOCK TABLE escalation_chain IN SHARE ROW EXCLUSIVE MODE
