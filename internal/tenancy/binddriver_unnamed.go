package tenancy

import (
	"errors"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// Behind a transaction pooler without prepared statements (PgBouncer 1.18 in
// transaction mode) consecutive transactions of one client connection run on
// whichever server connection is free, so a named statement prepared in one
// may not exist in the next, or may be another client's of the same name.
// With default_query_exec_mode=cache_describe the binding driver therefore
// names nothing: it describes each (search_path, SQL) once per client
// connection, behind the binding as before, and then sends the binding and
// the statement unnamed (Parse, Bind, Execute) in one pipeline with one Sync,
// which PgBouncer keeps on one server connection. The parameter and result
// types still come from the statement's own schema; what is lost is the
// server-side plan cache: every execution is parsed and planned again.

// unnamed reports whether the connection runs bound statements unnamed.
func (c *bindingConn) unnamed() bool { return c.mode == pgx.QueryExecModeCacheDescribe }

var bindOIDs = []uint32{pgtype.TextOID, pgtype.TextOID}

// sendBinding queues the binding statement: the connection's prepared one,
// or unnamed.
func (c *bindingConn) sendBinding(p *pgconn.Pipeline, b tenantBinding) {
	if c.unnamed() {
		p.SendQueryParams(bindSQL, b.params(), bindOIDs, nil, nil)
		return
	}
	p.SendQueryStatement(c.bindSD, b.params(), nil, nil)
}

// staleDescription reports whether err says a kept description no longer
// fits the statement (a migration changed what it reads or writes): the
// server refused it at Bind, before executing anything, so that a retry with
// a fresh description is safe in an implicit transaction.
func staleDescription(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	switch pgErr.Code {
	case "08P01", // bind message has N result formats but query has M columns
		"22P03", // a parameter sent in binary for a type it no longer has
		"42804": // datatype mismatch with the described parameter types
		return true
	}
	return false
}

// checkDescription compares the columns the server is returning with st's:
// when a migration changed their types under the kept description, this
// execution decodes by what the server sent and the next one describes anew.
func (c *bindingConn) checkDescription(b tenantBinding, query string, st *stmt, rr *pgconn.ResultReader) *stmt {
	got := rr.FieldDescriptions()
	if slices.EqualFunc(got, st.sd.Fields, func(x, y pgconn.FieldDescription) bool { return x.DataTypeOID == y.DataTypeOID }) {
		return st
	}
	delete(c.stmts, stmtKey{b.searchPath, query})
	return &stmt{sd: st.sd, formats: st.formats, decode: decoders(c.Conn.Conn().TypeMap(), got)}
}
