package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/your-org/tenantkit/internal/testenv"
)

func TestRun_HelpPrintsUsageAndSucceeds(t *testing.T) {
	t.Parallel()
	// Help needs no valid configuration: the environment here is broken on purpose.
	broken := map[string]string{"DATABASE_URL": "mysql://x", "JWT_SECRET": "short"}
	for _, arg := range []string{"--help", "-h", "help"} {
		var out bytes.Buffer
		if err := run(context.Background(), []string{arg}, func(k string) string { return broken[k] }, &out, nil); err != nil {
			t.Errorf("api %s: %v, want success (exit 0)", arg, err)
		}
		for _, want := range []string{"usage: api", "DATABASE_URL", "ADMIN_TOKEN", "JWT_", "TENANCY_"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("api %s: usage lacks %q:\n%s", arg, want, out.String())
			}
		}
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"serve"}, func(string) string { return "" }, &out, nil); err == nil || !strings.Contains(out.String(), "usage: api") {
		t.Errorf("api serve: err=%v, want an error and the usage", err)
	}
}

// TestRun_InvalidConfigurationListsEveryProblemWithoutSecrets: the api
// refuses to start with one message naming every bad variable, and neither
// that message nor anything printed carries a secret.
func TestRun_InvalidConfigurationListsEveryProblemWithoutSecrets(t *testing.T) {
	t.Parallel()
	secrets := []string{"dbpw-S3CRET", "ownerpw-S3CRET", "redispw-S3CRET", "jwt-S3CRET", "admin-S3CRET"}
	env := map[string]string{
		"DATABASE_URL":                "mysql://app:dbpw-S3CRET@db/x",
		"MIGRATE_DATABASE_URL":        "postgres://owner:ownerpw-S3CRET@db:port/x",
		"REDIS_URL":                   "memcached://:redispw-S3CRET@r",
		"JWT_SECRET":                  "jwt-S3CRET",
		"ADMIN_TOKEN":                 "admin-S3CRET",
		"TENANCY_RESOLUTION_STRATEGY": "jwt,subdomain,smoke-signals",
		"TENANCY_ISOLATION_STRATEGY":  "silo",
		"DB_POOL_SIZE":                "-1",
		"LOG_LEVEL":                   "chatty",
	}
	var out bytes.Buffer
	err := run(context.Background(), nil, func(k string) string { return env[k] }, &out, nil)
	if err == nil {
		t.Fatal("api started with an invalid configuration")
	}
	msg := err.Error()
	for _, name := range []string{"DATABASE_URL", "MIGRATE_DATABASE_URL", "REDIS_URL", "JWT_SECRET", "ADMIN_TOKEN",
		"smoke-signals", "TENANCY_DOMAIN_SUFFIX", "TENANCY_ISOLATION_STRATEGY", "DB_POOL_SIZE", "LOG_LEVEL"} {
		if !strings.Contains(msg, name) {
			t.Errorf("message does not name %s:\n%s", name, msg)
		}
	}
	for _, s := range secrets {
		if strings.Contains(msg, s) || strings.Contains(out.String(), s) {
			t.Errorf("secret %q printed:\n%s\n%s", s, msg, out.String())
		}
	}
	if strings.Count(msg, "\n  - ") < 10 {
		t.Errorf("want one message listing every problem, got:\n%s", msg)
	}
}

// syncBuffer is a bytes.Buffer safe for the api's log writes and the test's reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// Why row 2: a chain of identifiers only refuses to start; allowed by
// TENANCY_ALLOW_UNAUTHENTICATED, it starts and warns.
func TestRun_IdentifierOnlyChainRefusesToStartUnlessAllowed(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	url, _ := testenv.Redis(t)
	env := map[string]string{"DATABASE_URL": d.AppURL, "MIGRATE_DATABASE_URL": d.OwnerURL, "REDIS_URL": url,
		"HTTP_ADDR": "127.0.0.1:0", "TENANCY_RESOLUTION_STRATEGY": "header", "LOG_LEVEL": "warn"}
	err := run(context.Background(), nil, func(k string) string { return env[k] }, io.Discard, nil)
	if err == nil || !strings.Contains(err.Error(), "TENANCY_ALLOW_UNAUTHENTICATED") {
		t.Fatalf("header-only chain: %v, want a refusal naming TENANCY_ALLOW_UNAUTHENTICATED", err)
	}

	env["TENANCY_ALLOW_UNAUTHENTICATED"] = "true"
	var out syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	errc := make(chan error, 1)
	go func() { errc <- run(ctx, nil, func(k string) string { return env[k] }, &out, ready) }()
	select {
	case <-ready:
	case err := <-errc:
		t.Fatalf("allowed header-only chain did not start: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("api did not start within 30s")
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"level":"WARN"`) || !strings.Contains(out.String(), "TENANCY_ALLOW_UNAUTHENTICATED=true") {
		t.Errorf("no start-up warning:\n%s", out.String())
	}
}
