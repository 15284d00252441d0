package models

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/your-org/tenantkit/internal/page"
	"github.com/your-org/tenantkit/internal/tenancy"
)

// Reports stores reports of the tenant bound to each call's context. Its
// state changes are conditional updates, so a task delivered twice (a retry
// after a crash) never applies a transition twice.
type Reports struct {
	DB *gorm.DB
}

// Create stores a pending report of kind for the context's tenant.
func (s Reports) Create(ctx context.Context, kind string) (*Report, error) {
	db, err := tenancy.DBFor(ctx, s.DB)
	if err != nil {
		return nil, err
	}
	r := &Report{ID: uuid.Must(uuid.NewV7()), Kind: kind, Status: ReportPending}
	if err := db.Create(r).Error; err != nil {
		return nil, fmt.Errorf("create report: %w", err)
	}
	return r, nil
}

// Get returns the tenant's report, or not_found (also for another tenant's id).
func (s Reports) Get(ctx context.Context, id uuid.UUID) (*Report, error) {
	return s.rows().Get(ctx, id)
}

// List returns one newest-first page of the tenant's reports.
func (s Reports) List(ctx context.Context, limit int, after *page.Cursor) ([]Report, *string, error) {
	return s.rows().List(ctx, limit, after)
}

func (s Reports) rows() Store[Report, *Report] { return Store[Report, *Report]{DB: s.DB} }

// Delete removes the tenant's report; a missing report is not an error (it
// undoes a Create whose task could not be enqueued).
func (s Reports) Delete(ctx context.Context, id uuid.UUID) error {
	db, err := tenancy.DBFor(ctx, s.DB)
	if err != nil {
		return err
	}
	if err := db.Where("id = ?", id).Delete(&Report{}).Error; err != nil {
		return fmt.Errorf("delete report %s: %w", id, err)
	}
	return nil
}

// Start marks a pending (or, on a retry, running) report running and returns
// it. A report that already finished is returned unchanged: the caller sees
// its final status and does nothing.
func (s Reports) Start(ctx context.Context, id uuid.UUID) (*Report, error) {
	rows, err := s.transition(ctx, id, map[string]any{"status": ReportRunning},
		ReportPending, ReportRunning)
	if err != nil {
		return nil, fmt.Errorf("start report %s: %w", id, err)
	}
	if len(rows) == 1 {
		return &rows[0], nil
	}
	return s.Get(ctx, id)
}

// Succeed stores result and marks a running report succeeded. It reports
// false when the report was not running (already finished by an earlier
// delivery): the result is then not written again.
func (s Reports) Succeed(ctx context.Context, id uuid.UUID, result any) (bool, error) {
	raw, err := json.Marshal(result)
	if err != nil {
		return false, fmt.Errorf("encode report %s result: %w", id, err)
	}
	rows, err := s.transition(ctx, id, map[string]any{
		"status": ReportSucceeded, "result": json.RawMessage(raw), "error": nil, "finished_at": utcNow(),
	}, ReportRunning)
	if err != nil {
		return false, fmt.Errorf("finish report %s: %w", id, err)
	}
	return len(rows) == 1, nil
}

// Fail marks an unfinished report failed with a reason shown to the tenant.
func (s Reports) Fail(ctx context.Context, id uuid.UUID, reason string) (bool, error) {
	rows, err := s.transition(ctx, id, map[string]any{
		"status": ReportFailed, "error": reason, "finished_at": utcNow(),
	}, ReportPending, ReportRunning)
	if err != nil {
		return false, fmt.Errorf("fail report %s: %w", id, err)
	}
	return len(rows) == 1, nil
}

// Cleanup deletes the tenant's finished reports created before cutoff and
// fails the ones that never finished (their task was lost), so that nothing
// stays pending forever.
func (s Reports) Cleanup(ctx context.Context, cutoff time.Time) (deleted, abandoned int64, err error) {
	db, err := tenancy.DBFor(ctx, s.DB)
	if err != nil {
		return 0, 0, err
	}
	res := db.Where("created_at < ? AND status IN ?", cutoff, []string{ReportSucceeded, ReportFailed}).Delete(&Report{})
	if res.Error != nil {
		return 0, 0, fmt.Errorf("delete old reports: %w", res.Error)
	}
	upd := db.Model(&Report{}).Where("created_at < ? AND status IN ?", cutoff, []string{ReportPending, ReportRunning}).
		Updates(map[string]any{"status": ReportFailed, "error": "abandoned: never finished", "finished_at": utcNow(), "updated_at": utcNow()})
	if upd.Error != nil {
		return 0, 0, fmt.Errorf("fail abandoned reports: %w", upd.Error)
	}
	return res.RowsAffected, upd.RowsAffected, nil
}

// transition applies changes to report id only while its status is one of
// from, in one statement, and returns the updated row (none if it did not apply).
func (s Reports) transition(ctx context.Context, id uuid.UUID, changes map[string]any, from ...string) ([]Report, error) {
	db, err := tenancy.DBFor(ctx, s.DB)
	if err != nil {
		return nil, err
	}
	changes["updated_at"] = utcNow()
	var rows []Report
	res := db.Model(&rows).Clauses(clause.Returning{}).Where("id = ? AND status IN ?", id, from).Updates(changes)
	if res.Error != nil {
		return nil, res.Error
	}
	return rows, nil
}

func utcNow() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }
