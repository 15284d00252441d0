package tasks

import (
	"context"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"

	"github.com/your-org/tenantkit/internal/logging"
	"github.com/your-org/tenantkit/internal/models"
	"github.com/your-org/tenantkit/internal/page"
)

// ReportGenerate is the payload of TypeReportGenerate.
type ReportGenerate struct {
	ReportID uuid.UUID `json:"report_id"`
}

// NewReportGenerate is the task that produces report id. The task id is the
// report id, so the same report is never queued twice.
func NewReportGenerate(id uuid.UUID) Task {
	return Task{Type: TypeReportGenerate, Payload: ReportGenerate{ReportID: id},
		Options: []Option{ID("report:" + id.String()), MaxRetry(10), Timeout(5 * time.Minute)}}
}

// Enqueuer queues tenant tasks; *Client implements it.
type Enqueuer interface {
	Enqueue(ctx context.Context, task Task, opts ...Option) (*asynq.TaskInfo, error)
}

// ReportRecords is what the report service needs from report storage;
// models.Reports implements it.
type ReportRecords interface {
	Create(ctx context.Context, kind string) (*models.Report, error)
	Get(ctx context.Context, id uuid.UUID) (*models.Report, error)
	Delete(ctx context.Context, id uuid.UUID) error
	List(ctx context.Context, limit int, after *page.Cursor) ([]models.Report, *string, error)
}

// Reports is the api's report service (internal/http.ReportService): it
// stores a pending report and hands it to the worker.
type Reports struct {
	Store ReportRecords
	Tasks Enqueuer
	Log   *slog.Logger
}

// Request stores a pending report and enqueues its task. When the task
// cannot be enqueued (Redis down) the report is removed again and the
// caller gets the enqueue error (unavailable): nothing is left half-done.
func (s *Reports) Request(ctx context.Context, kind string) (*models.Report, error) {
	r, err := s.Store.Create(ctx, kind)
	if err != nil {
		return nil, err
	}
	if _, err := s.Tasks.Enqueue(ctx, NewReportGenerate(r.ID)); err != nil {
		// The request may be cancelled already: undo regardless.
		if derr := s.Store.Delete(context.WithoutCancel(ctx), r.ID); derr != nil {
			logging.From(ctx, s.Log).Error("report left pending: enqueue failed and the row could not be removed",
				"report_id", r.ID, "err", derr)
		}
		return nil, err
	}
	return r, nil
}

// Get returns the tenant's report (not_found for another tenant's id).
func (s *Reports) Get(ctx context.Context, id uuid.UUID) (*models.Report, error) {
	return s.Store.Get(ctx, id)
}

// List returns one newest-first page of the tenant's reports.
func (s *Reports) List(ctx context.Context, limit int, after *page.Cursor) ([]models.Report, *string, error) {
	return s.Store.List(ctx, limit, after)
}
