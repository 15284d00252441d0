package tenancy

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
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
// Every binding also sets search_path, RLS tenants to the shared schema:
// nothing a session left on the connection redirects their statements.
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
	db := sql.OpenDB(connector{inner: stdlib.GetConnector(*cfg), textTypes: textPreferredTypes(),
		mode: cfg.DefaultQueryExecMode, citus: &citusDetector{}})
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
	textTypes []*pgtype.Type    // see textPreferredTypes
	mode      pgx.QueryExecMode // the DSN's default_query_exec_mode
	citus     *citusDetector    // shared by the pool's connections: detected once (binddriver_citus.go)
}

func (c connector) Connect(ctx context.Context) (driver.Conn, error) {
	ic, err := c.inner.Connect(ctx)
	if err != nil {
		return nil, err
	}
	sc := ic.(*stdlib.Conn)
	sc.Conn().TypeMap().RegisterTypes(c.textTypes)
	citus, err := c.citus.detect(ctx, sc)
	if err != nil {
		_ = sc.Close()
		return nil, err
	}
	return &bindingConn{Conn: sc, mode: c.mode, citus: citus}, nil
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

// bindingConn is a pgx stdlib connection that runs statements issued under a
// tenant-bound context after the binding statement, in one pipeline (one
// round trip, one implicit transaction).
//
// It keeps its own prepared statements, one per (search_path, SQL text), and
// prepares each in a pipeline behind the binding statement, so that a premium
// tenant's statement is parsed and described under the tenant's own schema
// (never against public, where pgx's cache keyed by SQL text alone would
// describe it) and never replanned when the connection next serves another
// tenant: Postgres replans a cached statement whenever search_path differs
// from the one it was planned under.
type bindingConn struct {
	*stdlib.Conn
	mode   pgx.QueryExecMode // see ownStatements and unnamed
	bindSD *pgconn.StatementDescription
	stmts  map[stmtKey]*stmt
	seq    int
	stale  int  // statements dropped from stmts but still allocated on the server
	citus  bool // bind with SET LOCAL in an explicit transaction (binddriver_citus.go)
}

type stmtKey struct{ searchPath, sql string }

// stmt is a prepared statement with what reading its rows needs, computed
// once: the result formats stdlib would ask for and a decoder per column.
type stmt struct {
	sd      *pgconn.StatementDescription
	formats []int16
	decode  []func([]byte) (driver.Value, error)
}

// maxStatements bounds the prepared statements of one connection; past it the
// pool discards the connection, as backends' catalog caches also grow with
// every schema they touch.
const maxStatements = 2000

// IsValid tells database/sql whether to keep the connection in the pool.
func (c *bindingConn) IsValid() bool {
	return !c.Conn.Conn().IsClosed() && len(c.stmts)+c.stale < maxStatements
}

// tenantBinding is what binds a statement: the tenant and its search_path.
type tenantBinding struct{ tenant, searchPath string }

// binding returns ctx's tenant binding. Every binding fixes search_path, RLS
// tenants to the shared schema: a session-level SET search_path left on a
// pooled connection must not redirect an RLS tenant's unqualified statements.
func binding(ctx context.Context) (tenantBinding, bool) {
	t, ok := FromContext(ctx)
	if !ok {
		return tenantBinding{}, false
	}
	return tenantBinding{tenant: t.ID.String(), searchPath: QuoteIdent(t.Schema())}, true
}

func (b tenantBinding) params() [][]byte { return [][]byte{[]byte(b.tenant), []byte(b.searchPath)} }

func retryable(err error) error {
	if err != nil && pgconn.SafeToRetry(err) {
		return driver.ErrBadConn
	}
	return err
}

// staleStatement reports whether err says a prepared statement no longer fits:
// its result type changed under it (a migration altered a table a SELECT *
// reads) or it is gone (DEALLOCATE ALL, DISCARD ALL).
func staleStatement(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "0A000" && strings.Contains(pgErr.Message, "cached plan") ||
		pgErr.Code == "26000")
}

