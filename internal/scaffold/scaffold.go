// Package scaffold writes a tenant-owned CRUD resource into the repository:
// the tenant migration (RLS enabled and forced, the isolation policy,
// PRIMARY KEY (tenant_id, id)), the model and its store, the HTTP input and
// routes, the OpenAPI entries, a test over both tiers, and its registration
// in internal/app. What it writes compiles and passes as generated.
package scaffold

import (
	"bytes"
	"embed"
	"fmt"
	"go/format"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"text/template"
)

//go:embed templates/*.tmpl
var templates embed.FS

// Field is one column of the resource.
type Field struct {
	Column string // snake_case
	Type   string // SQL type: text, bigint, integer, boolean, timestamptz, uuid
}

// Config names the resource.
type Config struct {
	Root   string  // repository root
	Name   string  // singular snake_case: invoice, line_item
	Plural string  // default Name + "s" (or "es", "ies")
	Fields []Field // besides id, tenant_id, created_at, updated_at
	Module string  // Go module path; default read from Root/go.mod
}

var (
	snake    = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)
	reserved = map[string]bool{"id": true, "tenant_id": true, "created_at": true, "updated_at": true}
	goTypes  = map[string]struct{ Go, JSONSchema, Example, Changed string }{
		"text":        {"string", `{"type": "string", "maxLength": 10000}`, `"text"`, `"changed"`},
		"bigint":      {"int64", `{"type": "integer", "format": "int64"}`, `42`, `43`},
		"integer":     {"int32", `{"type": "integer", "format": "int32"}`, `7`, `8`},
		"boolean":     {"bool", `{"type": "boolean"}`, `true`, `false`},
		"timestamptz": {"time.Time", `{"type": "string", "format": "date-time"}`, `"2025-01-02T03:04:05Z"`, `"2026-02-03T04:05:06Z"`},
		"uuid":        {"uuid.UUID", `{"type": "string", "format": "uuid"}`, `"0190a2b4-0000-7000-8000-000000000001"`, `"0190a2b4-0000-7000-8000-000000000002"`},
	}
)

// ParseFields reads "number:text amount_cents:bigint".
func ParseFields(s string) ([]Field, error) {
	var out []Field
	seen := map[string]bool{}
	for _, f := range strings.Fields(s) {
		col, typ, ok := strings.Cut(f, ":")
		if !ok {
			return nil, fmt.Errorf("field %q: want column:type", f)
		}
		if !snake.MatchString(col) || reserved[col] || seen[col] {
			return nil, fmt.Errorf("field %q: column must be new snake_case, not id, tenant_id, created_at or updated_at", col)
		}
		if _, ok := goTypes[typ]; !ok {
			return nil, fmt.Errorf("field %q: type %q is not one of text, bigint, integer, boolean, timestamptz, uuid", col, typ)
		}
		seen[col] = true
		out = append(out, Field{Column: col, Type: typ})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no fields: give FIELDS=\"name:text ...\"")
	}
	return out, nil
}

// Plural is the default plural of a snake_case noun.
func Plural(name string) string {
	switch {
	case strings.HasSuffix(name, "y") && !strings.HasSuffix(name, "ey") && !strings.HasSuffix(name, "ay") && !strings.HasSuffix(name, "oy"):
		return strings.TrimSuffix(name, "y") + "ies"
	case strings.HasSuffix(name, "s"), strings.HasSuffix(name, "x"), strings.HasSuffix(name, "ch"), strings.HasSuffix(name, "sh"):
		return name + "es"
	}
	return name + "s"
}

// camel turns snake_case into CamelCase (id → ID as Go does).
func camel(s string) string {
	var b strings.Builder
	for _, p := range strings.Split(s, "_") {
		switch p {
		case "id", "url", "api", "http", "json", "sql", "uuid":
			b.WriteString(strings.ToUpper(p))
		default:
			b.WriteString(strings.ToUpper(p[:1]) + p[1:])
		}
	}
	return b.String()
}

// lowerCamel turns snake_case into lowerCamelCase: line_item → lineItem.
func lowerCamel(s string) string {
	c := camel(s)
	if strings.HasPrefix(s, "id_") || s == "id" {
		return "id" + c[2:]
	}
	return strings.ToLower(c[:1]) + c[1:]
}

// Result lists what Generate wrote.
type Result struct {
	Created  []string // new files
	Modified []string // files edited in place
}

type data struct {
	Config
	Type, Types, Version, Title string
	Var                         string // lowerCamel of Type
	Fields                      []fieldData
	UsesTime, UsesUUID          bool // the input needs these imports
}

type fieldData struct {
	Field
	Go, GoType, JSONSchema, Example, Changed string
}

