package tasks_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/hibiken/asynq"

	"github.com/your-org/tenantkit/internal/models"
	"github.com/your-org/tenantkit/internal/tasks"
	"github.com/your-org/tenantkit/internal/tenancy"
	"github.com/your-org/tenantkit/internal/testenv"
)

type reportBody struct {
	ID     string          `json:"id"`
	Kind   string          `json:"kind"`
	Status string          `json:"status"`
	Result json.RawMessage `json:"result"`
	Error  *string         `json:"error"`
}

func TestReports_PremiumAndStandardEachCountOwnProjects(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := testenv.NewStackOn(t, e.DB, testenv.StackOptions{Tasks: e.client})
	prem := e.Tenant(t, "rep-premium", tenancy.TierPremium)
	std := e.Tenant(t, "rep-standard", tenancy.TierStandard)
	other := e.Tenant(t, "rep-other", tenancy.TierStandard)
	want := map[*tenancy.Tenant]int{prem: 3, std: 5, other: 1}
	for tn, n := range want {
		for i := 0; i < n; i++ {
			if res := s.Do(t, "POST", "/api/v1/projects", map[string]string{"name": "p"}, testenv.AsTenant(t, tn)...); res.Status != http.StatusCreated {
				t.Fatalf("create project: %d %s", res.Status, res.Body)
			}
		}
	}
	e.worker(t, nil)

	ids := map[*tenancy.Tenant]string{}
	for _, tn := range []*tenancy.Tenant{prem, std} {
		res := s.Do(t, "POST", "/api/v1/reports", map[string]string{"kind": "project_summary"}, testenv.AsTenant(t, tn)...)
		var r reportBody
		res.JSON(t, &r)
		if res.Status != http.StatusAccepted || r.Status != models.ReportPending || r.Kind != "project_summary" {
			t.Fatalf("POST /api/v1/reports: %d %s, want 202 pending", res.Status, res.Body)
		}
		ids[tn] = r.ID
	}
	for tn, id := range ids {
		var r reportBody
		eventually(t, "report of "+tn.Identifier+" finished", func() bool {
			res := s.Do(t, "GET", "/api/v1/reports/"+id, nil, testenv.AsTenant(t, tn)...)
			res.JSON(t, &r)
			return r.Status == models.ReportSucceeded || r.Status == models.ReportFailed
		})
		var got tasks.ProjectSummary
		if err := json.Unmarshal(r.Result, &got); err != nil || r.Status != models.ReportSucceeded || got.ProjectCount != int64(want[tn]) {
			t.Errorf("%s (%s) report: status %s result %s, want succeeded with project_count %d", tn.Identifier, tn.Isolation, r.Status, r.Result, want[tn])
		}
		if res := s.Do(t, "GET", "/api/v1/reports/"+id, nil, testenv.AsTenant(t, other)...); res.Status != http.StatusNotFound || res.Code() != "not_found" {
			t.Errorf("other tenant GET %s's report: %d %s, want 404 not_found", tn.Identifier, res.Status, res.Body)
		}
	}
	if res := s.Do(t, "POST", "/api/v1/reports", map[string]string{"kind": "nope"}, testenv.AsTenant(t, std)...); res.Status != http.StatusBadRequest {
		t.Errorf("unknown kind: %d %s, want 400", res.Status, res.Body)
	}
}

func TestReports_RedisDownIs503AndStoresNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	down := asynq.NewClient(asynq.RedisClientOpt{Addr: "127.0.0.1:1"}) // nothing listens there
	t.Cleanup(func() { _ = down.Close() })
	s := testenv.NewStackOn(t, e.DB, testenv.StackOptions{Tasks: &tasks.Client{Asynq: down}})
	for _, tier := range []tenancy.Tier{tenancy.TierPremium, tenancy.TierStandard} {
		tn := e.Tenant(t, "down-"+string(tier), tier)
		res := s.Do(t, "POST", "/api/v1/reports", map[string]string{"kind": "project_summary"}, testenv.AsTenant(t, tn)...)
		if res.Status != http.StatusServiceUnavailable || res.Code() != "unavailable" {
			t.Errorf("%s: POST /api/v1/reports with Redis down: %d %s, want 503 unavailable", tier, res.Status, res.Body)
		}
		var n int
		if err := e.Owner.QueryRow(`SELECT count(*) FROM ` + tenancy.QuoteIdent(tn.Schema()) + `.reports`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("%s: %d report rows left behind by a failed enqueue, want 0", tier, n)
		}
	}
}

