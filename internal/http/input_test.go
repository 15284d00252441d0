package http_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/your-org/tenantkit/internal/apperr"
	"github.com/your-org/tenantkit/internal/tenancy"
	"github.com/your-org/tenantkit/internal/testenv"
)

// bodyRoute is a route that decodes a JSON body, with the credentials it needs.
type bodyRoute struct {
	method, path string
	headers      []string
}

func bodyRoutes(t testing.TB, s *testenv.Stack, tn *tenancy.Tenant) []bodyRoute {
	return []bodyRoute{
		{"POST", "/api/v1/projects", testenv.AsTenant(t, tn)},
		{"POST", "/admin/v1/tenants", testenv.AsAdmin()},
		{"PATCH", "/admin/v1/tenants/" + tn.ID.String(), testenv.AsAdmin()},
		{"POST", "/admin/v1/tenants/" + tn.ID.String() + "/api-keys", testenv.AsAdmin()},
	}
}

// hideLength makes the client send a chunked body with no Content-Length.
type hideLength struct{ io.Reader }

func TestInput_MalformedBodiesAre400(t *testing.T) {
	t.Parallel()
	s := testenv.NewStack(t, testenv.StackOptions{})
	tn := s.Tenant(t, "inputs", tenancy.TierStandard)
	bodies := map[string]string{
		"truncated":        `{"name": "x"`,
		"not json":         `name=x`,
		"trailing garbage": `{"name": "x"} {"name": "y"}`,
		"trailing token":   `{"name": "x"}]`,
		"empty":            ``,
		"whitespace only":  "  \n ",
		"unknown field":    `{"name": "x", "identifier": "inputs-2", "evil": true}`,
		"single quotes":    `{'name': 'x'}`,
		"stray byte":       `{"name": "x"` + "\xff" + `}`,
		"deeply nested":    strings.Repeat("[", 5000) + strings.Repeat("]", 5000),
		"null byte":        "{\"name\":\x00}",
	}
	for _, r := range bodyRoutes(t, s, tn) {
		for what, b := range bodies {
			res := s.Do(t, r.method, r.path, []byte(b), r.headers...)
			p := requireProblem(t, fmt.Sprintf("%s %s %s", r.method, r.path, what), res, 400, apperr.BadRequest)
			if what == "unknown field" && !strings.Contains(p.Detail, "unknown field") {
				t.Errorf("%s %s: unknown field detail %q does not say so", r.method, r.path, p.Detail)
			}
		}
	}
	// Wrong JSON types are validation failures naming the field.
	for _, c := range []struct{ path, body, field string }{
		{"/api/v1/projects", `{"name": 5}`, "name"},
		{"/api/v1/projects", `{"name": "x", "description": ["a"]}`, "description"},
		{"/admin/v1/tenants", `{"identifier": 7, "name": "x"}`, "identifier"},
	} {
		h := testenv.AsAdmin()
		if strings.HasPrefix(c.path, "/api") {
			h = testenv.AsTenant(t, tn)
		}
		p := requireProblem(t, c.body, s.Do(t, "POST", c.path, []byte(c.body), h...), 400, apperr.ValidationFailed)
		if len(p.Errors) != 1 || p.Errors[0].Field != c.field {
			t.Errorf("%s: errors %+v, want one for %s", c.body, p.Errors, c.field)
		}
	}
}

