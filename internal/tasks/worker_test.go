package tasks_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	dto "github.com/prometheus/client_model/go"

	"github.com/your-org/tenantkit/internal/logging"
	"github.com/your-org/tenantkit/internal/models"
	"github.com/your-org/tenantkit/internal/tasks"
	"github.com/your-org/tenantkit/internal/tenancy"
)

func TestWorker_TaskOfTenantSuspendedBeforeItRunsIsArchivedNotRun(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, tier := range []tenancy.Tier{tenancy.TierPremium, tenancy.TierStandard} {
		tn := e.Tenant(t, "susp-"+string(tier), tier)
		r, err := e.reports().Request(tenancy.WithTenant(context.Background(), tn), models.ReportProjectSummary)
		if err != nil {
			t.Fatal(err)
		}
		suspended := tenancy.StatusSuspended
		if _, err := e.Lifecycle().Update(context.Background(), tn.ID, tenancy.TenantUpdate{Status: &suspended}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if st, _, _ := e.reportRow(t, tn, r.ID.String()); st != models.ReportPending {
				t.Errorf("%s: report of a suspended tenant is %s, want pending (never run)", tier, st)
			}
		})
	}
	e.worker(t, nil)
	for _, tier := range []tenancy.Tier{tenancy.TierPremium, tenancy.TierStandard} {
		q := e.queue(tasks.QueueDefault)
		if tier == tenancy.TierPremium {
			q = e.queue(tasks.QueuePremium)
		}
		archived := e.waitArchivedIn(t, q)
		if !strings.Contains(archived.LastErr, "tenant is not active") || !strings.Contains(archived.LastErr, "suspended") {
			t.Errorf("%s: archived with %q, want a reason naming the suspension", tier, archived.LastErr)
		}
		if archived.Retried != 0 {
			t.Errorf("%s: refused task was retried %d times, want 0", tier, archived.Retried)
		}
	}
}

// waitArchivedIn waits for the one archived task of queue.
func (e *env) waitArchivedIn(t *testing.T, queue string) *asynq.TaskInfo {
	t.Helper()
	var got []*asynq.TaskInfo
	eventually(t, "a task archived in "+queue, func() bool {
		got, _ = e.inspector.ListArchivedTasks(queue)
		return len(got) > 0
	})
	return got[0]
}

func TestWorker_TaskWithoutOrWithUnknownTenantIsArchived(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tn := e.Tenant(t, "victim", tenancy.TierStandard)
	r, err := models.Reports{DB: e.gdb}.Create(tenancy.WithTenant(context.Background(), tn), models.ReportProjectSummary)
	if err != nil {
		t.Fatal(err)
	}
	payload := []byte(`{"tenant_id":"` + tn.ID.String() + `","data":{"report_id":"` + r.ID.String() + `"}}`)
	q := e.queue(tasks.QueueDefault)
	cases := map[string]struct {
		headers map[string]string
		reason  string
	}{
		"no header":      {nil, "task has no tenant"},
		"empty header":   {map[string]string{tasks.HeaderTenantID: ""}, "task has no tenant"},
		"garbage header": {map[string]string{tasks.HeaderTenantID: "'; drop table reports"}, "task has no tenant"},
		"unknown tenant": {map[string]string{tasks.HeaderTenantID: uuid.NewString()}, "tenant not found"},
	}
	ids := map[string]string{}
	for name, c := range cases {
		info, err := e.client.Asynq.Enqueue(asynq.NewTaskWithHeaders(tasks.TypeReportGenerate, payload, c.headers), asynq.Queue(q))
		if err != nil {
			t.Fatal(err)
		}
		ids[name] = info.ID
	}
	e.worker(t, nil)
	for name, c := range cases {
		info := e.archived(t, q, ids[name])
		if !strings.Contains(info.LastErr, c.reason) || info.Retried != 0 {
			t.Errorf("%s: archived after %d retries with %q, want no retry and reason %q", name, info.Retried, info.LastErr, c.reason)
		}
	}
	if st, _, _ := e.reportRow(t, tn, r.ID.String()); st != models.ReportPending {
		t.Errorf("report touched by a refused task: %s, want pending", st)
	}
}

func TestEnqueue_SameUniqueTaskFromTwoTenantsBothRun(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.Tenant(t, "uniq-a", tenancy.TierStandard)
	b := e.Tenant(t, "uniq-b", tenancy.TierPremium)
	var (
		mu  sync.Mutex
		ran = map[uuid.UUID]int{}
	)
	type echo struct{ N int }
	task := tasks.Task{Type: "test:echo", Payload: echo{N: 7}}
	for _, tn := range []*tenancy.Tenant{a, b} {
		ctx := tenancy.WithTenant(context.Background(), tn)
		if _, err := e.client.Enqueue(ctx, task, tasks.Unique(time.Minute), tasks.Queue(tasks.QueueDefault)); err != nil {
			t.Fatalf("%s: unique enqueue: %v", tn.Identifier, err)
		}
		if _, err := e.client.Enqueue(ctx, task, tasks.ID("same-id"), tasks.Queue(tasks.QueueDefault)); err != nil {
			t.Fatalf("%s: enqueue with id: %v", tn.Identifier, err)
		}
	}
	// The same tenant enqueueing it again is a duplicate.
	if _, err := e.client.Enqueue(tenancy.WithTenant(context.Background(), a), task, tasks.Unique(time.Minute), tasks.Queue(tasks.QueueDefault)); !tasks.IsDuplicate(err) {
		t.Errorf("same tenant, same unique task: err %v, want duplicate", err)
	}
	e.worker(t, func(w *tasks.Worker) {
		w.Mux.Handle("test:echo", tasks.Handler(func(ctx context.Context, p echo) error {
			tn, _ := tenancy.FromContext(ctx)
			mu.Lock()
			defer mu.Unlock()
			if p.N == 7 {
				ran[tn.ID]++
			}
			return nil
		}))
	})
	eventually(t, "both tenants' tasks ran", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return ran[a.ID] == 2 && ran[b.ID] == 2
	})
}

