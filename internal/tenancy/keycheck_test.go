package tenancy_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/your-org/tenantkit/internal/tenancy"
	"github.com/your-org/tenantkit/internal/testenv"
	"github.com/your-org/tenantkit/migrations"
)

// Every key of the kit's tenant tables, in public and in a premium schema,
// leads with tenant_id (the shape Citus distributes by tenant).
func TestKeys_KitTenantTablesKeyByTenant(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	prem := d.Tenant(t, "keys-prem", tenancy.TierPremium)
	decl, err := tenancy.ParseDeclarations(migrations.Tenant())
	if err != nil {
		t.Fatal(err)
	}
	schemas := []string{"public", prem.Schema()}
	problems, err := tenancy.CheckKeys(context.Background(), d.Owner, schemas, decl)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("key without tenant_id: %s", p)
	}
	var keyed int
	if err := d.Owner.QueryRow(`SELECT count(*) FROM pg_constraint con JOIN pg_namespace n ON n.oid = con.connamespace
		WHERE n.nspname = ANY($1) AND con.contype = 'p'
		  AND (SELECT attname FROM pg_attribute WHERE attrelid = con.conrelid AND attnum = con.conkey[1]) = 'tenant_id'`,
		schemas).Scan(&keyed); err != nil {
		t.Fatal(err)
	}
	if want := 2 * len(tenantTables(t, d.Owner, "public")); keyed != want {
		t.Errorf("%d primary keys lead with tenant_id, want %d (every tenant table of both schemas)", keyed, want)
	}
}

// A tenant table whose key leaves tenant_id out is refused by `migrate up`,
// naming the table, the key and the SQL that fixes it; so is a foreign key
// between tenant tables that does not match tenant_id. The same check runs
// at start-up (IsolationCheck), so a fork's table created before the check
// existed is named too.
func TestKeys_MigrateRefusesKeysWithoutTenant(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name, sql string
		want      []string
	}{
		{"pk_by_id", `CREATE TABLE kit_invoices (id uuid PRIMARY KEY, tenant_id uuid NOT NULL);`,
			[]string{"public.kit_invoices", "primary key kit_invoices_pkey (id)", "PRIMARY KEY USING INDEX", "(tenant_id, id)"}},
		{"unique_email", `CREATE TABLE kit_members (id uuid, tenant_id uuid NOT NULL, email text NOT NULL UNIQUE, PRIMARY KEY (tenant_id, id));`,
			[]string{"public.kit_members", "unique constraint kit_members_email_key (email)", "UNIQUE USING INDEX", "(tenant_id, email)"}},
		{"unique_index", `CREATE TABLE kit_tags (id uuid, tenant_id uuid NOT NULL, name text NOT NULL, PRIMARY KEY (tenant_id, id));
CREATE UNIQUE INDEX kit_tags_name ON kit_tags (lower(name));`,
			[]string{"public.kit_tags", "unique index kit_tags_name (lower(name))", "DROP INDEX CONCURRENTLY"}},
		{"fk_by_id", `CREATE TABLE kit_lists (id uuid NOT NULL UNIQUE, tenant_id uuid NOT NULL, PRIMARY KEY (tenant_id, id));
CREATE TABLE kit_tasks (id uuid, tenant_id uuid NOT NULL, list_id uuid NOT NULL REFERENCES kit_lists (id), PRIMARY KEY (tenant_id, id));`,
			[]string{"public.kit_tasks", "foreign key kit_tasks_list_id_fkey (list_id)", "FOREIGN KEY (tenant_id, list_id) REFERENCES kit_lists (tenant_id, id)"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			d := testenv.Postgres(t)
			m := d.Migrator()
			sql := c.sql
			var versions []int64
			m.Tenant, versions = testenv.TenantMigrations(t, testenv.Migration{Name: c.name, SQL: "-- +goose Up\n" + sql + "\n-- +goose Down\nSELECT 1;\n"})
			_, err := m.UpSchema(context.Background(), "public")
			if err == nil {
				t.Fatalf("a tenant table keyed without tenant_id was applied")
			}
			ie := isolationError(t, err)
			msg := err.Error()
			for _, w := range append([]string{fmt.Sprintf("%05d_%s.sql", versions[0], c.name)}, c.want...) {
				if !strings.Contains(msg, w) {
					t.Errorf("refusal lacks %q:\n%s", w, msg)
				}
			}
			if c.name != "fk_by_id" && len(ie.Problems) != 1 { // fk_by_id: kit_lists' UNIQUE (id) too
				t.Errorf("%d problems, want 1: %v", len(ie.Problems), ie.Problems)
			}
		})
	}
}