func TestReportGenerate_RedeliveryAfterFinishDoesNotReapply(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tn := e.Tenant(t, "redeliver", tenancy.TierStandard)
	ctx := tenancy.WithTenant(context.Background(), tn)
	store := models.Reports{DB: e.gdb}
	w := &tasks.ReportWorker{Reports: store, Projects: models.Projects{DB: e.gdb}, Log: e.log}
	e.addProjects(t, tn, 2)

	r, err := store.Create(ctx, models.ReportProjectSummary)
	if err != nil {
		t.Fatal(err)
	}
	// A crash right after the first delivery marked it running: the retry finishes it.
	if _, err := store.Start(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	if err := w.Generate(ctx, tasks.ReportGenerate{ReportID: r.ID}); err != nil {
		t.Fatal(err)
	}
	status, result, finished := e.reportRow(t, tn, r.ID.String())
	if status != models.ReportSucceeded || string(result) != `{"project_count": 2}` || finished == nil {
		t.Fatalf("after retry: %s %s %v, want succeeded {project_count: 2}", status, result, finished)
	}
	// A late duplicate delivery changes nothing, even though the count moved.
	e.addProjects(t, tn, 1)
	if err := w.Generate(ctx, tasks.ReportGenerate{ReportID: r.ID}); err != nil {
		t.Fatal(err)
	}
	status2, result2, finished2 := e.reportRow(t, tn, r.ID.String())
	if status2 != status || string(result2) != string(result) || !finished2.Equal(*finished) {
		t.Errorf("redelivery re-applied: %s %s %v, was %s %s %v", status2, result2, finished2, status, result, finished)
	}
	if ok, err := store.Succeed(ctx, r.ID, tasks.ProjectSummary{ProjectCount: 99}); err != nil || ok {
		t.Errorf("Succeed on a finished report: applied=%v err=%v, want not applied", ok, err)
	}
}

func TestReportCleanup_TouchesOnlyItsTenantsOldReports(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.Tenant(t, "clean-a", tenancy.TierStandard)
	b := e.Tenant(t, "clean-b", tenancy.TierStandard)
	store := models.Reports{DB: e.gdb}
	mk := func(tn *tenancy.Tenant, status string, daysOld int) string {
		r, err := store.Create(tenancy.WithTenant(context.Background(), tn), models.ReportProjectSummary)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.Owner.Exec(`UPDATE public.reports SET status = $2, created_at = now() - make_interval(days => $3) WHERE id = $1`,
			r.ID, status, daysOld); err != nil {
			t.Fatal(err)
		}
		return r.ID.String()
	}
	aOld, aOldPending, aNew := mk(a, models.ReportSucceeded, 40), mk(a, models.ReportPending, 40), mk(a, models.ReportSucceeded, 1)
	bOld := mk(b, models.ReportSucceeded, 40)

	w := &tasks.ReportWorker{Reports: store, Projects: models.Projects{DB: e.gdb}, Log: e.log}
	if err := w.Cleanup(tenancy.WithTenant(context.Background(), a), tasks.ReportCleanup{MaxAgeDays: 30}); err != nil {
		t.Fatal(err)
	}
	var n int
	_ = e.Owner.QueryRow(`SELECT count(*) FROM public.reports WHERE id = $1`, aOld).Scan(&n)
	if n != 0 {
		t.Error("tenant a's old finished report survived its cleanup")
	}
	if st, _, _ := e.reportRow(t, a, aOldPending); st != models.ReportFailed {
		t.Errorf("tenant a's abandoned pending report is %s, want failed", st)
	}
	if st, _, _ := e.reportRow(t, a, aNew); st != models.ReportSucceeded {
		t.Errorf("tenant a's recent report is %s, want kept", st)
	}
	if st, _, _ := e.reportRow(t, b, bOld); st != models.ReportSucceeded {
		t.Errorf("tenant b's report is %s after tenant a's cleanup, want untouched", st)
	}
}