// prepare parses and describes query behind b's binding, so under b's
// search_path, and remembers it for this connection.
func (c *bindingConn) prepare(ctx context.Context, b tenantBinding, query string) (*stmt, error) {
	pc := c.Conn.Conn().PgConn()
	name := "" // unnamed: described here, parsed again at each execution
	if !c.unnamed() {
		if c.bindSD == nil {
			c.seq++ // names are never reused: a statement of a forgotten name may still exist
			sd, err := pc.Prepare(ctx, "tk_bind_"+strconv.Itoa(c.seq), bindSQL, nil)
			if err != nil {
				return nil, retryable(fmt.Errorf("prepare binding: %w", err))
			}
			c.bindSD = sd
		}
		c.seq++
		name = "tk_" + strconv.Itoa(c.seq)
	}
	p := pc.StartPipeline(ctx)
	c.sendBinding(p, b)
	p.SendPrepare(name, query, nil)
	if err := p.Sync(); err != nil {
		p.Close()
		return nil, retryable(err)
	}
	var sd *pgconn.StatementDescription
	err := func() error {
		res, err := p.GetResults()
		if err != nil {
			return err
		}
		if rr, ok := res.(*pgconn.ResultReader); ok {
			if _, err := rr.Close(); err != nil {
				return err
			}
		}
		res, err = p.GetResults()
		if err != nil {
			return err
		}
		var ok bool
		if sd, ok = res.(*pgconn.StatementDescription); !ok {
			return fmt.Errorf("prepare: got %T", res)
		}
		sd.Name, sd.SQL = name, query
		return nil
	}()
	if cerr := p.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, retryable(err)
	}
	m := c.Conn.Conn().TypeMap()
	st := &stmt{sd: sd, formats: make([]int16, len(sd.Fields))}
	fds := make([]pgconn.FieldDescription, len(sd.Fields))
	for i, f := range sd.Fields {
		st.formats[i] = m.FormatCodeForOID(f.DataTypeOID)
		fds[i] = f
		fds[i].Format = st.formats[i]
	}
	st.decode = decoders(m, fds)
	if c.stmts == nil {
		c.stmts = map[stmtKey]*stmt{}
	}
	c.stmts[stmtKey{b.searchPath, query}] = st
	return st, nil
}

// start sends the binding and query in one pipeline and returns the query's
// result reader; the caller closes the pipeline. A statement made stale by a
// schema change is prepared again and retried once, which is safe because the
// failed implicit transaction changed nothing; inside an explicit transaction
// the error is returned (the transaction is aborted) and the next attempt
// prepares afresh.
func (c *bindingConn) start(ctx context.Context, b tenantBinding, query string, argsV []driver.NamedValue) (*pgconn.Pipeline, *pgconn.ResultReader, *stmt, error) {
	inTx := c.Conn.Conn().PgConn().TxStatus() != 'I'
	for attempt := 0; ; attempt++ {
		p, rr, st, err := c.startOnce(ctx, b, query, argsV)
		if err == nil || !staleStatement(err) && !(c.unnamed() && staleDescription(err)) {
			return p, rr, st, err
		}
		if pgErr := (*pgconn.PgError)(nil); errors.As(err, &pgErr) && pgErr.Code == "26000" {
			c.stmts, c.bindSD = nil, nil // every statement of ours may be gone
		} else {
			delete(c.stmts, stmtKey{b.searchPath, query})
			if !c.unnamed() {
				c.stale++ // left allocated: it goes with the connection
			}
		}
		if inTx || attempt > 0 {
			return nil, nil, nil, err
		}
	}
}

// statement returns query's statement under b's search_path, preparing it on
// first use, and argsV encoded for it.
func (c *bindingConn) statement(ctx context.Context, b tenantBinding, query string, argsV []driver.NamedValue) (*stmt, [][]byte, []int16, error) {
	st := c.stmts[stmtKey{b.searchPath, query}]
	if st == nil {
		var err error
		if st, err = c.prepare(ctx, b, query); err != nil {
			return nil, nil, nil, err
		}
	}
	params, formats, err := c.encode(st.sd, argsV)
	if err != nil {
		return nil, nil, nil, err
	}
	return st, params, formats, nil
}

func (c *bindingConn) startOnce(ctx context.Context, b tenantBinding, query string, argsV []driver.NamedValue) (*pgconn.Pipeline, *pgconn.ResultReader, *stmt, error) {
	st, params, formats, err := c.statement(ctx, b, query, argsV)
	if err != nil {
		return nil, nil, nil, err
	}
	p := c.Conn.Conn().PgConn().StartPipeline(ctx)
	c.sendBinding(p, b)
	if c.unnamed() {
		p.SendQueryParams(query, params, st.sd.ParamOIDs, formats, st.formats)
	} else {
		p.SendQueryStatement(st.sd, params, formats, st.formats)
	}
	if err := p.Sync(); err != nil {
		p.Close()
		return nil, nil, nil, retryable(err)
	}
	fail := func(err error) (*pgconn.Pipeline, *pgconn.ResultReader, *stmt, error) {
		p.Close()
		return nil, nil, nil, retryable(err)
	}
	res, err := p.GetResults()
	if err != nil {
		return fail(err)
	}
	if rr, ok := res.(*pgconn.ResultReader); ok {
		if _, err := rr.Close(); err != nil {
			return fail(err)
		}
	}
	res, err = p.GetResults()
	if err != nil {
		return fail(err)
	}
	rr, ok := res.(*pgconn.ResultReader)
	if !ok {
		return fail(fmt.Errorf("query: got %T", res))
	}
	if c.unnamed() {
		st = c.checkDescription(b, query, st, rr)
	}
	return p, rr, st, nil
}

