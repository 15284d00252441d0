package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/your-org/tenantkit/internal/models"
	"github.com/your-org/tenantkit/internal/tasks"
	"github.com/your-org/tenantkit/internal/tenancy"
	"github.com/your-org/tenantkit/internal/testenv"
)

func TestRun_HelpPrintsUsage(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	if err := run(context.Background(), []string{"--help"}, func(string) string { return "" }, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "WORKER_HTTP_ADDR (default :9090)") || !strings.Contains(out.String(), "WORKER_CONCURRENCY") {
		t.Errorf("usage does not document the worker's settings:\n%s", out.String())
	}
}

func TestRun_InvalidConfigListsEveryProblem(t *testing.T) {
	t.Parallel()
	env := map[string]string{"WORKER_CONCURRENCY": "0", "REDIS_URL": "http://nope"}
	err := run(context.Background(), nil, func(k string) string { return env[k] }, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "WORKER_CONCURRENCY") || !strings.Contains(err.Error(), "REDIS_URL") {
		t.Errorf("err = %v, want both problems listed", err)
	}
}

func TestRun_RefusesARoleThatBypassesIsolation(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	env := map[string]string{"DATABASE_URL": d.OwnerURL, "REDIS_URL": "redis://127.0.0.1:1/0", "WORKER_HTTP_ADDR": "127.0.0.1:0"}
	err := run(context.Background(), nil, func(k string) string { return env[k] }, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "superuser") {
		t.Errorf("err = %v, want a refusal naming the superuser role", err)
	}
}

// TestWorker_KilledMidTaskIsRetriedAndReportSucceedsOnce kills a worker
// process while its task is blocked inside the tenant's isolation; a new
// worker recovers the task once asynq's lease on it expires (about a minute).
func TestWorker_KilledMidTaskIsRetriedAndReportSucceedsOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "crash-std", tenancy.TierStandard, 2)
	unlock := f.blockProjects(t)
	r := f.requestReport(t)

	w1 := f.startWorker(t)
	f.waitBlocked(t, r.ID.String())
	if err := w1.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = w1.cmd.Wait()
	// The dead worker's statement is still queued on the lock: end it as
	// Postgres would on noticing the dropped connection.
	if _, err := f.db.Owner.Exec(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = $1 AND usename = $2 AND wait_event_type = 'Lock'`, f.db.Name, testenv.AppRole); err != nil {
		t.Fatal(err)
	}
	unlock()

	w2 := f.startWorker(t)
	status, result := f.waitFinished(t, r.ID.String(), 3*time.Minute)
	if status != models.ReportSucceeded || result != `{"project_count": 2}` {
		t.Fatalf("report after crash and retry: %s %s, want succeeded {project_count: 2}", status, result)
	}
	if n := len(w1.taskLines(tasks.TypeReportGenerate, "succeeded")); n != 0 {
		t.Errorf("killed worker logged %d successes", n)
	}
	done := w2.taskLines(tasks.TypeReportGenerate, "succeeded")
	if len(done) != 1 || done[0]["retry"] != float64(1) || done[0]["tenant_id"] != f.tenant.ID.String() {
		t.Errorf("new worker's task lines %v, want exactly one success on retry 1 carrying tenant_id", done)
	}
	metrics := w2.get(t, "/metrics")
	if !strings.Contains(metrics, `tasks_processed_total{outcome="succeeded",type="report:generate"} 1`) {
		t.Errorf("worker /metrics lacks the success:\n%s", grep(metrics, "tasks_"))
	}
	w2.stop(t)
}

func TestWorker_SIGTERMDrainsTheRunningTask(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "drain-prem", tenancy.TierPremium, 3)
	unlock := f.blockProjects(t)
	r := f.requestReport(t)
	w := f.startWorker(t)
	for _, path := range []string{"/health", "/ready"} {
		if body := w.get(t, path); !strings.Contains(body, `"status":"ok"`) {
			t.Errorf("GET %s = %s, want ok", path, body)
		}
	}
	f.waitBlocked(t, r.ID.String())
	if err := w.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	w.waitLine(t, "shutting down: draining running tasks")
	unlock() // the running task may now finish: the drain must wait for it
	if err := w.cmd.Wait(); err != nil {
		t.Fatalf("worker exited with %v after SIGTERM, want 0\n%s", err, w.out.String())
	}
	status, result := f.waitFinished(t, r.ID.String(), time.Minute)
	if status != models.ReportSucceeded || result != `{"project_count": 3}` {
		t.Errorf("report drained at shutdown: %s %s, want succeeded {project_count: 3}", status, result)
	}
	if !strings.Contains(w.out.String(), `"msg":"worker stopped"`) {
		t.Errorf("no clean stop logged:\n%s", w.out.String())
	}
}

// fixture is one tenant with projects, a private Redis (the worker binary
// uses the production queue names) and the worker binary.
type fixture struct {
	db       *testenv.DB
	redisURL string
	tenant   *tenancy.Tenant
	reports  *tasks.Reports
}

func newFixture(t *testing.T, identifier string, tier tenancy.Tier, projects int) *fixture {
	t.Helper()
	d := testenv.Postgres(t)
	redisURL := startRedis(t)
	gdb, err := tenancy.OpenGORM(d.App, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	tn := d.Tenant(t, identifier, tier)
	ctx := tenancy.WithTenant(context.Background(), tn)
	for i := 0; i < projects; i++ {
		if err := (models.Projects{DB: gdb}).Create(ctx, &models.Project{Name: fmt.Sprint("p", i)}); err != nil {
			t.Fatal(err)
		}
	}
	opt, err := asynq.ParseRedisURI(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	client := asynq.NewClient(opt)
	t.Cleanup(func() { _ = client.Close() })
	return &fixture{db: d, redisURL: redisURL, tenant: tn,
		reports: &tasks.Reports{Store: models.Reports{DB: gdb}, Tasks: &tasks.Client{Asynq: client}, Log: slog.Default()}}
}

func (f *fixture) requestReport(t *testing.T) *models.Report {
	t.Helper()
	r, err := f.reports.Request(tenancy.WithTenant(context.Background(), f.tenant), models.ReportProjectSummary)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// blockProjects locks the tenant's projects table, so that a report task
// blocks inside its count until unlock.
func (f *fixture) blockProjects(t *testing.T) (unlock func()) {
	t.Helper()
	tx, err := f.db.Owner.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(`LOCK TABLE ` + tenancy.QuoteIdent(f.tenant.Schema()) + `.projects IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	unlock = func() { once.Do(func() { _ = tx.Rollback() }) }
	t.Cleanup(unlock)
	return unlock
}

