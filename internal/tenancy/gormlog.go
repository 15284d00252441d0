package tenancy

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/your-org/tenantkit/internal/logging"
)

// gormLogger logs failed and slow statements through the request's logger
// (so with request_id and tenant_id). Unlike GORM's slog logger it renders
// the SQL only when it logs, which keeps it off the hot path.
type gormLogger struct {
	log  *slog.Logger
	slow time.Duration
}

func (l gormLogger) LogMode(logger.LogLevel) logger.Interface { return l }

func (l gormLogger) Info(ctx context.Context, msg string, args ...any) {
	logging.From(ctx, l.log).Info(msg, "args", args)
}

func (l gormLogger) Warn(ctx context.Context, msg string, args ...any) {
	logging.From(ctx, l.log).Warn(msg, "args", args)
}

func (l gormLogger) Error(ctx context.Context, msg string, args ...any) {
	logging.From(ctx, l.log).Error(msg, "args", args)
}

func (l gormLogger) Trace(ctx context.Context, begin time.Time, fc func() (string, int64), err error) {
	elapsed := time.Since(begin)
	switch {
	case err != nil && !errors.Is(err, gorm.ErrRecordNotFound):
		sql, rows := fc()
		logging.From(ctx, l.log).Warn("sql failed", "err", err, "sql", sql, "rows", rows, "duration_ms", elapsed.Milliseconds())
	case elapsed > l.slow:
		sql, rows := fc()
		logging.From(ctx, l.log).Warn("slow sql", "sql", sql, "rows", rows, "duration_ms", elapsed.Milliseconds())
	}
}
