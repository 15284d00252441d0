package http

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/your-org/tenantkit/internal/apperr"
	"github.com/your-org/tenantkit/internal/audit"
	"github.com/your-org/tenantkit/internal/tenancy"
	"github.com/your-org/tenantkit/internal/tenantdata"
	"github.com/your-org/tenantkit/internal/tenantmove"
)

// These tests need no services: they hold the OpenAPI document to the
// routes, error table and JSON shapes of the code.

// fullServer registers the kit's own routes (admin on, no resources: the
// resources' routes and schemas are checked in internal/app).
func fullServer(t *testing.T) *echo.Echo {
	t.Helper()
	openAPI, page, assets := Docs()
	return New(Config{
		Log:      slog.New(slog.DiscardHandler),
		Tenancy:  &tenancy.Middleware{Skip: SkipPaths},
		Admin:    &Admin{Token: strings.Repeat("x", 32), Audit: &audit.Trail{}, Archive: &tenantdata.Archiver{}, Moves: &tenantmove.Service{}},
		Registry: prometheus.NewRegistry(),
		OpenAPI:  openAPI, DocsHTML: page, DocsAssets: assets,
	})
}

type spec struct {
	OpenAPI    string                                `json:"openapi"`
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Components struct {
		Schemas         map[string]schema          `json:"schemas"`
		Responses       map[string]json.RawMessage `json:"responses"`
		SecuritySchemes map[string]json.RawMessage `json:"securitySchemes"`
	} `json:"components"`
	Security []map[string][]string `json:"security"`
}

type schema struct {
	Properties map[string]any `json:"properties"`
	Required   []string       `json:"required"`
	Enum       []string       `json:"enum"`
}

type operation struct {
	OperationID string                 `json:"operationId"`
	Security    *[]map[string][]string `json:"security"`
	Parameters  []parameter            `json:"parameters"`
	Responses   map[string]response    `json:"responses"`
}

type parameter struct {
	Ref  string `json:"$ref"`
	Name string `json:"name"`
	In   string `json:"in"`
}

type response struct {
	Ref         string                     `json:"$ref"`
	Description string                     `json:"description"`
	Content     map[string]json.RawMessage `json:"content"`
}

var httpMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

func loadSpec(t *testing.T) (spec, map[string]any) {
	t.Helper()
	raw, _, _ := Docs()
	var s spec
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatalf("openapi.json is not JSON: %v", err)
	}
	var generic map[string]any
	_ = json.Unmarshal(raw, &generic)
	return s, generic
}

// operations yields "METHOD /path" → operation, with path-level parameters merged.
func operations(t *testing.T, s spec) map[string]operation {
	t.Helper()
	out := map[string]operation{}
	for path, item := range s.Paths {
		var shared []parameter
		if raw, ok := item["parameters"]; ok {
			if err := json.Unmarshal(raw, &shared); err != nil {
				t.Fatalf("%s parameters: %v", path, err)
			}
		}
		for key, raw := range item {
			if key == "parameters" || key == "summary" || key == "description" {
				continue
			}
			if !slices.Contains(httpMethods, key) {
				t.Errorf("%s: unknown path item key %q", path, key)
				continue
			}
			var op operation
			if err := json.Unmarshal(raw, &op); err != nil {
				t.Fatalf("%s %s: %v", key, path, err)
			}
			op.Parameters = append(shared, op.Parameters...)
			out[strings.ToUpper(key)+" "+path] = op
		}
	}
	return out
}

var templateParam = regexp.MustCompile(`\{[^}/]+\}|:[^/]+|\*`)

// normalize maps Echo's /:id and /* and OpenAPI's /{id} to one form.
func normalize(path string) string { return templateParam.ReplaceAllString(path, "{}") }

