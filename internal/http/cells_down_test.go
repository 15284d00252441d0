package http_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/your-org/tenantkit/internal/testenv"
)

// Stopping the second server answers 503 unavailable with Retry-After to
// its tenants, of every isolation, while the default cell's tenants are
// served; /ready stays 200 reporting the cell; once the server is back its
// tenants are served again. The cluster is this test's own: stopping the
// shared one would fail the other tests.
func TestCells_OtherCellDownServesThisCell(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	cl := testenv.NewCluster(t)
	d2 := cl.Postgres(t)
	// The stopped server is reached directly even when the suite runs
	// behind PgBouncer: a pooler queues clients of a down server instead
	// of failing them (docs/scaling.md, "Failure isolation").
	d2.AppURL = d2.DirectAppURL
	d.AddCell("cell2", d2)
	s := testenv.NewStackOn(t, d, testenv.StackOptions{CacheDisabled: true})
	tenants := placeAll(t, s, map[string]*testenv.DB{"default": d, "cell2": d2}, "down")
	c := client{http: s.Server.Client(), base: s.URL}
	for _, p := range tenants {
		if status, body, err := c.do("POST", "/api/v1/projects", p.token, map[string]string{"name": "before"}); err != nil || status != http.StatusCreated {
			t.Fatalf("%s create: %d %s %v", p.tn.Identifier, status, body, err)
		}
	}

	if err := cl.Stop(); err != nil {
		t.Fatal(err)
	}
	for _, p := range tenants {
		res := s.Do(t, "GET", "/api/v1/projects", nil, testenv.AsTenant(t, &p.tn)...)
		if p.tn.Cell == "cell2" {
			if res.Status != http.StatusServiceUnavailable || res.Code() != "unavailable" || res.Header.Get("Retry-After") == "" {
				t.Errorf("%s on the stopped cell: %d %s (Retry-After %q), want 503 unavailable with Retry-After",
					p.tn.Identifier, res.Status, res.Body, res.Header.Get("Retry-After"))
			}
			continue
		}
		if res.Status != http.StatusOK {
			t.Errorf("%s on the default cell while cell2 is down: %d %s, want 200", p.tn.Identifier, res.Status, res.Body)
		}
	}
	res := s.Do(t, "GET", "/ready", nil)
	var rd struct {
		Status string            `json:"status"`
		Checks map[string]string `json:"checks"`
	}
	if err := json.Unmarshal(res.Body, &rd); err != nil || res.Status != http.StatusOK || rd.Status != "partial" ||
		rd.Checks["postgres_cell2"] != "unavailable" || rd.Checks["postgres"] != "ok" {
		t.Errorf("/ready with cell2 down: %d %s, want 200 partial with postgres ok and postgres_cell2 unavailable", res.Status, res.Body)
	}

	if err := cl.Start(); err != nil {
		t.Fatal(err)
	}
	// Recovery: pooled connections cut by the stop are discarded as they
	// fail; a bounded number of attempts, not a timed wait, decides.
	for _, p := range tenants {
		var last testenv.Response
		for attempt := 0; attempt < 50; attempt++ {
			if last = s.Do(t, "GET", "/api/v1/projects", nil, testenv.AsTenant(t, &p.tn)...); last.Status == http.StatusOK {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		var pg apiPage
		if last.Status != http.StatusOK || json.Unmarshal(last.Body, &pg) != nil || len(pg.Items) != 1 {
			t.Errorf("%s after cell2 returned: %d %s, want its one project", p.tn.Identifier, last.Status, last.Body)
		}
	}
	if res := s.Do(t, "GET", "/ready", nil); res.Status != http.StatusOK || !json.Valid(res.Body) {
		t.Errorf("/ready after recovery: %d %s", res.Status, res.Body)
	}
}
