package tenancy

import (
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/your-org/tenantkit/internal/apperr"
	"github.com/your-org/tenantkit/internal/page"
)

// PGStore is the tenant registry in the control-plane schema tenancy.
type PGStore struct {
	DB *sql.DB
}

const tenantColumns = `t.id, t.identifier, t.name, t.status, t.tier, t.isolation, t.cell, t.metadata, t.created_at, t.updated_at`

type rowScanner interface{ Scan(dest ...any) error }

func scanTenant(r rowScanner) (*Tenant, error) {
	var t Tenant
	var meta []byte
	if err := r.Scan(&t.ID, &t.Identifier, &t.Name, &t.Status, &t.Tier, &t.Isolation, &t.Cell, &meta, &t.CreatedAt, &t.UpdatedAt); err != nil {
		return nil, err
	}
	t.Metadata = json.RawMessage(meta)
	return &t, nil
}

func (s *PGStore) one(ctx context.Context, what string, query string, args ...any) (*Tenant, error) {
	return oneOn(ctx, s.DB, what, query, args...)
}

func oneOn(ctx context.Context, q querier, what string, query string, args ...any) (*Tenant, error) {
	t, err := scanTenant(q.QueryRowContext(ctx, query, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, apperr.New(apperr.NotFound, "tenant not found")
	}
	if err != nil {
		return nil, fmt.Errorf("get tenant by %s: %w", what, err)
	}
	return t, nil
}

// TenantByID returns the tenant or a not_found error.
func (s *PGStore) TenantByID(ctx context.Context, id uuid.UUID) (*Tenant, error) {
	return s.one(ctx, "id", `SELECT `+tenantColumns+` FROM tenancy.tenants t WHERE t.id = $1`, id)
}

// TenantByIdentifier returns the tenant or a not_found error.
func (s *PGStore) TenantByIdentifier(ctx context.Context, identifier string) (*Tenant, error) {
	if !ValidIdentifier(identifier) {
		return nil, apperr.New(apperr.NotFound, "tenant not found")
	}
	return s.one(ctx, "identifier", `SELECT `+tenantColumns+` FROM tenancy.tenants t WHERE t.identifier = $1`, identifier)
}

// TenantByAPIKey returns the tenant of an unrevoked key, matched by exact hash.
func (s *PGStore) TenantByAPIKey(ctx context.Context, key string) (*Tenant, error) {
	if !PlausibleAPIKey(key) {
		return nil, apperr.New(apperr.NotFound, "api key not found")
	}
	return s.one(ctx, "api key", `SELECT `+tenantColumns+` FROM tenancy.api_keys k
		JOIN tenancy.tenants t ON t.id = k.tenant_id
		WHERE k.hash = $1 AND k.revoked_at IS NULL`, HashAPIKey(key))
}

// List returns one newest-first page of tenants matching f.
func (s *PGStore) List(ctx context.Context, f Filter, limit int, after *page.Cursor) ([]*Tenant, *string, error) {
	where, args := f.sql()
	if after != nil {
		args = append(args, after.CreatedAt, after.ID)
		where = append(where, fmt.Sprintf("(t.created_at, t.id) < ($%d, $%d)", len(args)-1, len(args)))
	}
	args = append(args, limit+1)
	q := `SELECT ` + tenantColumns + ` FROM tenancy.tenants t` + whereClause(where) +
		fmt.Sprintf(` ORDER BY t.created_at DESC, t.id DESC LIMIT $%d`, len(args))
	rows, err := s.DB.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, nil, fmt.Errorf("list tenants: %w", err)
	}
	defer rows.Close()
	var out []*Tenant
	for rows.Next() {
		t, err := scanTenant(rows)
		if err != nil {
			return nil, nil, fmt.Errorf("list tenants: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("list tenants: %w", err)
	}
	items, next := page.Next(out, limit, func(t *Tenant) page.Cursor { return page.Cursor{CreatedAt: t.CreatedAt, ID: t.ID} })
	return items, next, nil
}

// Count returns how many tenants match f.
func (s *PGStore) Count(ctx context.Context, f Filter) (int, error) {
	where, args := f.sql()
	var n int
	if err := s.DB.QueryRowContext(ctx, `SELECT count(*) FROM tenancy.tenants t`+whereClause(where), args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count tenants: %w", err)
	}
	return n, nil
}

func (f Filter) sql() (where []string, args []any) {
	if f.Status != "" {
		args = append(args, f.Status)
		where = append(where, fmt.Sprintf("t.status = $%d", len(args)))
	}
	if f.Tier != "" {
		args = append(args, f.Tier)
		where = append(where, fmt.Sprintf("t.tier = $%d", len(args)))
	}
	if f.Q != "" {
		args = append(args, "%"+escapeLike(strings.ToLower(f.Q))+"%")
		where = append(where, fmt.Sprintf("(t.identifier LIKE $%d OR lower(t.name) LIKE $%d)", len(args), len(args)))
	}
	return where, args
}

func whereClause(where []string) string {
	if len(where) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(where, " AND ")
}

func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// Create inserts t (status provisioning unless set; a new id unless set) and fills its timestamps.
func (s *PGStore) Create(ctx context.Context, t *Tenant) error {
	if t.Status == "" {
		t.Status = StatusProvisioning
	}
	if len(t.Metadata) == 0 {
		t.Metadata = json.RawMessage(`{}`)
	}
	if t.ID == uuid.Nil {
		t.ID = uuid.New()
	}
	if t.Cell == "" {
		t.Cell = DefaultCell
	}
	return s.write(ctx, "create tenant "+t.Identifier, func(q querier, _ bool) (Change, error) {
		err := q.QueryRowContext(ctx, `INSERT INTO tenancy.tenants (id, identifier, name, status, tier, isolation, cell, metadata)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING created_at, updated_at`,
			t.ID, t.Identifier, t.Name, t.Status, t.Tier, t.Isolation, t.Cell, []byte(t.Metadata)).Scan(&t.CreatedAt, &t.UpdatedAt)
		if isUniqueViolation(err) {
			return Change{}, apperr.New(apperr.Conflict, "a tenant with identifier %q or id %s already exists", t.Identifier, t.ID)
		}
		if err != nil {
			return Change{}, fmt.Errorf("create tenant %s: %w", t.Identifier, err)
		}
		after := *t
		return Change{Op: ChangeCreate, TenantID: t.ID, After: &after}, nil
	})
}

// Update applies u atomically; metadata is merged, not replaced.
func (s *PGStore) Update(ctx context.Context, id uuid.UUID, u TenantUpdate) (*Tenant, error) {
	var meta []byte
	if len(u.Metadata) > 0 {
		meta = u.Metadata
	}
	var after *Tenant
	err := s.write(ctx, "update tenant "+id.String(), func(q querier, hooked bool) (c Change, err error) {
		c = Change{Op: ChangeUpdate, TenantID: id}
		if hooked {
			if c.Before, err = oneOn(ctx, q, "id", `SELECT `+tenantColumns+` FROM tenancy.tenants t WHERE t.id = $1 FOR UPDATE`, id); err != nil {
				return c, err
			}
		}
		after, err = oneOn(ctx, q, "id", `UPDATE tenancy.tenants t SET
			name = coalesce($2, t.name),
			status = coalesce($3, t.status),
			metadata = CASE WHEN $4::jsonb IS NULL THEN t.metadata ELSE t.metadata || $4::jsonb END,
			tier = coalesce($5, t.tier),
			updated_at = now()
		WHERE t.id = $1 RETURNING `+tenantColumns, id, u.Name, u.Status, meta, u.Tier)
		c.After = after
		return c, err
	})
	if err != nil {
		return nil, err
	}
	return after, nil
}

// SetStatus moves the tenant to status.
func (s *PGStore) SetStatus(ctx context.Context, id uuid.UUID, status Status) (*Tenant, error) {
	return s.Update(ctx, id, TenantUpdate{Status: &status})
}

// MergeMetadata merges patch into the tenant's metadata in one statement.
func (s *PGStore) MergeMetadata(ctx context.Context, id uuid.UUID, patch json.RawMessage) (*Tenant, error) {
	return s.Update(ctx, id, TenantUpdate{Metadata: patch})
}

// Delete removes the tenant row and, by cascade, its API keys.
func (s *PGStore) Delete(ctx context.Context, id uuid.UUID) error {
	_, err := s.DeleteWithKeys(ctx, id)
	return err
}

// DeleteWithKeys deletes like Delete and returns the hashes of the tenant's
// API keys, which is what caches of key lookups are keyed by: they must be
// dropped too, or a deleted tenant's key would work for a tenant re-created
// with the same id. One statement, so no key escapes the list.
func (s *PGStore) DeleteWithKeys(ctx context.Context, id uuid.UUID) ([][]byte, error) {
	var hashes [][]byte
	err := s.write(ctx, "delete tenant "+id.String(), func(q querier, hooked bool) (c Change, err error) {
		c = Change{Op: ChangeDelete, TenantID: id}
		if hooked {
			if c.Before, err = oneOn(ctx, q, "id", `SELECT `+tenantColumns+` FROM tenancy.tenants t WHERE t.id = $1 FOR UPDATE`, id); err != nil {
				return c, err
			}
		}
		var deleted int
		var hexHashes string
		err = q.QueryRowContext(ctx, `WITH k AS (DELETE FROM tenancy.api_keys WHERE tenant_id = $1 RETURNING hash),
			t AS (DELETE FROM tenancy.tenants WHERE id = $1 RETURNING id)
			SELECT (SELECT count(*) FROM t), coalesce((SELECT string_agg(encode(hash, 'hex'), ',') FROM k), '')`, id).
			Scan(&deleted, &hexHashes)
		if err != nil {
			return c, fmt.Errorf("delete tenant %s: %w", id, err)
		}
		if deleted == 0 {
			return c, apperr.New(apperr.NotFound, "tenant not found")
		}
		for _, h := range strings.Split(hexHashes, ",") {
			if h == "" {
				continue
			}
			b, err := hex.DecodeString(h)
			if err != nil {
				return c, fmt.Errorf("delete tenant %s: key hash: %w", id, err)
			}
			hashes = append(hashes, b)
		}
		return c, nil
	})
	if err != nil {
		return nil, err
	}
	return hashes, nil
}

// CreateAPIKey issues a key for the tenant; the secret is returned only here.
func (s *PGStore) CreateAPIKey(ctx context.Context, tenantID uuid.UUID, name string) (*APIKey, string, error) {
	secret, prefix := NewAPIKeySecret()
	k := &APIKey{TenantID: tenantID, Name: name, Prefix: prefix}
	err := s.write(ctx, "create api key for "+tenantID.String(), func(q querier, _ bool) (Change, error) {
		err := q.QueryRowContext(ctx, `INSERT INTO tenancy.api_keys (tenant_id, name, prefix, hash)
		VALUES ($1, $2, $3, $4) RETURNING id, created_at`, tenantID, name, prefix, HashAPIKey(secret)).Scan(&k.ID, &k.CreatedAt)
		if isForeignKeyViolation(err) {
			return Change{}, apperr.New(apperr.NotFound, "tenant not found")
		}
		if err != nil {
			return Change{}, fmt.Errorf("create api key for %s: %w", tenantID, err)
		}
		return Change{Op: ChangeKeyCreate, TenantID: tenantID, Key: k}, nil
	})
	if err != nil {
		return nil, "", err
	}
	return k, secret, nil
}

// RevokeAPIKey revokes the tenant's key; revoking twice is not_found.
func (s *PGStore) RevokeAPIKey(ctx context.Context, tenantID, keyID uuid.UUID) error {
	_, err := s.RevokeAPIKeyHash(ctx, tenantID, keyID)
	return err
}

// RevokeAPIKeyHash revokes like RevokeAPIKey and returns the key's hash, which
// is what caches of key lookups are keyed by.
func (s *PGStore) RevokeAPIKeyHash(ctx context.Context, tenantID, keyID uuid.UUID) ([]byte, error) {
	var hash []byte
	err := s.write(ctx, "revoke api key "+keyID.String(), func(q querier, _ bool) (Change, error) {
		k := &APIKey{ID: keyID, TenantID: tenantID}
		var revoked time.Time
		err := q.QueryRowContext(ctx, `UPDATE tenancy.api_keys SET revoked_at = now()
		WHERE id = $1 AND tenant_id = $2 AND revoked_at IS NULL RETURNING hash, name, prefix, created_at, revoked_at`,
			keyID, tenantID).Scan(&hash, &k.Name, &k.Prefix, &k.CreatedAt, &revoked)
		if errors.Is(err, sql.ErrNoRows) {
			return Change{}, apperr.New(apperr.NotFound, "api key not found")
		}
		if err != nil {
			return Change{}, fmt.Errorf("revoke api key %s: %w", keyID, err)
		}
		k.RevokedAt = &revoked
		return Change{Op: ChangeKeyRevoke, TenantID: tenantID, Key: k}, nil
	})
	if err != nil {
		return nil, err
	}
	return hash, nil
}

func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

func isUniqueViolation(err error) bool     { return pgCode(err) == "23505" }
func isForeignKeyViolation(err error) bool { return pgCode(err) == "23503" }

// CountByCell counts the tenants of isolation iso on each cell, for the
// placement policy (PlaceCell).
func (s *PGStore) CountByCell(ctx context.Context, iso Isolation) (map[string]int, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT cell, count(*) FROM tenancy.tenants WHERE isolation = $1 GROUP BY cell`, iso)
	if err != nil {
		return nil, fmt.Errorf("count tenants per cell: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var cell string
		var n int
		if err := rows.Scan(&cell, &n); err != nil {
			return nil, fmt.Errorf("count tenants per cell: %w", err)
		}
		out[cell] = n
	}
	return out, rows.Err()
}
