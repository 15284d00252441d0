package tenantmove

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/your-org/tenantkit/internal/apperr"
	"github.com/your-org/tenantkit/internal/audit"
	"github.com/your-org/tenantkit/internal/tenancy"
)

// Refresher makes every process see a registry change: the cached store's
// Update overwrites the caches and publishes the invalidation.
type Refresher interface {
	Update(ctx context.Context, id uuid.UUID, u tenancy.TenantUpdate) (*tenancy.Tenant, error)
}

// Mover runs moves. It works as the owner role (MIGRATE_DATABASE_URL): it
// creates and drops schemas and installs the write fence.
type Mover struct {
	Owner       *sql.DB
	Provisioner *tenancy.Provisioner
	Refresh     Refresher // nil: no caches to refresh
	// Grace is how long the old location stays (fenced) after the flip,
	// so every process follows the new placement and in-flight requests on
	// the old one finish before it goes: default 5 s (caches follow in 2 s).
	Grace time.Duration
	Log   *slog.Logger
	// At is called at named points of a move; tests kill the process there.
	At func(point string)
}

// permanent marks an error that retrying cannot fix.
type permanent struct{ error }

func (p permanent) Unwrap() error { return p.error }

func (m *Mover) at(point string) {
	if m.At != nil {
		m.At(point)
	}
}

func (m *Mover) log() *slog.Logger {
	if m.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return m.Log
}

// Run runs (or resumes) operation id to its end. One runner per operation
// at a time (a session advisory lock, released if the process dies). A
// transient error is returned for a retry, unless last: then, like a
// permanent one, it fails the operation, leaving the tenant where the
// registry says it is.
func (m *Mover) Run(ctx context.Context, id uuid.UUID, last bool) error {
	conn, err := m.Owner.Conn(ctx)
	if err != nil {
		return fmt.Errorf("move %s: %w", id, err)
	}
	defer conn.Close()
	var locked bool
	if err := conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock(hashtextextended($1, 0))`, "tenantkit-move:"+id.String()).Scan(&locked); err != nil {
		return fmt.Errorf("move %s: lock: %w", id, err)
	}
	if !locked {
		return fmt.Errorf("move %s is being run by another worker", id)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(hashtextextended($1, 0))`, "tenantkit-move:"+id.String())

	op, err := getOperation(ctx, m.Owner, id, false)
	if err != nil {
		return err
	}
	if op.State == Succeeded || op.State == Failed {
		return nil
	}
	log := m.log().With("operation_id", id, "tenant_id", op.TenantID, "from", op.Source, "to", op.Target)
	err = m.run(ctx, op, log)
	if err == nil {
		return nil
	}
	var p permanent
	if errors.As(err, &p) || last {
		log.Error("move failed", "err", err)
		m.finish(context.WithoutCancel(ctx), op, Failed, err)
		return nil
	}
	log.Warn("move attempt failed, will retry", "err", err)
	m.note(context.WithoutCancel(ctx), op, err)
	return err
}

func location(t *tenancy.Tenant, iso tenancy.Isolation) string {
	if iso == tenancy.IsolationSchema {
		return tenancy.SchemaName(t.Identifier)
	}
	return "public"
}

