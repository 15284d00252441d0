package http_test

import (
	"net/http"
	"testing"

	"github.com/google/uuid"

	"github.com/your-org/tenantkit/internal/tenancy"
	"github.com/your-org/tenantkit/internal/testenv"
)

func TestUnavailable_DatabaseDownIs503NotInternal(t *testing.T) {
	t.Parallel()
	d := *testenv.Postgres(t)
	dead, err := tenancy.OpenDB("postgres://tenantkit_app@127.0.0.1:1/nowhere?sslmode=disable&connect_timeout=2", tenancy.PoolConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dead.Close() })
	d.App = dead
	s := testenv.NewStackOn(t, &d, testenv.StackOptions{})

	res := s.Do(t, "GET", "/api/v1/tenant", nil, "Authorization", "Bearer "+testenv.Token(t, uuid.NewString()))
	if res.Status != http.StatusServiceUnavailable || res.Code() != "unavailable" {
		t.Fatalf("tenant lookup with the database down: %d %s, want 503 unavailable", res.Status, res.Body)
	}
	if res.Header.Get("Retry-After") == "" {
		t.Errorf("503 without Retry-After")
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("content type %q", ct)
	}
}
