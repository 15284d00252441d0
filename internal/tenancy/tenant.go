// Package tenancy is the framework-free core of the kit: tenants, their
// registry, resolution of a request to a tenant, and the isolation that binds
// every database statement to exactly one tenant.
package tenancy

import (
	"encoding/json"
	"regexp"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/your-org/tenantkit/internal/apperr"
)

// Status is a tenant's lifecycle state; only active tenants are served.
type Status string

const (
	StatusActive       Status = "active"
	StatusSuspended    Status = "suspended"
	StatusProvisioning Status = "provisioning"
)

// Tier is the commercial tier; it decides placement at provisioning.
type Tier string

const (
	TierPremium  Tier = "premium"
	TierStandard Tier = "standard"
)

// Isolation is where a tenant's rows live.
type Isolation string

const (
	IsolationSchema Isolation = "schema" // own schema tenant_<identifier>
	IsolationRLS    Isolation = "rls"    // shared public tables under row-level security
)

// Tenant is one customer of the SaaS.
type Tenant struct {
	ID         uuid.UUID       `json:"id"`
	Identifier string          `json:"identifier"`
	Name       string          `json:"name"`
	Status     Status          `json:"status"`
	Tier       Tier            `json:"tier"`
	Isolation  Isolation       `json:"isolation"`
	Cell       string          `json:"cell"` // the Postgres cluster it lives on (CellOf)
	Metadata   json.RawMessage `json:"metadata"`
	CreatedAt  time.Time       `json:"created_at"`
	UpdatedAt  time.Time       `json:"updated_at"`
}

// Schema is the Postgres schema holding the tenant's tables.
func (t *Tenant) Schema() string {
	if t.Isolation == IsolationSchema {
		return SchemaName(t.Identifier)
	}
	return "public" // rls: the shared tables; database: its own database's"
}

// Active reports whether the tenant may be served.
func (t *Tenant) Active() bool { return t.Status == StatusActive }

var identifierRE = regexp.MustCompile(`^[a-z][a-z0-9-]{1,30}[a-z0-9]$`)

// ValidIdentifier reports whether s is a well-formed tenant identifier.
// It is the only gate between user input and schema names (invariant 5).
func ValidIdentifier(s string) bool { return identifierRE.MatchString(s) }

// ValidateIdentifier returns a validation_failed error for a malformed identifier.
func ValidateIdentifier(s string) error {
	if !ValidIdentifier(s) {
		return apperr.Invalid(apperr.FieldError{Field: "identifier",
			Message: "must match ^[a-z][a-z0-9-]{1,30}[a-z0-9]$ (3-32 chars: lowercase letters, digits, '-')"})
	}
	return nil
}

// SchemaName maps a validated identifier to its schema name. Callers must have
// validated the identifier; the result is always used quoted.
func SchemaName(identifier string) string {
	return "tenant_" + strings.ReplaceAll(identifier, "-", "_")
}

// QuoteIdent quotes a Postgres identifier.
func QuoteIdent(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}
