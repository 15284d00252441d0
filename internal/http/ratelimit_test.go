package http_test

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	tkhttp "github.com/your-org/tenantkit/internal/http"
	"github.com/your-org/tenantkit/internal/tenancy"
	"github.com/your-org/tenantkit/internal/testenv"
)

func TestRateLimit_TenantOverItsRateGets429AndOthersAreServed(t *testing.T) {
	t.Parallel()
	s := testenv.NewStack(t, testenv.StackOptions{RateLimit: tkhttp.RateLimit{PerSecond: 0.5, Burst: 3}})
	noisy := s.Tenant(t, "noisy", tenancy.TierStandard)
	quiet := s.Tenant(t, "quiet", tenancy.TierPremium)

	for i := 0; i < 3; i++ {
		if res := s.Do(t, "GET", "/api/v1/tenant", nil, testenv.AsTenant(t, noisy)...); res.Status != http.StatusOK {
			t.Fatalf("request %d within the burst: %d %s", i, res.Status, res.Body)
		}
	}
	res := s.Do(t, "GET", "/api/v1/tenant", nil, testenv.AsTenant(t, noisy)...)
	if res.Status != http.StatusTooManyRequests || res.Code() != "rate_limited" {
		t.Fatalf("request over the burst: %d %s, want 429 rate_limited", res.Status, res.Body)
	}
	if s, err := strconv.Atoi(res.Header.Get("Retry-After")); err != nil || s < 1 || s > 2 {
		t.Errorf("Retry-After %q, want the seconds until a token is free (1-2 at 0.5/s)", res.Header.Get("Retry-After"))
	}
	if res := s.Do(t, "GET", "/api/v1/tenant", nil, testenv.AsTenant(t, quiet)...); res.Status != http.StatusOK {
		t.Fatalf("another tenant is throttled too: %d %s", res.Status, res.Body)
	}
	if res := s.Do(t, "GET", "/health", nil); res.Status != http.StatusOK {
		t.Fatalf("/health is rate limited: %d", res.Status)
	}
}

// An emptied bucket refills at the configured rate: after the Retry-After the
// 429 named, the tenant is served again.
func TestRateLimit_BucketRefillsAfterRetryAfter(t *testing.T) {
	t.Parallel()
	s := testenv.NewStack(t, testenv.StackOptions{RateLimit: tkhttp.RateLimit{PerSecond: 1, Burst: 2}})
	tn := s.Tenant(t, "refill", tenancy.TierStandard)
	get := func() testenv.Response { return s.Do(t, "GET", "/api/v1/tenant", nil, testenv.AsTenant(t, tn)...) }
	// Drain the bucket; a slow machine may refill a token meanwhile, so keep
	// asking (a bounded number of times) until the limiter says no.
	var res testenv.Response
	for i := 0; i < 10; i++ {
		if res = get(); res.Status != http.StatusOK {
			break
		}
	}
	if res.Status != http.StatusTooManyRequests || res.Code() != "rate_limited" {
		t.Fatalf("over the burst: %d %s, want 429 rate_limited", res.Status, res.Body)
	}
	wait, err := strconv.Atoi(res.Header.Get("Retry-After"))
	if err != nil || wait < 1 || wait > 2 {
		t.Fatalf("Retry-After %q, want whole seconds until a token is free (1 at 1/s)", res.Header.Get("Retry-After"))
	}
	time.Sleep(time.Duration(wait) * time.Second)
	if res := get(); res.Status != http.StatusOK {
		t.Fatalf("after Retry-After (%ds): %d %s, want served again", wait, res.Status, res.Body)
	}
}
