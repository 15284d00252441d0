package main

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/your-org/tenantkit/internal/testenv"
)

// Invariant 12: the api refuses to serve when a tenant relation is unguarded
// (a table created outside `migrate`, a tenant policy widened by hand),
// naming each relation and its fix, as it does for an unsafe role.
func TestRun_RefusesToStartOnAnUnguardedRelation(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ name, sql, want string }{
		{"unguarded_table", `CREATE TABLE public.kit_notes (id int, tenant_id uuid NOT NULL, body text);
			GRANT SELECT ON public.kit_notes TO ` + testenv.AppRole, "ALTER TABLE \"public\".\"kit_notes\" ENABLE ROW LEVEL SECURITY"},
		{"widened_policy", `DROP POLICY tenant_isolation ON public.projects;
			CREATE POLICY tenant_isolation ON public.projects
				USING (current_setting('app.current_tenant', true) IS NULL OR tenant_id = nullif(current_setting('app.current_tenant', true), '')::uuid)
				WITH CHECK (tenant_id = nullif(current_setting('app.current_tenant', true), '')::uuid)`, "public.projects"},
		{"definer_function", `CREATE FUNCTION public.count_all() RETURNS bigint LANGUAGE sql SECURITY DEFINER AS 'SELECT count(*) FROM public.projects'`,
			"ALTER FUNCTION count_all() SECURITY INVOKER"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			d := testenv.Postgres(t)
			if _, err := d.Owner.Exec(c.sql); err != nil {
				t.Fatal(err)
			}
			url, _ := testenv.Redis(t)
			env := map[string]string{"DATABASE_URL": d.AppURL, "MIGRATE_DATABASE_URL": d.OwnerURL, "REDIS_URL": url,
				"HTTP_ADDR": "127.0.0.1:0", "JWT_SECRET": testenv.JWTSecret}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			ready, done := make(chan string, 1), make(chan error, 1)
			go func() { done <- run(ctx, nil, func(k string) string { return env[k] }, io.Discard, ready) }()
			select {
			case addr := <-ready:
				cancel()
				<-done
				t.Fatalf("the api started serving on %s over an unguarded relation", addr)
			case err := <-done:
				if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "tenant isolation broken") {
					t.Errorf("err = %v, want a refusal containing %q", err, c.want)
				}
			}
		})
	}
}
