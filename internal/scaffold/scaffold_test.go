package scaffold_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/your-org/tenantkit/internal/scaffold"
)

// repoCopy copies the repository's tracked files (as they are in the work
// tree) into a temporary directory.
func repoCopy(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("git", "-C", root, "ls-files", "-co", "--exclude-standard").Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	dst := t.TempDir()
	for _, f := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		b, err := os.ReadFile(filepath.Join(root, f))
		if os.IsNotExist(err) {
			continue // deleted in the work tree
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(dst, filepath.Dir(f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

func TestParseFields_RefusesWhatTheGeneratorCannotWrite(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"", "number", "number:money", "id:uuid", "Number:text", "a:text a:text", "tenant_id:uuid"} {
		if _, err := scaffold.ParseFields(bad); err == nil {
			t.Errorf("ParseFields(%q) accepted", bad)
		}
	}
	if f, err := scaffold.ParseFields("number:text amount_cents:bigint"); err != nil || len(f) != 2 || f[1].Type != "bigint" {
		t.Errorf("ParseFields: %v %v", f, err)
	}
	for name, want := range map[string]string{"invoice": "invoices", "company": "companies", "box": "boxes", "key": "keys"} {
		if got := scaffold.Plural(name); got != want {
			t.Errorf("Plural(%s) = %s, want %s", name, got, want)
		}
	}
}

// TestScaffold_GeneratedResourceCompilesAndPassesItsTests runs make
// resource's generator on a copy of the repository, then builds it and runs
// the generated test and the OpenAPI checks against real Postgres and Redis.
func TestScaffold_GeneratedResourceCompilesAndPassesItsTests(t *testing.T) {
	t.Parallel()
	dir := repoCopy(t)
	before, err := os.ReadFile(filepath.Join(dir, "internal/http/docs/openapi.json"))
	if err != nil {
		t.Fatal(err)
	}
	fields, err := scaffold.ParseFields("number:text amount_cents:bigint sent:boolean")
	if err != nil {
		t.Fatal(err)
	}
	res, err := scaffold.Generate(scaffold.Config{Root: dir, Name: "invoice", Fields: fields})
	if err != nil {
		t.Fatalf("generate: %v (wrote %+v)", err, res)
	}
	after, err := os.ReadFile(filepath.Join(dir, "internal/http/docs/openapi.json"))
	if err != nil {
		t.Fatal(err)
	}
	// The document keeps its layout: every line before is still there, in order.
	if !json.Valid(after) || !bytes.HasPrefix(after, before[:bytes.Index(before, []byte(`"/api/v1/tenant"`))]) {
		t.Errorf("openapi.json was reformatted or broken by the insertion")
	}
	if _, err := scaffold.Generate(scaffold.Config{Root: dir, Name: "invoice", Fields: fields}); err == nil {
		t.Errorf("a second generation of the same resource was not refused")
	}
	migs, _ := filepath.Glob(filepath.Join(dir, "migrations/tenant/*_invoices.sql"))
	if len(migs) != 1 {
		t.Fatalf("migration: %v", migs)
	}
	sql, _ := os.ReadFile(migs[0])
	for _, want := range []string{"PRIMARY KEY (tenant_id, id)", "ENABLE ROW LEVEL SECURITY", "FORCE ROW LEVEL SECURITY",
		"tenant_id = nullif(current_setting('app.current_tenant', true), '')::uuid"} {
		if !bytes.Contains(sql, []byte(want)) {
			t.Errorf("migration lacks %q", want)
		}
	}
	applyReadme(t, dir)
	cmd := exec.Command("go", "test", "-count=1", "-run", "TestInvoice|TestOpenAPI_|TestTaskHandlers_",
		"./internal/http/", "./internal/app/", "./internal/tasks/")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("generated code does not pass: %v\n%s", err, out)
	}
}

// applyReadme does what README's "Add a model" step 3 says: each Go block
// after <!-- file: path --> is written to path, the JSON block after
// <!-- openapi-path --> is added to the OpenAPI paths.
func applyReadme(t *testing.T, dir string) {
	t.Helper()
	readme, err := os.ReadFile(filepath.Join(dir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	block := regexp.MustCompile("(?s)<!-- (file: (\\S+)|openapi-path) -->\n```[a-z]*\n(.*?)\n```")
	n := 0
	for _, m := range block.FindAllStringSubmatch(string(readme), -1) {
		n++
		if m[2] != "" {
			if err := os.WriteFile(filepath.Join(dir, m[2]), []byte(m[3]+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		var item map[string]json.RawMessage
		if err := json.Unmarshal([]byte("{"+m[3]+"}"), &item); err != nil {
			t.Fatalf("README's OpenAPI block: %v", err)
		}
		for k, v := range item {
			if err := scaffold.AddOpenAPIPath(dir, k, v); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n != 5 {
		t.Fatalf("README's Add a model has %d marked blocks, want 5 (4 files and the OpenAPI path)", n)
	}
}