// waitBlocked waits until the report is running and its count waits on the lock.
func (f *fixture) waitBlocked(t *testing.T, id string) {
	t.Helper()
	waitFor(t, time.Minute, "report "+id+" running and blocked", func() bool {
		st, _ := f.report(t, id)
		var waiting int
		_ = f.db.Owner.QueryRow(`SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND usename = $2 AND wait_event_type = 'Lock'`,
			f.db.Name, testenv.AppRole).Scan(&waiting)
		return st == models.ReportRunning && waiting == 1
	})
}

func (f *fixture) report(t *testing.T, id string) (status, result string) {
	t.Helper()
	var res sql.NullString
	err := f.db.Owner.QueryRow(`SELECT status, result::text FROM `+tenancy.QuoteIdent(f.tenant.Schema())+`.reports WHERE id = $1`, id).Scan(&status, &res)
	if err != nil {
		t.Fatalf("read report: %v", err)
	}
	return status, res.String
}

func (f *fixture) waitFinished(t *testing.T, id string, limit time.Duration) (status, result string) {
	t.Helper()
	waitFor(t, limit, "report "+id+" finished", func() bool {
		status, result = f.report(t, id)
		return status == models.ReportSucceeded || status == models.ReportFailed
	})
	return status, result
}

// workerProc is a running worker binary.
type workerProc struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	addr string
}

