package tenancy

import (
	"context"

	"github.com/your-org/tenantkit/internal/apperr"
)

type tenantKey struct{}

// WithTenant returns a context bound to t. Every database statement run with
// this context, through the kit's *sql.DB, executes inside t's isolation.
func WithTenant(ctx context.Context, t *Tenant) context.Context {
	return context.WithValue(ctx, tenantKey{}, t)
}

// FromContext returns the tenant bound to ctx, if any.
func FromContext(ctx context.Context) (*Tenant, bool) {
	t, ok := ctx.Value(tenantKey{}).(*Tenant)
	return t, ok && t != nil
}

// MustFromContext returns the bound tenant or an internal error: reaching a
// tenant-scoped code path without one is a wiring bug, never a client error.
func MustFromContext(ctx context.Context) (*Tenant, error) {
	t, ok := FromContext(ctx)
	if !ok {
		return nil, apperr.New(apperr.Internal, "no tenant bound to context")
	}
	return t, nil
}
