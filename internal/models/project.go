// Package models holds the example domain: GORM models and their stores.
// A model with a TenantID field is tenant data: reach it only through
// tenancy.DBFor(ctx, db), and add its table in one migrations/tenant file.
package models

import (
	"time"

	"github.com/google/uuid"

	"github.com/your-org/tenantkit/internal/page"
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

// SetID and Cursor make Project a Row of the generic Store.
func (p *Project) SetID(id uuid.UUID)  { p.ID = id }
func (p *Project) Cursor() page.Cursor { return page.Cursor{CreatedAt: p.CreatedAt, ID: p.ID} }

// ProjectPatch changes the fields that are set.
type ProjectPatch struct {
	Name        *string
	Description *string
}

// Changes implements Patch.
func (p ProjectPatch) Changes() map[string]any {
	changes := map[string]any{}
	if p.Name != nil {
		changes["name"] = *p.Name
	}
	if p.Description != nil {
		changes["description"] = *p.Description
	}
	return changes
}

// Projects stores projects of the tenant bound to each call's context.
type Projects = Store[Project, *Project]
