package tenancy

import (
	"context"
	"encoding/json"
	"fmt"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/your-org/tenantkit/internal/apperr"
)

// Registry is what the lifecycle needs of the tenant store; the cached store
// implements it too, so every write invalidates caches on its way.
type Registry interface {
	TenantByID(ctx context.Context, id uuid.UUID) (*Tenant, error)
	Create(ctx context.Context, t *Tenant) error
	Update(ctx context.Context, id uuid.UUID, u TenantUpdate) (*Tenant, error)
	Delete(ctx context.Context, id uuid.UUID) error
}

// Lifecycle creates, changes and destroys tenants: registry row and storage together.
type Lifecycle struct {
	Registry    Registry
	Provisioner *Provisioner
	Placement   Placement
	// TierRule derives the tier from metadata (TENANCY_PREMIUM_RULE); nil: none.
	TierRule *TierRule
	// QueryCache, when set, has the generation of a deleted tenant's cached
	// queries bumped (querycache.Plugin), so that no process serves them
	// again, even to a tenant re-created with the same id.
	QueryCache QueryCacheInvalidator
	// Cells are the configured cell names, default first (TENANCY_CELLS);
	// empty: the default cell only. Counter counts tenants per cell for the
	// placement policy (PlaceCell).
	Cells   []string
	Counter CellCounter
	// Destroyed, when set, hears of each tenant whose storage Delete
	// destroyed (Pools.Forget closes a database tenant's pool).
	Destroyed func(*Tenant)
}

// QueryCacheInvalidator orphans the cached queries of the context's tenant.
type QueryCacheInvalidator interface {
	Invalidate(ctx context.Context) error
}

// NewTenant is the input of Create.
type NewTenant struct {
	// ID is generated when zero; a caller that knows it (an import, a seed)
	// passes it, so that PREMIUM_TENANT_IDS can place the tenant.
	ID         uuid.UUID
	Identifier string
	Name       string
	Tier       Tier
	Metadata   json.RawMessage
	// Isolation overrides the placement when set (imports choose the tier).
	Isolation Isolation
	// Cell places the tenant on that cell; empty: the placement policy.
	Cell string
	// Fill runs after provisioning and before activation (an import loads
	// the tenant's rows here); its failure undoes the whole creation.
	Fill func(ctx context.Context, t *Tenant) error
}

// Validate lists every invalid field.
func (n NewTenant) Validate() error {
	var fields []apperr.FieldError
	if err := ValidateIdentifier(n.Identifier); err != nil {
		e, _ := apperr.As(err)
		fields = append(fields, e.Fields...)
	}
	if msg := validName(n.Name); msg != "" {
		fields = append(fields, apperr.FieldError{Field: "name", Message: msg})
	}
	if n.Tier != TierPremium && n.Tier != TierStandard {
		fields = append(fields, apperr.FieldError{Field: "tier", Message: "must be premium or standard"})
	}
	if msg := validMetadata(n.Metadata); msg != "" {
		fields = append(fields, apperr.FieldError{Field: "metadata", Message: msg})
	}
	if n.Isolation != "" && n.Isolation != IsolationSchema && n.Isolation != IsolationRLS && n.Isolation != IsolationDatabase {
		fields = append(fields, apperr.FieldError{Field: "isolation", Message: "must be rls, schema or database"})
	}
	if n.Cell != "" && !ValidCellName(n.Cell) {
		fields = append(fields, apperr.FieldError{Field: "cell", Message: "must name a configured cell"})
	}
	if len(fields) > 0 {
		return apperr.Invalid(fields...)
	}
	return nil
}

func validName(name string) string {
	if n := utf8.RuneCountInString(name); n < 1 || n > 200 {
		return "must be 1 to 200 characters"
	}
	return ""
}

func validMetadata(m json.RawMessage) string {
	if len(m) == 0 {
		return ""
	}
	var obj map[string]any
	if json.Unmarshal(m, &obj) != nil || obj == nil {
		return "must be a JSON object"
	}
	return ""
}

