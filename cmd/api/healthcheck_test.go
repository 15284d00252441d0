package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHealthcheck_SucceedsOnlyWhenHealthAnswers2xx(t *testing.T) {
	t.Parallel()
	status := map[string]int{"/health": 200, "/broken": 503}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s, ok := status[r.URL.Path]; ok {
			w.WriteHeader(s)
			return
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	env := func(addr string) func(string) string {
		return func(k string) string {
			if k == "HTTP_ADDR" {
				return addr
			}
			return ""
		}
	}
	ctx := context.Background()
	// The default URL comes from HTTP_ADDR, as in the Dockerfile HEALTHCHECK.
	if err := run(ctx, []string{"healthcheck"}, env(":"+port), io.Discard, nil); err != nil {
		t.Errorf("healthcheck of a healthy api: %v", err)
	}
	if err := run(ctx, []string{"healthcheck", srv.URL + "/broken"}, env(""), io.Discard, nil); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("healthcheck of a 503: %v, want an error naming 503", err)
	}
	if err := run(ctx, []string{"healthcheck"}, env("127.0.0.1:1"), io.Discard, nil); err == nil {
		t.Error("healthcheck with nothing listening succeeded")
	}
	if err := run(ctx, []string{"healthcheck", "a", "b"}, env(""), io.Discard, nil); err == nil {
		t.Error("healthcheck accepted two URLs")
	}
}