func TestInput_OversizeBodiesAre413(t *testing.T) {
	t.Parallel()
	s := testenv.NewStack(t, testenv.StackOptions{})
	tn := s.Tenant(t, "big-bodies", tenancy.TierStandard)
	// A syntactically valid object just over the limit, so only its size is wrong.
	big := []byte(`{"name": "x", "description": "` + strings.Repeat("d", testMaxBody) + `"}`)
	for _, r := range bodyRoutes(t, s, tn) {
		what := r.method + " " + r.path
		requireProblem(t, what+" with Content-Length", s.Do(t, r.method, r.path, big, r.headers...), 413, apperr.PayloadTooLarge)

		req := newReq(t, s, r.method, r.path, hideLength{bytes.NewReader(big)}, append([]string{"Content-Type", "application/json"}, r.headers...)...)
		if req.ContentLength != 0 {
			t.Fatalf("request has a Content-Length; the chunked case is not tested")
		}
		requireProblem(t, what+" chunked", doReq(t, s, req), 413, apperr.PayloadTooLarge)

		// A lying Content-Length under the limit with a larger chunked body cannot be sent by
		// net/http; an oversize body before any credential check is refused early.
	}
	requireProblem(t, "oversize without credentials", s.Do(t, "POST", "/api/v1/projects", big), 413, apperr.PayloadTooLarge)

	// Exactly at the limit is accepted as far as size goes.
	pad := testMaxBody - len(`{"name": "x", "description": ""}`)
	atLimit := []byte(`{"name": "x", "description": "` + strings.Repeat(" ", pad) + `"}`)
	if len(atLimit) != testMaxBody {
		t.Fatalf("at-limit body is %d bytes", len(atLimit))
	}
	res := s.Do(t, "POST", "/api/v1/projects", atLimit, testenv.AsTenant(t, tn)...)
	if res.Status == http.StatusRequestEntityTooLarge {
		t.Errorf("body of exactly 1 MiB refused as too large")
	}
	requireProblem(t, "1 MiB description", res, 400, apperr.ValidationFailed) // description is capped at 10,000 chars
}

const testMaxBody = 1 << 20

func TestInput_NonJSONMediaTypesAre415(t *testing.T) {
	t.Parallel()
	s := testenv.NewStack(t, testenv.StackOptions{})
	tn := s.Tenant(t, "media", tenancy.TierStandard)
	body := []byte(`{"name": "x"}`)
	for _, r := range bodyRoutes(t, s, tn) {
		for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/xml", "text/json", "application/jsonx", "garbage;;", "application/json-patch"} {
			requireProblem(t, r.method+" "+r.path+" "+ct, s.Do(t, r.method, r.path, body, append(r.headers, "Content-Type", ct)...), 415, apperr.UnsupportedMediaType)
		}
		req := newReq(t, s, r.method, r.path, bytes.NewReader(body), r.headers...) // no Content-Type at all
		requireProblem(t, r.method+" "+r.path+" no content type", doReq(t, s, req), 415, apperr.UnsupportedMediaType)
	}
	for i, ct := range []string{"application/json", "application/json; charset=utf-8", "Application/JSON", "application/merge-patch+json"} {
		res := s.Do(t, "POST", "/api/v1/projects", []byte(fmt.Sprintf(`{"name": "ok %d"}`, i)), append(testenv.AsTenant(t, tn), "Content-Type", ct)...)
		if res.Status != http.StatusCreated {
			t.Errorf("Content-Type %q: %d %s, want 201", ct, res.Status, res.Body)
		}
	}
}

