package models_test

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/your-org/tenantkit/internal/apperr"
	"github.com/your-org/tenantkit/internal/models"
	"github.com/your-org/tenantkit/internal/page"
	"github.com/your-org/tenantkit/internal/tenancy"
	"github.com/your-org/tenantkit/internal/testenv"
)

func projectStore(t *testing.T, d *testenv.DB) models.Projects {
	t.Helper()
	g, err := tenancy.OpenGORM(d.App, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return models.Projects{DB: g}
}

func wantCode(t *testing.T, what string, err error, code apperr.Code) {
	t.Helper()
	if e, ok := apperr.As(err); !ok || e.Code != code {
		t.Errorf("%s: %v, want %s", what, err, code)
	}
}

func TestProjects_StoreRefusesContextWithoutTenant(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	s := projectStore(t, d)
	ctx := context.Background()
	name := "x"
	wantCode(t, "create", s.Create(ctx, &models.Project{Name: "orphan"}), apperr.Internal)
	_, err := s.Get(ctx, uuid.New())
	wantCode(t, "get", err, apperr.Internal)
	_, _, err = s.List(ctx, 10, nil)
	wantCode(t, "list", err, apperr.Internal)
	_, err = s.Update(ctx, uuid.New(), models.ProjectPatch{Name: &name})
	wantCode(t, "update", err, apperr.Internal)
	wantCode(t, "delete", s.Delete(ctx, uuid.New()), apperr.Internal)
	_, err = s.Count(ctx)
	wantCode(t, "count", err, apperr.Internal)
	var n int
	if err := d.Owner.QueryRow(`SELECT count(*) FROM public.projects`).Scan(&n); err != nil || n != 0 {
		t.Errorf("rows written without a tenant: %d %v", n, err)
	}
}

func TestProjects_StoreKeepsTenantsApart(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	s := projectStore(t, d)
	tenants := []*tenancy.Tenant{
		d.Tenant(t, "store-p1", tenancy.TierPremium), d.Tenant(t, "store-p2", tenancy.TierPremium),
		d.Tenant(t, "store-s1", tenancy.TierStandard), d.Tenant(t, "store-s2", tenancy.TierStandard),
	}
	own := map[uuid.UUID]*models.Project{}
	for i, tn := range tenants {
		ctx := tenancy.WithTenant(context.Background(), tn)
		for j := 0; j <= i; j++ {
			p := &models.Project{Name: tn.Identifier, Description: "d"}
			if err := s.Create(ctx, p); err != nil {
				t.Fatal(err)
			}
			if p.ID == uuid.Nil || p.TenantID != tn.ID || p.CreatedAt.IsZero() {
				t.Errorf("create filled %+v", p)
			}
			own[tn.ID] = p
		}
	}
	for i, tn := range tenants {
		ctx := tenancy.WithTenant(context.Background(), tn)
		if n, err := s.Count(ctx); err != nil || n != int64(i+1) {
			t.Errorf("%s count %d %v, want %d", tn.Identifier, n, err, i+1)
		}
		items, next, err := s.List(ctx, 100, nil)
		if err != nil || len(items) != i+1 || next != nil {
			t.Errorf("%s list %d items %v", tn.Identifier, len(items), err)
		}
		for _, p := range items {
			if p.Name != tn.Identifier || p.TenantID != tn.ID {
				t.Errorf("%s listed %+v", tn.Identifier, p)
			}
		}
		for _, other := range tenants {
			if other == tn {
				continue
			}
			victim := own[other.ID]
			name := "stolen"
			_, err := s.Get(ctx, victim.ID)
			wantCode(t, "get other's", err, apperr.NotFound)
			_, err = s.Update(ctx, victim.ID, models.ProjectPatch{Name: &name})
			wantCode(t, "update other's", err, apperr.NotFound)
			wantCode(t, "delete other's", s.Delete(ctx, victim.ID), apperr.NotFound)
		}
	}
	for _, tn := range tenants {
		ctx := tenancy.WithTenant(context.Background(), tn)
		got, err := s.Get(ctx, own[tn.ID].ID)
		if err != nil || got.Name != tn.Identifier || !got.UpdatedAt.Equal(own[tn.ID].UpdatedAt) {
			t.Errorf("%s: own project after others' attempts: %+v %v", tn.Identifier, got, err)
		}
		name := "renamed"
		upd, err := s.Update(ctx, got.ID, models.ProjectPatch{Name: &name})
		if err != nil || upd.Name != "renamed" || upd.Description != "d" || upd.TenantID != tn.ID {
			t.Errorf("%s: own update %+v %v", tn.Identifier, upd, err)
		}
		if err := s.Delete(ctx, got.ID); err != nil {
			t.Errorf("%s: own delete %v", tn.Identifier, err)
		}
		wantCode(t, "delete twice", s.Delete(ctx, got.ID), apperr.NotFound)
	}
}

// Rows created in the same microsecond are ordered by id, and keyset paging
// over such ties returns every row exactly once.
func TestProjects_ListPagesThroughEqualTimestamps(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	s := projectStore(t, d)
	for _, tier := range []tenancy.Tier{tenancy.TierPremium, tenancy.TierStandard} {
		tn := d.Tenant(t, "ties-"+string(tier), tier)
		ctx := tenancy.WithTenant(context.Background(), tn)
		at := time.Date(2025, 1, 2, 3, 4, 5, 123456000, time.UTC)
		var want []uuid.UUID
		for i := 0; i < 7; i++ {
			ts := at
			if i >= 4 {
				ts = at.Add(time.Microsecond) // newer group
			}
			id := uuid.New()
			if _, err := d.App.ExecContext(ctx, `INSERT INTO projects (id, tenant_id, name, created_at, updated_at) VALUES ($1, $2, 'tie', $3, $3)`, id, tn.ID, ts); err != nil {
				t.Fatal(err)
			}
			want = append(want, id)
		}
		// Newest first: the newer group, then the older one, each by id descending.
		cmp := func(a, b uuid.UUID) int { return -slices.Compare(a[:], b[:]) }
		slices.SortFunc(want[:4], cmp)
		slices.SortFunc(want[4:], cmp)
		want = append(want[4:], want[:4]...)
		for _, limit := range []int{1, 2, 3, 7} {
			var got []uuid.UUID
			var after *page.Cursor
			for pages := 0; pages < 10; pages++ {
				items, next, err := s.List(ctx, limit, after)
				if err != nil {
					t.Fatal(err)
				}
				for _, p := range items {
					got = append(got, p.ID)
				}
				if next == nil {
					break
				}
				if after, err = page.Decode(*next); err != nil {
					t.Fatal(err)
				}
			}
			if !slices.Equal(got, want) {
				t.Errorf("%s limit %d: %v, want %v", tier, limit, got, want)
			}
		}
	}
}