func TestOpenAPI_DocumentIsSelfConsistent(t *testing.T) {
	t.Parallel()
	s, generic := loadSpec(t)
	if !strings.HasPrefix(s.OpenAPI, "3.1.") {
		t.Errorf("openapi = %q, want 3.1.x", s.OpenAPI)
	}
	// Every $ref resolves inside the document.
	var walk func(at string, v any)
	walk = func(at string, v any) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok {
				if _, err := resolvePointer(generic, ref); err != nil {
					t.Errorf("%s: $ref %s: %v", at, ref, err)
				}
			}
			for k, c := range v {
				walk(at+"/"+k, c)
			}
		case []any:
			for i, c := range v {
				walk(at+"/"+strconv.Itoa(i), c)
			}
		}
	}
	walk("#", generic)

	ids := map[string]string{}
	pathParam := regexp.MustCompile(`\{([^}]+)\}`)
	for key, op := range operations(t, s) {
		if op.OperationID == "" {
			t.Errorf("%s: no operationId", key)
		} else if other, dup := ids[op.OperationID]; dup {
			t.Errorf("%s: operationId %q also used by %s", key, op.OperationID, other)
		}
		ids[op.OperationID] = key
		if len(op.Responses) == 0 {
			t.Errorf("%s: no responses", key)
		}
		// Path templates and path parameters agree both ways.
		declared := map[string]bool{}
		for _, p := range op.Parameters {
			if p.Ref != "" {
				raw, err := resolvePointer(generic, p.Ref)
				if err != nil {
					continue // reported by the walk above
				}
				b, _ := json.Marshal(raw)
				_ = json.Unmarshal(b, &p)
			}
			if p.In == "path" {
				declared[p.Name] = true
			}
		}
		_, path, _ := strings.Cut(key, " ")
		for _, m := range pathParam.FindAllStringSubmatch(path, -1) {
			if !declared[m[1]] {
				t.Errorf("%s: path parameter {%s} is not declared", key, m[1])
			}
			delete(declared, m[1])
		}
		for name := range declared {
			t.Errorf("%s: declares path parameter %q that the path lacks", key, name)
		}
		// Only operations and docs are public; everything else says how to authenticate.
		public := op.Security != nil && len(*op.Security) == 0
		if public != (tenancy.MatchesSegmentPrefix(path, []string{"/health", "/ready", "/metrics", "/docs"})) {
			t.Errorf("%s: public=%v, but SkipPaths says otherwise", key, public)
		}
		if strings.HasPrefix(path, "/admin/") && (op.Security == nil || len(*op.Security) != 1 || (*op.Security)[0]["adminBearer"] == nil) {
			t.Errorf("%s: admin operations need security [adminBearer] only", key)
		}
	}
	for _, req := range s.Security {
		for name := range req {
			if _, ok := s.Components.SecuritySchemes[name]; !ok {
				t.Errorf("global security names unknown scheme %q", name)
			}
		}
	}
}

// TestOpenAPI_ErrorsAreProblemJSONWithTheCodesOfTheStatusTable holds every
// error response to problem.go: problem+json, and each code it names maps to
// the status it is documented under.
func TestOpenAPI_ErrorsAreProblemJSONWithTheCodesOfTheStatusTable(t *testing.T) {
	t.Parallel()
	s, generic := loadSpec(t)
	enum := s.Components.Schemas["ErrorCode"].Enum
	var codes []string
	for c := range statusOf {
		codes = append(codes, string(c))
	}
	sort.Strings(codes)
	if got := slices.Sorted(slices.Values(enum)); !slices.Equal(got, codes) {
		t.Errorf("ErrorCode enum = %v, want the codes of statusOf %v", got, codes)
	}
	codeRef := regexp.MustCompile("`([a-z_]+)`")
	for key, op := range operations(t, s) {
		for status, r := range op.Responses {
			n, err := strconv.Atoi(status)
			if err != nil {
				t.Errorf("%s: response %q is not a status code", key, status)
				continue
			}
			if r.Ref != "" {
				raw, err := resolvePointer(generic, r.Ref)
				if err != nil {
					continue
				}
				b, _ := json.Marshal(raw)
				_ = json.Unmarshal(b, &r)
			}
			if n < 400 || key == "GET /ready" {
				continue
			}
			if _, ok := r.Content["application/problem+json"]; !ok || len(r.Content) != 1 {
				t.Errorf("%s %d: error responses must be application/problem+json only", key, n)
			}
			named := 0
			for _, m := range codeRef.FindAllStringSubmatch(r.Description, -1) {
				want, ok := statusOf[apperr.Code(m[1])]
				if !ok {
					continue
				}
				named++
				if want != n {
					t.Errorf("%s %d: documents code %s, which problem.go maps to %d", key, n, m[1], want)
				}
			}
			if named == 0 {
				t.Errorf("%s %d: description names no error code", key, n)
			}
		}
	}
}

