package audit

import (
	"bytes"
	"context"
	"encoding/json"

	"github.com/your-org/tenantkit/internal/tenancy"
)

// Hook returns the registry write hook of one admin request: it records the
// request's intent (create, update, delete, import, ...) in the transaction
// of the registry write that completes it. A lifecycle runs several writes
// for one request (create: insert as provisioning, then activate; delete:
// suspend, destroy, remove), so the hook maps each write to the event it
// stands for, or to none:
//
//   - provisioning -> active records the intent (tenant.create or tenant.import);
//   - the suspension that precedes a deletion and the removal of a tenant
//     whose provisioning failed record nothing;
//   - other updates record tenant.suspend, tenant.reactivate or tenant.update.
func Hook(intent Action) tenancy.WriteHook {
	return func(ctx context.Context, tx tenancy.Execer, c tenancy.Change) error {
		action, diff := classify(intent, c)
		if action == "" {
			return nil
		}
		return Record(ctx, tx, ActorFrom(ctx), c.TenantID, action, diff)
	}
}

func classify(intent Action, c tenancy.Change) (Action, map[string]any) {
	switch c.Op {
	case tenancy.ChangeCreate:
		if c.After != nil && c.After.Status == tenancy.StatusActive {
			return intent, stateDiff(nil, c.After)
		}
		return "", nil // recorded when it becomes active
	case tenancy.ChangeUpdate:
		if c.Before == nil || c.After == nil {
			return "", nil
		}
		if c.Before.Status == tenancy.StatusProvisioning && c.After.Status == tenancy.StatusActive {
			return intent, stateDiff(nil, c.After)
		}
		if intent == Delete {
			return "", nil // the suspension before a deletion
		}
		action := Update
		switch {
		case c.Before.Status == tenancy.StatusActive && c.After.Status == tenancy.StatusSuspended:
			action = Suspend
		case c.Before.Status == tenancy.StatusSuspended && c.After.Status == tenancy.StatusActive:
			action = Reactivate
		}
		return action, stateDiff(c.Before, c.After)
	case tenancy.ChangeDelete:
		if intent != Delete {
			return "", nil // cleanup of a failed create or import
		}
		return Delete, stateDiff(c.Before, nil)
	case tenancy.ChangeKeyCreate, tenancy.ChangeKeyRevoke:
		action := KeyCreate
		if c.Op == tenancy.ChangeKeyRevoke {
			action = KeyRevoke
		}
		// Name and id only: the key, its hash and even its prefix stay out.
		return action, map[string]any{"api_key": map[string]any{"id": c.Key.ID, "name": c.Key.Name}}
	}
	return "", nil
}

// change is one field's old and new value; a missing side is omitted.
type change struct {
	From any `json:"from,omitempty"`
	To   any `json:"to,omitempty"`
}

// stateDiff lists the fields that differ between before and after (either
// may be nil: a creation or a deletion lists every field).
func stateDiff(before, after *tenancy.Tenant) map[string]any {
	fields := func(t *tenancy.Tenant) map[string]any {
		if t == nil {
			return map[string]any{}
		}
		return map[string]any{"identifier": t.Identifier, "name": t.Name, "status": t.Status,
			"tier": t.Tier, "isolation": t.Isolation, "metadata": json.RawMessage(t.Metadata)}
	}
	b, a := fields(before), fields(after)
	out := map[string]any{}
	for _, k := range []string{"identifier", "name", "status", "tier", "isolation", "metadata"} {
		if same(b[k], a[k]) {
			continue
		}
		out[k] = change{From: b[k], To: a[k]}
	}
	return out
}

func same(x, y any) bool {
	bx, _ := json.Marshal(x)
	by, _ := json.Marshal(y)
	if rx, ok := x.(json.RawMessage); ok {
		bx = compact(rx)
	}
	if ry, ok := y.(json.RawMessage); ok {
		by = compact(ry)
	}
	return bytes.Equal(bx, by)
}

func compact(m json.RawMessage) []byte {
	var buf bytes.Buffer
	if json.Compact(&buf, m) != nil {
		return m
	}
	return buf.Bytes()
}
