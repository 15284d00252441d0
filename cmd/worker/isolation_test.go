package main

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/your-org/tenantkit/internal/testenv"
)

// Invariant 12: the worker refuses to start on a database where a tenant
// statement could reach every tenant's rows (here a view created by the
// superuser without security_invoker), naming the relation and the fix.
func TestRun_RefusesToStartOnAnUnguardedRelation(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	if _, err := d.Owner.Exec(`CREATE VIEW public.project_counts AS SELECT tenant_id, count(*) AS n FROM public.projects GROUP BY 1;
		GRANT SELECT ON public.project_counts TO ` + testenv.AppRole); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"DATABASE_URL": d.AppURL, "REDIS_URL": "redis://127.0.0.1:1/0", "WORKER_HTTP_ADDR": "127.0.0.1:0"}
	err := run(context.Background(), nil, func(k string) string { return env[k] }, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "public.project_counts") || !strings.Contains(err.Error(), "security_invoker = true") {
		t.Errorf("err = %v, want a refusal naming public.project_counts and its fix", err)
	}
}
