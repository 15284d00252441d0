package models

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"strings"
	"time"
	"unicode"

	"github.com/google/uuid"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/your-org/tenantkit/internal/apperr"
	"github.com/your-org/tenantkit/internal/page"
	"github.com/your-org/tenantkit/internal/tenancy"
)

// Row is what the generic Store needs from a tenant model T (methods on *T).
// The table needs id, tenant_id and created_at; updated_at is set on Update
// when the model has it.
type Row[T any] interface {
	*T
	// SetID gives a new row its id.
	SetID(id uuid.UUID)
	// Cursor is the row's position in newest-first order (created_at, id).
	Cursor() page.Cursor
}

// Patch is a partial update: column name → new value, for the fields set.
type Patch interface {
	Changes() map[string]any
}

// Changes is a Patch written out: Changes{"sent": true}.
type Changes map[string]any

// Changes implements Patch.
func (c Changes) Changes() map[string]any { return c }

// Store keeps the rows of tenant model T of the tenant bound to each call's
// context: create, get, newest-first keyset list, patch, delete and count.
// Every statement goes through tenancy.DBFor and names the model's columns
// (never SELECT *), so a column added by a later migration does not change
// what a running binary reads. Another tenant's row and a missing row are the
// same answer: not_found.
type Store[T any, P Row[T]] struct {
	DB *gorm.DB
}

// Create stores row for the context's tenant; it fills id (a UUIDv7: new
// rows land at the end of the id index), tenant_id and timestamps.
func (s Store[T, P]) Create(ctx context.Context, row *T) error {
	db, err := tenancy.DBFor(ctx, s.DB)
	if err != nil {
		return err
	}
	P(row).SetID(uuid.Must(uuid.NewV7()))
	if err := db.Create(row).Error; err != nil {
		return fmt.Errorf("create %s: %w", Noun[T](), err)
	}
	return nil
}

// Get returns the tenant's row id, or not_found (also for another tenant's id).
func (s Store[T, P]) Get(ctx context.Context, id uuid.UUID) (*T, error) {
	db, cols, err := s.bind(ctx)
	if err != nil {
		return nil, err
	}
	var row T
	err = db.Select(cols).Where("id = ?", id).Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, notFound[T]()
	}
	if err != nil {
		return nil, fmt.Errorf("get %s %s: %w", Noun[T](), id, err)
	}
	return &row, nil
}

// List returns one newest-first page of the tenant's rows after the cursor
// (nil: the first page) and the next page's cursor (nil: the last page).
func (s Store[T, P]) List(ctx context.Context, limit int, after *page.Cursor) ([]T, *string, error) {
	db, cols, err := s.bind(ctx)
	if err != nil {
		return nil, nil, err
	}
	q := db.Select(cols).Order("created_at DESC, id DESC").Limit(limit + 1)
	if after != nil {
		q = q.Where("(created_at, id) < (?, ?)", after.CreatedAt, after.ID)
	}
	var rows []T
	if err := q.Find(&rows).Error; err != nil {
		return nil, nil, fmt.Errorf("list %s: %w", Noun[T](), err)
	}
	items, next := page.Next(rows, limit, func(r T) page.Cursor { return P(&r).Cursor() })
	return items, next, nil
}

// Update applies patch in one statement and returns the stored row.
func (s Store[T, P]) Update(ctx context.Context, id uuid.UUID, patch Patch) (*T, error) {
	db, cols, err := s.bind(ctx)
	if err != nil {
		return nil, err
	}
	changes := maps.Clone(patch.Changes())
	if hasColumn(cols, "updated_at") {
		changes["updated_at"] = time.Now().UTC()
	}
	var rows []T
	res := db.Model(&rows).Clauses(returning(cols)).Where("id = ?", id).Updates(changes)
	if res.Error != nil {
		return nil, fmt.Errorf("update %s %s: %w", Noun[T](), id, res.Error)
	}
	if len(rows) == 0 {
		return nil, notFound[T]()
	}
	return &rows[0], nil
}

// Delete removes the tenant's row id, or returns not_found.
func (s Store[T, P]) Delete(ctx context.Context, id uuid.UUID) error {
	db, err := tenancy.DBFor(ctx, s.DB)
	if err != nil {
		return err
	}
	res := db.Where("id = ?", id).Delete(new(T))
	if res.Error != nil {
		return fmt.Errorf("delete %s %s: %w", Noun[T](), id, res.Error)
	}
	if res.RowsAffected == 0 {
		return notFound[T]()
	}
	return nil
}

// Count returns how many rows the tenant has.
func (s Store[T, P]) Count(ctx context.Context) (int64, error) {
	db, err := tenancy.DBFor(ctx, s.DB)
	if err != nil {
		return 0, err
	}
	var n int64
	if err := db.Model(new(T)).Count(&n).Error; err != nil {
		return 0, fmt.Errorf("count %s: %w", Noun[T](), err)
	}
	return n, nil
}

// bind returns the tenant's handle and the model's columns by name.
func (s Store[T, P]) bind(ctx context.Context) (*gorm.DB, []string, error) {
	db, err := tenancy.DBFor(ctx, s.DB)
	if err != nil {
		return nil, nil, err
	}
	cols, err := Columns[T](db)
	return db, cols, err
}

// Columns returns the column names of model T in field order (GORM caches
// the parsed model), for statements that name what they read.
func Columns[T any](db *gorm.DB) ([]string, error) {
	st := &gorm.Statement{DB: db}
	if err := st.Parse(new(T)); err != nil {
		return nil, fmt.Errorf("parse model %s: %w", Noun[T](), err)
	}
	return st.Schema.DBNames, nil
}

func returning(cols []string) clause.Returning {
	r := clause.Returning{Columns: make([]clause.Column, len(cols))}
	for i, c := range cols {
		r.Columns[i] = clause.Column{Name: c}
	}
	return r
}

func hasColumn(cols []string, name string) bool {
	for _, c := range cols {
		if c == name {
			return true
		}
	}
	return false
}

func notFound[T any]() error { return apperr.New(apperr.NotFound, "%s not found", Noun[T]()) }

// Noun is the model's name in messages: InvoiceItem → "invoice item".
func Noun[T any]() string {
	var b strings.Builder
	for i, r := range reflect.TypeFor[T]().Name() {
		if unicode.IsUpper(r) {
			if i > 0 {
				b.WriteByte(' ')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}
