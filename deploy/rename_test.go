package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestRename_LeavesNoProductStringAndBuilds runs `make rename` on a copy of
// the repository and requires that no "tenantkit" remains in any text file
// (role name, Redis prefixes, metrics namespace, problem type URLs, realm,
// OpenAPI title, docs) and that the renamed module builds.
func TestRename_LeavesNoProductStringAndBuilds(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("git", "-C", root, "ls-files", "-co", "--exclude-standard").Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	dir := t.TempDir()
	for _, f := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		b, err := os.ReadFile(filepath.Join(root, f))
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("make", "rename", "MODULE=github.com/acme/invoicer")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make rename: %v\n%s", err, out)
	}
	product := regexp.MustCompile(`(?i)tenantkit`)
	err = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() == "go.sum" {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for i, line := range strings.Split(string(b), "\n") {
			if product.MatchString(line) {
				rel, _ := filepath.Rel(dir, p)
				t.Errorf("%s:%d still says tenantkit: %s", rel, i+1, strings.TrimSpace(line))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]string{
		"internal/testenv/testenv.go":     `"invoicer_app"`,
		"internal/http/problem.go":        `realm="invoicer"`,
		"internal/cache/metrics.go":       `Namespace: "invoicer"`,
		"internal/http/docs/openapi.json": `"title": "invoicer API"`,
		"go.mod":                          "module github.com/acme/invoicer",
	} {
		b, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil || !strings.Contains(string(b), want) {
			t.Errorf("%s after rename lacks %s", file, want)
		}
	}
}
