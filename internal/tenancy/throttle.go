package tenancy

import (
	"math"
	"net/netip"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"
	"golang.org/x/time/rate"
)

// FailureThrottle bounds what failed credential attempts can make the kit do
// (invariant 11): each client address may fail Burst times, refilled at
// PerSecond; past that its requests are refused before any registry lookup.
// Addresses are tracked only once they fail, in a bounded LRU, so random
// source addresses cannot grow memory; IPv6 clients are grouped by /64, the
// smallest network one client usually holds.
type FailureThrottle struct {
	rate  rate.Limit
	burst int

	mu      sync.Mutex // orders get-or-create of buckets
	buckets *expirable.LRU[netip.Addr, *rate.Limiter]
}

// Defaults of AUTH_FAILURE_BURST and AUTH_FAILURE_RPS.
const (
	DefaultAuthFailureBurst = 50
	DefaultAuthFailureRPS   = 1.0
	failureAddresses        = 65_536 // tracked addresses at most (a few MiB)
)

// NewFailureThrottle returns a throttle allowing burst failures per address,
// refilled at perSecond.
func NewFailureThrottle(perSecond float64, burst int) *FailureThrottle {
	if perSecond <= 0 {
		perSecond = DefaultAuthFailureRPS
	}
	if burst < 1 {
		burst = DefaultAuthFailureBurst
	}
	// A bucket left alone this long is full again: forgetting it changes nothing.
	ttl := max(time.Duration(float64(burst)/perSecond*float64(time.Second)), time.Second)
	return &FailureThrottle{rate: rate.Limit(perSecond), burst: burst,
		buckets: expirable.NewLRU[netip.Addr, *rate.Limiter](failureAddresses, nil, ttl)}
}

// Sibling returns an empty throttle with f's settings: a budget of its own
// for another kind of credential (the admin token), so that failures of one
// kind never lock callers of the other out.
func (f *FailureThrottle) Sibling() *FailureThrottle {
	return NewFailureThrottle(float64(f.rate), f.burst)
}

// Wait returns how long addr must wait before its next attempt, zero if it may
// try now. It never creates state.
func (f *FailureThrottle) Wait(addr netip.Addr) time.Duration {
	lim, ok := f.buckets.Peek(clientKey(addr))
	if !ok {
		return 0
	}
	tokens := lim.Tokens()
	if tokens >= 1 {
		return 0
	}
	return time.Duration(math.Ceil((1 - tokens) / float64(f.rate) * float64(time.Second)))
}

// Failed records a failed attempt of addr.
func (f *FailureThrottle) Failed(addr netip.Addr) {
	k := clientKey(addr)
	f.mu.Lock()
	lim, ok := f.buckets.Get(k)
	if !ok {
		lim = rate.NewLimiter(f.rate, f.burst)
	}
	f.buckets.Add(k, lim) // refreshes its expiry: a bucket still draining is not forgotten
	f.mu.Unlock()
	lim.Allow()
}

// Tracked is the number of addresses with recent failures.
func (f *FailureThrottle) Tracked() int { return f.buckets.Len() }

func clientKey(a netip.Addr) netip.Addr {
	if a.Is6() && !a.Is4In6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a.Unmap()
}
