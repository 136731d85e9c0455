-- Agents and routers: the closed-loop policy — what a successful agent run of a router becomes (nothing,
-- a draft pipeline, or an active one), per router (`router:query`, `router:triage`) and per tag (`tag:<t>`).
CREATE TABLE agent_policy (
    scope        text PRIMARY KEY CHECK (scope ~ '^(router|tag):[A-Za-z0-9_.:-]{1,100}$'),
    auto_compile text NOT NULL CHECK (auto_compile IN ('off', 'draft', 'activate')),
    updated_by   text,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
