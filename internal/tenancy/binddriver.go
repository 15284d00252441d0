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

// The binding statements set a tenant for the current transaction only
// (is_local = true). Sent in the same pipeline as the statement, before its
// Sync, both run in one implicit transaction: the statement sees the binding,
// and the connection goes back to the pool carrying nothing (invariants 1, 2).
//
// RLS tenants leave search_path alone: changing it makes Postgres replan
// cached statements, so only schema tenants, which need it, pay for it.
const (
	bindRLSSQL    = "select set_config('app.current_tenant', $1, true)"
	bindSchemaSQL = "select set_config('app.current_tenant', $1, true), set_config('search_path', $2, true)"
)

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
	db := sql.OpenDB(connector{inner: stdlib.GetConnector(*cfg), textTypes: textPreferredTypes()})
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

type connector struct {
	inner     driver.Connector
	textTypes []*pgtype.Type // see textPreferredTypes
}

func (c connector) Connect(ctx context.Context) (driver.Conn, error) {
	ic, err := c.inner.Connect(ctx)
	if err != nil {
		return nil, err
	}
	sc := ic.(*stdlib.Conn)
	sc.Conn().TypeMap().RegisterTypes(c.textTypes)
	return &bindingConn{Conn: sc}, nil
}

// stdlibBinary are the result types pgx's stdlib requests in binary; it asks
// for every other type in text, so database/sql sees e.g. "{1,2}" for an int[]
// and "1 day" for an interval.
var stdlibBinary = map[uint32]bool{
	pgtype.BoolOID: true, pgtype.ByteaOID: true, pgtype.CIDOID: true, pgtype.DateOID: true,
	pgtype.Float4OID: true, pgtype.Float8OID: true, pgtype.Int2OID: true, pgtype.Int4OID: true,
	pgtype.Int8OID: true, pgtype.OIDOID: true, pgtype.TimestampOID: true, pgtype.TimestamptzOID: true,
	pgtype.XIDOID: true,
}

// textPreferred is a codec that asks the server for text results.
type textPreferred struct{ pgtype.Codec }

func (textPreferred) PreferredFormat() int16 { return pgtype.TextFormatCode }

// textPreferredTypes are the built-in types stdlib reads in text, with
// codecs that ask for text. Registered on each connection, they make a batch
// request results in the formats stdlib uses: a batch cannot be given result
// formats, it takes each type's preferred one, and without this a bound query
// returning an array, interval, inet... would fail or decode differently from
// an unbound one. Computed once per pool: scanning the OIDs costs about 1 ms.
func textPreferredTypes() []*pgtype.Type {
	const firstUserOID = 16384 // every built-in type has a lower OID
	m := pgtype.NewMap()
	var out []*pgtype.Type
	for oid := uint32(1); oid < firstUserOID; oid++ {
		typ, ok := m.TypeForOID(oid)
		if !ok || stdlibBinary[oid] || typ.Codec.PreferredFormat() == pgtype.TextFormatCode {
			continue
		}
		out = append(out, &pgtype.Type{Name: typ.Name, OID: typ.OID, Codec: textPreferred{typ.Codec}})
	}
	return out
}

func (c connector) Driver() driver.Driver { return c.inner.Driver() }

// bindingConn is a pgx stdlib connection that prefixes statements run under a
// tenant-bound context with bindSQL in the same round trip.
type bindingConn struct{ *stdlib.Conn }

// binding returns the statement and arguments that bind ctx's tenant.
func binding(ctx context.Context) (string, []any, bool) {
	t, ok := FromContext(ctx)
	if !ok {
		return "", nil, false
	}
	if t.Isolation == IsolationSchema {
		return bindSchemaSQL, []any{t.ID.String(), QuoteIdent(t.Schema())}, true
	}
	return bindRLSSQL, []any{t.ID.String()}, true
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

func (c *bindingConn) send(ctx context.Context, bindSQL string, bind []any, query string, argsV []driver.NamedValue) (pgx.BatchResults, error) {
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
	bindSQL, bind, ok := binding(ctx)
	if !ok {
		return c.Conn.ExecContext(ctx, query, argsV)
	}
	br, err := c.send(ctx, bindSQL, bind, query, argsV)
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
	bindSQL, bind, ok := binding(ctx)
	if !ok {
		return c.Conn.QueryContext(ctx, query, argsV)
	}
	br, err := c.send(ctx, bindSQL, bind, query, argsV)
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
			return fmt.Errorf("decode column %s: %w", r.Columns()[i], err)
		}
		dest[i] = v
	}
	return nil
}

// decoders picks, per column, the database/sql value stdlib would produce
// (its Rows.Next), so bound and unbound queries scan alike.
func decoders(m *pgtype.Map, fds []pgconn.FieldDescription) []func([]byte) (driver.Value, error) {
	out := make([]func([]byte) (driver.Value, error), len(fds))
	for i, fd := range fds {
		switch fd.DataTypeOID {
		case pgtype.BoolOID:
			out[i] = decodeAs(m, fd, func(v bool) (driver.Value, error) { return v, nil })
		case pgtype.ByteaOID, pgtype.JSONOID, pgtype.JSONBOID, pgtype.XMLOID:
			out[i] = decodeAs(m, fd, func(v []byte) (driver.Value, error) { return append([]byte(nil), v...), nil })
		case pgtype.CIDOID, pgtype.OIDOID, pgtype.XIDOID:
			out[i] = decodeAs(m, fd, func(v pgtype.Uint32) (driver.Value, error) { return v.Value() })
		case pgtype.DateOID: // Value keeps "infinity" as a string, as stdlib does
			out[i] = decodeAs(m, fd, func(v pgtype.Date) (driver.Value, error) { return v.Value() })
		case pgtype.TimestampOID:
			out[i] = decodeAs(m, fd, func(v pgtype.Timestamp) (driver.Value, error) { return v.Value() })
		case pgtype.TimestamptzOID:
			out[i] = decodeAs(m, fd, func(v pgtype.Timestamptz) (driver.Value, error) { return v.Value() })
		case pgtype.Float4OID:
			out[i] = decodeAs(m, fd, func(v float32) (driver.Value, error) { return float64(v), nil })
		case pgtype.Float8OID:
			out[i] = decodeAs(m, fd, func(v float64) (driver.Value, error) { return v, nil })
		case pgtype.Int2OID, pgtype.Int4OID, pgtype.Int8OID:
			out[i] = decodeAs(m, fd, func(v int64) (driver.Value, error) { return v, nil })
		default:
			out[i] = decodeAs(m, fd, func(v string) (driver.Value, error) { return v, nil })
		}
	}
	return out
}

func decodeAs[T any](m *pgtype.Map, fd pgconn.FieldDescription, wrap func(T) (driver.Value, error)) func([]byte) (driver.Value, error) {
	var d T
	plan := m.PlanScan(fd.DataTypeOID, fd.Format, &d)
	return func(src []byte) (driver.Value, error) {
		if err := plan.Scan(src, &d); err != nil {
			return nil, err
		}
		return wrap(d)
	}
}