// TestOpenAPI_SchemasMatchTheJSONTheHandlersWrite marshals the values the
// kit's own handlers return (resources: internal/app) and compares their keys with the documented properties.
func TestOpenAPI_SchemasMatchTheJSONTheHandlersWrite(t *testing.T) {
	t.Parallel()
	s, _ := loadSpec(t)
	now := time.Now().UTC()
	tn := &tenancy.Tenant{ID: uuid.New(), Identifier: "acme", Name: "Acme", Status: tenancy.StatusActive,
		Tier: tenancy.TierPremium, Isolation: tenancy.IsolationSchema, Metadata: json.RawMessage(`{}`), CreatedAt: now, UpdatedAt: now}
	key := &tenancy.APIKey{ID: uuid.New(), Name: "ci", Prefix: "tk_abcdefgh", CreatedAt: now, RevokedAt: &now}
	cases := map[string]any{
		"Tenant":        tn,
		"TenantPage":    tenantPage{Items: []*tenancy.Tenant{tn}},
		"CurrentTenant": tenantView{ID: tn.ID, Identifier: tn.Identifier, Name: tn.Name, Status: tn.Status, Tier: tn.Tier, Isolation: tn.Isolation},
		"APIKeyCreated": apiKeyCreated{APIKey: key, Key: "tk_secret"},
		"Problem":       Problem{Type: "t", Title: "t", Status: 400, Detail: "d", Code: apperr.ValidationFailed, Instance: "/x", Errors: []apperr.FieldError{{Field: "f", Message: "m"}}},
		"FieldError":    apperr.FieldError{Field: "f", Message: "m"},
		"AuditEvent":    audit.Event{ID: uuid.New(), TenantID: &tn.ID, Action: audit.Create, Diff: json.RawMessage(`{}`), RequestID: "r"},
		"AuditPage":     auditPage{Items: []audit.Event{}},
		"Operation":     tenantmove.Operation{ID: uuid.New(), Progress: tenantmove.Progress{Tables: map[string]*tenantmove.TableProgress{}}},
		"MoveAccepted":  moveAccepted{OperationID: "x", Operation: &tenantmove.Operation{}},
	}
	for name, v := range cases {
		sc, ok := s.Components.Schemas[name]
		if !ok {
			t.Errorf("schema %s missing", name)
			continue
		}
		b, _ := json.Marshal(v)
		var obj map[string]any
		if err := json.Unmarshal(b, &obj); err != nil {
			t.Fatal(err)
		}
		got := slices.Sorted(maps.Keys(obj))
		want := slices.Sorted(maps.Keys(sc.Properties))
		if !slices.Equal(got, want) {
			t.Errorf("schema %s documents %v, the handler writes %v", name, want, got)
		}
		for _, r := range sc.Required {
			if _, ok := sc.Properties[r]; !ok {
				t.Errorf("schema %s requires undocumented %q", name, r)
			}
		}
	}
	// Input schemas name exactly the fields the decoders accept (unknown
	// fields are refused, so a drift would reject documented requests).
	inputs := map[string]any{
		"TenantCreate": tenantInput{},
	}
	for name, v := range inputs {
		b, _ := json.Marshal(v)
		var obj map[string]any
		_ = json.Unmarshal(b, &obj)
		got := slices.Sorted(maps.Keys(obj))
		want := slices.Sorted(maps.Keys(s.Components.Schemas[name].Properties))
		if !slices.Equal(got, want) {
			t.Errorf("input schema %s documents %v, the decoder accepts %v", name, want, got)
		}
	}
}

func resolvePointer(doc map[string]any, ref string) (any, error) {
	if !strings.HasPrefix(ref, "#/") {
		return nil, fmt.Errorf("only local references are allowed")
	}
	var cur any = doc
	for _, part := range strings.Split(ref[2:], "/") {
		part = strings.ReplaceAll(strings.ReplaceAll(part, "~1", "/"), "~0", "~")
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%q is not an object", part)
		}
		if cur, ok = m[part]; !ok {
			return nil, fmt.Errorf("no %q", part)
		}
	}
	return cur, nil
}