// encode turns database/sql arguments into parameters of sd, in the formats
// pgx would send them.
func (c *bindingConn) encode(sd *pgconn.StatementDescription, argsV []driver.NamedValue) ([][]byte, []int16, error) {
	if len(argsV) != len(sd.ParamOIDs) {
		return nil, nil, fmt.Errorf("expected %d arguments, got %d", len(sd.ParamOIDs), len(argsV))
	}
	m := c.Conn.Conn().TypeMap()
	params := make([][]byte, len(argsV))
	formats := make([]int16, len(argsV))
	// One buffer for all; Encode returns nil for NULL, so it must never be
	// handed a nil buffer (an empty string would read as NULL).
	buf := make([]byte, 0, 128)
	for i, a := range argsV {
		oid := sd.ParamOIDs[i]
		formats[i] = m.FormatCodeForOID(oid)
		start := len(buf)
		out, err := m.Encode(oid, formats[i], a.Value, buf)
		if err != nil {
			return nil, nil, fmt.Errorf("encode argument %d: %w", i+1, err)
		}
		if out == nil {
			continue // NULL
		}
		params[i] = out[start:len(out):len(out)]
		buf = out
	}
	return params, formats, nil
}

// explain tells a schema tenant deleted under a request apart from a bug:
// a statement of a request that resolved its tenant just before the tenant's
// schema was dropped fails as "relation does not exist". When the schema is
// gone, err becomes a TenantGoneError (tenant_not_found, as for an RLS
// tenant's refused write). Only failed statements pay for the look-up.
func (c *bindingConn) explain(ctx context.Context, err error) error {
	if code := pgCode(err); code != "42P01" && code != "3F000" { // undefined_table, invalid_schema_name
		return err
	}
	t, ok := FromContext(ctx)
	if !ok || t.Isolation != IsolationSchema || c.Conn.Conn().PgConn().TxStatus() != 'I' {
		return err
	}
	var gone bool
	if qerr := c.Conn.Conn().QueryRow(ctx, `SELECT to_regnamespace($1) IS NULL`, t.Schema()).Scan(&gone); qerr == nil && gone {
		return &TenantGoneError{Err: err}
	}
	return err
}

// finishPipeline reads what is left of the pipeline (the Sync) and closes it.
func finishPipeline(p *pgconn.Pipeline) error {
	res, err := p.GetResults()
	if err == nil {
		if _, ok := res.(*pgconn.PipelineSync); !ok {
			err = fmt.Errorf("expected sync, got %T", res)
		}
	}
	if cerr := p.Close(); err == nil {
		err = cerr
	}
	return err
}

// ownStatements reports whether the connection may keep named prepared
// statements: pgx's default mode. With default_query_exec_mode=exec (or
// simple_protocol), e.g. behind a pooler without prepared statements, bound
// statements go through a pgx batch in that mode instead, parsed at each
// execution after the binding.
//
// With default_query_exec_mode=cache_describe (PgBouncer 1.18 in transaction
// mode) it keeps the descriptions only, per (search_path, SQL) still, and
// runs each statement unnamed: see unnamed.
func (c *bindingConn) ownStatements() bool {
	return c.mode == pgx.QueryExecModeCacheStatement || c.unnamed()
}

// decoders of a statement's columns, see decoders.
type columnDecoders = []func([]byte) (driver.Value, error)

// send runs a bound statement the way this connection binds (on Citus, with
// its own statements, or as a pgx batch) and returns its result to read and
// what reads the rest of the round trip.
func (c *bindingConn) send(ctx context.Context, b tenantBinding, query string, argsV []driver.NamedValue) (resultRows, columnDecoders, func() error, error) {
	switch {
	case c.citus:
		return c.startCitus(ctx, b, query, argsV)
	case c.ownStatements():
		p, rr, st, err := c.start(ctx, b, query, argsV)
		if err != nil {
			return nil, nil, nil, c.explain(ctx, err)
		}
		return rr, st.decode, func() error { return finishPipeline(p) }, nil
	default:
		rr, finish, err := c.viaBatch(ctx, b, query, argsV)
		if err != nil {
			return nil, nil, nil, err
		}
		return rr, decoders(c.Conn.Conn().TypeMap(), rr.FieldDescriptions()), finish, nil
	}
}

