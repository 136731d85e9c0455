-- Escalation strategies: what happens to a new escalation of a role before (or instead of) a person
-- taking it. `default` waits for a person; `triage` starts the triage router; any other name is a
-- workflow type (a handler registered with `@app.escalation_handler`) started with the escalation's id.
CREATE TABLE escalation_strategy (
    role       text PRIMARY KEY REFERENCES role (name) ON DELETE CASCADE,
    strategy   text NOT NULL CHECK (strategy ~ '^[a-z][a-z0-9_.-]{0,99}$'),
    updated_by text,
    updated_at timestamptz NOT NULL DEFAULT now()
);
