package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"sync"
	"testing"

	"github.com/your-org/tenantkit/internal/tenancy"
	"github.com/your-org/tenantkit/internal/testenv"
	"github.com/your-org/tenantkit/migrations"
)

// withTenantMigrations returns the embedded tenant set plus extra
// migrations numbered after it, and their versions: tests never name a
// version of migrations/, so a fork's own migrations keep them green.
func withTenantMigrations(t *testing.T, extra ...testenv.Migration) (fs.FS, []int64) {
	t.Helper()
	return testenv.TenantMigrations(t, extra...)
}

type result struct {
	stdout, stderr string
	code           int
}

// migrate runs the command as main would, against databaseURL (owner) with
// the given tenant migration set.
func migrate(t *testing.T, ownerURL, appURL string, tenantFS fs.FS, args ...string) result {
	t.Helper()
	if tenantFS == nil {
		tenantFS = migrations.Tenant()
	}
	env := map[string]string{"MIGRATE_DATABASE_URL": ownerURL, "DATABASE_URL": appURL}
	var stdout, stderr bytes.Buffer
	c := cli{getenv: func(k string) string { return env[k] }, stdout: &stdout, stderr: &stderr,
		control: migrations.Control(), tenant: tenantFS}
	err := c.run(context.Background(), args)
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var code exitCode
	switch {
	case err == nil:
	case errors.As(err, &code):
		r.code = int(code)
	default:
		r.code, r.stderr = 1, r.stderr+"migrate: "+err.Error()
	}
	return r
}

func (r result) report(t *testing.T) jsonReport {
	t.Helper()
	var rep jsonReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("--json output is not a report: %v\nstdout:\n%s\nstderr:\n%s", err, r.stdout, r.stderr)
	}
	return rep
}

func (r result) status(t *testing.T) jsonStatus {
	t.Helper()
	var st jsonStatus
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("status --json output: %v\n%s", err, r.stdout)
	}
	return st
}

func (rep jsonReport) target(t *testing.T, schema string) jsonTarget {
	t.Helper()
	for _, x := range rep.Targets {
		if x.Schema == schema {
			return x
		}
	}
	t.Fatalf("no target %s in report", schema)
	return jsonTarget{}
}

// premiumTenants provisions n premium tenants, a few at a time, through the
// real lifecycle (and so through Migrator.UpSchema).
func premiumTenants(t *testing.T, d *testenv.DB, prefix string, n int) []*tenancy.Tenant {
	t.Helper()
	out := make([]*tenancy.Tenant, n)
	errs := make([]error, n)
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			id := prefix + "-" + string(rune('a'+i/26)) + string(rune('a'+i%26))
			out[i], errs[i] = d.Lifecycle().Create(context.Background(),
				tenancy.NewTenant{Identifier: id, Name: id, Tier: tenancy.TierPremium})
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("provision tenants: %v", err)
	}
	return out
}

func i64(p *int64) int64 {
	if p == nil {
		return -1
	}
	return *p
}