func (f *fixture) startWorker(t *testing.T) *workerProc {
	t.Helper()
	cmd := exec.Command(workerBinary(t))
	cmd.Env = []string{
		"DATABASE_URL=" + f.db.AppURL, "REDIS_URL=" + f.redisURL, "WORKER_HTTP_ADDR=127.0.0.1:0",
		"WORKER_CONCURRENCY=2", "LOG_FORMAT=json", "LOG_LEVEL=info",
	}
	w := &workerProc{cmd: cmd, out: &syncBuffer{}}
	cmd.Stdout, cmd.Stderr = w.out, w.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
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
	return w
}

func (w *workerProc) waitLine(t *testing.T, substr string) string {
	t.Helper()
	var line string
	waitFor(t, time.Minute, "worker log line "+substr, func() bool {
		for _, l := range strings.Split(w.out.String(), "\n") {
			if strings.Contains(l, substr) {
				line = l
				return true
			}
		}
		if w.cmd.ProcessState != nil {
			t.Fatalf("worker exited: %s", w.out.String())
		}
		return false
	})
	return line
}

func (w *workerProc) records() []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(w.out.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var rec map[string]any
		if json.Unmarshal(sc.Bytes(), &rec) == nil {
			out = append(out, rec)
		}
	}
	return out
}

// taskLines are the worker's per-task log records of typ with outcome.
func (w *workerProc) taskLines(typ, outcome string) []map[string]any {
	var out []map[string]any
	for _, rec := range w.records() {
		if rec["msg"] == "task" && rec["task_type"] == typ && rec["outcome"] == outcome {
			out = append(out, rec)
		}
	}
	return out
}

func (w *workerProc) get(t *testing.T, path string) string {
	t.Helper()
	res, err := http.Get("http://" + w.addr + path)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return string(b)
}

func (w *workerProc) stop(t *testing.T) {
	t.Helper()
	if err := w.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := w.cmd.Wait(); err != nil {
		t.Errorf("worker exited with %v after SIGTERM, want 0", err)
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.StopClusters()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
	buildDir  string
)

// workerBinary builds this command once per test binary.
func workerBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "tenantkit-worker-test-")
		if buildErr != nil {
			return
		}
		buildPath = filepath.Join(buildDir, "worker")
		out, err := exec.Command("go", "build", "-o", buildPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildPath
}

// startRedis runs a private redis-server: the worker binary listens on the
// production queue names, which must not meet other tests' tasks.
func startRedis(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	cmd := exec.Command("redis-server", "--port", fmt.Sprint(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", t.TempDir())
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis-server (needed by the worker's process tests): %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	url := fmt.Sprintf("redis://127.0.0.1:%d/0", port)
	opt, _ := asynq.ParseRedisURI(url)
	insp := asynq.NewInspector(opt)
	defer insp.Close()
	waitFor(t, 30*time.Second, "redis-server on "+url, func() bool { _, err := insp.Queues(); return err == nil })
	return url
}

// waitFor polls cond; the limit only keeps a broken test from hanging.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting: %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func grep(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRun_InvalidConfigNeverPrintsSecrets: the refusal names the bad
// variables, never their secret values.
func TestRun_InvalidConfigNeverPrintsSecrets(t *testing.T) {
	t.Parallel()
	env := map[string]string{"DATABASE_URL": "mysql://app:dbpw-S3CRET@db/x", "REDIS_URL": "redis//:redispw-S3CRET@r",
		"WORKER_CONCURRENCY": "many", "LOG_FORMAT": "xml", "JWT_SECRET": "jwt-S3CRET"}
	var out bytes.Buffer
	err := run(context.Background(), nil, func(k string) string { return env[k] }, &out)
	if err == nil {
		t.Fatal("worker started with an invalid configuration")
	}
	for _, name := range []string{"DATABASE_URL", "REDIS_URL", "WORKER_CONCURRENCY", "LOG_FORMAT"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("message does not name %s:\n%v", name, err)
		}
	}
	for _, s := range []string{"dbpw-S3CRET", "redispw-S3CRET", "jwt-S3CRET"} {
		if strings.Contains(err.Error(), s) || strings.Contains(out.String(), s) {
			t.Errorf("secret %q printed:\n%v\n%s", s, err, out.String())
		}
	}
}
