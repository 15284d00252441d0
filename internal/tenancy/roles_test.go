package tenancy_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"strings"
	"testing"

	"github.com/your-org/tenantkit/internal/tenancy"
	"github.com/your-org/tenantkit/internal/testenv"
)

// throwawayRole creates a uniquely named role (cluster-wide) and drops it,
// with whatever it owns in d, when the test ends.
func throwawayRole(t *testing.T, d *testenv.DB, attrs string) string {
	t.Helper()
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	name := "tk_role_" + hex.EncodeToString(b)
	if _, err := d.Owner.Exec(`CREATE ROLE ` + name + ` ` + attrs); err != nil {
		t.Fatalf("create role: %v", err)
	}
	t.Cleanup(func() {
		_, _ = d.Owner.Exec(`DROP OWNED BY ` + name)
		if _, err := d.Owner.Exec(`DROP ROLE ` + name); err != nil {
			t.Errorf("drop role %s: %v", name, err)
		}
	})
	return name
}

// poolAs opens a binding pool of d's database as role.
func poolAs(t *testing.T, d *testenv.DB, role string) *sql.DB {
	t.Helper()
	u, err := url.Parse(d.AppURL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User(role)
	db, err := tenancy.OpenDB(u.String(), tenancy.PoolConfig{MaxIdle: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() }) // before the role is dropped
	return db
}

// Invariant 3: the app role may neither skip nor switch off row-level security.
func TestCheckAppRole_RefusesRolesThatEscapeIsolation(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	ctx := context.Background()
	if err := tenancy.CheckAppRole(ctx, d.App); err != nil {
		t.Fatalf("the app role was refused: %v", err)
	}

	owner := throwawayRole(t, d, "LOGIN")
	if _, err := d.Owner.Exec(`CREATE TABLE public.owned_widgets (id int, tenant_id uuid); ALTER TABLE public.owned_widgets OWNER TO ` + owner); err != nil {
		t.Fatal(err)
	}
	ownerMember := throwawayRole(t, d, "LOGIN IN ROLE "+owner)
	superGroup := throwawayRole(t, d, "NOLOGIN SUPERUSER")
	bypassGroup := throwawayRole(t, d, "NOLOGIN BYPASSRLS")
	superMember := throwawayRole(t, d, "LOGIN NOINHERIT IN ROLE "+superGroup)
	bypassMember := throwawayRole(t, d, "LOGIN IN ROLE "+bypassGroup)
	bypass := throwawayRole(t, d, "LOGIN NOSUPERUSER BYPASSRLS")

	cases := []struct {
		name string
		db   *sql.DB
		want []string // in the message: what is wrong and how to fix it
	}{
		{"superuser", poolAs(t, d, "postgres"), []string{"superuser", "ALTER ROLE", "NOSUPERUSER"}},
		{"bypassrls", poolAs(t, d, bypass), []string{"BYPASSRLS", "ALTER ROLE " + `"` + bypass + `"` + " NOBYPASSRLS"}},
		{"table owner", poolAs(t, d, owner), []string{"public.owned_widgets", "OWNER TO"}},
		{"member of the table owner", poolAs(t, d, ownerMember), []string{"public.owned_widgets", "REVOKE"}},
		{"member of a superuser role", poolAs(t, d, superMember), []string{superGroup, "REVOKE"}},
		{"member of a bypassrls role", poolAs(t, d, bypassMember), []string{bypassGroup, "REVOKE"}},
	}
	for _, c := range cases {
		err := tenancy.CheckAppRole(ctx, c.db)
		if err == nil {
			t.Errorf("%s: accepted as app role", c.name)
			continue
		}
		msg := err.Error()
		for _, w := range append(c.want, "DATABASE_URL") {
			if !strings.Contains(msg, w) {
				t.Errorf("%s: message %q lacks %q", c.name, msg, w)
			}
		}
	}
}

// The app role cannot create temporary tables: pg_temp is searched before
// every schema, so one would shadow a tenant's table for the rest of the
// connection's life in the pool. `migrate up` (UpControl) revokes TEMPORARY
// from PUBLIC and the app role, and test databases get the same grants.
func TestAppRole_CannotCreateTempTable(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	ctx := context.Background()
	tryTemp := func() error {
		conn, err := d.App.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_, err = conn.ExecContext(ctx, `CREATE TEMP TABLE projects (id int)`)
		return err
	}
	if err := tryTemp(); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("CREATE TEMP TABLE as the app role: %v, want permission denied", err)
	}
	// Undo the grant as an older deployment would have it; migrate up takes it back.
	if _, err := d.Owner.ExecContext(ctx, `DO $$ BEGIN EXECUTE format('GRANT TEMPORARY ON DATABASE %I TO PUBLIC', current_database()); END $$`); err != nil {
		t.Fatal(err)
	}
	if err := tryTemp(); err != nil {
		t.Fatalf("with TEMPORARY granted back: %v (the test would prove nothing)", err)
	}
	if _, err := d.Migrator().UpControl(ctx); err != nil {
		t.Fatal(err)
	}
	if err := tryTemp(); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("after migrate up: CREATE TEMP TABLE %v, want permission denied", err)
	}
}
