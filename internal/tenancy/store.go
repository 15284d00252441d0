package tenancy

import (
	"context"
	"encoding/json"
	"time"

	"github.com/google/uuid"
)

// Lookup is what resolution needs from the tenant registry. The Postgres
// store implements it, and the cache decorates it.
type Lookup interface {
	TenantByID(ctx context.Context, id uuid.UUID) (*Tenant, error)
	TenantByIdentifier(ctx context.Context, identifier string) (*Tenant, error)
	// TenantByAPIKey finds the tenant of an unrevoked key, by the key's hash.
	TenantByAPIKey(ctx context.Context, key string) (*Tenant, error)
}

// Filter selects tenants for List and Count.
type Filter struct {
	Status Status
	Tier   Tier
	Q      string // case-insensitive match on identifier or name
}

// TenantUpdate changes the fields that are set.
type TenantUpdate struct {
	Name     *string
	Status   *Status
	Metadata json.RawMessage // merged into the stored object (jsonb ||)
	// Tier changes the commercial tier only: data moves are separate
	// operations (tenantmove), scheduled by TENANCY_AUTO_MOVE.
	Tier *Tier
}

// APIKey is a tenant's API key as stored: the secret itself is never kept.
type APIKey struct {
	ID        uuid.UUID  `json:"id"`
	TenantID  uuid.UUID  `json:"-"`
	Name      string     `json:"name"`
	Prefix    string     `json:"prefix"`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}
