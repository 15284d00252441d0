package tenantdata

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/your-org/tenantkit/internal/apperr"
	"github.com/your-org/tenantkit/internal/tenancy"
)

// ImportOptions choose the imported tenant's identity and placement; zero
// values keep the archive's id and identifier and place it by its tier.
type ImportOptions struct {
	ID         uuid.UUID
	Identifier string
	Isolation  tenancy.Isolation
}

const maxManifest = 16 << 20

// Import creates a tenant from an archive read from r, all or nothing: the
// tenant is registered and provisioned as the lifecycle does, every table is
// loaded with COPY in one transaction and checked against the manifest's
// row counts and SHA-256, and only then the tenant turns active. Any failure
// removes the tenant, its schema and its rows.
func (a *Archiver) Import(ctx context.Context, life *tenancy.Lifecycle, r io.Reader, opt ImportOptions) (*tenancy.Tenant, *Manifest, error) {
	tr, err := openArchive(r)
	if err != nil {
		return nil, nil, err
	}
	m, err := readManifest(tr)
	if err != nil {
		return nil, nil, err
	}
	if m.MigrationVersion > a.LatestVersion {
		return nil, nil, apperr.New(apperr.Conflict,
			"the archive is from tenant migration version %d, newer than this deployment's %d: upgrade (migrate up) before importing it",
			m.MigrationVersion, a.LatestVersion)
	}
	in := tenancy.NewTenant{ID: m.Tenant.ID, Identifier: m.Tenant.Identifier, Name: m.Tenant.Name, Tier: m.Tenant.Tier,
		Metadata: m.Tenant.Metadata, Isolation: opt.Isolation,
		Cell: tenancy.DefaultCell} // the importer writes through the control plane's cluster
	if in.Isolation == tenancy.IsolationDatabase {
		return nil, nil, apperr.Invalid(apperr.FieldError{Field: "isolation", Message: "must be rls or schema"})
	}
	if opt.ID != uuid.Nil {
		in.ID = opt.ID
	}
	if opt.Identifier != "" {
		in.Identifier = opt.Identifier
	}
	in.Fill = func(ctx context.Context, t *tenancy.Tenant) error { return a.load(ctx, tr, m, t) }
	t, err := life.Create(ctx, in)
	if err != nil {
		return nil, m, err
	}
	return t, m, nil
}

func openArchive(r io.Reader) (*tar.Reader, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	magic, _ := br.Peek(2)
	if bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return nil, badArchive("not a readable gzip stream: %v", err)
		}
		return tar.NewReader(gz), nil
	}
	return tar.NewReader(br), nil
}

func badArchive(format string, args ...any) error {
	return apperr.New(apperr.BadRequest, "archive: "+format, args...)
}

func readManifest(tr *tar.Reader) (*Manifest, error) {
	h, err := tr.Next()
	if err != nil {
		return nil, badArchive("not a tar archive: %v", err)
	}
	if h.Name != ManifestFile {
		return nil, badArchive("the first file must be %s, found %q", ManifestFile, h.Name)
	}
	if h.Size > maxManifest {
		return nil, badArchive("%s is too large", ManifestFile)
	}
	var m Manifest
	dec := json.NewDecoder(io.LimitReader(tr, maxManifest))
	if err := dec.Decode(&m); err != nil {
		return nil, badArchive("%s is not valid JSON: %v", ManifestFile, err)
	}
	if m.Format != FormatName || m.FormatVersion != FormatVersion || m.CopyFormat != "text" {
		return nil, badArchive("unsupported format %q version %d (copy format %q); this kit reads %s version %d",
			m.Format, m.FormatVersion, m.CopyFormat, FormatName, FormatVersion)
	}
	if m.Tenant.ID == uuid.Nil {
		return nil, badArchive("the manifest names no tenant id")
	}
	seen := map[string]bool{}
	for _, t := range m.Tables {
		if seen[t.File] || t.File != "tables/"+t.Name+".copy" || !safeFileName(t.Name) || t.tenantIndex() < 0 || t.Rows < 0 {
			return nil, badArchive("table entry %q is invalid (duplicate, unusual name, or no tenant_id column)", t.Name)
		}
		seen[t.File] = true
	}
	return &m, nil
}

