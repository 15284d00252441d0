package http_test

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"

	"github.com/your-org/tenantkit/internal/models"
	"github.com/your-org/tenantkit/internal/tasks"
	"github.com/your-org/tenantkit/internal/tenancy"
	"github.com/your-org/tenantkit/internal/testenv"
)

// shape is a JSON object's keys as docs/contract.md states them, each with
// its type: uuid, string, time, number, object, items (a list of the
// endpoint's item shape), a "|null" suffix when null is allowed, and a "?"
// prefix for a key that may be absent.
type shape map[string]string

// The contract's shapes (docs/contract.md, "HTTP API" and "Errors").
var (
	contractTenant  = shape{"id": "uuid", "identifier": "string", "name": "string", "status": "string", "tier": "string", "isolation": "string"}
	contractProject = shape{"id": "uuid", "name": "string", "description": "string", "created_at": "time", "updated_at": "time"}
	contractReport  = shape{"id": "uuid", "kind": "string", "status": "string", "result": "object|null", "error": "string|null",
		"created_at": "time", "finished_at": "time|null"}
	contractList    = shape{"items": "items", "next_cursor": "string|null"}
	contractProblem = shape{"type": "string", "title": "string", "status": "number", "code": "string",
		"?detail": "string", "?instance": "string", "?errors": "array"}
)

// TestContract_EveryTenantEndpointMatchesTheContractForBothTiers holds each
// tenant endpoint's status, content type and JSON shape to the contract, for
// a premium (schema) and a standard (RLS) tenant separately: comparing the
// tiers with each other alone would pass a bug both share.
func TestContract_EveryTenantEndpointMatchesTheContractForBothTiers(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	s := testenv.NewStackOn(t, d, testenv.StackOptions{})
	for _, c := range []struct {
		tier      tenancy.Tier
		isolation string
	}{{tenancy.TierPremium, "schema"}, {tenancy.TierStandard, "rls"}} {
		tn := s.Tenant(t, "contract-"+string(c.tier), c.tier)
		as := testenv.AsTenant(t, tn)
		check := func(method, path string, body any, status int, contentType string, want, item shape) map[string]any {
			t.Helper()
			res := s.Do(t, method, path, body, as...)
			where := fmt.Sprintf("%s: %s %s", c.tier, method, path)
			if res.Status != status {
				t.Errorf("%s: status %d, want %d (%s)", where, res.Status, status, res.Body)
			}
			if ct := res.Header.Get("Content-Type"); contentType == "" && len(res.Body) != 0 || contentType != "" && !strings.HasPrefix(ct, contentType) {
				t.Errorf("%s: Content-Type %q body %q, want %q", where, ct, res.Body, contentType)
			}
			if want == nil {
				return nil
			}
			var v map[string]any
			if err := json.Unmarshal(res.Body, &v); err != nil {
				t.Errorf("%s: body %s is not a JSON object: %v", where, res.Body, err)
				return nil
			}
			checkShape(t, where, v, want, item)
			return v
		}

		v := check("GET", "/api/v1/tenant", nil, 200, "application/json", contractTenant, nil)
		if v != nil && (v["id"] != tn.ID.String() || v["tier"] != string(c.tier) || v["isolation"] != c.isolation || v["status"] != "active") {
			t.Errorf("%s: GET /api/v1/tenant = %v, want this tenant, tier %s, isolation %s, active", c.tier, v, c.tier, c.isolation)
		}
		v = check("GET", "/api/v1/projects", nil, 200, "application/json", contractList, contractProject)
		if v != nil && (len(v["items"].([]any)) != 0 || v["next_cursor"] != nil) {
			t.Errorf("%s: empty list = %v, want no items and a null next_cursor", c.tier, v)
		}
		var ids []string
		for _, name := range []string{"a", "b", "c"} {
			p := check("POST", "/api/v1/projects", map[string]string{"name": name, "description": "d"}, 201, "application/json", contractProject, nil)
			if p != nil {
				ids = append(ids, p["id"].(string))
			}
		}
		if len(ids) != 3 {
			t.Fatalf("%s: could not create projects", c.tier)
		}
		v = check("GET", "/api/v1/projects?limit=2", nil, 200, "application/json", contractList, contractProject)
		cursor, _ := v["next_cursor"].(string)
		if cursor == "" {
			t.Fatalf("%s: first page of 2 of 3 has no next_cursor: %v", c.tier, v)
		}
		v = check("GET", "/api/v1/projects?limit=2&cursor="+cursor, nil, 200, "application/json", contractList, contractProject)
		if v != nil && (len(v["items"].([]any)) != 1 || v["next_cursor"] != nil) {
			t.Errorf("%s: last page = %v, want one item and a null next_cursor", c.tier, v)
		}
		check("GET", "/api/v1/projects/"+ids[0], nil, 200, "application/json", contractProject, nil)
		check("PATCH", "/api/v1/projects/"+ids[0], map[string]string{"name": "a2"}, 200, "application/json", contractProject, nil)
		check("DELETE", "/api/v1/projects/"+ids[0], nil, 204, "", nil, nil)
		for _, path := range []string{"/api/v1/projects/" + ids[0], "/api/v1/projects/" + uuid.NewString()} {
			if p := check("GET", path, nil, 404, "application/problem+json", contractProblem, nil); p != nil && p["code"] != "not_found" {
				t.Errorf("%s: GET %s code %v, want not_found", c.tier, path, p["code"])
			}
		}
		if p := check("POST", "/api/v1/projects", map[string]string{"name": ""}, 400, "application/problem+json", contractProblem, nil); p != nil && p["code"] != "validation_failed" {
			t.Errorf("%s: empty name code %v, want validation_failed", c.tier, p["code"])
		}

		r := check("POST", "/api/v1/reports", map[string]string{"kind": "project_summary"}, 202, "application/json", contractReport, nil)
		if r == nil {
			continue
		}
		if r["status"] != models.ReportPending {
			t.Errorf("%s: new report status %v, want pending", c.tier, r["status"])
		}
		check("GET", "/api/v1/reports/"+r["id"].(string), nil, 200, "application/json", contractReport, nil)
		check("GET", "/api/v1/reports/"+uuid.NewString(), nil, 404, "application/problem+json", contractProblem, nil)
	}
}

