package http

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"net/netip"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/your-org/tenantkit/internal/apperr"
	"github.com/your-org/tenantkit/internal/audit"
	"github.com/your-org/tenantkit/internal/page"
	"github.com/your-org/tenantkit/internal/tenancy"
	"github.com/your-org/tenantkit/internal/tenantdata"
	"github.com/your-org/tenantkit/internal/tenantmove"
)

// AdminStore is what the admin API reads and writes besides the lifecycle.
type AdminStore interface {
	TenantByID(ctx context.Context, id uuid.UUID) (*tenancy.Tenant, error)
	List(ctx context.Context, f tenancy.Filter, limit int, after *page.Cursor) ([]*tenancy.Tenant, *string, error)
	CreateAPIKey(ctx context.Context, tenantID uuid.UUID, name string) (*tenancy.APIKey, string, error)
	RevokeAPIKey(ctx context.Context, tenantID, keyID uuid.UUID) error
}

// Admin is the operator API under /admin/v1, guarded by ADMIN_TOKEN.
type Admin struct {
	Token     string
	Lifecycle *tenancy.Lifecycle
	Store     AdminStore
	Audit     *audit.Trail // nil: no audit trail (and no /audit route)
	// ActorHeader names the request header whose value is recorded as the
	// audit actor (ADMIN_ACTOR_HEADER); empty: the token's fingerprint.
	ActorHeader string
	Archive     *tenantdata.Archiver // nil: no export/import routes
	Moves       *tenantmove.Service  // nil: no move/operations routes
	// AutoMove (TENANCY_AUTO_MOVE): a PATCH that changes the tier schedules
	// the move its placement implies.
	AutoMove bool
}

// register adds the routes. Failed admin tokens are throttled per address
// with the settings of tenant's failure throttle (when set), in a budget of
// their own: a flood of bad tenant credentials never locks the operator out.
func (a *Admin) register(g *echo.Group, tenant *tenancy.Middleware) {
	g.Use(a.authenticate(tenant))
	if a.Audit != nil {
		g.Use(a.auditContext)
		g.GET("/audit", a.listAudit)
	}
	g.POST("/tenants", a.createTenant)
	g.GET("/tenants", a.listTenants)
	g.GET("/tenants/:id", a.getTenant)
	g.PATCH("/tenants/:id", a.updateTenant)
	g.DELETE("/tenants/:id", a.deleteTenant)
	g.POST("/tenants/:id/api-keys", a.createAPIKey)
	g.DELETE("/tenants/:id/api-keys/:key_id", a.revokeAPIKey)
	if a.Archive != nil {
		g.GET("/tenants/:id/export", a.exportTenant)
		g.POST("/tenants/import", a.importTenant)
	}
	if a.Moves != nil {
		g.POST("/tenants/:id/move", a.moveTenant)
		g.GET("/operations/:id", a.getOperation)
	}
}

// authenticate compares hashes in constant time, so neither the token's
// bytes nor its length leak through timing; tenant credentials never pass.
// Past the failure budget of the caller's address it answers 429 before
// comparing anything, as the tenant middleware does for tenant credentials.
func (a *Admin) authenticate(tenant *tenancy.Middleware) echo.MiddlewareFunc {
	want := sha256.Sum256([]byte(a.Token))
	var failures *tenancy.FailureThrottle
	var proxies tenancy.TrustedProxies
	if tenant != nil && tenant.Failures != nil {
		failures, proxies = tenant.Failures.Sibling(), tenant.Proxies
	}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			var client netip.Addr
			if failures != nil {
				client = proxies.ClientIP(c.Request())
				if wait := failures.Wait(client); wait > 0 {
					return apperr.Throttled(wait, "too many failed credential attempts from this address, retry later")
				}
			}
			tok, ok := tenancy.BearerToken(c.Request())
			if !ok || tok == "" {
				return apperr.New(apperr.MissingCredentials, "admin API needs Authorization: Bearer $ADMIN_TOKEN")
			}
			got := sha256.Sum256([]byte(tok))
			if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
				if failures != nil {
					failures.Failed(client)
				}
				return apperr.New(apperr.InvalidCredentials, "admin token is invalid")
			}
			return next(c)
		}
	}
}