// Create registers the tenant, provisions its storage and activates it. If
// provisioning fails, the registry row is removed again.
func (l *Lifecycle) Create(ctx context.Context, in NewTenant) (*Tenant, error) {
	if err := in.Validate(); err != nil {
		return nil, err
	}
	id := in.ID
	if id == uuid.Nil {
		id = uuid.New()
	}
	t := &Tenant{ID: id, Identifier: in.Identifier, Name: in.Name, Tier: in.Tier,
		Status: StatusProvisioning, Metadata: in.Metadata}
	t.Isolation = l.Placement.Place(t.ID, t.Tier)
	if in.Isolation != "" {
		t.Isolation = in.Isolation
	}
	cells := l.Cells
	if len(cells) == 0 {
		cells = []string{DefaultCell}
	}
	cell, err := PlaceCell(ctx, cells, l.Counter, in.Cell, t.Isolation)
	if err != nil {
		if in.Cell != "" {
			return nil, apperr.Invalid(apperr.FieldError{Field: "cell", Message: "must name a configured cell"})
		}
		return nil, err
	}
	t.Cell = cell
	if err := l.Registry.Create(ctx, t); err != nil {
		return nil, err
	}
	if err := l.Provisioner.Provision(ctx, t); err != nil {
		if derr := l.Registry.Delete(context.WithoutCancel(ctx), t.ID); derr != nil {
			return nil, fmt.Errorf("%w (and removing the registry row failed: %v)", err, derr)
		}
		return nil, err
	}
	if in.Fill != nil {
		if err := in.Fill(ctx, t); err != nil {
			return nil, l.undoCreate(ctx, t, err)
		}
	}
	active := StatusActive
	return l.Registry.Update(ctx, t.ID, TenantUpdate{Status: &active})
}

// undoCreate destroys what Create provisioned and removes the registry row,
// so a failed creation leaves nothing behind.
func (l *Lifecycle) undoCreate(ctx context.Context, t *Tenant, cause error) error {
	ctx = context.WithoutCancel(ctx)
	if err := l.Provisioner.Destroy(ctx, t); err != nil {
		return fmt.Errorf("%w (and destroying its storage failed: %v)", cause, err)
	}
	if err := l.Registry.Delete(ctx, t.ID); err != nil {
		return fmt.Errorf("%w (and removing the registry row failed: %v)", cause, err)
	}
	return cause
}

// Update changes name, status and metadata (merged).
func (l *Lifecycle) Update(ctx context.Context, id uuid.UUID, u TenantUpdate) (*Tenant, error) {
	var fields []apperr.FieldError
	if u.Name != nil {
		if msg := validName(*u.Name); msg != "" {
			fields = append(fields, apperr.FieldError{Field: "name", Message: msg})
		}
	}
	if u.Status != nil && *u.Status != StatusActive && *u.Status != StatusSuspended {
		fields = append(fields, apperr.FieldError{Field: "status", Message: "must be active or suspended"})
	}
	if msg := validMetadata(u.Metadata); msg != "" {
		fields = append(fields, apperr.FieldError{Field: "metadata", Message: msg})
	}
	if u.Tier != nil && *u.Tier != TierPremium && *u.Tier != TierStandard {
		fields = append(fields, apperr.FieldError{Field: "tier", Message: "must be premium or standard"})
	}
	if len(fields) > 0 {
		return nil, apperr.Invalid(fields...)
	}
	if u.Tier == nil && l.TierRule != nil {
		u.Tier = l.TierRule.TierOf(u.Metadata)
	}
	return l.Registry.Update(ctx, id, u)
}

// Delete suspends the tenant (so it stops being served), destroys its data,
// then removes it from the registry. A failed destroy leaves it suspended.
func (l *Lifecycle) Delete(ctx context.Context, id uuid.UUID) error {
	suspended := StatusSuspended
	t, err := l.Registry.Update(ctx, id, TenantUpdate{Status: &suspended})
	if err != nil {
		return err
	}
	if err := l.Provisioner.Destroy(ctx, t); err != nil {
		return err
	}
	if l.Destroyed != nil {
		l.Destroyed(t)
	}
	if err := l.Registry.Delete(ctx, id); err != nil {
		return err
	}
	if l.QueryCache != nil {
		// A failed bump is retried by the plugin until Redis takes it.
		_ = l.QueryCache.Invalidate(WithTenant(context.WithoutCancel(ctx), t))
	}
	return nil
}
