package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/your-org/tenantkit/internal/models"
	"github.com/your-org/tenantkit/internal/tasks"
	"github.com/your-org/tenantkit/internal/tenancy"
	"github.com/your-org/tenantkit/internal/testenv"
)

// The worker binary, configured with two cells on two real servers, runs
// each tenant's task in its placement: report counts come from the tenant's
// own rows, whether they are in shared tables, a schema or a database of
// its own, on either server. Task code is the same as for one cell.
func TestWorker_TasksRunInTheirTenantsPlacementOnEveryCell(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	d2 := testenv.SecondCluster(t).Postgres(t)
	d.AddCell("cell2", d2)
	redisURL := startRedis(t)
	gdb, err := tenancy.OpenGORM(d.Pools(t), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	opt, err := asynq.ParseRedisURI(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	client := asynq.NewClient(opt)
	t.Cleanup(func() { _ = client.Close() })
	reports := &tasks.Reports{Store: models.Reports{DB: gdb}, Tasks: &tasks.Client{Asynq: client}, Log: slog.Default()}

	type placed struct {
		tn       *tenancy.Tenant
		projects int
		report   *models.Report
	}
	var all []*placed
	for i, p := range []struct {
		iso  tenancy.Isolation
		cell string
	}{{tenancy.IsolationRLS, "cell2"}, {tenancy.IsolationSchema, "cell2"}, {tenancy.IsolationDatabase, "cell2"}, {tenancy.IsolationDatabase, "default"}} {
		id := fmt.Sprintf("wk-%s-%d", p.iso, i)
		pl := &placed{tn: d.Place(t, id, p.iso, p.cell), projects: i + 2}
		ctx := tenancy.WithTenant(context.Background(), pl.tn)
		for k := range pl.projects {
			if err := (models.Projects{DB: gdb}).Create(ctx, &models.Project{Name: fmt.Sprint("p", k)}); err != nil {
				t.Fatal(err)
			}
		}
		if pl.report, err = reports.Request(ctx, models.ReportProjectSummary); err != nil {
			t.Fatal(err)
		}
		all = append(all, pl)
	}

	cmd := exec.Command(workerBinary(t))
	cmd.Env = []string{
		"TENANCY_CELLS=default=" + d.AppURL + ",cell2=" + d2.AppURL, "REDIS_URL=" + redisURL,
		"WORKER_HTTP_ADDR=127.0.0.1:0", "WORKER_CONCURRENCY=2", "LOG_FORMAT=json", "LOG_LEVEL=info",
	}
	w := &workerProc{cmd: cmd, out: &syncBuffer{}}
	cmd.Stdout, cmd.Stderr = w.out, w.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("worker output:\n%s", w.out.String())
		}
	})
	w.waitLine(t, `"msg":"worker started"`)
	for _, rec := range w.records() {
		if rec["msg"] == "worker http listening" {
			w.addr, _ = rec["addr"].(string)
		}
	}
	for _, pl := range all {
		ctx := tenancy.WithTenant(context.Background(), pl.tn)
		var got *models.Report
		waitFor(t, time.Minute, "report of "+pl.tn.Identifier, func() bool {
			got, err = (models.Reports{DB: gdb}).Get(ctx, pl.report.ID)
			return err == nil && (got.Status == models.ReportSucceeded || got.Status == models.ReportFailed)
		})
		var res struct {
			ProjectCount int `json:"project_count"`
		}
		if got.Status != models.ReportSucceeded || json.Unmarshal(got.Result, &res) != nil || res.ProjectCount != pl.projects {
			t.Errorf("%s (%s on %s): report %s %s, want succeeded with project_count %d",
				pl.tn.Identifier, pl.tn.Isolation, pl.tn.Cell, got.Status, got.Result, pl.projects)
		}
	}
	if ready := w.get(t, "/ready"); !strings.Contains(ready, `"postgres_cell2":"ok"`) {
		t.Errorf("worker /ready lacks cell2: %s", ready)
	}
}
