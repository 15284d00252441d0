package models_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/your-org/tenantkit/internal/models"
	"github.com/your-org/tenantkit/internal/tenancy"
	"github.com/your-org/tenantkit/internal/testenv"
)

// sqlLog records the SQL GORM runs.
type sqlLog struct {
	logger.Interface
	mu    sync.Mutex
	stmts []string
}

func (l *sqlLog) Trace(_ context.Context, _ time.Time, fc func() (string, int64), _ error) {
	sql, _ := fc()
	l.mu.Lock()
	l.stmts = append(l.stmts, sql)
	l.mu.Unlock()
}

// The Store's reads name the model's columns, never SELECT *, whether its
// handle names them itself (tenancy.OpenGORM's QueryFields) or is plain
// GORM: a column added by a migration must not change what a running binary
// reads (invariant 13).
func TestStore_ReadsNameTheModelsColumns(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	tn := d.Tenant(t, "cols-std", tenancy.TierStandard)
	ctx := tenancy.WithTenant(context.Background(), tn)
	kit, err := tenancy.OpenGORM(d.App, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := gorm.Open(postgres.New(postgres.Config{Conn: d.App}), &gorm.Config{SkipDefaultTransaction: true, Logger: logger.Discard})
	if err != nil {
		t.Fatal(err)
	}
	p := &models.Project{Name: "cols"}
	if err := (models.Projects{DB: kit}).Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	for name, db := range map[string]*gorm.DB{"kit": kit, "plain": plain} {
		rec := &sqlLog{Interface: logger.Discard}
		s := models.Projects{DB: db.Session(&gorm.Session{Logger: rec})}
		if got, err := s.Get(ctx, p.ID); err != nil || got.Name != "cols" {
			t.Fatalf("%s: get %+v %v", name, got, err)
		}
		if items, _, err := s.List(ctx, 10, nil); err != nil || len(items) != 1 {
			t.Fatalf("%s: list %d %v", name, len(items), err)
		}
		if len(rec.stmts) != 2 {
			t.Fatalf("%s: recorded %q", name, rec.stmts)
		}
		for _, q := range rec.stmts {
			if strings.Contains(q, "*") || !strings.Contains(q, `"description"`) {
				t.Errorf("%s: %s does not name the columns", name, q)
			}
		}
	}
}