type tenantInput struct {
	ID         uuid.UUID       `json:"id"` // optional: imports, PREMIUM_TENANT_IDS
	Identifier string          `json:"identifier"`
	Name       string          `json:"name"`
	Tier       tenancy.Tier    `json:"tier"`
	Metadata   json.RawMessage `json:"metadata"`
	// Placement overrides (docs/scaling.md, "Cells").
	Isolation tenancy.Isolation `json:"isolation"`
	Cell      string            `json:"cell"`
}

func (a *Admin) createTenant(c echo.Context) error {
	var in tenantInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	if in.Tier == "" {
		in.Tier = tenancy.TierStandard
	}
	t, err := a.Lifecycle.Create(c.Request().Context(), tenancy.NewTenant{ID: in.ID,
		Identifier: in.Identifier, Name: in.Name, Tier: in.Tier, Metadata: in.Metadata,
		Isolation: in.Isolation, Cell: in.Cell})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, t)
}

type tenantPage struct {
	Items      []*tenancy.Tenant `json:"items"`
	NextCursor *string           `json:"next_cursor"`
}

func (a *Admin) listTenants(c echo.Context) error {
	f := tenancy.Filter{Status: tenancy.Status(c.QueryParam("status")), Tier: tenancy.Tier(c.QueryParam("tier")), Q: c.QueryParam("q")}
	var fields []apperr.FieldError
	switch f.Status {
	case "", tenancy.StatusActive, tenancy.StatusSuspended, tenancy.StatusProvisioning:
	default:
		fields = append(fields, apperr.FieldError{Field: "status", Message: "must be active, suspended or provisioning"})
	}
	switch f.Tier {
	case "", tenancy.TierPremium, tenancy.TierStandard:
	default:
		fields = append(fields, apperr.FieldError{Field: "tier", Message: "must be premium or standard"})
	}
	if utf8.RuneCountInString(f.Q) > 200 {
		fields = append(fields, apperr.FieldError{Field: "q", Message: "must be at most 200 characters"})
	}
	if len(fields) > 0 {
		return apperr.Invalid(fields...)
	}
	limit, after, err := pageQuery(c)
	if err != nil {
		return err
	}
	items, next, err := a.Store.List(c.Request().Context(), f, limit, after)
	if err != nil {
		return err
	}
	if items == nil {
		items = []*tenancy.Tenant{}
	}
	return c.JSON(http.StatusOK, tenantPage{Items: items, NextCursor: next})
}

func (a *Admin) getTenant(c echo.Context) error {
	id, err := pathID(c, "id", "tenant")
	if err != nil {
		return err
	}
	t, err := a.Store.TenantByID(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, t)
}

func (a *Admin) updateTenant(c echo.Context) error {
	id, err := pathID(c, "id", "tenant")
	if err != nil {
		return err
	}
	var in struct {
		Name     *string         `json:"name"`
		Status   *tenancy.Status `json:"status"`
		Metadata json.RawMessage `json:"metadata"`
		Tier     *tenancy.Tier   `json:"tier"`
	}
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	t, err := a.Lifecycle.Update(c.Request().Context(), id, tenancy.TenantUpdate{Name: in.Name, Status: in.Status, Metadata: in.Metadata, Tier: in.Tier})
	if err != nil {
		return err
	}
	if err := a.autoMove(c, t); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, t)
}

func (a *Admin) deleteTenant(c echo.Context) error {
	id, err := pathID(c, "id", "tenant")
	if err != nil {
		return err
	}
	if err := a.Lifecycle.Delete(c.Request().Context(), id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

type apiKeyCreated struct {
	*tenancy.APIKey
	Key string `json:"key"`
}

func (a *Admin) createAPIKey(c echo.Context) error {
	id, err := pathID(c, "id", "tenant")
	if err != nil {
		return err
	}
	var in struct {
		Name string `json:"name"`
	}
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	if n := utf8.RuneCountInString(in.Name); n < 1 || n > 200 {
		return apperr.Invalid(apperr.FieldError{Field: "name", Message: "must be 1 to 200 characters"})
	}
	k, secret, err := a.Store.CreateAPIKey(c.Request().Context(), id, in.Name)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, apiKeyCreated{APIKey: k, Key: secret})
}

func (a *Admin) revokeAPIKey(c echo.Context) error {
	id, err := pathID(c, "id", "tenant")
	if err != nil {
		return err
	}
	keyID, err := pathID(c, "key_id", "api key")
	if err != nil {
		return err
	}
	if err := a.Store.RevokeAPIKey(c.Request().Context(), id, keyID); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