func TestDocs_PageAndAssetsAreServedFromTheBinary(t *testing.T) {
	t.Parallel()
	e := fullServer(t)
	get := func(path string) (*http.Response, string) {
		rec := httptest.NewRecorder()
		req, _ := http.NewRequest(http.MethodGet, path, nil)
		e.ServeHTTP(rec, req)
		return rec.Result(), rec.Body.String()
	}
	res, page := get("/docs")
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("/docs: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	links := regexp.MustCompile(`(?:src|href)="([^"]+)"`).FindAllStringSubmatch(page, -1)
	if len(links) < 3 {
		t.Fatalf("/docs links to %d resources, want the stylesheet, the bundle and init.js", len(links))
	}
	for _, m := range links {
		u := m[1]
		if !strings.HasPrefix(u, "/docs/") {
			t.Errorf("/docs loads %s: everything must come from this server under /docs/ (no CDN)", u)
			continue
		}
		res, body := get(u)
		if res.StatusCode != 200 || len(body) == 0 {
			t.Errorf("%s: %d (%d bytes)", u, res.StatusCode, len(body))
		}
		ct := res.Header.Get("Content-Type")
		switch {
		case strings.HasSuffix(u, ".js") && !strings.Contains(ct, "javascript"),
			strings.HasSuffix(u, ".css") && !strings.HasPrefix(ct, "text/css"):
			t.Errorf("%s served as %q", u, ct)
		}
	}
	res, body := get("/docs/openapi.json")
	want, _, _ := Docs()
	if res.StatusCode != 200 || body != string(want) || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		t.Errorf("/docs/openapi.json: %d %s, not the embedded document", res.StatusCode, res.Header.Get("Content-Type"))
	}
	for _, path := range []string{"/docs/assets/", "/docs/assets/nope.js", "/docs/assets/../openapi.json", "/docs/assets/%2e%2e/index.html"} {
		res, body := get(path)
		if res.StatusCode != 404 || res.Header.Get("Content-Type") != "application/problem+json" || !strings.Contains(body, `"not_found"`) {
			t.Errorf("%s: %d %s %s, want 404 problem+json", path, res.StatusCode, res.Header.Get("Content-Type"), body)
		}
	}
}

// TestOpenAPI_ReadinessMatchesTheHandler drives /ready through ok, degraded
// and unavailable checks and holds each answer to the Readiness schema.
func TestOpenAPI_ReadinessMatchesTheHandler(t *testing.T) {
	t.Parallel()
	s, _ := loadSpec(t)
	enum := func(prop string) []string {
		p, _ := s.Components.Schemas["Readiness"].Properties[prop].(map[string]any)
		if prop == "checks" {
			p, _ = p["additionalProperties"].(map[string]any)
		}
		var out []string
		for _, v := range p["enum"].([]any) {
			out = append(out, v.(string))
		}
		return out
	}
	statuses, checkValues := enum("status"), enum("checks")
	down := errors.New("connection refused")
	for name, tc := range map[string]struct {
		checks     map[string]error
		code       int
		wantStatus string
	}{
		"all ok":        {map[string]error{"postgres": nil, "redis": nil}, 200, "ok"},
		"redis down":    {map[string]error{"postgres": nil, "redis": fmt.Errorf("%w: %v", ErrDegraded, down)}, 503, "degraded"},
		"postgres down": {map[string]error{"postgres": down, "redis": fmt.Errorf("%w: %v", ErrDegraded, down)}, 503, "unavailable"},
	} {
		ready := map[string]func(context.Context) error{}
		for k, err := range tc.checks {
			ready[k] = func(context.Context) error { return err }
		}
		e := New(Config{Log: slog.New(slog.DiscardHandler), Tenancy: &tenancy.Middleware{Skip: SkipPaths},
			Registry: prometheus.NewRegistry(), Ready: ready})
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/ready", nil))
		var body struct {
			Status string            `json:"status"`
			Checks map[string]string `json:"checks"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if rec.Code != tc.code || body.Status != tc.wantStatus || !slices.Contains(statuses, body.Status) {
			t.Errorf("%s: %d %+v, want %d status %q (documented: %v)", name, rec.Code, body, tc.code, tc.wantStatus, statuses)
		}
		for k, v := range body.Checks {
			if !slices.Contains(checkValues, v) {
				t.Errorf("%s: check %s = %q, not documented in %v", name, k, v, checkValues)
			}
		}
		if len(body.Checks) != len(tc.checks) {
			t.Errorf("%s: checks %v, want one per dependency", name, body.Checks)
		}
	}
}
