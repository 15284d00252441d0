// Package models holds the example domain: GORM models and their stores.
// A model with a TenantID field is tenant data: reach it only through
// tenancy.DBFor(ctx, db), and add its table in one migrations/tenant file.
package models

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/your-org/tenantkit/internal/apperr"
	"github.com/your-org/tenantkit/internal/page"
	"github.com/your-org/tenantkit/internal/tenancy"
)

// Project is the example tenant-owned resource.
type Project struct {
	ID          uuid.UUID `json:"id" gorm:"type:uuid;primaryKey"`
	TenantID    uuid.UUID `json:"-" gorm:"type:uuid;not null"`
	Name        string    `json:"name"`
	Description string    `json:"description"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// ProjectPatch changes the fields that are set.
type ProjectPatch struct {
	Name        *string
	Description *string
}

// Projects stores projects of the tenant bound to each call's context.
type Projects struct {
	DB *gorm.DB
}

func errProjectNotFound() error { return apperr.New(apperr.NotFound, "project not found") }

// Create stores p for the context's tenant; it fills id and timestamps.
func (s Projects) Create(ctx context.Context, p *Project) error {
	db, err := tenancy.DBFor(ctx, s.DB)
	if err != nil {
		return err
	}
	p.ID = uuid.Must(uuid.NewV7())
	if err := db.Create(p).Error; err != nil {
		return fmt.Errorf("create project: %w", err)
	}
	return nil
}

// Get returns the tenant's project, or not_found (also for another tenant's id).
func (s Projects) Get(ctx context.Context, id uuid.UUID) (*Project, error) {
	return byID[Project](ctx, s.DB, id, "project", errProjectNotFound)
}

// List returns one newest-first page of the tenant's projects.
func (s Projects) List(ctx context.Context, limit int, after *page.Cursor) ([]Project, *string, error) {
	db, err := tenancy.DBFor(ctx, s.DB)
	if err != nil {
		return nil, nil, err
	}
	q := db.Order("created_at DESC, id DESC").Limit(limit + 1)
	if after != nil {
		q = q.Where("(created_at, id) < (?, ?)", after.CreatedAt, after.ID)
	}
	var rows []Project
	if err := q.Find(&rows).Error; err != nil {
		return nil, nil, fmt.Errorf("list projects: %w", err)
	}
	items, next := page.Next(rows, limit, func(p Project) page.Cursor { return page.Cursor{CreatedAt: p.CreatedAt, ID: p.ID} })
	return items, next, nil
}

// Update applies patch in one statement and returns the stored project.
func (s Projects) Update(ctx context.Context, id uuid.UUID, patch ProjectPatch) (*Project, error) {
	db, err := tenancy.DBFor(ctx, s.DB)
	if err != nil {
		return nil, err
	}
	changes := map[string]any{"updated_at": time.Now().UTC()}
	if patch.Name != nil {
		changes["name"] = *patch.Name
	}
	if patch.Description != nil {
		changes["description"] = *patch.Description
	}
	var rows []Project
	res := db.Model(&rows).Clauses(clause.Returning{}).Where("id = ?", id).Updates(changes)
	if res.Error != nil {
		return nil, fmt.Errorf("update project %s: %w", id, res.Error)
	}
	if len(rows) == 0 {
		return nil, errProjectNotFound()
	}
	return &rows[0], nil
}

// Delete removes the tenant's project, or returns not_found.
func (s Projects) Delete(ctx context.Context, id uuid.UUID) error {
	db, err := tenancy.DBFor(ctx, s.DB)
	if err != nil {
		return err
	}
	res := db.Where("id = ?", id).Delete(&Project{})
	if res.Error != nil {
		return fmt.Errorf("delete project %s: %w", id, res.Error)
	}
	if res.RowsAffected == 0 {
		return errProjectNotFound()
	}
	return nil
}

// Count returns how many projects the tenant has.
func (s Projects) Count(ctx context.Context) (int64, error) {
	db, err := tenancy.DBFor(ctx, s.DB)
	if err != nil {
		return 0, err
	}
	var n int64
	if err := db.Model(&Project{}).Count(&n).Error; err != nil {
		return 0, fmt.Errorf("count projects: %w", err)
	}
	return n, nil
}