func TestEnqueue_WithoutTenantIsRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if _, err := e.client.Enqueue(context.Background(), tasks.NewReportGenerate(uuid.New())); err == nil {
		t.Fatal("enqueue without a bound tenant succeeded")
	}
	qs, _ := e.inspector.Queues()
	for _, q := range qs {
		if strings.HasPrefix(q, e.prefix) {
			t.Errorf("queue %s exists after a refused enqueue", q)
		}
	}
}

func TestWorker_BindsTenantLogsAndMeasuresPerTypeNotPerTenant(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tn := e.Tenant(t, "observed", tenancy.TierStandard)
	var seen *tenancy.Tenant
	done := make(chan struct{})
	e.worker(t, func(w *tasks.Worker) {
		w.Mux.Handle("test:observe", tasks.Handler(func(ctx context.Context, _ struct{}) error {
			seen, _ = tenancy.FromContext(ctx)
			logging.From(ctx, nil).Info("inside handler")
			close(done)
			return nil
		}))
	})
	info, err := e.client.Enqueue(tenancy.WithTenant(context.Background(), tn), tasks.Task{Type: "test:observe"})
	if err != nil {
		t.Fatal(err)
	}
	if info.Queue != e.queue(tasks.QueueDefault) {
		t.Errorf("standard tenant's task went to %s, want the default queue", info.Queue)
	}
	<-done
	if seen == nil || seen.ID != tn.ID {
		t.Fatalf("handler saw tenant %v, want %s", seen, tn.ID)
	}
	eventually(t, "task log line", func() bool { return len(e.logLines("task")) > 0 })
	for _, msg := range []string{"inside handler", "task"} {
		for _, rec := range e.logLines(msg) {
			if rec["tenant_id"] != tn.ID.String() || rec["task_id"] != info.ID {
				t.Errorf("log line %q lacks tenant_id/task_id: %v", msg, rec)
			}
		}
	}
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if strings.Contains(l.GetName(), "tenant") || l.GetValue() == tn.ID.String() {
					t.Errorf("metric %s has a per-tenant label %s=%s", mf.GetName(), l.GetName(), l.GetValue())
				}
			}
			if mf.GetName() == "tasks_processed_total" && hasLabels(m, "type", "test:observe", "outcome", "succeeded") {
				found = m.GetCounter().GetValue() == 1
			}
		}
	}
	if !found {
		t.Error("tasks_processed_total{type=test:observe,outcome=succeeded} is not 1")
	}
}

func hasLabels(m *dto.Metric, kv ...string) bool {
	got := map[string]string{}
	for _, l := range m.GetLabel() {
		got[l.GetName()] = l.GetValue()
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if got[kv[i]] != kv[i+1] {
			return false
		}
	}
	return true
}

func TestFanOut_EnqueuesOneTaskPerActiveTenantSpreadOverTheWindow(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.Tenant(t, "fan-a", tenancy.TierPremium)
	b := e.Tenant(t, "fan-b", tenancy.TierStandard)
	c := e.Tenant(t, "fan-c", tenancy.TierStandard)
	suspended := tenancy.StatusSuspended
	if _, err := e.Lifecycle().Update(context.Background(), c.ID, tenancy.TenantUpdate{Status: &suspended}); err != nil {
		t.Fatal(err)
	}
	e.worker(t, nil)
	start := time.Now()
	if _, err := e.client.EnqueueSystem(context.Background(), tasks.NightlyReportCleanup()); err != nil {
		t.Fatal(err)
	}
	low := e.queue(tasks.QueueLow)
	var got []*asynq.TaskInfo
	eventually(t, "cleanup tasks scheduled", func() bool {
		got, _ = e.inspector.ListScheduledTasks(low)
		return len(got) >= 2
	})
	tenants := map[string]bool{}
	for _, ti := range got {
		tenants[ti.Headers[tasks.HeaderTenantID]] = true
		if ti.Type != tasks.TypeReportCleanup {
			t.Errorf("fanned out %s, want %s", ti.Type, tasks.TypeReportCleanup)
		}
		if ti.NextProcessAt.Before(start) || ti.NextProcessAt.After(start.Add(time.Hour+time.Minute)) {
			t.Errorf("task for %s runs at %v, want within the hour after %v", ti.Headers[tasks.HeaderTenantID], ti.NextProcessAt, start)
		}
	}
	if len(got) != 2 || !tenants[a.ID.String()] || !tenants[b.ID.String()] {
		t.Errorf("fan-out reached %v, want exactly the active tenants %s and %s", tenants, a.ID, b.ID)
	}
	// A redelivered fan-out skips the tenants already queued.
	if _, err := e.client.EnqueueSystem(context.Background(), tasks.NightlyReportCleanup(), tasks.Unique(0)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "second fan-out done", func() bool { return len(e.logLines("fan-out done")) == 2 })
	if got, _ := e.inspector.ListScheduledTasks(low); len(got) != 2 {
		t.Errorf("after a second fan-out %d tasks are scheduled, want still 2", len(got))
	}
}
