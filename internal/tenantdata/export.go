package tenantdata

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/your-org/tenantkit/internal/apperr"
	"github.com/your-org/tenantkit/internal/tenancy"
)

// Archive format (docs/operations.md, "Export and import"): a tar, gzipped
// unless asked otherwise, holding manifest.json first, then one file per
// tenant table, tables/<name>.copy, in COPY text format (one row a line,
// tab-separated, \N for NULL, backslash escapes).
const (
	FormatName    = "tenantkit-tenant-export"
	FormatVersion = 1
	ManifestFile  = "manifest.json"
)

// Manifest describes an archive.
type Manifest struct {
	Format           string          `json:"format"`
	FormatVersion    int             `json:"format_version"`
	CreatedAt        time.Time       `json:"created_at"`
	Tenant           ManifestTenant  `json:"tenant"`
	MigrationVersion int64           `json:"migration_version"` // tenant migrations of the exported schema
	CopyFormat       string          `json:"copy_format"`       // "text"
	Tables           []ManifestTable `json:"tables"`
}

// ManifestTenant is the registry row of the exported tenant.
type ManifestTenant struct {
	ID         uuid.UUID         `json:"id"`
	Identifier string            `json:"identifier"`
	Name       string            `json:"name"`
	Status     tenancy.Status    `json:"status"`
	Tier       tenancy.Tier      `json:"tier"`
	Isolation  tenancy.Isolation `json:"isolation"`
	Metadata   json.RawMessage   `json:"metadata"`
	CreatedAt  time.Time         `json:"created_at"`
}

// ManifestTable is one table file: its columns, rows and the SHA-256 of its bytes.
type ManifestTable struct {
	Table
	File   string `json:"file"`
	Rows   int64  `json:"rows"`
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
}

// Archiver exports and imports tenants as the owner role
// (MIGRATE_DATABASE_URL): forced row-level security still applies, so every
// statement runs with the tenant bound and filtered on tenant_id.
type Archiver struct {
	Owner *sql.DB // pgx stdlib pool
	// LatestVersion is the newest tenant migration this binary knows;
	// imports of archives from a newer version are refused.
	LatestVersion int64
	TempDir       string // spool directory; "" = os.TempDir()
}

// Snapshot is a tenant's tables spooled to disk from one consistent
// snapshot, ready to be written as an archive. Spooling lets the archive be
// streamed without holding it in memory (tar needs each file's size first)
// and lets errors surface before the response starts.
type Snapshot struct {
	Manifest Manifest
	dir      string
}

// Snapshot reads every tenant table of t in one REPEATABLE READ READ ONLY
// transaction, so the archive is consistent across tables.
func (a *Archiver) Snapshot(ctx context.Context, t *tenancy.Tenant) (*Snapshot, error) {
	// The archiver reads the control plane's cluster only (docs/scaling.md, "Cells").
	if t.CellOf() != tenancy.DefaultCell || t.Isolation == tenancy.IsolationDatabase {
		return nil, apperr.Invalid(apperr.FieldError{Field: "id", Message: "export is available only for rls and schema tenants on the default cell"})
	}
	dir, err := os.MkdirTemp(a.TempDir, "tenantkit-export-")
	if err != nil {
		return nil, fmt.Errorf("export %s: %w", t.ID, err)
	}
	s := &Snapshot{dir: dir, Manifest: Manifest{Format: FormatName, FormatVersion: FormatVersion,
		CreatedAt: time.Now().UTC(), CopyFormat: "text", Tenant: ManifestTenant{ID: t.ID, Identifier: t.Identifier,
			Name: t.Name, Status: t.Status, Tier: t.Tier, Isolation: t.Isolation, Metadata: t.Metadata, CreatedAt: t.CreatedAt}}}
	err = withConn(ctx, a.Owner, func(conn *pgx.Conn) error {
		tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
		if err != nil {
			return err
		}
		defer tx.Rollback(context.WithoutCancel(ctx))
		if err := bind(ctx, tx, t); err != nil {
			return err
		}
		schema := t.Schema()
		if s.Manifest.MigrationVersion, err = SchemaVersion(ctx, tx, schema); err != nil {
			return err
		}
		tables, err := DiscoverTables(ctx, conn, schema)
		if err != nil {
			return err
		}
		for _, tb := range tables {
			mt, err := s.spool(ctx, conn, schema, tb, t.ID)
			if err != nil {
				return err
			}
			s.Manifest.Tables = append(s.Manifest.Tables, mt)
		}
		return tx.Commit(ctx)
	})
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("export %s: %w", t.ID, err)
	}
	return s, nil
}

