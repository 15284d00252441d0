package tenancy

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/stdlib"
)

// bindSQL binds a tenant for the current transaction only (is_local = true).
// Sent in the same pipeline as the statement, before its Sync, both run in one
// implicit transaction: the statement sees the binding, and the connection
// goes back to the pool carrying nothing (invariants 1 and 2).
const bindSQL = "select set_config('app.current_tenant', $1, true), set_config('search_path', $2, true)"

// PoolConfig sizes a *sql.DB pool.
type PoolConfig struct {
	MaxIdle     int           // DB_POOL_SIZE
	MaxOverflow int           // DB_MAX_OVERFLOW: open connections beyond the idle ones
	MaxLifetime time.Duration // DB_POOL_RECYCLE
}

// OpenDB opens a pool whose connections run every statement issued with a
// tenant-bound context (WithTenant) inside that tenant's isolation. This is
// the one place tenant binding happens, so no handler can forget it.
func OpenDB(dsn string, pool PoolConfig) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	db := sql.OpenDB(connector{inner: stdlib.GetConnector(*cfg)})
	if pool.MaxIdle > 0 {
		db.SetMaxIdleConns(pool.MaxIdle)
		db.SetMaxOpenConns(pool.MaxIdle + pool.MaxOverflow)
	}
	if pool.MaxLifetime > 0 {
		// Schema-per-tenant catalogs grow per backend: recycle connections.
		db.SetConnMaxLifetime(pool.MaxLifetime)
	}
	return db, nil
}

type connector struct{ inner driver.Connector }

func (c connector) Connect(ctx context.Context) (driver.Conn, error) {
	ic, err := c.inner.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &bindingConn{Conn: ic.(*stdlib.Conn)}, nil
}

func (c connector) Driver() driver.Driver { return c.inner.Driver() }

// bindingConn is a pgx stdlib connection that prefixes statements run under a
// tenant-bound context with bindSQL in the same round trip.
type bindingConn struct{ *stdlib.Conn }

func bindArgs(ctx context.Context) ([]any, bool) {
	t, ok := FromContext(ctx)
	if !ok {
		return nil, false
	}
	return []any{t.ID.String(), QuoteIdent(t.Schema())}, true
}

func namedArgs(argsV []driver.NamedValue) []any {
	args := make([]any, len(argsV))
	for i, v := range argsV {
		args[i] = v.Value
	}
	return args
}

func retryable(err error) error {
	if err != nil && pgconn.SafeToRetry(err) {
		return driver.ErrBadConn
	}
	return err
}

func (c *bindingConn) send(ctx context.Context, bind []any, query string, argsV []driver.NamedValue) (pgx.BatchResults, error) {
	b := &pgx.Batch{}
	b.Queue(bindSQL, bind...)
	b.Queue(query, namedArgs(argsV)...)
	br := c.Conn.Conn().SendBatch(ctx, b)
	if _, err := br.Exec(); err != nil {
		br.Close()
		return nil, retryable(err)
	}
	return br, nil
}

func (c *bindingConn) ExecContext(ctx context.Context, query string, argsV []driver.NamedValue) (driver.Result, error) {
	bind, ok := bindArgs(ctx)
	if !ok {
		return c.Conn.ExecContext(ctx, query, argsV)
	}
	br, err := c.send(ctx, bind, query, argsV)
	if err != nil {
		return nil, err
	}
	tag, err := br.Exec()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	return driver.RowsAffected(tag.RowsAffected()), nil
}

func (c *bindingConn) QueryContext(ctx context.Context, query string, argsV []driver.NamedValue) (driver.Rows, error) {
	bind, ok := bindArgs(ctx)
	if !ok {
		return c.Conn.QueryContext(ctx, query, argsV)
	}
	br, err := c.send(ctx, bind, query, argsV)
	if err != nil {
		return nil, err
	}
	rows, _ := br.Query()
	// Read the first row now so that errors surface here, as stdlib does.
	more := rows.Next()
	if err := rows.Err(); err != nil {
		rows.Close()
		br.Close()
		return nil, err
	}
	return &batchRows{br: br, rows: rows, typeMap: c.Conn.Conn().TypeMap(), pending: true, pendingMore: more}, nil
}

