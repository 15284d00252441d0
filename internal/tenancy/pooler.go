package tenancy

import (
	"context"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5/pgconn"
)

// BehindPooler reports whether conn reaches Postgres through a protocol-level
// connection pooler such as PgBouncer: a pooler answers the startup with its
// own cancel key, so the backend pid it announces is not the pid of the
// backend that runs the statements.
func BehindPooler(ctx context.Context, conn *pgconn.PgConn) (bool, error) {
	res := conn.ExecParams(ctx, `SELECT pg_backend_pid()`, nil, nil, nil, nil).Read()
	if res.Err != nil {
		return false, res.Err
	}
	if len(res.Rows) != 1 || len(res.Rows[0]) != 1 {
		return false, fmt.Errorf("pg_backend_pid: unexpected result")
	}
	pid, err := strconv.ParseUint(string(res.Rows[0][0]), 10, 32)
	if err != nil {
		return false, err
	}
	return uint32(pid) != conn.PID(), nil
}

// refuseBehindPooler is the owner connections' AfterConnect: migrations and
// provisioning hold a session (a search_path set per schema, transactions
// that must not move between server connections), which a transaction
// pooler would hand to another client between statements; a session pooler
// is indistinguishable from here and refused too.
func refuseBehindPooler(ctx context.Context, conn *pgconn.PgConn) error {
	pooled, err := BehindPooler(ctx, conn)
	if err != nil {
		return fmt.Errorf("check for a connection pooler: %w", err)
	}
	if pooled {
		return fmt.Errorf("MIGRATE_DATABASE_URL reaches Postgres through a connection pooler (PgBouncer?): " +
			"migrations and provisioning need a session of their own; point it at Postgres directly (docs/scaling.md)")
	}
	return nil
}