func (s *Snapshot) spool(ctx context.Context, conn *pgx.Conn, schema string, tb Table, tenantID uuid.UUID) (ManifestTable, error) {
	mt := ManifestTable{Table: tb, File: "tables/" + tb.Name + ".copy"}
	if tb.tenantIndex() < 0 || !safeFileName(tb.Name) {
		return mt, fmt.Errorf("table %s: cannot be exported (no tenant_id column or an unusual name)", tb.Name)
	}
	f, err := os.Create(filepath.Join(s.dir, tb.Name+".copy"))
	if err != nil {
		return mt, err
	}
	defer f.Close()
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(f, h)}
	// tenantID is a uuid.UUID: its text form is safe to inline (COPY takes no parameters).
	tag, err := conn.PgConn().CopyTo(ctx, cw, `COPY (SELECT `+tb.columnList()+` FROM `+qualified(schema, tb.Name)+
		` WHERE tenant_id = '`+tenantID.String()+`') TO STDOUT`)
	if err != nil {
		return mt, fmt.Errorf("copy out %s: %w", tb.Name, err)
	}
	if err := f.Close(); err != nil {
		return mt, err
	}
	mt.Rows, mt.Bytes, mt.SHA256 = tag.RowsAffected(), cw.n, hex.EncodeToString(h.Sum(nil))
	return mt, nil
}

// Bytes is the total size of the table files.
func (s *Snapshot) Bytes() int64 {
	var n int64
	for _, t := range s.Manifest.Tables {
		n += t.Bytes
	}
	return n
}

// WriteTo writes the archive: manifest.json, then every table file.
func (s *Snapshot) WriteTo(w io.Writer, compress bool) error {
	var gz *gzip.Writer
	if compress {
		gz, _ = gzip.NewWriterLevel(w, gzip.BestSpeed)
		w = gz
	}
	tw := tar.NewWriter(w)
	man, err := json.MarshalIndent(s.Manifest, "", "  ")
	if err != nil {
		return err
	}
	mod := s.Manifest.CreatedAt
	if err := tw.WriteHeader(&tar.Header{Name: ManifestFile, Mode: 0o644, Size: int64(len(man)), ModTime: mod, Format: tar.FormatPAX}); err != nil {
		return fmt.Errorf("write archive: %w", err)
	}
	if _, err := tw.Write(man); err != nil {
		return fmt.Errorf("write archive: %w", err)
	}
	for _, t := range s.Manifest.Tables {
		if err := s.writeFile(tw, t, mod); err != nil {
			return fmt.Errorf("write archive: %s: %w", t.File, err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("write archive: %w", err)
	}
	if gz != nil {
		return gz.Close()
	}
	return nil
}

func (s *Snapshot) writeFile(tw *tar.Writer, t ManifestTable, mod time.Time) error {
	f, err := os.Open(filepath.Join(s.dir, t.Name+".copy"))
	if err != nil {
		return err
	}
	defer f.Close()
	if err := tw.WriteHeader(&tar.Header{Name: t.File, Mode: 0o644, Size: t.Bytes, ModTime: mod, Format: tar.FormatPAX}); err != nil {
		return err
	}
	_, err = io.Copy(tw, f)
	return err
}

// Close removes the spooled files.
func (s *Snapshot) Close() error { return os.RemoveAll(s.dir) }

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func safeFileName(s string) bool {
	if s == "" || s == "." || s == ".." || len(s) > 200 {
		return false
	}
	for _, r := range s {
		if r == '/' || r == '\\' || r < 0x20 {
			return false
		}
	}
	return true
}
