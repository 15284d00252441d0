package tenancy

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/google/uuid"
)

// ChangeOp names a write to the registry.
type ChangeOp string

const (
	ChangeCreate    ChangeOp = "create"
	ChangeUpdate    ChangeOp = "update"
	ChangeDelete    ChangeOp = "delete"
	ChangeKeyCreate ChangeOp = "key_create"
	ChangeKeyRevoke ChangeOp = "key_revoke"
)

// Change is one committed-to-be write to the registry as a WriteHook sees it:
// the tenant row before and after (nil when absent) or the API key (never
// its secret or hash).
type Change struct {
	Op       ChangeOp
	TenantID uuid.UUID
	Before   *Tenant
	After    *Tenant
	Key      *APIKey
}

// Execer is what a WriteHook may run its statements on: the transaction of
// the registry write.
type Execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// WriteHook runs inside the transaction of a registry write, so what it
// writes (the audit trail) commits or rolls back with the change itself.
// An error rolls the change back.
type WriteHook func(ctx context.Context, tx Execer, c Change) error

type writeHookKey struct{}

// WithWriteHook returns ctx whose registry writes through PGStore run in a
// transaction together with h. The admin API attaches its audit recorder so.
func WithWriteHook(ctx context.Context, h WriteHook) context.Context {
	return context.WithValue(ctx, writeHookKey{}, h)
}

func writeHookFrom(ctx context.Context) WriteHook {
	h, _ := ctx.Value(writeHookKey{}).(WriteHook)
	return h
}

// querier is a pool or a transaction.
type querier interface {
	Execer
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// write runs fn on the pool, or, when ctx carries a WriteHook, in a
// transaction that also runs the hook on the change fn reports. hooked tells
// fn to read what the hook needs (the row before the change, locked).
func (s *PGStore) write(ctx context.Context, what string, fn func(q querier, hooked bool) (Change, error)) error {
	hook := writeHookFrom(ctx)
	if hook == nil {
		_, err := fn(s.DB, false)
		return err
	}
	tx, err := s.DB.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%s: begin: %w", what, err)
	}
	defer tx.Rollback()
	c, err := fn(tx, true)
	if err != nil {
		return err
	}
	if err := hook(ctx, tx, c); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("%s: commit: %w", what, err)
	}
	return nil
}
