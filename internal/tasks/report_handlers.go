package tasks

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"

	"github.com/your-org/tenantkit/internal/apperr"
	"github.com/your-org/tenantkit/internal/logging"
	"github.com/your-org/tenantkit/internal/models"
)

// ReportSteps is what generating reports needs from report storage: each
// step is a conditional update, so a redelivered task cannot apply one twice.
type ReportSteps interface {
	Start(ctx context.Context, id uuid.UUID) (*models.Report, error)
	Succeed(ctx context.Context, id uuid.UUID, result any) (bool, error)
	Fail(ctx context.Context, id uuid.UUID, reason string) (bool, error)
	Cleanup(ctx context.Context, cutoff time.Time) (deleted, abandoned int64, err error)
}

// ProjectCounter counts the bound tenant's projects; models.Projects implements it.
type ProjectCounter interface {
	Count(ctx context.Context) (int64, error)
}

// ReportWorker holds the worker's report handlers.
type ReportWorker struct {
	Reports  ReportSteps
	Projects ProjectCounter
	Log      *slog.Logger
}

// ProjectSummary is the result of a project_summary report.
type ProjectSummary struct {
	ProjectCount int64 `json:"project_count"`
}

// Generate runs report:generate: running → count → succeeded. A retry after
// a crash finds the report running and finishes it; a redelivery after it
// finished does nothing.
func (w *ReportWorker) Generate(ctx context.Context, p ReportGenerate) error {
	log := logging.From(ctx, w.Log).With("report_id", p.ReportID)
	r, err := w.Reports.Start(ctx, p.ReportID)
	if apperr.CodeOf(err) == apperr.NotFound {
		return fmt.Errorf("report %s not found: %w", p.ReportID, asynq.SkipRetry)
	}
	if err != nil {
		return err
	}
	if r.Status != models.ReportRunning {
		log.Info("report already finished", "status", r.Status)
		return nil
	}
	if r.Kind != models.ReportProjectSummary {
		_, ferr := w.Reports.Fail(ctx, r.ID, "unknown report kind "+r.Kind)
		return fmt.Errorf("report %s: unknown kind %q (fail: %v): %w", r.ID, r.Kind, ferr, asynq.SkipRetry)
	}
	n, err := w.Projects.Count(ctx)
	if err != nil {
		if lastAttempt(ctx) {
			if _, ferr := w.Reports.Fail(ctx, r.ID, "counting projects failed"); ferr != nil {
				log.Error("could not mark report failed", "err", ferr)
			}
		}
		return fmt.Errorf("report %s: %w", r.ID, err)
	}
	applied, err := w.Reports.Succeed(ctx, r.ID, ProjectSummary{ProjectCount: n})
	if err != nil {
		return err
	}
	log.Info("report generated", "project_count", n, "applied", applied)
	return nil
}

// ReportCleanup is the payload of TypeReportCleanup.
type ReportCleanup struct {
	MaxAgeDays int `json:"max_age_days"`
}

// Cleanup runs report:cleanup for one tenant: it deletes finished reports
// older than the payload's age and fails the ones that never finished.
func (w *ReportWorker) Cleanup(ctx context.Context, p ReportCleanup) error {
	if p.MaxAgeDays < 1 {
		return fmt.Errorf("report cleanup: max_age_days %d must be ≥ 1: %w", p.MaxAgeDays, asynq.SkipRetry)
	}
	cutoff := time.Now().AddDate(0, 0, -p.MaxAgeDays)
	deleted, abandoned, err := w.Reports.Cleanup(ctx, cutoff)
	if err != nil {
		return err
	}
	logging.From(ctx, w.Log).Info("reports cleaned up", "deleted", deleted, "abandoned", abandoned, "cutoff", cutoff)
	return nil
}

func lastAttempt(ctx context.Context) bool {
	n, ok1 := asynq.GetRetryCount(ctx)
	max, ok2 := asynq.GetMaxRetry(ctx)
	return ok1 && ok2 && n >= max
}
