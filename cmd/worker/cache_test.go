package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/your-org/tenantkit/internal/models"
	"github.com/your-org/tenantkit/internal/tasks"
	"github.com/your-org/tenantkit/internal/tenancy"
	"github.com/your-org/tenantkit/internal/tenancy/cachestore"
)

// The api suspends a tenant through its cached store; the worker, whose
// cache already holds the tenant as active, refuses the tenant's next tasks
// within 2 s because it applies the published invalidation.
func TestWorker_SuspensionByAnotherProcessStopsTasksWithin2s(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "cache-susp", tenancy.TierStandard, 1)
	w := f.startWorker(t)
	waitFor(t, 30*time.Second, "worker subscribed to invalidations", func() bool {
		return strings.Contains(w.get(t, "/metrics"), `tenantkit_cache_invalidations_subscribed{cache="tenants"} 1`)
	})
	first := f.requestReport(t) // warms the worker's cache with the active tenant
	if st, _ := f.waitFinished(t, first.ID.String(), time.Minute); st != models.ReportSucceeded {
		t.Fatalf("first report: %s", st)
	}

	ns, err := tenancy.CacheNamespace(f.db.AppURL)
	if err != nil {
		t.Fatal(err)
	}
	opt, _ := redis.ParseURL(f.redisURL)
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	api := cachestore.New(cachestore.Config{Store: &tenancy.PGStore{DB: f.db.App}, Redis: rdb, Prefix: ns})
	suspended := tenancy.StatusSuspended
	if _, err := api.Update(context.Background(), f.tenant.ID, tenancy.TenantUpdate{Status: &suspended}); err != nil {
		t.Fatal(err)
	}
	since := time.Now()
	for {
		refusedBefore := len(w.taskLines(tasks.TypeReportGenerate, tasks.OutcomeRefused))
		r := f.requestReport(t)
		var ran bool
		waitFor(t, time.Minute, "report task handled", func() bool {
			st, _ := f.report(t, r.ID.String())
			ran = st == models.ReportSucceeded || st == models.ReportFailed
			return ran || len(w.taskLines(tasks.TypeReportGenerate, tasks.OutcomeRefused)) > refusedBefore
		})
		if !ran {
			break
		}
		if time.Since(since) > 2*time.Second {
			t.Fatalf("the worker still ran the suspended tenant's task %s after the suspension", time.Since(since))
		}
	}
}
