-- +goose Up
-- Background operations on tenants (online moves between isolation tiers,
-- docs/operations.md "Online moves"). The api inserts them, the worker runs
-- and updates them; GET /admin/v1/operations/{id} reads them.
CREATE TABLE tenancy.operations (
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    kind        text        NOT NULL CHECK (kind IN ('move')),
    tenant_id   uuid        NOT NULL,
    state       text        NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'running', 'succeeded', 'failed')),
    step        text        NOT NULL DEFAULT 'queued',
    source      text        NOT NULL,
    target      text        NOT NULL,
    progress    jsonb       NOT NULL DEFAULT '{}'::jsonb,
    error       text,
    attempts    int         NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
);
-- At most one unfinished move per tenant.
CREATE UNIQUE INDEX operations_one_active_move ON tenancy.operations (tenant_id)
    WHERE kind = 'move' AND state IN ('pending', 'running');

-- The write fence of a move: installed on the old location's tables in the
-- transaction that flips the placement, it refuses writes of the moving
-- tenant (TG_ARGV[0]) with SQLSTATE TK503, which the api answers with 503
-- unavailable + Retry-After, until every process follows the new placement
-- and the old location is removed. Other tenants' rows pass (one comparison);
-- members of the table owner (the mover's cleanup) pass too.
-- +goose StatementBegin
CREATE FUNCTION tenancy.move_fence() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF ((TG_OP <> 'INSERT' AND OLD.tenant_id = TG_ARGV[0]::uuid) OR (TG_OP <> 'DELETE' AND NEW.tenant_id = TG_ARGV[0]::uuid))
       AND NOT pg_has_role(current_user, (SELECT relowner FROM pg_class WHERE oid = TG_RELID), 'MEMBER') THEN
        RAISE EXCEPTION 'tenant % is moving between isolation tiers: retry shortly', TG_ARGV[0] USING ERRCODE = 'TK503';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END $$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION tenancy.move_fence();
DROP TABLE tenancy.operations;