func (m *Mover) run(ctx context.Context, op *Operation, log *slog.Logger) error {
	if _, err := m.Owner.ExecContext(ctx, `UPDATE tenancy.operations SET state = 'running', attempts = attempts + 1,
		error = NULL, updated_at = now() WHERE id = $1`, op.ID); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	t, err := (&tenancy.PGStore{DB: m.Owner}).TenantByID(ctx, op.TenantID)
	if apperr.CodeOf(err) == apperr.NotFound {
		return permanent{fmt.Errorf("tenant %s no longer exists", op.TenantID)}
	}
	if err != nil {
		return err
	}
	if !tenancy.ValidIdentifier(t.Identifier) {
		return permanent{fmt.Errorf("tenant %s has an invalid identifier", t.ID)}
	}
	src, dst := location(t, op.Source), location(t, op.Target)
	switch t.Isolation {
	case op.Target: // the flip committed: only the old location is left to remove
		return m.cleanup(ctx, op, t, src, log)
	case op.Source:
	default:
		return permanent{fmt.Errorf("tenant %s is in %s isolation, neither %s nor %s", t.ID, t.Isolation, op.Source, op.Target)}
	}
	m.at("start")
	tables, err := m.prepare(ctx, op, t, src, dst)
	if err != nil {
		return m.abandon(ctx, op, t, src, dst, tables, err)
	}
	if err := m.copyAll(ctx, op, t, src, dst, tables, log); err != nil {
		return m.abandon(ctx, op, t, src, dst, tables, err)
	}
	m.at("copied")
	if err := m.flip(ctx, op, t, src, dst, tables, log); err != nil {
		return m.abandon(ctx, op, t, src, dst, tables, err)
	}
	m.at("switched")
	t.Isolation = op.Target
	return m.cleanup(ctx, op, t, src, log)
}

// abandon handles a failure before the flip: the source's fence goes at
// once (the registry still names the source), and on a permanent failure
// the target is cleared (a retry starts over with prepare anyway).
func (m *Mover) abandon(ctx context.Context, op *Operation, t *tenancy.Tenant, src, dst string, tables []table, cause error) error {
	if err := m.dropFences(context.WithoutCancel(ctx), t, src, tables); err != nil {
		m.log().Error("move: drop the fence after a failure", "operation_id", op.ID, "err", err)
	}
	var p permanent
	if errors.As(cause, &p) {
		if err := m.clearTarget(context.WithoutCancel(ctx), t, dst); err != nil {
			return permanent{fmt.Errorf("%w (and clearing the target failed: %v)", cause, err)}
		}
	}
	return cause
}

// prepare makes the target empty and ready, and lists the tables to copy.
func (m *Mover) prepare(ctx context.Context, op *Operation, t *tenancy.Tenant, src, dst string) ([]table, error) {
	tables, err := discover(ctx, m.Owner, src)
	if err != nil {
		return nil, err
	}
	// A fence left by an attempt that died before its flip: the registry
	// still names the source, so the tenant must be able to write there.
	if err := m.dropFences(ctx, t, src, tables); err != nil {
		return nil, err
	}
	if err := m.clearTarget(ctx, t, dst); err != nil {
		return nil, err
	}
	if dst != "public" {
		nt := *t
		nt.Isolation = tenancy.IsolationSchema
		if err := m.Provisioner.Provision(ctx, &nt); err != nil {
			return nil, fmt.Errorf("provision target schema: %w", err)
		}
	}
	have, err := discover(ctx, m.Owner, dst)
	if err != nil {
		return nil, err
	}
	target := map[string]table{}
	for _, tb := range have {
		target[tb.name] = tb
	}
	for _, tb := range tables {
		d, ok := target[tb.name]
		if !ok {
			return nil, permanent{fmt.Errorf("table %s.%s has no counterpart in %s: run migrate up first", src, tb.name, dst)}
		}
		for _, c := range tb.columns {
			if !contains(d.columns, c) {
				return nil, permanent{fmt.Errorf("column %s.%s.%s is missing in %s: run migrate up first", src, tb.name, c, dst)}
			}
		}
	}
	for i, tb := range tables {
		// Every column type needs a hash function for the fast checksum
		// (json, point and the like have none): probe one of the rows.
		_, err := m.Owner.ExecContext(ctx, `SELECT hash_record_extended(ROW(`+quoteAll("", tb.columns)+`), 0) FROM `+
			qualified(src, tb.name)+` WHERE tenant_id = $1 LIMIT 1`, t.ID)
		tables[i].md5 = err != nil
	}
	op.Progress = Progress{Tables: map[string]*TableProgress{}}
	for _, tb := range tables {
		op.Progress.Tables[tb.name] = &TableProgress{}
	}
	return tables, m.save(ctx, m.Owner, op, StepCopying)
}

