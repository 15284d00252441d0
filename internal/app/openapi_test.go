package app_test

import (
	"encoding/json"
	"log/slog"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/your-org/tenantkit/internal/app"
	"github.com/your-org/tenantkit/internal/audit"
	tkhttp "github.com/your-org/tenantkit/internal/http"
	"github.com/your-org/tenantkit/internal/tenancy"
	"github.com/your-org/tenantkit/internal/tenantdata"
	"github.com/your-org/tenantkit/internal/tenantmove"
)

// These tests need no services: they hold internal/http/docs/openapi.json to
// the routes and JSON types of every registered resource, so adding a
// resource in app.Resources needs no edit here.

type spec struct {
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Components struct {
		Schemas map[string]struct {
			Properties map[string]any `json:"properties"`
		} `json:"schemas"`
	} `json:"components"`
}

func loadSpec(t *testing.T) spec {
	t.Helper()
	raw, _, _ := tkhttp.Docs()
	var s spec
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatalf("openapi.json is not JSON: %v", err)
	}
	return s
}

var templateParam = regexp.MustCompile(`\{[^}/]+\}|:[^/]+|\*`)

// normalize maps Echo's /:id and /* and OpenAPI's /{id} to one form.
func normalize(path string) string { return templateParam.ReplaceAllString(path, "{}") }

func TestOpenAPI_EveryRouteIsInTheSpecAndEverySpecPathIsRouted(t *testing.T) {
	t.Parallel()
	openAPI, page, assets := tkhttp.Docs()
	e := tkhttp.New(tkhttp.Config{
		Log: slog.New(slog.DiscardHandler), Tenancy: &tenancy.Middleware{Skip: tkhttp.SkipPaths},
		Resources: app.Routes(app.Deps{}), Admin: &tkhttp.Admin{Token: strings.Repeat("x", 32),
			Audit: &audit.Trail{}, Archive: &tenantdata.Archiver{}, Moves: &tenantmove.Service{}},
		Registry: prometheus.NewRegistry(), OpenAPI: openAPI, DocsHTML: page, DocsAssets: assets,
	})
	documented := map[string]bool{}
	for path, item := range loadSpec(t).Paths {
		for method := range item {
			switch method {
			case "parameters", "summary", "description":
			default:
				documented[strings.ToUpper(method)+" "+normalize(path)] = true
			}
		}
	}
	routed := map[string]bool{}
	for _, r := range e.Routes() {
		if r.Method != echo.RouteNotFound {
			routed[r.Method+" "+normalize(r.Path)] = true
		}
	}
	for _, k := range slices.Sorted(maps.Keys(routed)) {
		if !documented[k] {
			t.Errorf("route %s is registered but not in internal/http/docs/openapi.json", k)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(documented)) {
		if !routed[k] {
			t.Errorf("spec operation %s has no registered route", k)
		}
	}
	if len(routed) < 20 {
		t.Errorf("only %d routes registered: is the server wired with admin and resources?", len(routed))
	}
}

// TestOpenAPI_ResourceSchemasMatchTheirGoTypes compares every resource
// schema's properties with the JSON names of the Go type it documents.
func TestOpenAPI_ResourceSchemasMatchTheirGoTypes(t *testing.T) {
	t.Parallel()
	s := loadSpec(t)
	n := 0
	for _, r := range app.Routes(app.Deps{}) {
		for name, typ := range r.Schemas {
			n++
			sc, ok := s.Components.Schemas[name]
			if !ok {
				t.Errorf("schema %s (%s) is missing from internal/http/docs/openapi.json", name, typ)
				continue
			}
			got := slices.Sorted(slices.Values(jsonNames(typ)))
			want := slices.Sorted(maps.Keys(sc.Properties))
			if !slices.Equal(got, want) {
				t.Errorf("schema %s documents %v, the Go type %s has %v", name, want, typ, got)
			}
		}
	}
	if n < 7 {
		t.Errorf("only %d resource schemas registered", n)
	}
}

// jsonNames lists the JSON object keys encoding/json writes for struct type t.
func jsonNames(t reflect.Type) []string {
	var out []string
	for f := range t.Fields() {
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case tag == "-" || (!f.IsExported() && !f.Anonymous):
		case f.Anonymous && tag == "" && f.Type.Kind() == reflect.Struct:
			out = append(out, jsonNames(f.Type)...)
		case tag != "":
			out = append(out, tag)
		default:
			out = append(out, f.Name)
		}
	}
	return out
}

func TestTaskHandlers_EveryResourceTaskTypeIsRegisteredOnce(t *testing.T) {
	t.Parallel()
	h, err := app.TaskHandlers(app.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	if h["report:generate"] == nil || h["report:cleanup"] == nil {
		t.Errorf("task handlers %v lack the report tasks", slices.Sorted(maps.Keys(h)))
	}
}