func TestInput_ValidationFailures(t *testing.T) {
	t.Parallel()
	s := testenv.NewStack(t, testenv.StackOptions{})
	tn := s.Tenant(t, "valid", tenancy.TierPremium)
	h := testenv.AsTenant(t, tn)
	check := func(what string, res testenv.Response, field string) {
		t.Helper()
		p := requireProblem(t, what, res, 400, apperr.ValidationFailed)
		for _, e := range p.Errors {
			if e.Field == field {
				return
			}
		}
		t.Errorf("%s: errors %+v name no %q", what, p.Errors, field)
	}
	check("project name of 201 chars", s.Do(t, "POST", "/api/v1/projects", map[string]string{"name": strings.Repeat("n", 201)}, h...), "name")
	check("project name of 201 runes", s.Do(t, "POST", "/api/v1/projects", map[string]string{"name": strings.Repeat("é", 201)}, h...), "name")
	check("empty project name", s.Do(t, "POST", "/api/v1/projects", map[string]string{"name": ""}, h...), "name")
	check("missing project name", s.Do(t, "POST", "/api/v1/projects", map[string]string{"description": "d"}, h...), "name")
	check("tenant name of 201 chars", s.Do(t, "POST", "/admin/v1/tenants", map[string]string{"identifier": "long-name", "name": strings.Repeat("n", 201)}, testenv.AsAdmin()...), "name")
	for _, ok := range []string{strings.Repeat("n", 200), strings.Repeat("é", 200), "x"} {
		if res := s.Do(t, "POST", "/api/v1/projects", map[string]string{"name": ok}, h...); res.Status != http.StatusCreated {
			t.Errorf("project name of %d runes: %d %s, want 201", len([]rune(ok)), res.Status, res.Body)
		}
	}
	for _, path := range []string{"/api/v1/projects", "/admin/v1/tenants"} {
		hh := h
		if strings.HasPrefix(path, "/admin") {
			hh = testenv.AsAdmin()
		}
		for _, l := range []string{"0", "101", "-1", "x", "1.5", "99999999999999999999", "%00"} {
			check(path+" limit="+l, s.Do(t, "GET", path+"?limit="+l, nil, hh...), "limit")
		}
		for _, c := range []string{"garbage", "%27%3B--", url.QueryEscape(b64("2024-01-01T00:00:00Z|not-a-uuid")), url.QueryEscape(b64("no separator")), "AAAA", strings.Repeat("A", 300)} {
			check(path+" cursor="+c, s.Do(t, "GET", path+"?cursor="+c, nil, hh...), "cursor")
		}
		for _, l := range []string{"1", "100"} {
			if res := s.Do(t, "GET", path+"?limit="+l, nil, hh...); res.Status != http.StatusOK {
				t.Errorf("%s limit=%s: %d %s", path, l, res.Status, res.Body)
			}
		}
	}
	// A cursor made by the API pages on.
	list := s.Do(t, "GET", "/api/v1/projects?limit=1", nil, h...)
	var pg struct {
		NextCursor *string `json:"next_cursor"`
	}
	list.JSON(t, &pg)
	if pg.NextCursor == nil {
		t.Fatal("no next cursor with 3 projects and limit=1")
	}
	if res := s.Do(t, "GET", "/api/v1/projects?limit=1&cursor="+url.QueryEscape(*pg.NextCursor), nil, h...); res.Status != http.StatusOK {
		t.Errorf("API cursor refused: %d %s", res.Status, res.Body)
	}
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// TestInput_ErrorsAreProblemJSON: routing and method errors also answer problem+json.
func TestInput_ErrorsAreProblemJSON(t *testing.T) {
	t.Parallel()
	s := testenv.NewStack(t, testenv.StackOptions{})
	tn := s.Tenant(t, "routes", tenancy.TierStandard)
	h := testenv.AsTenant(t, tn)
	requireProblem(t, "unknown route", s.Do(t, "GET", "/api/v1/nothing-here", nil, h...), 404, apperr.NotFound)
	requireProblem(t, "malformed project id", s.Do(t, "GET", "/api/v1/projects/not-a-uuid", nil, h...), 404, apperr.NotFound)
	requireProblem(t, "sql in project id", s.Do(t, "GET", "/api/v1/projects/1%27%20OR%20%271%27=%271", nil, h...), 404, apperr.NotFound)
	res := s.Do(t, "PUT", "/api/v1/projects", nil, h...)
	if res.Status != http.StatusMethodNotAllowed {
		t.Errorf("PUT /api/v1/projects: %d, want 405", res.Status)
	}
	requireProblem(t, "method not allowed", res, 405, apperr.MethodNotAllowed)
	if res := s.Do(t, "HEAD", "/api/v1/nothing-here", nil, h...); res.Status != http.StatusNotFound || len(res.Body) != 0 {
		t.Errorf("HEAD unknown route: %d %q", res.Status, res.Body)
	}
}
