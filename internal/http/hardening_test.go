package http

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
)

// The /docs page may run only this server's scripts: a Content-Security-Policy
// header (not only the page's <meta>, which a proxy rewriting HTML can drop
// and which cannot forbid framing) allows nothing from elsewhere.
func TestDocs_CSPHeaderAllowsOnlyThisServer(t *testing.T) {
	t.Parallel()
	e := fullServer(t)
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/docs", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("/docs: %d", rec.Code)
	}
	csp := rec.Header().Get("Content-Security-Policy")
	directives := map[string]string{}
	for _, d := range strings.Split(csp, ";") {
		name, value, _ := strings.Cut(strings.TrimSpace(d), " ")
		if name != "" {
			directives[name] = value
		}
	}
	want := map[string]string{
		"default-src":     "'self'",
		"script-src":      "'self'",
		"connect-src":     "'self'",
		"object-src":      "'none'",
		"base-uri":        "'none'",
		"frame-ancestors": "'none'",
	}
	for name, value := range want {
		if directives[name] != value {
			t.Errorf("Content-Security-Policy %s = %q, want %q (header %q)", name, directives[name], value, csp)
		}
	}
	for name, value := range directives {
		if strings.Contains(value, "http") || strings.Contains(value, "*") ||
			(name != "style-src" && strings.Contains(value, "unsafe")) {
			t.Errorf("Content-Security-Policy %s allows %q: only this server may supply content", name, value)
		}
	}
	if !strings.Contains(rec.Body.String(), `http-equiv="Content-Security-Policy"`) {
		t.Error("/docs page lost its <meta> Content-Security-Policy")
	}
}

// A handler panic is the server's fault: 500 internal problem+json that says
// nothing about the panic (no message, no stack, no detail at all); the log
// has it.
func TestPanic_Is500InternalWithoutDetails(t *testing.T) {
	t.Parallel()
	var logs strings.Builder
	e := NewPlain(slog.New(slog.NewTextHandler(&logs, nil)), prometheus.NewRegistry())
	const secret = "pq: password authentication failed for user tenantkit_app at 10.0.0.7"
	e.GET("/boom", func(echo.Context) error { panic(secret) })
	srv := httptest.NewServer(e)
	defer srv.Close()
	res, err := http.Get(srv.URL + "/boom")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusInternalServerError || res.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("panic: %d %s %s, want 500 application/problem+json", res.StatusCode, res.Header.Get("Content-Type"), body)
	}
	var p map[string]any
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("body %s: %v", body, err)
	}
	if p["code"] != "internal" || p["status"] != float64(500) {
		t.Errorf("body %s, want code internal, status 500", body)
	}
	for k := range p {
		switch k {
		case "type", "title", "status", "code", "instance":
		default:
			t.Errorf("body %s has %q: a 500 carries no details", body, k)
		}
	}
	for _, leak := range []string{"password", "tenantkit_app", "goroutine", ".go:", "panic"} {
		if strings.Contains(string(body), leak) {
			t.Errorf("body %s leaks %q", body, leak)
		}
	}
	if !strings.Contains(logs.String(), "password authentication failed") {
		t.Error("the panic is not logged: the operator cannot find it")
	}
}