// PrepareContext defers to QueryContext/ExecContext so that prepared
// statements are bound too; pgx caches the real prepared statement anyway.
func (c *bindingConn) PrepareContext(_ context.Context, query string) (driver.Stmt, error) {
	return &lazyStmt{conn: c, query: query}, nil
}

func (c *bindingConn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

type lazyStmt struct {
	conn  *bindingConn
	query string
}

func (s *lazyStmt) Close() error  { return nil }
func (s *lazyStmt) NumInput() int { return -1 }
func (s *lazyStmt) Exec([]driver.Value) (driver.Result, error) {
	return nil, fmt.Errorf("Stmt.Exec is deprecated: use ExecContext")
}
func (s *lazyStmt) Query([]driver.Value) (driver.Rows, error) {
	return nil, fmt.Errorf("Stmt.Query is deprecated: use QueryContext")
}
func (s *lazyStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	return s.conn.ExecContext(ctx, s.query, args)
}
func (s *lazyStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	return s.conn.QueryContext(ctx, s.query, args)
}

// batchRows adapts the statement's pgx.Rows to database/sql, converting values
// the way pgx's stdlib does.
type batchRows struct {
	br          pgx.BatchResults
	rows        pgx.Rows
	typeMap     *pgtype.Map
	columns     []string
	decode      []func([]byte) (driver.Value, error)
	pending     bool // first row already read by QueryContext
	pendingMore bool
}

func (r *batchRows) Columns() []string {
	if r.columns == nil {
		fds := r.rows.FieldDescriptions()
		r.columns = make([]string, len(fds))
		for i, fd := range fds {
			r.columns[i] = fd.Name
		}
	}
	return r.columns
}

func (r *batchRows) Close() error {
	r.rows.Close()
	err := r.rows.Err()
	if cerr := r.br.Close(); err == nil {
		err = cerr
	}
	return err
}

func (r *batchRows) Next(dest []driver.Value) error {
	if r.decode == nil {
		r.decode = decoders(r.typeMap, r.rows.FieldDescriptions())
	}
	more := r.pendingMore
	if r.pending {
		r.pending = false
	} else {
		more = r.rows.Next()
	}
	if !more {
		if err := r.rows.Err(); err != nil {
			return err
		}
		return io.EOF
	}
	for i, raw := range r.rows.RawValues() {
		if raw == nil {
			dest[i] = nil
			continue
		}
		v, err := r.decode[i](raw)
		if err != nil {
			return fmt.Errorf("decode column %s: %w", r.columns[i], err)
		}
		dest[i] = v
	}
	return nil
}

// decoders picks, per column, the database/sql value type stdlib would use.
func decoders(m *pgtype.Map, fds []pgconn.FieldDescription) []func([]byte) (driver.Value, error) {
	out := make([]func([]byte) (driver.Value, error), len(fds))
	for i, fd := range fds {
		switch fd.DataTypeOID {
		case pgtype.BoolOID:
			out[i] = decodeAs[bool](m, fd, func(v bool) driver.Value { return v })
		case pgtype.Int2OID, pgtype.Int4OID, pgtype.Int8OID:
			out[i] = decodeAs[int64](m, fd, func(v int64) driver.Value { return v })
		case pgtype.Float4OID, pgtype.Float8OID:
			out[i] = decodeAs[float64](m, fd, func(v float64) driver.Value { return v })
		case pgtype.DateOID, pgtype.TimestampOID, pgtype.TimestamptzOID:
			out[i] = decodeAs[time.Time](m, fd, func(v time.Time) driver.Value { return v })
		case pgtype.ByteaOID, pgtype.JSONOID, pgtype.JSONBOID:
			out[i] = decodeAs[[]byte](m, fd, func(v []byte) driver.Value { return append([]byte(nil), v...) })
		default:
			out[i] = decodeAs[string](m, fd, func(v string) driver.Value { return v })
		}
	}
	return out
}

func decodeAs[T any](m *pgtype.Map, fd pgconn.FieldDescription, wrap func(T) driver.Value) func([]byte) (driver.Value, error) {
	var d T
	plan := m.PlanScan(fd.DataTypeOID, fd.Format, &d)
	return func(src []byte) (driver.Value, error) {
		if err := plan.Scan(src, &d); err != nil {
			return nil, err
		}
		return wrap(d), nil
	}
}
