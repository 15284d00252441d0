package deploy

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"go.yaml.in/yaml/v3"
)

// root is the repository root, where the files under test live.
const root = ".."

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, path))
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return string(b)
}

func parseYAML(t *testing.T, path, text string, v any) {
	t.Helper()
	if err := yaml.Unmarshal([]byte(text), v); err != nil {
		t.Fatalf("%s is not valid YAML: %v", path, err)
	}
}

// binaries are the three commands of docs/contract.md that the image ships
// (cmd/ may hold more, such as benchmarks, which it does not).
func binaries(t *testing.T) []string {
	t.Helper()
	out := []string{"api", "migrate", "worker"}
	for _, b := range out {
		if !exists(filepath.Join("cmd", b, "main.go")) {
			t.Fatalf("cmd/%s/main.go is missing", b)
		}
	}
	return out
}

// built compiles the binaries once per test binary; go's build cache keeps it short.
var built = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "tenantkit-deploy-bin-")
	if err != nil {
		return "", err
	}
	cmd := exec.Command("go", "build", "-o", dir+string(os.PathSeparator), "./cmd/api", "./cmd/worker", "./cmd/migrate")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", &buildError{out: string(out), err: err}
	}
	return dir, nil
})

type buildError struct {
	out string
	err error
}

func (e *buildError) Error() string { return e.err.Error() + "\n" + e.out }

// binary returns the path of a built command.
func binary(t *testing.T, name string) string {
	t.Helper()
	dir, err := built()
	if err != nil {
		t.Fatalf("go build the binaries: %v", err)
	}
	return filepath.Join(dir, name)
}

// runBinary runs a built command with only the given environment.
func runBinary(t *testing.T, name string, env []string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(binary(t, name), args...)
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// migrateCommands parses the command list of `migrate --help`.
func migrateCommands(t *testing.T) map[string]bool {
	t.Helper()
	out, err := runBinary(t, "migrate", nil, "--help")
	if err != nil {
		t.Fatalf("migrate --help: %v\n%s", err, out)
	}
	cmds := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^  ([a-z][a-z-]*)\b`).FindAllStringSubmatch(out, -1) {
		cmds[m[1]] = true
	}
	if !cmds["up"] {
		t.Fatalf("migrate --help lists no `up` command:\n%s", out)
	}
	return cmds
}

var envLiteral = regexp.MustCompile(`"([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)"`)

// knownVariables are the environment variables the code reads: every
// upper-case string literal of internal/config and cmd/ (tests excluded).
func knownVariables(t *testing.T) map[string]bool {
	t.Helper()
	known := map[string]bool{}
	for _, dir := range []string{"internal/config", "cmd"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, m := range envLiteral.FindAllStringSubmatch(string(b), -1) {
				known[m[1]] = true
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if !known["DATABASE_URL"] || !known["HTTP_ADDR"] {
		t.Fatalf("found no environment variables in internal/config: %v", known)
	}
	return known
}

// goVersion is the major.minor of go.mod's go directive.
func goVersion(t *testing.T) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindStringSubmatch(read(t, "go.mod"))
	if m == nil {
		t.Fatal("go.mod has no go directive")
	}
	return m[1]
}

func makeTargets(t *testing.T) map[string]bool {
	t.Helper()
	targets := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^([a-z][a-z0-9-]*):`).FindAllStringSubmatch(read(t, "Makefile"), -1) {
		targets[m[1]] = true
	}
	return targets
}

func exists(path string) bool {
	_, err := os.Stat(filepath.Join(root, path))
	return err == nil
}
