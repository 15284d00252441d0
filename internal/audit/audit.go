// Package audit is the append-only trail of admin actions and tenant
// lifecycle events in the control plane (table tenancy.audit_events): who did
// what to which tenant, when, and what changed. It never records API key
// material (neither the key nor its hash).
package audit

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/your-org/tenantkit/internal/page"
	"github.com/your-org/tenantkit/internal/tenancy"
)

// Action names what happened.
type Action string

const (
	Create       Action = "tenant.create"
	Update       Action = "tenant.update"
	Suspend      Action = "tenant.suspend"
	Reactivate   Action = "tenant.reactivate"
	Delete       Action = "tenant.delete"
	KeyCreate    Action = "api_key.create"
	KeyRevoke    Action = "api_key.revoke"
	Export       Action = "tenant.export"
	Import       Action = "tenant.import"
	MoveStart    Action = "tenant.move_requested"
	MoveComplete Action = "tenant.moved"
	MoveFail     Action = "tenant.move_failed"
)

// Actions lists every action, for validating filters.
var Actions = []Action{Create, Update, Suspend, Reactivate, Delete, KeyCreate, KeyRevoke,
	Export, Import, MoveStart, MoveComplete, MoveFail}

// Valid reports whether a is a known action.
func (a Action) Valid() bool {
	for _, k := range Actions {
		if a == k {
			return true
		}
	}
	return false
}

// Event is one entry of the trail.
type Event struct {
	ID        uuid.UUID `json:"id"`
	CreatedAt time.Time `json:"created_at"`
	// Actor is who acted: the admin actor header's value when configured and
	// sent, else the admin token's fingerprint, or "system" for the worker.
	Actor string `json:"actor"`
	// Credential is the fingerprint of the credential used (never the token).
	Credential string          `json:"credential"`
	TenantID   *uuid.UUID      `json:"tenant_id"`
	Action     Action          `json:"action"`
	Diff       json.RawMessage `json:"diff"`
	RequestID  string          `json:"request_id,omitempty"`
}

// Actor is who acts, carried in the context of an admin request.
type Actor struct {
	Name       string
	Credential string
	RequestID  string
}

// System is the actor of events nobody requested directly (the worker).
var System = Actor{Name: "system"}

type actorKey struct{}

// WithActor returns ctx carrying the actor.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// ActorFrom returns the actor of ctx, System when none.
func ActorFrom(ctx context.Context) Actor {
	if a, ok := ctx.Value(actorKey{}).(Actor); ok {
		return a
	}
	return System
}

// Record inserts one event on q: a transaction, to commit it together with
// the change it describes, or the pool.
func Record(ctx context.Context, q tenancy.Execer, actor Actor, tenantID uuid.UUID, action Action, diff any) error {
	b, err := json.Marshal(diff)
	if err != nil {
		return fmt.Errorf("audit %s: encode diff: %w", action, err)
	}
	if diff == nil || string(b) == "null" {
		b = []byte(`{}`)
	}
	var tid *uuid.UUID
	if tenantID != uuid.Nil {
		tid = &tenantID
	}
	if _, err := q.ExecContext(ctx, `INSERT INTO tenancy.audit_events (actor, credential, tenant_id, action, diff, request_id)
		VALUES ($1, $2, $3, $4, $5, $6)`, actor.Name, actor.Credential, tid, string(action), b, actor.RequestID); err != nil {
		return fmt.Errorf("audit %s: %w", action, err)
	}
	return nil
}

// Filter selects events for List.
type Filter struct {
	TenantID uuid.UUID // zero: every tenant
	Action   Action    // empty: every action
}

// Trail reads the trail.
type Trail struct {
	DB *sql.DB
}

// List returns one newest-first page of events matching f.
func (t *Trail) List(ctx context.Context, f Filter, limit int, after *page.Cursor) ([]Event, *string, error) {
	var (
		where []string
		args  []any
	)
	if f.TenantID != uuid.Nil {
		args = append(args, f.TenantID)
		where = append(where, fmt.Sprintf("tenant_id = $%d", len(args)))
	}
	if f.Action != "" {
		args = append(args, string(f.Action))
		where = append(where, fmt.Sprintf("action = $%d", len(args)))
	}
	if after != nil {
		args = append(args, after.CreatedAt, after.ID)
		where = append(where, fmt.Sprintf("(created_at, id) < ($%d, $%d)", len(args)-1, len(args)))
	}
	args = append(args, limit+1)
	q := `SELECT id, created_at, actor, credential, tenant_id, action, diff, request_id FROM tenancy.audit_events`
	for i, w := range where {
		if i == 0 {
			q += " WHERE " + w
		} else {
			q += " AND " + w
		}
	}
	q += fmt.Sprintf(" ORDER BY created_at DESC, id DESC LIMIT $%d", len(args))
	rows, err := t.DB.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, nil, fmt.Errorf("list audit events: %w", err)
	}
	defer rows.Close()
	out := []Event{}
	for rows.Next() {
		var (
			e    Event
			tid  uuid.NullUUID
			diff []byte
		)
		if err := rows.Scan(&e.ID, &e.CreatedAt, &e.Actor, &e.Credential, &tid, &e.Action, &diff, &e.RequestID); err != nil {
			return nil, nil, fmt.Errorf("list audit events: %w", err)
		}
		if tid.Valid {
			e.TenantID = &tid.UUID
		}
		e.Diff = diff
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("list audit events: %w", err)
	}
	items, next := page.Next(out, limit, func(e Event) page.Cursor { return page.Cursor{CreatedAt: e.CreatedAt, ID: e.ID} })
	return items, next, nil
}