// checkShape reports every key that is missing, undocumented or of the wrong type.
func checkShape(t *testing.T, where string, v map[string]any, want, item shape) {
	t.Helper()
	var keys []string
	for k := range v {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		typ, ok := want[k]
		if !ok {
			typ, ok = want["?"+k]
		}
		if !ok {
			t.Errorf("%s: key %q is not in the contract's shape (%v)", where, k, keys)
			continue
		}
		if !hasType(v[k], typ, item) {
			t.Errorf("%s: %q = %#v, want %s", where, k, v[k], typ)
		}
		if typ == "items" {
			for i, it := range v[k].([]any) {
				m, ok := it.(map[string]any)
				if !ok {
					t.Errorf("%s: items[%d] = %#v, want an object", where, i, it)
					continue
				}
				checkShape(t, fmt.Sprintf("%s items[%d]", where, i), m, item, nil)
			}
		}
	}
	for k := range want {
		if _, ok := v[k]; !ok && !strings.HasPrefix(k, "?") {
			t.Errorf("%s: key %q is missing (got %v)", where, k, keys)
		}
	}
}

func hasType(x any, typ string, item shape) bool {
	base, nullable := strings.CutSuffix(typ, "|null")
	if x == nil {
		return nullable
	}
	switch base {
	case "string":
		_, ok := x.(string)
		return ok
	case "uuid":
		s, ok := x.(string)
		_, err := uuid.Parse(s)
		return ok && err == nil && len(s) == 36
	case "time":
		s, ok := x.(string)
		_, err := time.Parse(time.RFC3339Nano, s)
		return ok && err == nil
	case "number":
		_, ok := x.(float64)
		return ok
	case "object":
		_, ok := x.(map[string]any)
		return ok
	case "array", "items":
		_, ok := x.([]any)
		return ok
	}
	return false
}

// reportService is the api's report service over the test's database and
// its own Redis queues (nothing runs them: these tests read pending reports).
func reportService(t *testing.T, d *testenv.DB) *tasks.Reports {
	t.Helper()
	url, prefix := testenv.Redis(t)
	opt, err := asynq.ParseRedisURI(url)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	gdb, err := tenancy.OpenGORM(d.App, log)
	if err != nil {
		t.Fatal(err)
	}
	client := asynq.NewClient(opt)
	inspector := asynq.NewInspector(opt)
	t.Cleanup(func() {
		for q := range tasks.Priorities(prefix) {
			_ = inspector.DeleteQueue(q, true)
		}
		_ = inspector.Close()
		_ = client.Close()
	})
	return &tasks.Reports{Store: models.Reports{DB: gdb}, Log: log, Tasks: &tasks.Client{Asynq: client, QueuePrefix: prefix}}
}
