package main

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/your-org/tenantkit/internal/testenv"
)

// Invariant 3: the api refuses to serve as a role that could escape
// isolation (the test database's owner is a superuser), and says why.
func TestRun_RefusesARoleThatBypassesIsolation(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	url, _ := testenv.Redis(t)
	env := map[string]string{"DATABASE_URL": d.OwnerURL, "MIGRATE_DATABASE_URL": d.OwnerURL, "REDIS_URL": url,
		"HTTP_ADDR": "127.0.0.1:0", "JWT_SECRET": testenv.JWTSecret}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready, done := make(chan string, 1), make(chan error, 1)
	go func() { done <- run(ctx, nil, func(k string) string { return env[k] }, io.Discard, ready) }()
	select {
	case addr := <-ready:
		cancel()
		<-done
		t.Fatalf("the api started serving on %s as a superuser", addr)
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "superuser") {
			t.Errorf("err = %v, want a refusal naming the superuser role", err)
		}
	}
}
