// Package tenantmove moves a tenant's rows online between isolation tiers
// (rls <-> schema) in one Postgres cluster, as a background operation run by
// the worker: bulk copy while the tenant keeps working, then one short
// transaction that fences the old location against the tenant's writes,
// copies what changed, verifies every table (count and checksum) and flips
// the registry placement; caches follow through the usual invalidation, and
// the old location is removed after a grace period. Every step is
// idempotent and decided from the registry, so a killed worker's rerun
// completes the move (docs/operations.md, "Online moves").
package tenantmove

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/your-org/tenantkit/internal/apperr"
	"github.com/your-org/tenantkit/internal/audit"
	"github.com/your-org/tenantkit/internal/tenancy"
)

// State of an operation.
type State string

const (
	Pending   State = "pending"
	Running   State = "running"
	Succeeded State = "succeeded"
	Failed    State = "failed"
)

// Steps of a move, in order.
const (
	StepQueued    = "queued"
	StepCopying   = "copying"
	StepSwitching = "switching"
	StepSwitched  = "switched" // the registry names the target; the source awaits removal
	StepCleaning  = "cleaning"
	StepDone      = "done"
)

// Operation is a background operation on a tenant.
type Operation struct {
	ID         uuid.UUID         `json:"id"`
	Kind       string            `json:"kind"`
	TenantID   uuid.UUID         `json:"tenant_id"`
	State      State             `json:"state"`
	Step       string            `json:"step"`
	Source     tenancy.Isolation `json:"source"`
	Target     tenancy.Isolation `json:"target"`
	Progress   Progress          `json:"progress"`
	Error      *string           `json:"error"`
	Attempts   int               `json:"attempts"`
	CreatedAt  time.Time         `json:"created_at"`
	UpdatedAt  time.Time         `json:"updated_at"`
	FinishedAt *time.Time        `json:"finished_at"`
}

// Progress is what a move has done so far.
type Progress struct {
	Tables       map[string]*TableProgress `json:"tables"`
	RowsCopied   int64                     `json:"rows_copied"`
	CopySeconds  float64                   `json:"copy_seconds,omitempty"`
	RowsPerSec   float64                   `json:"rows_per_second,omitempty"`
	WritePauseMS float64                   `json:"write_pause_ms,omitempty"`
}

// TableProgress is one table's share.
type TableProgress struct {
	Rows     int64 `json:"rows"`     // in the source when the copy started
	Copied   int64 `json:"copied"`   // by the bulk copy
	Changed  int64 `json:"changed"`  // rows the switch re-copied or removed
	Verified bool  `json:"verified"` // count and checksum equal at the switch
}

const operationColumns = `id, kind, tenant_id, state, step, source, target, progress, error, attempts, created_at, updated_at, finished_at`

type queryRower interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func getOperation(ctx context.Context, q queryRower, id uuid.UUID, lock bool) (*Operation, error) {
	query := `SELECT ` + operationColumns + ` FROM tenancy.operations WHERE id = $1`
	if lock {
		query += ` FOR UPDATE`
	}
	var (
		op   Operation
		prog []byte
	)
	err := q.QueryRowContext(ctx, query, id).Scan(&op.ID, &op.Kind, &op.TenantID, &op.State, &op.Step, &op.Source, &op.Target,
		&prog, &op.Error, &op.Attempts, &op.CreatedAt, &op.UpdatedAt, &op.FinishedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, apperr.New(apperr.NotFound, "operation not found")
	}
	if err != nil {
		return nil, fmt.Errorf("get operation %s: %w", id, err)
	}
	if err := json.Unmarshal(prog, &op.Progress); err != nil {
		return nil, fmt.Errorf("operation %s: progress: %w", id, err)
	}
	if op.Progress.Tables == nil {
		op.Progress.Tables = map[string]*TableProgress{}
	}
	return &op, nil
}

// Enqueuer hands an operation to the worker.
type Enqueuer interface {
	EnqueueMove(ctx context.Context, opID uuid.UUID) error
}

// Service is the api's side: it records move requests and reads operations.
type Service struct {
	DB    *sql.DB // app role
	Queue Enqueuer
}

// Get returns the operation or not_found.
func (s *Service) Get(ctx context.Context, id uuid.UUID) (*Operation, error) {
	return getOperation(ctx, s.DB, id, false)
}

// RequestMove records a move of t to target (and its audit event, in one
// transaction) and enqueues it. A tenant already there, or already moving,
// is a conflict.
func (s *Service) RequestMove(ctx context.Context, t *tenancy.Tenant, target tenancy.Isolation) (*Operation, error) {
	if target != tenancy.IsolationRLS && target != tenancy.IsolationSchema {
		return nil, apperr.Invalid(apperr.FieldError{Field: "isolation", Message: "must be rls or schema (moves into database isolation are not available yet)"})
	}
	if t.Isolation == target {
		return nil, apperr.New(apperr.Conflict, "tenant %s is already in %s isolation", t.ID, target)
	}
	// The mover copies within the control plane's cluster only: moving a
	// tenant of another cell, or out of its own database, is not built yet.
	if t.CellOf() != tenancy.DefaultCell || t.Isolation == tenancy.IsolationDatabase {
		return nil, apperr.Invalid(apperr.FieldError{Field: "isolation", Message: "online moves are available only for rls and schema tenants on the default cell"})
	}
	if t.Status == tenancy.StatusProvisioning {
		return nil, apperr.New(apperr.Conflict, "tenant %s is still provisioning", t.ID)
	}
	tx, err := s.DB.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("request move of %s: %w", t.ID, err)
	}
	defer tx.Rollback()
	var id uuid.UUID
	err = tx.QueryRowContext(ctx, `INSERT INTO tenancy.operations (kind, tenant_id, source, target)
		VALUES ('move', $1, $2, $3) RETURNING id`, t.ID, t.Isolation, target).Scan(&id)
	if pgCode(err) == "23505" {
		return nil, apperr.New(apperr.Conflict, "tenant %s is already moving: see its pending operation", t.ID)
	}
	if err != nil {
		return nil, fmt.Errorf("request move of %s: %w", t.ID, err)
	}
	if err := audit.Record(ctx, tx, audit.ActorFrom(ctx), t.ID, audit.MoveStart,
		map[string]any{"operation_id": id, "isolation": map[string]any{"from": t.Isolation, "to": target}}); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("request move of %s: %w", t.ID, err)
	}
	if err := s.Queue.EnqueueMove(ctx, id); err != nil {
		msg := "enqueue failed: " + err.Error()
		_, _ = s.DB.ExecContext(context.WithoutCancel(ctx), `UPDATE tenancy.operations SET state = 'failed', error = $2,
			finished_at = now(), updated_at = now() WHERE id = $1`, id, msg)
		return nil, fmt.Errorf("enqueue move %s: %w", id, err)
	}
	return s.Get(ctx, id)
}