// load copies every table file of the archive into t's tables in one
// transaction and verifies counts and checksums before committing.
func (a *Archiver) load(ctx context.Context, tr *tar.Reader, m *Manifest, t *tenancy.Tenant) error {
	return withConn(ctx, a.Owner, func(conn *pgx.Conn) error {
		tx, err := conn.Begin(ctx)
		if err != nil {
			return err
		}
		defer tx.Rollback(context.WithoutCancel(ctx))
		if err := bind(ctx, tx, t); err != nil {
			return err
		}
		schema := t.Schema()
		have, err := DiscoverTables(ctx, conn, schema)
		if err != nil {
			return err
		}
		target := map[string]Table{}
		for _, tb := range have {
			target[tb.Name] = tb
		}
		want := map[string]ManifestTable{}
		for _, mt := range m.Tables {
			want[mt.File] = mt
		}
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return badArchive("truncated or corrupt tar: %v", err)
			}
			mt, ok := want[h.Name]
			if !ok {
				return badArchive("unexpected file %q (not in the manifest, or twice)", h.Name)
			}
			delete(want, h.Name)
			if err := copyIn(ctx, conn, schema, target, mt, tr, m.Tenant.ID, t.ID); err != nil {
				return err
			}
		}
		for f := range want {
			return badArchive("file %q named by the manifest is missing", f)
		}
		return tx.Commit(ctx)
	})
}

func copyIn(ctx context.Context, conn *pgx.Conn, schema string, target map[string]Table, mt ManifestTable, r io.Reader, from, to uuid.UUID) error {
	tb, ok := target[mt.Name]
	if !ok {
		return badArchive("table %s does not exist here (an archive of another application or a newer migration)", mt.Name)
	}
	for _, c := range mt.Columns {
		if tb.Columns == nil || !contains(tb.Columns, c) {
			return badArchive("table %s has no column %s here", mt.Name, c)
		}
	}
	h := sha256.New()
	rw := &tenantRewriter{br: bufio.NewReaderSize(io.TeeReader(r, h), 1<<20), col: mt.tenantIndex(),
		from: []byte(from.String()), to: []byte(to.String())}
	tag, err := conn.PgConn().CopyFrom(ctx, rw, `COPY `+qualified(schema, mt.Name)+` (`+mt.columnList()+`) FROM STDIN`)
	if rw.fail != nil {
		return rw.fail
	}
	if err != nil {
		return copyError(mt.Name, err)
	}
	if n := tag.RowsAffected(); n != mt.Rows || rw.rows != mt.Rows {
		return badArchive("table %s: %d rows, the manifest says %d", mt.Name, n, mt.Rows)
	}
	if sum := hex.EncodeToString(h.Sum(nil)); sum != mt.SHA256 {
		return badArchive("table %s: checksum %s does not match the manifest's %s", mt.Name, sum, mt.SHA256)
	}
	return nil
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// copyError turns a COPY failure caused by the archive's content into a
// client error; anything else stays internal.
func copyError(table string, err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == "23505":
			return apperr.Wrap(apperr.Conflict, err, "table "+table+": rows with these keys already exist")
		case strings.HasPrefix(pe.Code, "22"), strings.HasPrefix(pe.Code, "23"):
			return apperr.Wrap(apperr.BadRequest, err, "archive: table "+table+": a row is invalid: "+pe.Message)
		}
	}
	return fmt.Errorf("copy into %s: %w", table, err)
}

// tenantRewriter passes COPY text rows through, checking that each row's
// tenant_id is the archive's tenant and replacing it with the new one.
type tenantRewriter struct {
	br       *bufio.Reader
	col      int
	from, to []byte
	out      []byte
	rows     int64
	done     bool
	fail     error // an archive error, reported instead of COPY's
}

func (r *tenantRewriter) Read(p []byte) (int, error) {
	for len(r.out) == 0 {
		if r.done {
			return 0, io.EOF
		}
		line, err := r.br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			long := append([]byte(nil), line...)
			for errors.Is(err, bufio.ErrBufferFull) {
				line, err = r.br.ReadSlice('\n')
				long = append(long, line...)
			}
			line = long
		}
		if err != nil && !errors.Is(err, io.EOF) {
			r.fail = badArchive("reading: %v", err)
			return 0, r.fail
		}
		r.done = err != nil
		if len(line) == 0 {
			continue
		}
		if line[len(line)-1] != '\n' || bytes.Equal(line, []byte("\\.\n")) {
			r.fail = badArchive("row %d is truncated or an end-of-data marker", r.rows+1)
			return 0, r.fail
		}
		if err := r.rewrite(line); err != nil {
			r.fail = err
			return 0, err
		}
		r.rows++
		r.out = line
	}
	n := copy(p, r.out)
	r.out = r.out[n:]
	return n, nil
}

// rewrite replaces the tenant field of line in place (uuids have one length).
func (r *tenantRewriter) rewrite(line []byte) error {
	start := 0
	for i := 0; i < r.col; i++ {
		j := bytes.IndexByte(line[start:], '\t')
		if j < 0 {
			return badArchive("row %d has too few columns", r.rows+1)
		}
		start += j + 1
	}
	end := bytes.IndexAny(line[start:], "\t\n")
	field := line[start : start+end]
	if !bytes.Equal(field, r.from) {
		return badArchive("row %d belongs to tenant %q, not the archive's %s", r.rows+1, field, r.from)
	}
	copy(field, r.to)
	return nil
}
