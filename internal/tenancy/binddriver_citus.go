package tenancy

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// On Citus the binding must reach the workers: the row level security policy
// of a shard runs there, and Citus propagates neither set_config nor
// anything outside a transaction block. It does propagate SET LOCAL within
// an explicit transaction when citus.propagate_set_commands is 'local'. So a
// bound statement goes out as
//
//	BEGIN; SET LOCAL citus.propagate_set_commands = 'local';
//	SET LOCAL app.current_tenant = '…'; SET LOCAL search_path = …;
//	<statement>; COMMIT
//
// in one pipeline before one Sync: still one round trip, the binding still
// ends with the transaction (on the coordinator and on every worker
// connection it touched), nothing stays on the pooled connection
// (invariants 1, 2). Inside a transaction the caller opened, only the SETs
// precede the statement. Plain PostgreSQL never takes this path: the pool
// looks for the extension once, at its first connection.

// citusSetup are the statements that bind b on Citus, in order.
func citusSetup(b tenantBinding) []string {
	return []string{
		"SET LOCAL citus.propagate_set_commands = 'local'",
		// The tenant is a UUID's canonical text and searchPath a quoted
		// identifier (QuoteIdent): both are safe to splice (invariant 5).
		"SET LOCAL app.current_tenant = " + quoteLiteral(b.tenant),
		"SET LOCAL search_path = " + b.searchPath,
	}
}

// citusDetector finds out once per pool whether the database runs Citus.
type citusDetector struct {
	mu   sync.Mutex
	done bool
	on   bool
}

func (d *citusDetector) detect(ctx context.Context, sc *stdlib.Conn) (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.done {
		return d.on, nil
	}
	if err := sc.Conn().QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus')`,
		pgx.QueryExecModeSimpleProtocol).Scan(&d.on); err != nil {
		return false, fmt.Errorf("detect citus: %w", err)
	}
	d.done = true
	return d.on, nil
}

// startCitus is start for Citus: the statement between BEGIN, the SETs and
// COMMIT (or after the SETs alone inside the caller's transaction). The
// caller reads the query's result, then calls finish, which reads the rest
// (the COMMIT) and rolls back a transaction of ours that failed.
func (c *bindingConn) startCitus(ctx context.Context, b tenantBinding, query string, argsV []driver.NamedValue) (resultRows, columnDecoders, func() error, error) {
	pc := c.Conn.Conn().PgConn()
	own := pc.TxStatus() == 'I'
	for attempt := 0; ; attempt++ {
		rr, decode, finish, err := c.startCitusOnce(ctx, b, query, argsV, own)
		if err == nil || !staleStatement(err) && !(c.unnamed() && staleDescription(err)) {
			return rr, decode, finish, err
		}
		if pgErr := (*pgconn.PgError)(nil); errors.As(err, &pgErr) && pgErr.Code == "26000" {
			c.stmts, c.bindSD = nil, nil
		} else {
			delete(c.stmts, stmtKey{b.searchPath, query})
			if !c.unnamed() {
				c.stale++
			}
		}
		if !own || attempt > 0 {
			return nil, nil, nil, err
		}
	}
}

func (c *bindingConn) startCitusOnce(ctx context.Context, b tenantBinding, query string, argsV []driver.NamedValue, own bool) (resultRows, columnDecoders, func() error, error) {
	pc := c.Conn.Conn().PgConn()
	setup := citusSetup(b)
	if own {
		setup = append([]string{"BEGIN"}, setup...)
	}
	var (
		p      *pgconn.Pipeline
		decode []func([]byte) (driver.Value, error)
	)
	if !c.ownStatements() {
		return c.citusBatch(ctx, setup, query, argsV, own)
	}
	st, params, formats, err := c.statement(ctx, b, query, argsV)
	if err != nil {
		return nil, nil, nil, err
	}
	p = pc.StartPipeline(ctx)
	for _, s := range setup {
		p.SendQueryParams(s, nil, nil, nil, nil)
	}
	if c.unnamed() {
		// Parsed again here: the SETs before it took the unnamed statement.
		p.SendQueryParams(query, params, st.sd.ParamOIDs, formats, st.formats)
	} else {
		p.SendQueryStatement(st.sd, params, formats, st.formats)
	}
	decode = st.decode
	if own {
		p.SendQueryParams("COMMIT", nil, nil, nil, nil)
	}
	fail := func(err error) (resultRows, columnDecoders, func() error, error) {
		p.Close()
		c.rollbackOwn(own)
		return nil, nil, nil, retryable(err)
	}
	if err := p.Sync(); err != nil {
		return fail(err)
	}
	for range setup {
		res, err := p.GetResults()
		if err != nil {
			return fail(err)
		}
		if r, ok := res.(*pgconn.ResultReader); ok {
			if _, err := r.Close(); err != nil {
				return fail(err)
			}
		}
	}
	res, err := p.GetResults()
	if err != nil {
		return fail(err)
	}
	qr, ok := res.(*pgconn.ResultReader)
	if !ok {
		return fail(fmt.Errorf("query: got %T", res))
	}
	if c.unnamed() {
		decode = c.checkDescription(b, query, st, qr).decode
	}
	finish := func() error {
		err := func() error {
			for {
				res, err := p.GetResults()
				if err != nil {
					return err
				}
				switch r := res.(type) {
				case *pgconn.PipelineSync:
					return nil
				case *pgconn.ResultReader:
					if _, err := r.Close(); err != nil {
						return err
					}
				default:
					return fmt.Errorf("expected commit and sync, got %T", res)
				}
			}
		}()
		if cerr := p.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			c.rollbackOwn(own)
		}
		return err
	}
	return qr, decode, finish, nil
}

// rollbackOwn ends a transaction of ours that a failure left open (an error
// inside an explicit transaction block leaves it aborted after the Sync):
// the connection goes back to the pool outside any transaction.
func (c *bindingConn) rollbackOwn(own bool) {
	pc := c.Conn.Conn().PgConn()
	if !own || pc.IsClosed() || pc.TxStatus() == 'I' {
		return
	}
	if _, err := pc.Exec(context.Background(), "ROLLBACK").ReadAll(); err != nil {
		_ = pc.Close(context.Background()) // IsValid then drops it
	}
}

// citusBatch is startCitus behind a pooler without prepared statements:
// one pgx batch in the connection's exec mode, as viaBatch.
func (c *bindingConn) citusBatch(ctx context.Context, setup []string, query string, argsV []driver.NamedValue, own bool) (resultRows, columnDecoders, func() error, error) {
	batch := &pgx.Batch{}
	for _, s := range setup {
		batch.Queue(s)
	}
	args := make([]any, len(argsV))
	for i, v := range argsV {
		args[i] = v.Value
	}
	batch.Queue(query, args...)
	if own {
		batch.Queue("COMMIT")
	}
	br := c.Conn.Conn().SendBatch(ctx, batch)
	for range setup {
		if _, err := br.Exec(); err != nil {
			br.Close()
			c.rollbackOwn(own)
			return nil, nil, nil, retryable(err)
		}
	}
	rows, _ := br.Query()
	finish := func() error {
		err := br.Close()
		if err != nil {
			c.rollbackOwn(own)
		}
		return err
	}
	return pgxRows{rows}, decoders(c.Conn.Conn().TypeMap(), rows.FieldDescriptions()), finish, nil
}