// clearTarget removes whatever an earlier attempt left in the target, which
// the registry does not name, so nothing there is served.
func (m *Mover) clearTarget(ctx context.Context, t *tenancy.Tenant, dst string) error {
	if dst != "public" {
		if _, err := m.Owner.ExecContext(ctx, `DROP SCHEMA IF EXISTS `+tenancy.QuoteIdent(dst)+` CASCADE`); err != nil {
			return fmt.Errorf("clear target schema %s: %w", dst, err)
		}
		return nil
	}
	tables, err := discover(ctx, m.Owner, dst)
	if err != nil {
		return err
	}
	if err := m.dropFences(ctx, t, dst, tables); err != nil {
		return err
	}
	return m.inTenantTx(ctx, t, func(tx *sql.Tx) error {
		for _, tb := range tables {
			if _, err := tx.ExecContext(ctx, `DELETE FROM `+qualified(dst, tb.name)+` WHERE tenant_id = $1`, t.ID); err != nil {
				return fmt.Errorf("clear %s in %s: %w", tb.name, dst, err)
			}
		}
		return nil
	})
}

// dropFences removes the tenant's write fence from schema's tables where
// one exists (looking first: DROP TRIGGER locks the table even when absent).
func (m *Mover) dropFences(ctx context.Context, t *tenancy.Tenant, schema string, tables []table) error {
	for _, tb := range tables {
		var exists bool
		if err := m.Owner.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = $1 AND tgrelid = $2::regclass)`,
			fenceName(t.ID), qualified(schema, tb.name)).Scan(&exists); err != nil {
			return fmt.Errorf("look for the fence on %s.%s: %w", schema, tb.name, err)
		}
		if !exists {
			continue
		}
		if _, err := m.Owner.ExecContext(ctx, `DROP TRIGGER IF EXISTS `+tenancy.QuoteIdent(fenceName(t.ID))+` ON `+qualified(schema, tb.name)); err != nil {
			return fmt.Errorf("drop the fence on %s.%s: %w", schema, tb.name, err)
		}
	}
	return nil
}

// inTenantTx runs fn in an owner transaction with the tenant bound (forced
// row-level security applies to a non-superuser owner too).
func (m *Mover) inTenantTx(ctx context.Context, t *tenancy.Tenant, fn func(*sql.Tx) error) error {
	tx, err := m.Owner.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `SELECT set_config('app.current_tenant', $1, true)`, t.ID.String()); err != nil {
		return fmt.Errorf("bind tenant: %w", err)
	}
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// copyAll copies each table in bulk (one INSERT ... SELECT, set-based, in
// its own transaction) while the tenant keeps reading and writing the source.
func (m *Mover) copyAll(ctx context.Context, op *Operation, t *tenancy.Tenant, src, dst string, tables []table, log *slog.Logger) error {
	start := time.Now()
	for _, tb := range tables {
		p := op.Progress.Tables[tb.name]
		err := m.inTenantTx(ctx, t, func(tx *sql.Tx) error {
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM `+qualified(src, tb.name)+` WHERE tenant_id = $1`, t.ID).Scan(&p.Rows); err != nil {
				return err
			}
			res, err := tx.ExecContext(ctx, copySQL(src, dst, tb), t.ID)
			if err != nil {
				return err
			}
			p.Copied, _ = res.RowsAffected()
			return nil
		})
		if err != nil {
			return fmt.Errorf("copy %s: %w", tb.name, err)
		}
		op.Progress.RowsCopied += p.Copied
		log.Info("move: table copied", "table", tb.name, "rows", p.Copied)
		if err := m.save(ctx, m.Owner, op, StepCopying); err != nil {
			return err
		}
		m.at("copied:" + tb.name)
	}
	op.Progress.CopySeconds = time.Since(start).Seconds()
	if op.Progress.CopySeconds > 0 {
		op.Progress.RowsPerSec = float64(op.Progress.RowsCopied) / op.Progress.CopySeconds
	}
	return m.save(ctx, m.Owner, op, StepSwitching)
}

