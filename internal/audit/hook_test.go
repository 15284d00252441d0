package audit_test

import (
	"context"
	"errors"
	"testing"

	"github.com/your-org/tenantkit/internal/audit"
	"github.com/your-org/tenantkit/internal/tenancy"
	"github.com/your-org/tenantkit/internal/testenv"
)

// The audit event is written in the transaction of the change: when it
// cannot be written, the change does not happen either.
func TestHook_FailedAuditWriteRollsBackTheChange(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	tn := d.Tenant(t, "rolled-back", tenancy.TierStandard)
	store := &tenancy.PGStore{DB: d.App}
	boom := errors.New("audit unavailable")
	ctx := tenancy.WithWriteHook(context.Background(), func(context.Context, tenancy.Execer, tenancy.Change) error { return boom })
	name := "Changed"
	if _, err := store.Update(ctx, tn.ID, tenancy.TenantUpdate{Name: &name}); !errors.Is(err, boom) {
		t.Fatalf("update: %v, want the hook's error", err)
	}
	if _, _, err := store.CreateAPIKey(ctx, tn.ID, "k"); !errors.Is(err, boom) {
		t.Fatalf("create key: %v, want the hook's error", err)
	}
	if err := store.Delete(ctx, tn.ID); !errors.Is(err, boom) {
		t.Fatalf("delete: %v, want the hook's error", err)
	}
	got, err := store.TenantByID(context.Background(), tn.ID)
	if err != nil || got.Name != tn.Name {
		t.Fatalf("tenant after failed writes: %+v %v, want unchanged", got, err)
	}
	var keys int
	if err := d.Owner.QueryRow(`SELECT count(*) FROM tenancy.api_keys WHERE tenant_id = $1`, tn.ID).Scan(&keys); err != nil || keys != 0 {
		t.Fatalf("api keys: %d %v, want none", keys, err)
	}
}

// A write through the store with the audit hook commits exactly one event
// with the actor of the context.
func TestHook_RecordsInTheSameTransaction(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	tn := d.Tenant(t, "recorded", tenancy.TierStandard)
	store := &tenancy.PGStore{DB: d.App}
	ctx := audit.WithActor(context.Background(), audit.Actor{Name: "ops", Credential: "token:x"})
	ctx = tenancy.WithWriteHook(ctx, audit.Hook(audit.Update))
	suspended := tenancy.StatusSuspended
	if _, err := store.Update(ctx, tn.ID, tenancy.TenantUpdate{Status: &suspended}); err != nil {
		t.Fatal(err)
	}
	items, _, err := (&audit.Trail{DB: d.App}).List(context.Background(), audit.Filter{TenantID: tn.ID}, 10, nil)
	if err != nil || len(items) != 1 || items[0].Action != audit.Suspend || items[0].Actor != "ops" {
		t.Fatalf("events %+v %v, want one tenant.suspend by ops", items, err)
	}
}
