package models

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"

	"github.com/your-org/tenantkit/internal/page"
)

// Report statuses.
const (
	ReportPending   = "pending"
	ReportRunning   = "running"
	ReportSucceeded = "succeeded"
	ReportFailed    = "failed"
)

// ReportProjectSummary is the one report kind of the example domain.
const ReportProjectSummary = "project_summary"

// Report is produced asynchronously by the worker.
type Report struct {
	ID         uuid.UUID       `json:"id" gorm:"type:uuid;primaryKey"`
	TenantID   uuid.UUID       `json:"-" gorm:"type:uuid;not null"`
	Kind       string          `json:"kind"`
	Status     string          `json:"status"`
	Result     json.RawMessage `json:"result" gorm:"type:jsonb"`
	Error      *string         `json:"error"`
	CreatedAt  time.Time       `json:"created_at"`
	UpdatedAt  time.Time       `json:"-"`
	FinishedAt *time.Time      `json:"finished_at"`
}

// SetID and Cursor make Report a Row of the generic Store.
func (r *Report) SetID(id uuid.UUID)  { r.ID = id }
func (r *Report) Cursor() page.Cursor { return page.Cursor{CreatedAt: r.CreatedAt, ID: r.ID} }