func (c *bindingConn) ExecContext(ctx context.Context, query string, argsV []driver.NamedValue) (driver.Result, error) {
	b, ok := binding(ctx)
	if !ok {
		return c.Conn.ExecContext(ctx, query, argsV)
	}
	rr, _, finish, err := c.send(ctx, b, query, argsV)
	if err != nil {
		return nil, err
	}
	tag, err := rr.Close()
	if ferr := finish(); err == nil {
		err = ferr
	}
	if err != nil {
		return nil, err
	}
	return driver.RowsAffected(tag.RowsAffected()), nil
}

func (c *bindingConn) QueryContext(ctx context.Context, query string, argsV []driver.NamedValue) (driver.Rows, error) {
	b, ok := binding(ctx)
	if !ok {
		return c.Conn.QueryContext(ctx, query, argsV)
	}
	rr, decode, finish, err := c.send(ctx, b, query, argsV)
	if err != nil {
		return nil, err
	}
	r := &batchRows{rr: rr, decode: decode, finish: finish}
	// Read the first row now so that errors surface here, as stdlib does.
	r.pendingMore = r.rr.NextRow()
	r.pending = true
	if !r.pendingMore {
		r.done = true
		if _, err := r.rr.Close(); err != nil {
			_ = r.finish()
			return nil, err
		}
	}
	return r, nil
}

// viaBatch sends the binding and the query as one pgx batch, in the
// connection's exec mode.
func (c *bindingConn) viaBatch(ctx context.Context, b tenantBinding, query string, argsV []driver.NamedValue) (resultRows, func() error, error) {
	batch := &pgx.Batch{}
	batch.Queue(bindSQL, b.tenant, b.searchPath)
	args := make([]any, len(argsV))
	for i, v := range argsV {
		args[i] = v.Value
	}
	batch.Queue(query, args...)
	br := c.Conn.Conn().SendBatch(ctx, batch)
	if _, err := br.Exec(); err != nil {
		br.Close()
		return nil, nil, retryable(err)
	}
	rows, err := br.Query()
	if err != nil {
		// A statement that failed (1/0, a constraint) has no result to
		// read: its rows would have no field descriptions.
		br.Close()
		return nil, nil, err
	}
	return pgxRows{rows}, br.Close, nil
}

// pgxRows reads a batch's pgx.Rows as resultRows.
type pgxRows struct{ rows pgx.Rows }

func (r pgxRows) NextRow() bool                                { return r.rows.Next() }
func (r pgxRows) Values() [][]byte                             { return r.rows.RawValues() }
func (r pgxRows) FieldDescriptions() []pgconn.FieldDescription { return r.rows.FieldDescriptions() }
func (r pgxRows) Close() (pgconn.CommandTag, error) {
	r.rows.Close()
	return r.rows.CommandTag(), r.rows.Err()
}

// PrepareContext defers to QueryContext/ExecContext so that prepared
// statements are bound too; the connection prepares the real statement.
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

// resultRows is a statement's result as pgconn reads it.
type resultRows interface {
	NextRow() bool
	Values() [][]byte
	FieldDescriptions() []pgconn.FieldDescription
	Close() (pgconn.CommandTag, error)
}

// batchRows adapts the statement's result to database/sql, converting values
// the way pgx's stdlib does.
type batchRows struct {
	rr          resultRows
	finish      func() error // reads the rest of the round trip
	columns     []string
	decode      []func([]byte) (driver.Value, error) // the statement's, built once
	pending     bool                                 // first row already read by QueryContext
	pendingMore bool
	done        bool // rr closed
	err         error
}

func (r *batchRows) Columns() []string {
	if r.columns == nil {
		fds := r.rr.FieldDescriptions()
		r.columns = make([]string, len(fds))
		for i, fd := range fds {
			r.columns[i] = fd.Name
		}
	}
	return r.columns
}

func (r *batchRows) Close() error {
	err := r.err
	if !r.done {
		r.done = true
		if _, cerr := r.rr.Close(); err == nil {
			err = cerr
		}
	}
	if r.finish != nil {
		if ferr := r.finish(); err == nil {
			err = ferr
		}
		r.finish = nil
	}
	return err
}

func (r *batchRows) Next(dest []driver.Value) error {
	more := r.pendingMore
	if r.pending {
		r.pending = false
	} else if !r.done {
		more = r.rr.NextRow()
	} else {
		more = false
	}
	if !more {
		if !r.done {
			r.done = true
			if _, err := r.rr.Close(); err != nil {
				r.err = err
				return err
			}
		}
		return io.EOF
	}
	for i, raw := range r.rr.Values() {
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
