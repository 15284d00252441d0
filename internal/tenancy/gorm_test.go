package tenancy_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"

	"github.com/your-org/tenantkit/internal/models"
	"github.com/your-org/tenantkit/internal/tenancy"
	"github.com/your-org/tenantkit/internal/testenv"
)

func openGORM(t *testing.T, d *testenv.DB) *gorm.DB {
	t.Helper()
	g, err := tenancy.OpenGORM(d.App, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func bound(t *testing.T, g *gorm.DB, tn *tenancy.Tenant) *gorm.DB {
	t.Helper()
	db, err := tenancy.DBFor(tenancy.WithTenant(context.Background(), tn), g)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// ownerCount counts a tenant's projects where its tier keeps them, as the owner.
func ownerCount(t *testing.T, d *testenv.DB, tn *tenancy.Tenant) int {
	t.Helper()
	var n int
	q := `SELECT count(*) FROM ` + tenancy.QuoteIdent(tn.Schema()) + `.projects WHERE tenant_id = $1`
	if err := d.Owner.QueryRowContext(context.Background(), q, tn.ID).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestGORM_DBForRefusesContextWithoutTenant(t *testing.T) {
	t.Parallel()
	g := openGORM(t, testenv.Postgres(t))
	if _, err := tenancy.DBFor(context.Background(), g); err == nil {
		t.Fatal("DBFor without a tenant returned a db")
	}
}

// Invariant 1 at the ORM: a statement on a tenant model with no tenant bound
// is an error, never an empty or unfiltered result.
func TestGORM_TenantModelWithoutTenantIsAnError(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	g := openGORM(t, d)
	for _, tier := range []tenancy.Tier{tenancy.TierPremium, tenancy.TierStandard} {
		tn := d.Tenant(t, "nobind-"+string(tier), tier)
		if err := bound(t, g, tn).Create(&models.Project{ID: uuid.New(), Name: "x"}).Error; err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	unbound := g.WithContext(ctx)
	var rows []models.Project
	var n int64
	p := models.Project{ID: uuid.New(), Name: "orphan"}
	rawRows, rowsErr := unbound.Model(&models.Project{}).Rows()
	if rawRows != nil {
		rawRows.Close()
	}
	for name, err := range map[string]error{
		"find":   unbound.Find(&rows).Error,
		"count":  unbound.Model(&models.Project{}).Count(&n).Error,
		"rows":   rowsErr,
		"create": unbound.Create(&p).Error,
		"update": unbound.Model(&models.Project{}).Where("true").Update("name", "y").Error,
		"delete": unbound.Where("true").Delete(&models.Project{}).Error,
		"report": unbound.Find(&[]models.Report{}).Error,
	} {
		if err == nil {
			t.Errorf("%s on a tenant table without a tenant succeeded", name)
		}
	}
	if len(rows) != 0 || n != 0 {
		t.Errorf("unbound statements returned rows: %d, count %d", len(rows), n)
	}
	var total int
	if err := d.Owner.QueryRow(`SELECT count(*) FROM public.projects WHERE name IN ('orphan', 'y')`).Scan(&total); err != nil || total != 0 {
		t.Errorf("unbound writes reached the table: %d %v", total, err)
	}
}

func TestGORM_CreateStampsTheBoundTenant(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	g := openGORM(t, d)
	for _, tier := range []tenancy.Tier{tenancy.TierPremium, tenancy.TierStandard} {
		a := d.Tenant(t, "stamp-a-"+string(tier), tier)
		b := d.Tenant(t, "stamp-b-"+string(tier), tier)
		one := models.Project{ID: uuid.New(), TenantID: b.ID, Name: "claims b"}
		if err := bound(t, g, a).Create(&one).Error; err != nil {
			t.Fatalf("%s create: %v", tier, err)
		}
		many := []models.Project{{ID: uuid.New(), TenantID: b.ID, Name: "m1"}, {ID: uuid.New(), Name: "m2"}}
		if err := bound(t, g, a).Create(&many).Error; err != nil {
			t.Fatalf("%s batch create: %v", tier, err)
		}
		for _, p := range append(many, one) {
			if p.TenantID != a.ID {
				t.Errorf("%s: created project carries tenant %s, want %s", tier, p.TenantID, a.ID)
			}
		}
		// Creates from maps, with field or column names, are stamped too.
		if err := bound(t, g, a).Model(&models.Project{}).Create(map[string]any{"ID": uuid.New(), "Name": "map", "tenant_id": b.ID}).Error; err != nil {
			t.Errorf("%s map create: %v", tier, err)
		}
		if err := bound(t, g, a).Model(&models.Project{}).Create([]map[string]any{{"id": uuid.New(), "name": "maps", "TenantID": b.ID}}).Error; err != nil {
			t.Errorf("%s maps create: %v", tier, err)
		}
		if got := ownerCount(t, d, a); got != 5 {
			t.Errorf("%s: tenant a has %d projects, want 5", tier, got)
		}
		if got := ownerCount(t, d, b); got != 0 {
			t.Errorf("%s: tenant b has %d projects, want 0", tier, got)
		}
		// Below the ORM, RLS WITH CHECK refuses a row for another tenant.
		_, err := d.App.ExecContext(tenancy.WithTenant(context.Background(), a),
			`INSERT INTO projects (tenant_id, name) VALUES ($1, 'forged')`, b.ID)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
			t.Errorf("%s: raw insert of another tenant's row: %v, want an RLS violation (42501)", tier, err)
		}
		// ...and an update moving a row to another tenant.
		_, err = d.App.ExecContext(tenancy.WithTenant(context.Background(), a),
			`UPDATE projects SET tenant_id = $1`, b.ID)
		if citus := testenv.CitusMode() && tier == tenancy.TierStandard && isDistributionColumnUpdate(err); !citus &&
			(!errors.As(err, &pgErr) || pgErr.Code != "42501") {
			t.Errorf("%s: raw update to another tenant: %v, want an RLS violation (42501)", tier, err)
		}
	}
}

func TestGORM_QueriesSeeOnlyTheBoundTenant(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	g := openGORM(t, d)
	tenants := []*tenancy.Tenant{
		d.Tenant(t, "see-p1", tenancy.TierPremium), d.Tenant(t, "see-p2", tenancy.TierPremium),
		d.Tenant(t, "see-s1", tenancy.TierStandard), d.Tenant(t, "see-s2", tenancy.TierStandard),
	}
	for i, tn := range tenants {
		for j := 0; j <= i; j++ {
			if err := bound(t, g, tn).Create(&models.Project{ID: uuid.New(), Name: tn.Identifier}).Error; err != nil {
				t.Fatal(err)
			}
		}
	}
	for i, tn := range tenants {
		var rows []models.Project
		if err := bound(t, g, tn).Find(&rows).Error; err != nil {
			t.Fatal(err)
		}
		if len(rows) != i+1 {
			t.Errorf("%s sees %d projects, want %d", tn.Identifier, len(rows), i+1)
		}
		for _, p := range rows {
			if p.Name != tn.Identifier || p.TenantID != tn.ID {
				t.Errorf("%s sees %q of tenant %s", tn.Identifier, p.Name, p.TenantID)
			}
		}
		res := bound(t, g, tn).Model(&models.Project{}).Where("true").Update("description", "touched")
		if res.Error != nil || res.RowsAffected != int64(i+1) {
			t.Errorf("%s update touched %d rows (%v), want %d", tn.Identifier, res.RowsAffected, res.Error, i+1)
		}
	}
	var touched int
	if err := d.Owner.QueryRow(`SELECT count(*) FROM public.projects WHERE description = 'touched'`).Scan(&touched); err != nil || touched != 3+4 {
		t.Errorf("public rows touched: %d %v, want 7", touched, err)
	}
}

func TestGORM_TransactionStaysBound(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	g := openGORM(t, d)
	for _, tier := range []tenancy.Tier{tenancy.TierPremium, tenancy.TierStandard} {
		tn := d.Tenant(t, "tx-"+string(tier), tier)
		other := d.Tenant(t, "tx-other-"+string(tier), tier)
		if err := bound(t, g, other).Create(&models.Project{ID: uuid.New(), Name: "other"}).Error; err != nil {
			t.Fatal(err)
		}
		err := bound(t, g, tn).Transaction(func(tx *gorm.DB) error {
			for _, name := range []string{"one", "two"} {
				if err := tx.Create(&models.Project{ID: uuid.New(), Name: name}).Error; err != nil {
					return err
				}
			}
			var rows []models.Project
			if err := tx.Find(&rows).Error; err != nil {
				return err
			}
			if len(rows) != 2 {
				t.Errorf("%s: inside the transaction %d rows, want 2", tier, len(rows))
			}
			var setting, schema string
			if err := tx.Raw(`SELECT current_setting('app.current_tenant'), current_schema()`).Row().Scan(&setting, &schema); err != nil {
				return err
			}
			if setting != tn.ID.String() || schema != tn.Schema() {
				t.Errorf("%s: inside the transaction bound to %q in %q", tier, setting, schema)
			}
			return tx.Model(&models.Project{}).Where("name = ?", "one").Update("description", "updated").Error
		})
		if err != nil {
			t.Fatalf("%s: transaction: %v", tier, err)
		}
		if got := ownerCount(t, d, tn); got != 2 {
			t.Errorf("%s: committed %d projects, want 2", tier, got)
		}
		// A failed transaction leaves nothing.
		err = bound(t, g, tn).Transaction(func(tx *gorm.DB) error {
			if err := tx.Create(&models.Project{ID: uuid.New(), Name: "rolled back"}).Error; err != nil {
				return err
			}
			return errors.New("abort")
		})
		if err == nil {
			t.Fatal("aborted transaction reported success")
		}
		if got := ownerCount(t, d, tn); got != 2 {
			t.Errorf("%s: after rollback %d projects, want 2", tier, got)
		}
	}
}

func TestGORM_RawStatementsAreBound(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	g := openGORM(t, d)
	for _, tier := range []tenancy.Tier{tenancy.TierPremium, tenancy.TierStandard} {
		tn := d.Tenant(t, "raw-"+string(tier), tier)
		db := bound(t, g, tn)
		if err := db.Exec(`INSERT INTO projects (tenant_id, name) VALUES (?, 'raw')`, tn.ID).Error; err != nil {
			t.Fatalf("%s raw exec: %v", tier, err)
		}
		if got := ownerCount(t, d, tn); got != 1 {
			t.Errorf("%s: raw insert landed %d rows in %s, want 1", tier, got, tn.Schema())
		}
		var setting, schema string
		var n int
		if err := db.Raw(`SELECT current_setting('app.current_tenant'), current_schema(), (SELECT count(*) FROM projects)`).
			Row().Scan(&setting, &schema, &n); err != nil {
			t.Fatal(err)
		}
		if setting != tn.ID.String() || schema != tn.Schema() || n != 1 {
			t.Errorf("%s raw query bound to %q in %q seeing %d rows", tier, setting, schema, n)
		}
		// The same raw statement without a tenant sees nothing.
		if err := g.Raw(`SELECT count(*) FROM projects`).Row().Scan(&n); err != nil || n != 0 {
			t.Errorf("%s: unbound raw count %d %v, want 0", tier, n, err)
		}
	}
}

func TestGORM_PreparedStatementsAreBound(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	g := openGORM(t, d)
	ctx := context.Background()
	a := d.Tenant(t, "prep-a", tenancy.TierPremium)
	b := d.Tenant(t, "prep-b", tenancy.TierStandard)
	for i, tn := range []*tenancy.Tenant{a, b} {
		for j := 0; j <= i; j++ {
			if err := bound(t, g, tn).Create(&models.Project{ID: uuid.New(), Name: "p"}).Error; err != nil {
				t.Fatal(err)
			}
		}
	}
	st, err := d.App.PrepareContext(tenancy.WithTenant(ctx, a), `SELECT count(*), current_setting('app.current_tenant', true) FROM projects`)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, c := range []struct {
		ctx    context.Context
		n      int
		tenant string
	}{{tenancy.WithTenant(ctx, a), 1, a.ID.String()}, {tenancy.WithTenant(ctx, b), 2, b.ID.String()}, {ctx, 0, ""}} {
		var n int
		var setting *string
		if err := st.QueryRowContext(c.ctx).Scan(&n, &setting); err != nil {
			t.Fatal(err)
		}
		got := ""
		if setting != nil {
			got = *setting
		}
		if n != c.n || got != c.tenant {
			t.Errorf("prepared statement saw %d rows bound to %q, want %d and %q", n, got, c.n, c.tenant)
		}
	}
	// GORM's own prepared-statement mode goes through the same path.
	prep := bound(t, g, b).Session(&gorm.Session{PrepareStmt: true})
	var rows []models.Project
	if err := prep.Find(&rows).Error; err != nil || len(rows) != 2 {
		t.Errorf("PrepareStmt session: %d rows %v, want 2", len(rows), err)
	}
	if err := prep.Create(&models.Project{ID: uuid.New(), Name: "prepared"}).Error; err != nil {
		t.Fatal(err)
	}
	if got := ownerCount(t, d, b); got != 3 {
		t.Errorf("PrepareStmt create: tenant has %d projects, want 3", got)
	}
}

func TestGORM_DatabaseErrorsSurface(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	g := openGORM(t, d)
	for _, tier := range []tenancy.Tier{tenancy.TierPremium, tenancy.TierStandard} {
		tn := d.Tenant(t, "errs-"+string(tier), tier)
		db := bound(t, g, tn)
		var pgErr *pgconn.PgError
		err := db.Create(&models.Project{ID: uuid.New(), Name: ""}).Error
		if !errors.As(err, &pgErr) || pgErr.Code != "23514" {
			t.Errorf("%s: empty name: %v, want check violation 23514", tier, err)
		}
		id := uuid.New()
		if err := db.Create(&models.Project{ID: id, Name: "dup"}).Error; err != nil {
			t.Fatal(err)
		}
		err = db.Create(&models.Project{ID: id, Name: "dup"}).Error
		if !errors.As(err, &pgErr) || pgErr.Code != "23505" {
			t.Errorf("%s: duplicate id: %v, want unique violation 23505", tier, err)
		}
		var n int
		err = db.Raw(`SELECT 1 / 0`).Row().Scan(&n)
		if !errors.As(err, &pgErr) || pgErr.Code != "22012" {
			t.Errorf("%s: division by zero: %v, want 22012", tier, err)
		}
		err = db.Exec(`UPDATE projects SET name = repeat('x', 201)`).Error
		if !errors.As(err, &pgErr) || pgErr.Code != "23514" {
			t.Errorf("%s: raw update violating a check: %v, want 23514", tier, err)
		}
		if got := ownerCount(t, d, tn); got != 1 {
			t.Errorf("%s: %d projects after failed statements, want 1", tier, got)
		}
	}
}

// The tenant condition must not stand in for a forgotten WHERE: GORM refuses
// an update or delete without conditions, and still does on a tenant model.
func TestGORM_WriteWithoutConditionsIsStillRefused(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	g := openGORM(t, d)
	for _, tier := range []tenancy.Tier{tenancy.TierPremium, tenancy.TierStandard} {
		tn := d.Tenant(t, "nowhere-"+string(tier), tier)
		var ps []models.Project
		for i := 0; i < 4; i++ {
			p := models.Project{ID: uuid.New(), Name: "p"}
			if err := bound(t, g, tn).Create(&p).Error; err != nil {
				t.Fatal(err)
			}
			ps = append(ps, p)
		}
		db := bound(t, g, tn)
		if err := db.Model(&models.Project{}).Update("name", "all").Error; !errors.Is(err, gorm.ErrMissingWhereClause) {
			t.Errorf("%s: update without conditions: %v", tier, err)
		}
		if err := db.Delete(&models.Project{}).Error; !errors.Is(err, gorm.ErrMissingWhereClause) {
			t.Errorf("%s: delete of a zero-key model: %v", tier, err)
		}
		if got := ownerCount(t, d, tn); got != 4 {
			t.Fatalf("%s: %d projects left, want 4", tier, got)
		}
		// Keys and conditions still work, as does an explicit global update.
		ps[1].Name = "saved"
		for name, err := range map[string]error{
			"update by key": db.Model(&ps[0]).Update("name", "one").Error,
			"save":          db.Save(&ps[1]).Error,
			"delete by key": db.Delete(&ps[2]).Error,
			"delete where":  db.Delete(&models.Project{}, "id = ?", ps[3].ID).Error,
			"global":        db.Session(&gorm.Session{AllowGlobalUpdate: true}).Model(&models.Project{}).Update("description", "x").Error,
		} {
			if err != nil {
				t.Errorf("%s: %s: %v", tier, name, err)
			}
		}
		if got := ownerCount(t, d, tn); got != 2 {
			t.Errorf("%s: %d projects left, want 2", tier, got)
		}
	}
}

// Save writes every column, but not a tenant_id that stays the bound
// tenant's: a no-op Citus refuses on its distribution column. A model
// carrying another tenant's id keeps it in the UPDATE, for the policy to refuse.
func TestGORM_SaveLeavesAnUnchangedTenantOut(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	g := openGORM(t, d)
	tn := d.Tenant(t, "save-keeps", tenancy.TierStandard)
	p := models.Project{ID: uuid.New(), Name: "p"}
	if err := bound(t, g, tn).Create(&p).Error; err != nil {
		t.Fatal(err)
	}
	dry := bound(t, g, tn).Session(&gorm.Session{DryRun: true})
	p.Name = "saved"
	if sql := dry.Save(&p).Statement.SQL.String(); strings.Contains(sql, `SET "tenant_id"`) || strings.Contains(sql, `,"tenant_id"=`) {
		t.Errorf("save of the bound tenant's row sets tenant_id: %s", sql)
	}
	other := p
	other.TenantID = uuid.New()
	if sql := dry.Save(&other).Statement.SQL.String(); !strings.Contains(sql, `"tenant_id"=`) {
		t.Errorf("save of a row carrying another tenant's id leaves tenant_id out: %s", sql)
	}
	if err := bound(t, g, tn).Save(&p).Error; err != nil {
		t.Errorf("save: %v", err)
	}
}
