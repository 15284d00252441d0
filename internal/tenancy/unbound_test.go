package tenancy_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/your-org/tenantkit/internal/tenancy"
	"github.com/your-org/tenantkit/internal/testenv"
)

// exampleTables are the example domain's tenant tables, with an insert for each.
var exampleTables = map[string]string{
	"projects": `INSERT INTO %s.projects (tenant_id, name) VALUES ($1, 'p')`,
	"reports":  `INSERT INTO %s.reports (tenant_id, kind) VALUES ($1, 'project_summary')`,
}

func qualified(format, schema string) string { return fmt.Sprintf(format, tenancy.QuoteIdent(schema)) }

// A connection that never bound a tenant has no app.current_tenant at all
// (NULL, not ”): a pooled connection that was bound once cannot show this.
// On it, and after setting ”, every tenant table in public and in a premium
// schema shows no row and lets no row be changed.
func TestIsolation_NeverBoundConnectionSeesNoRows(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	ctx := context.Background()
	std := d.Tenant(t, "unbound-std", tenancy.TierStandard)
	prem := d.Tenant(t, "unbound-prem", tenancy.TierPremium)
	for _, tn := range []*tenancy.Tenant{std, prem} {
		for table, insert := range exampleTables {
			if _, err := d.App.ExecContext(tenancy.WithTenant(ctx, tn), qualified(insert, tn.Schema()), tn.ID); err != nil {
				t.Fatalf("insert into %s as %s: %v", table, tn.Identifier, err)
			}
		}
	}
	conn, err := pgx.Connect(ctx, d.AppURL) // plain pgx: not the binding pool
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, setting := range []string{"never set", "''"} {
		if setting == "''" {
			if _, err := conn.Exec(ctx, `SELECT set_config('app.current_tenant', '', false)`); err != nil {
				t.Fatal(err)
			}
		}
		for _, tn := range []*tenancy.Tenant{std, prem} {
			for table := range exampleTables {
				name := tenancy.QuoteIdent(tn.Schema()) + "." + table
				var n int
				if err := conn.QueryRow(ctx, `SELECT count(*) FROM `+name).Scan(&n); err != nil {
					t.Fatalf("%s: count %s: %v", setting, name, err)
				}
				if n != 0 {
					t.Errorf("app.current_tenant %s: the app role sees %d rows of %s, want 0", setting, n, name)
				}
				for _, write := range []string{`UPDATE ` + name + ` SET tenant_id = tenant_id`, `DELETE FROM ` + name} {
					tag, err := conn.Exec(ctx, write)
					if err != nil {
						t.Fatalf("%s: %s: %v", setting, write, err)
					}
					if tag.RowsAffected() != 0 {
						t.Errorf("app.current_tenant %s: %q changed %d rows, want 0", setting, write, tag.RowsAffected())
					}
				}
			}
		}
	}
}

// Bound to one tenant, a statement can neither insert a row carrying another
// tenant's id nor move one of its own rows to another tenant (the policies'
// WITH CHECK), in public and in a premium schema.
func TestIsolation_WritesOfAnotherTenantsIDAreRefused(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	ctx := context.Background()
	victim := d.Tenant(t, "check-victim", tenancy.TierStandard)
	for _, tier := range []tenancy.Tier{tenancy.TierStandard, tenancy.TierPremium} {
		writer := d.Tenant(t, "check-writer-"+string(tier), tier)
		wctx := tenancy.WithTenant(ctx, writer)
		for table, insert := range exampleTables {
			_, err := d.App.ExecContext(wctx, qualified(insert, writer.Schema()), victim.ID)
			if !isRLSViolation(err) {
				t.Errorf("%s writer inserting into %s.%s with another tenant's id: err %v, want a row-level security violation", tier, writer.Schema(), table, err)
			}
			if _, err := d.App.ExecContext(wctx, qualified(insert, writer.Schema()), writer.ID); err != nil {
				t.Fatalf("own insert into %s: %v", table, err)
			}
			_, err = d.App.ExecContext(wctx, `UPDATE `+tenancy.QuoteIdent(writer.Schema())+`.`+table+` SET tenant_id = $1`, victim.ID)
			if !isRLSViolation(err) && !(testenv.CitusMode() && tier == tenancy.TierStandard && isDistributionColumnUpdate(err)) {
				t.Errorf("%s writer moving its %s rows to another tenant: err %v, want a row-level security violation", tier, table, err)
			}
		}
	}
}

// isDistributionColumnUpdate: on Citus, a table distributed by tenant_id
// refuses to change it before any policy runs.
func isDistributionColumnUpdate(err error) bool {
	var pg *pgconn.PgError
	return errors.As(err, &pg) && pg.Code == "0A000" && strings.Contains(pg.Message, "partition value")
}

func isRLSViolation(err error) bool {
	var pg *pgconn.PgError
	return errors.As(err, &pg) && pg.Code == "42501"
}
