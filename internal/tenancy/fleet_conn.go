package tenancy

import (
	"context"
	"database/sql"
	"fmt"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
)

// recycleAfter bounds how many schemas one backend migrates: a backend's
// catalog caches grow with every schema it touches.
const recycleAfter = 100

// schemaConn is one fleet worker's owner connection, reused from schema to
// schema: a new backend per schema costs more than migrating it. Before each
// schema the session is reset (whatever a migration SET is undone) and its
// search_path pointed at the schema; a reconnect lands there too, and
// Migrator.prepare checks current_schema() before goose runs.
type schemaConn struct {
	m      *Migrator
	db     *sql.DB
	schema atomic.Pointer[string]
	used   int
}

func (m *Migrator) newSchemaConn() *schemaConn { return &schemaConn{m: m} }

func (c *schemaConn) open() error {
	cfg, err := c.m.connConfig()
	if err != nil {
		return err
	}
	c.db = stdlib.OpenDB(*cfg, stdlib.OptionAfterConnect(func(ctx context.Context, conn *pgx.Conn) error {
		if s := c.schema.Load(); s != nil {
			_, err := conn.Exec(ctx, `SELECT set_config('search_path', $1, false)`, QuoteIdent(*s))
			return err
		}
		return nil
	}))
	c.db.SetMaxOpenConns(1)
	c.db.SetMaxIdleConns(1)
	c.used = 0
	return nil
}

// use returns the connection, reset and pointed at schema.
func (c *schemaConn) use(ctx context.Context, schema string) (*sql.DB, error) {
	if err := checkSchemaName(schema); err != nil {
		return nil, err
	}
	if c.db != nil && c.used >= recycleAfter {
		c.close()
	}
	if c.db == nil {
		if err := c.open(); err != nil {
			return nil, err
		}
	}
	c.used++
	c.schema.Store(&schema)
	_, err := c.db.ExecContext(ctx, `SET SESSION AUTHORIZATION DEFAULT; RESET ALL; DISCARD TEMP;
		SELECT set_config('search_path', `+quoteLiteral(QuoteIdent(schema))+`, false)`)
	if err != nil {
		c.close() // start the next schema on a new backend
		return nil, fmt.Errorf("point connection at %s: %w", schema, err)
	}
	return c.db, nil
}

func (c *schemaConn) close() {
	if c.db != nil {
		_ = c.db.Close()
		c.db = nil
	}
}

func (c *schemaConn) upSchema(ctx context.Context, schema string) ([]*goose.MigrationResult, error) {
	db, err := c.use(ctx, schema)
	if err != nil {
		return nil, err
	}
	return c.m.upSchemaOn(ctx, db, schema)
}

func (c *schemaConn) downSchemaTo(ctx context.Context, schema string, version int64) ([]*goose.MigrationResult, error) {
	db, err := c.use(ctx, schema)
	if err != nil {
		return nil, err
	}
	return c.m.downSchemaOn(ctx, db, schema, version)
}