// flip is the write pause. A short transaction fences the source against
// the tenant's writes (its lock waits for their in-flight writes; on shared
// tables other tenants' writes wait only for this transaction). Then one
// transaction copies what changed since the bulk copy, verifies every table
// and flips the registry: all of that or none of it.
func (m *Mover) flip(ctx context.Context, op *Operation, t *tenancy.Tenant, src, dst string, tables []table, log *slog.Logger) error {
	start := time.Now()
	err := m.inTenantTx(ctx, t, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `SET LOCAL lock_timeout = '5s'`); err != nil {
			return err
		}
		fence := tenancy.QuoteIdent(fenceName(t.ID))
		for _, tb := range tables {
			// Later writes of the tenant fail with TK503 (503 + Retry-After).
			if _, err := tx.ExecContext(ctx, `DROP TRIGGER IF EXISTS `+fence+` ON `+qualified(src, tb.name)+`;
				CREATE TRIGGER `+fence+` BEFORE INSERT OR UPDATE OR DELETE ON `+qualified(src, tb.name)+
				` FOR EACH ROW EXECUTE FUNCTION tenancy.move_fence('`+t.ID.String()+`')`); err != nil {
				return fmt.Errorf("fence %s: %w", tb.name, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	fenced := time.Since(start)
	m.at("fenced")
	err = m.inTenantTx(ctx, t, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `SET LOCAL lock_timeout = '5s'`); err != nil {
			return err
		}
		var iso tenancy.Isolation
		if err := tx.QueryRowContext(ctx, `SELECT isolation FROM tenancy.tenants WHERE id = $1 FOR UPDATE`, t.ID).Scan(&iso); err != nil {
			return fmt.Errorf("lock registry row: %w", err)
		}
		if iso != op.Source {
			return permanent{fmt.Errorf("tenant %s changed isolation to %s during the move", t.ID, iso)}
		}
		for _, tb := range tables {
			p := op.Progress.Tables[tb.name]
			p.Changed = 0
			for _, q := range deltaSQL(src, dst, tb) {
				res, err := tx.ExecContext(ctx, q, t.ID)
				if err != nil {
					return fmt.Errorf("catch up %s: %w", tb.name, err)
				}
				n, _ := res.RowsAffected()
				p.Changed += n
			}
		}
		for _, tb := range tables {
			var (
				n1, n2 int64
				s1, s2 string
			)
			if err := tx.QueryRowContext(ctx, checksumSQL(src, tb), t.ID).Scan(&n1, &s1); err != nil {
				return fmt.Errorf("verify %s: %w", tb.name, err)
			}
			if err := tx.QueryRowContext(ctx, checksumSQL(dst, tb), t.ID).Scan(&n2, &s2); err != nil {
				return fmt.Errorf("verify %s: %w", tb.name, err)
			}
			if n1 != n2 || s1 != s2 {
				return permanent{fmt.Errorf("verify %s: source has %d rows (checksum %s), target %d (checksum %s)", tb.name, n1, s1, n2, s2)}
			}
			op.Progress.Tables[tb.name].Verified = true
		}
		if _, err := tx.ExecContext(ctx, `UPDATE tenancy.tenants SET isolation = $2, updated_at = now() WHERE id = $1`, t.ID, op.Target); err != nil {
			return fmt.Errorf("flip placement: %w", err)
		}
		op.Progress.WritePauseMS = float64(time.Since(start).Microseconds()) / 1000
		if err := m.save(ctx, tx, op, StepSwitched); err != nil {
			return err
		}
		return audit.Record(ctx, tx, audit.System, t.ID, audit.MoveComplete, map[string]any{"operation_id": op.ID,
			"isolation": map[string]any{"from": op.Source, "to": op.Target}, "rows": op.Progress.RowsCopied,
			"write_pause_ms": op.Progress.WritePauseMS})
	})
	if err != nil {
		return err
	}
	log.Info("move: placement flipped", "write_pause_ms", float64(time.Since(start).Microseconds())/1000,
		"fence_ms", float64(fenced.Microseconds())/1000)
	return nil
}

// cleanup lets every process follow the new placement, then removes the
// old location: the source schema, or the tenant's rows in the shared
// tables and the fence on them.
func (m *Mover) cleanup(ctx context.Context, op *Operation, t *tenancy.Tenant, src string, log *slog.Logger) error {
	if m.Refresh != nil {
		if _, err := m.Refresh.Update(ctx, t.ID, tenancy.TenantUpdate{}); err != nil {
			return fmt.Errorf("refresh caches: %w", err)
		}
	}
	if err := m.save(ctx, m.Owner, op, StepCleaning); err != nil {
		return err
	}
	grace := m.Grace
	if grace == 0 {
		grace = 5 * time.Second
	}
	select {
	case <-time.After(grace):
	case <-ctx.Done():
		return ctx.Err()
	}
	if src != "public" {
		if _, err := m.Owner.ExecContext(ctx, `DROP SCHEMA IF EXISTS `+tenancy.QuoteIdent(src)+` CASCADE`); err != nil {
			return fmt.Errorf("remove old schema %s: %w", src, err)
		}
	} else {
		tables, err := discover(ctx, m.Owner, src)
		if err != nil {
			return err
		}
		// The fence lets the owner through: rows first, then the fence.
		err = m.inTenantTx(ctx, t, func(tx *sql.Tx) error {
			for _, tb := range tables {
				if _, err := tx.ExecContext(ctx, `DELETE FROM `+qualified(src, tb.name)+` WHERE tenant_id = $1`, t.ID); err != nil {
					return fmt.Errorf("remove old rows of %s: %w", tb.name, err)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		m.at("cleaned-rows")
		if err := m.dropFences(ctx, t, src, tables); err != nil {
			return err
		}
	}
	log.Info("move: done", "rows", op.Progress.RowsCopied, "rows_per_second", op.Progress.RowsPerSec, "write_pause_ms", op.Progress.WritePauseMS)
	m.finish(ctx, op, Succeeded, nil)
	return nil
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func (m *Mover) save(ctx context.Context, q execer, op *Operation, step string) error {
	op.Step = step
	b, _ := json.Marshal(op.Progress)
	if _, err := q.ExecContext(ctx, `UPDATE tenancy.operations SET step = $2, progress = $3, updated_at = now() WHERE id = $1`, op.ID, step, b); err != nil {
		return fmt.Errorf("save progress: %w", err)
	}
	return nil
}

func (m *Mover) note(ctx context.Context, op *Operation, cause error) {
	_, _ = m.Owner.ExecContext(ctx, `UPDATE tenancy.operations SET error = $2, updated_at = now() WHERE id = $1`, op.ID, cause.Error())
}

func (m *Mover) finish(ctx context.Context, op *Operation, state State, cause error) {
	var msg *string
	if cause != nil {
		s := cause.Error()
		msg = &s
	}
	step := StepDone
	if state == Failed {
		step = op.Step
	}
	if _, err := m.Owner.ExecContext(ctx, `UPDATE tenancy.operations SET state = $2, step = $3, error = $4,
		finished_at = now(), updated_at = now() WHERE id = $1`, op.ID, state, step, msg); err != nil {
		m.log().Error("move: record the end", "operation_id", op.ID, "err", err)
	}
	if state == Failed {
		_ = audit.Record(ctx, m.Owner, audit.System, op.TenantID, audit.MoveFail, map[string]any{"operation_id": op.ID, "error": msg})
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
