package tenancy

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// MigrationLockKey is the advisory lock every migrate writer (up, down,
// tenant) holds for its whole run. Advisory locks are per database, so runs
// against different databases never wait for each other.
const MigrationLockKey int64 = 0x746b6d6967726174 // "tkmigrat"

// ErrMigrationLocked means another migrate run holds the migration lock.
var ErrMigrationLocked = errors.New("another migrate run holds the migration lock")

// LockOptions says how long to wait for a running migrate to finish.
type LockOptions struct {
	Wait   time.Duration       // 0: do not wait, fail with ErrMigrationLocked
	OnWait func(holder string) // told once, before waiting, who holds the lock
}

// lockMigrations takes the migration lock and returns its release. The lock
// is transaction-scoped (pg_advisory_xact_lock in a transaction kept open for
// the run): behind PgBouncer in transaction mode that transaction pins one
// server connection, so the lock cannot leak to another client the way a
// session lock would, and a crashed run releases it when its connection dies.
func lockMigrations(ctx context.Context, db *sql.DB, o LockOptions) (release func(), err error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("migration lock: %w", err)
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("migration lock: %w", err)
	}
	unlock := func() { _ = tx.Rollback(); _ = conn.Close() }
	defer func() {
		if err != nil {
			unlock()
		}
	}()
	// The transaction idles while the run works on other connections.
	if _, err = tx.ExecContext(ctx, `SELECT set_config('idle_in_transaction_session_timeout', '0', true)`); err != nil {
		return nil, fmt.Errorf("migration lock: %w", err)
	}
	var got bool
	if err = tx.QueryRowContext(ctx, `SELECT pg_try_advisory_xact_lock($1)`, MigrationLockKey).Scan(&got); err != nil {
		return nil, fmt.Errorf("migration lock: %w", err)
	}
	if got {
		// The extended-protocol query above leaves its portal, and with it a
		// snapshot (xmin), open until the next statement: CREATE INDEX
		// CONCURRENTLY in a NO TRANSACTION migration would wait for this
		// transaction forever. A simple-protocol statement closes it.
		if _, err = tx.ExecContext(ctx, `SELECT 1`); err != nil {
			return nil, fmt.Errorf("migration lock: %w", err)
		}
		return unlock, nil
	}
	holder := lockHolder(ctx, db)
	if o.Wait <= 0 {
		return nil, fmt.Errorf("%w (%s); it is still running, try again when it has finished", ErrMigrationLocked, holder)
	}
	if o.OnWait != nil {
		o.OnWait(holder)
	}
	if _, err = tx.ExecContext(ctx, `SELECT set_config('lock_timeout', $1, true)`,
		fmt.Sprintf("%dms", o.Wait.Milliseconds())); err != nil {
		return nil, fmt.Errorf("migration lock: %w", err)
	}
	if _, err = tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, MigrationLockKey); err != nil {
		if pgCode(err) == "55P03" { // lock_not_available: lock_timeout expired
			return nil, fmt.Errorf("%w (%s); gave up after waiting %s", ErrMigrationLocked, holder, o.Wait)
		}
		return nil, fmt.Errorf("migration lock: %w", err)
	}
	if _, err = tx.ExecContext(ctx, `SELECT set_config('lock_timeout', '0', true)`); err != nil {
		return nil, fmt.Errorf("migration lock: %w", err)
	}
	return unlock, nil
}

// lockHolder describes the backend holding the lock, for the operator.
func lockHolder(ctx context.Context, db *sql.DB) string {
	var (
		pid     int
		app     sql.NullString
		client  sql.NullString
		started sql.NullTime
	)
	err := db.QueryRowContext(ctx, `SELECT a.pid, a.application_name, host(a.client_addr), a.xact_start
		FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
		WHERE l.locktype = 'advisory' AND l.granted
		  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
		  AND l.classid = $1 AND l.objid = $2 AND l.objsubid = 1
		LIMIT 1`, uint32(MigrationLockKey>>32), uint32(MigrationLockKey&0xffffffff)).Scan(&pid, &app, &client, &started)
	if err != nil {
		return "holder unknown"
	}
	s := fmt.Sprintf("backend pid %d", pid)
	if app.String != "" {
		s += ", application " + app.String
	}
	if client.String != "" {
		s += ", from " + client.String
	}
	if started.Valid {
		s += ", since " + started.Time.UTC().Format(time.RFC3339)
	}
	return s
}
