-- +goose Up
-- The audit trail of admin actions and lifecycle events (docs/operations.md,
-- "Audit trail"). Append-only: the app role is granted SELECT and INSERT
-- only (tenancy.Migrator.UpControl), so a compromised api can add events but
-- never rewrite or erase them. tenant_id has no foreign key: the events of a
-- deleted tenant outlive it. diff never holds API key material.
CREATE TABLE tenancy.audit_events (
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor       text        NOT NULL CHECK (char_length(actor) BETWEEN 1 AND 200),
    credential  text        NOT NULL DEFAULT '',
    tenant_id   uuid,
    action      text        NOT NULL CHECK (action ~ '^[a-z_.]{1,40}$'),
    diff        jsonb       NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(diff) = 'object'),
    request_id  text        NOT NULL DEFAULT ''
);
-- Newest-first keyset paging, overall and per tenant and per action.
CREATE INDEX audit_events_created_idx ON tenancy.audit_events (created_at DESC, id DESC);
CREATE INDEX audit_events_tenant_idx ON tenancy.audit_events (tenant_id, created_at DESC, id DESC);
CREATE INDEX audit_events_action_idx ON tenancy.audit_events (action, created_at DESC, id DESC);

-- +goose Down
DROP TABLE tenancy.audit_events;
