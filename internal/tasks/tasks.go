// Package tasks runs background work on asynq inside exactly one tenant's
// isolation. Request code calls Client.Enqueue(ctx, task): the tenant bound
// to ctx travels with the task. The worker's Middleware loads that tenant,
// refuses the task when it is missing, unknown or suspended, and binds it to
// the handler's context exactly as the HTTP middleware does, so handlers
// reach tenant data through tenancy.DBFor like any request.
package tasks

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"

	"github.com/your-org/tenantkit/internal/tenancy"
)

// Task types. A tenant task's type is also its metrics label: keep the set small.
const (
	TypeReportGenerate = "report:generate"
	TypeReportCleanup  = "report:cleanup"
	// TypeFanOut is a system task (no tenant): it enqueues one tenant task per
	// active tenant.
	TypeFanOut = "system:fanout"
)

// HeaderTenantID is the asynq task header carrying the tenant id.
const HeaderTenantID = "tenant_id"

// Task is a tenant task to enqueue: a type, a payload encoded as JSON, and
// default options that Enqueue's own options override.
type Task struct {
	Type    string
	Payload any
	Options []Option
}

// envelope is the payload as stored in Redis. The tenant is in it (and not
// only in the header) because asynq derives uniqueness from type, queue and
// payload: two tenants' identical tasks must never be taken for duplicates.
type envelope struct {
	TenantID uuid.UUID       `json:"tenant_id"`
	Data     json.RawMessage `json:"data"`
}

func encode(tenantID uuid.UUID, payload any) ([]byte, error) {
	data, err := json.Marshal(payload)
	if err != nil {
		return nil, err
	}
	return json.Marshal(envelope{TenantID: tenantID, Data: data})
}

// Decode reads the payload of t into v. In a tenant task it also checks that
// the payload was written for the tenant bound to ctx. A payload that cannot
// be decoded never will be: the error skips retries.
func Decode(ctx context.Context, t *asynq.Task, v any) error {
	// One pass: the data is decoded straight into v.
	env := struct {
		TenantID uuid.UUID `json:"tenant_id"`
		Data     any       `json:"data"`
	}{Data: v}
	if err := json.Unmarshal(t.Payload(), &env); err != nil {
		return fmt.Errorf("decode %s payload: %v: %w", t.Type(), err, asynq.SkipRetry)
	}
	if tn, ok := tenancy.FromContext(ctx); ok && env.TenantID != tn.ID {
		return fmt.Errorf("task refused: payload is for tenant %s, header for %s: %w", env.TenantID, tn.ID, asynq.SkipRetry)
	}
	return nil
}

// Handler adapts a plain function of a decoded payload to asynq: the
// function runs with the task's tenant bound to ctx.
func Handler[P any](fn func(ctx context.Context, p P) error) asynq.Handler {
	return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		var p P
		if err := Decode(ctx, t, &p); err != nil {
			return err
		}
		return fn(ctx, p)
	})
}
