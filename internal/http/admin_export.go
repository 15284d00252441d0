package http

import (
	"fmt"
	"mime"
	"net/http"
	"strings"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/your-org/tenantkit/internal/apperr"
	"github.com/your-org/tenantkit/internal/audit"
	"github.com/your-org/tenantkit/internal/tenancy"
	"github.com/your-org/tenantkit/internal/tenantdata"
)

// importPath takes archives of any size: the 1 MiB body limit does not apply.
const importPath = "/admin/v1/tenants/import"

// exportTenant streams the tenant's archive (tenantdata's format): the
// tables are spooled to disk from one snapshot first, so a failure is a
// problem response, never a truncated archive.
func (a *Admin) exportTenant(c echo.Context) error {
	id, err := pathID(c, "id", "tenant")
	if err != nil {
		return err
	}
	compress := true
	switch c.QueryParam("compress") {
	case "", "gzip":
	case "none":
		compress = false
	default:
		return apperr.Invalid(apperr.FieldError{Field: "compress", Message: "must be gzip or none"})
	}
	ctx := c.Request().Context()
	t, err := a.Store.TenantByID(ctx, id)
	if err != nil {
		return err
	}
	snap, err := a.Archive.Snapshot(ctx, t)
	if err != nil {
		return err
	}
	defer snap.Close()
	if a.Audit != nil {
		rows := map[string]int64{}
		for _, tb := range snap.Manifest.Tables {
			rows[tb.Name] = tb.Rows
		}
		diff := map[string]any{"rows": rows, "bytes": snap.Bytes(), "migration_version": snap.Manifest.MigrationVersion}
		if err := audit.Record(ctx, a.Audit.DB, audit.ActorFrom(ctx), t.ID, audit.Export, diff); err != nil {
			return err
		}
	}
	name, ctype := t.Identifier+".tar", "application/x-tar"
	if compress {
		name, ctype = name+".gz", "application/gzip"
	}
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, ctype)
	h.Set(echo.HeaderContentDisposition, fmt.Sprintf(`attachment; filename="%s"`, name))
	c.Response().WriteHeader(http.StatusOK)
	// Headers are out: a failure now can only cut the stream short, which
	// the importer detects (tar framing, row counts and checksums).
	return snap.WriteTo(c.Response(), compress)
}

func (a *Admin) importTenant(c echo.Context) error {
	mt, _, _ := mime.ParseMediaType(c.Request().Header.Get(echo.HeaderContentType))
	switch mt {
	case "application/gzip", "application/x-gzip", "application/x-tar", "application/octet-stream":
	default:
		return apperr.New(apperr.UnsupportedMediaType, "send the archive as application/gzip or application/x-tar")
	}
	var (
		opt    tenantdata.ImportOptions
		fields []apperr.FieldError
	)
	if s := c.QueryParam("id"); s != "" {
		id, err := uuid.Parse(s)
		if err != nil || len(s) != 36 {
			fields = append(fields, apperr.FieldError{Field: "id", Message: "must be a UUID"})
		}
		opt.ID = id
	}
	if s := c.QueryParam("identifier"); s != "" {
		if !tenancy.ValidIdentifier(s) {
			fields = append(fields, apperr.FieldError{Field: "identifier", Message: "must match ^[a-z][a-z0-9-]{1,30}[a-z0-9]$"})
		}
		opt.Identifier = s
	}
	switch iso := tenancy.Isolation(c.QueryParam("isolation")); iso {
	case "", tenancy.IsolationRLS, tenancy.IsolationSchema:
		opt.Isolation = iso
	default:
		fields = append(fields, apperr.FieldError{Field: "isolation", Message: "must be rls or schema"})
	}
	if len(fields) > 0 {
		return apperr.Invalid(fields...)
	}
	t, _, err := a.Archive.Import(c.Request().Context(), a.Lifecycle, c.Request().Body, opt)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, t)
}

func isImport(r *http.Request) bool {
	return r.Method == http.MethodPost && strings.TrimSuffix(r.URL.Path, "/") == importPath
}