// Generate writes the resource into cfg.Root. It refuses to overwrite.
func Generate(cfg Config) (Result, error) {
	if !snake.MatchString(cfg.Name) {
		return Result{}, fmt.Errorf("NAME %q must be singular snake_case, e.g. invoice or line_item", cfg.Name)
	}
	if cfg.Plural == "" {
		cfg.Plural = Plural(cfg.Name)
	}
	if !snake.MatchString(cfg.Plural) || cfg.Plural == cfg.Name {
		return Result{}, fmt.Errorf("plural %q must be snake_case and differ from %q", cfg.Plural, cfg.Name)
	}
	if cfg.Module == "" {
		mod, err := modulePath(cfg.Root)
		if err != nil {
			return Result{}, err
		}
		cfg.Module = mod
	}
	version, err := nextVersion(os.DirFS(filepath.Join(cfg.Root, "migrations", "tenant")))
	if err != nil {
		return Result{}, err
	}
	d := data{Config: cfg, Type: camel(cfg.Name), Var: lowerCamel(cfg.Name), Types: camel(cfg.Plural), Version: fmt.Sprintf("%05d", version),
		Title: strings.ReplaceAll(cfg.Name, "_", " ")}
	for _, f := range cfg.Fields {
		t := goTypes[f.Type]
		d.UsesTime = d.UsesTime || f.Type == "timestamptz"
		d.UsesUUID = d.UsesUUID || f.Type == "uuid"
		d.Fields = append(d.Fields, fieldData{Field: f, Go: camel(f.Column), GoType: t.Go, JSONSchema: t.JSONSchema, Example: t.Example, Changed: t.Changed})
	}
	files := map[string]string{
		filepath.Join("migrations", "tenant", d.Version+"_"+cfg.Plural+".sql"): "migration.sql.tmpl",
		filepath.Join("internal", "models", cfg.Name+".go"):                    "model.go.tmpl",
		filepath.Join("internal", "http", cfg.Plural+".go"):                    "handlers.go.tmpl",
		filepath.Join("internal", "http", cfg.Plural+"_test.go"):               "handlers_test.go.tmpl",
		filepath.Join("internal", "app", cfg.Plural+".go"):                     "wiring.go.tmpl",
	}
	var res Result
	for path := range files {
		if _, err := os.Stat(filepath.Join(cfg.Root, path)); err == nil {
			return Result{}, fmt.Errorf("%s exists: is %s generated already?", path, cfg.Name)
		}
	}
	for path, tmpl := range files {
		out, err := render(tmpl, d)
		if err != nil {
			return Result{}, err
		}
		if strings.HasSuffix(path, ".go") {
			if out, err = format.Source(out); err != nil {
				return Result{}, fmt.Errorf("format %s: %w", path, err)
			}
		}
		if err := os.WriteFile(filepath.Join(cfg.Root, path), out, 0o644); err != nil {
			return Result{}, err
		}
		res.Created = append(res.Created, path)
	}
	if err := register(cfg.Root, d); err != nil {
		return res, err
	}
	if err := addOpenAPI(cfg.Root, d); err != nil {
		return res, err
	}
	res.Modified = []string{filepath.Join("internal", "app", "app.go"), filepath.Join("internal", "http", "docs", "openapi.json")}
	return res, nil
}

func render(name string, d data) ([]byte, error) {
	t, err := template.New(name).Funcs(template.FuncMap{"quote": strconv.Quote, "lowerCamel": lowerCamel}).ParseFS(templates, "templates/"+name)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := t.Execute(&b, d); err != nil {
		return nil, fmt.Errorf("render %s: %w", name, err)
	}
	return b.Bytes(), nil
}

func modulePath(root string) (string, error) {
	b, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		return "", err
	}
	m := regexp.MustCompile(`(?m)^module\s+(\S+)`).FindSubmatch(b)
	if m == nil {
		return "", fmt.Errorf("go.mod has no module line")
	}
	return string(m[1]), nil
}

// nextVersion is one past the highest version of the tenant migrations.
func nextVersion(dir fs.FS) (int, error) {
	entries, err := fs.ReadDir(dir, ".")
	if err != nil {
		return 0, fmt.Errorf("read tenant migrations: %w", err)
	}
	high := 0
	for _, e := range entries {
		v, _, ok := strings.Cut(e.Name(), "_")
		if n, err := strconv.Atoi(v); ok && err == nil && n > high {
			high = n
		}
	}
	return high + 1, nil
}

// marker is the line in internal/app/app.go above which resources are added.
const marker = "\t\t// make resource: new resources go above this line."

func register(root string, d data) error {
	path := filepath.Join(root, "internal", "app", "app.go")
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if !bytes.Contains(b, []byte(marker)) {
		return fmt.Errorf("%s: marker %q not found: add the resource to app.Resources by hand", path, strings.TrimSpace(marker))
	}
	line := fmt.Sprintf("\t\t%sResource(d),\n", d.Var)
	return os.WriteFile(path, bytes.Replace(b, []byte(marker), []byte(line+marker), 1), 0o644)
}
