package deploy

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// runActionlint runs the actionlint invocation of `make lint` (.ci/lint.sh:
// the pinned actionlint with shellcheck) over the given files, from the
// repository root.
func runActionlint(t *testing.T, files ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("bash", append([]string{".ci/lint.sh", "actionlint"}, files...)...)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestLint_ActionlintFailsOnABrokenWorkflowExpression runs actionlint for
// real: the repository's workflows pass, and the fixture's deliberate
// mistakes (a broken expression, a typo of a job output, an unquoted shell
// expansion) each fail it with their line.
func TestLint_ActionlintFailsOnABrokenWorkflowExpression(t *testing.T) {
	workflows, _ := filepath.Glob(filepath.Join(root, ".github", "workflows", "*.yml"))
	if len(workflows) == 0 {
		t.Fatal("no workflows under .github/workflows")
	}
	var rel []string
	for _, w := range workflows {
		r, _ := filepath.Rel(root, w)
		rel = append(rel, r)
	}
	if out, err := runActionlint(t, rel...); err != nil {
		t.Fatalf("actionlint over %v: %v\n%s", rel, err, out)
	}

	const fixture = "deploy/testdata/broken-workflow.yml"
	var want []int
	for i, l := range strings.Split(read(t, fixture), "\n") {
		if strings.Contains(l, "# lint must report") {
			want = append(want, i+2) // the line below the marker
		}
	}
	if len(want) != 3 {
		t.Fatalf("%s marks %d lines, want 3", fixture, len(want))
	}
	out, err := runActionlint(t, fixture)
	if _, failed := err.(*exec.ExitError); !failed {
		t.Fatalf("actionlint over %s: want a non-zero exit, got %v\n%s", fixture, err, out)
	}
	for _, line := range want {
		if !strings.Contains(out, fmt.Sprintf("%s:%d:", fixture, line)) {
			t.Errorf("actionlint did not report %s:%d:\n%s", fixture, line, out)
		}
	}
	if !strings.Contains(out, "SC2086") {
		t.Errorf("actionlint ran without shellcheck (no SC2086 for the unquoted $IMAGE):\n%s", out)
	}
}

// TestMakeLint_RunsGofmtVetActionlintAndShellcheck: `make lint` (which CI
// runs) covers the Go code, the workflows and the shell scripts, and the
// workflows are linted by the invocation the test above exercises.
func TestMakeLint_RunsGofmtVetActionlintAndShellcheck(t *testing.T) {
	t.Parallel()
	m := regexp.MustCompile(`(?m)^lint:.*\n((?:\t.*\n)+)`).FindStringSubmatch(read(t, "Makefile"))
	if m == nil {
		t.Fatal("Makefile has no lint target")
	}
	for _, want := range []string{"gofmt -l", "go vet", ".ci/lint.sh"} {
		if !strings.Contains(m[1], want) {
			t.Errorf("make lint does not run %s", want)
		}
	}
	script := read(t, ".ci/lint.sh")
	for _, want := range []string{"actionlint .github/workflows/", "-shellcheck", "shellcheck \"${scripts[@]}\"", ".ci/*", "scripts/*", "ACTIONLINT_VERSION=v"} {
		if !strings.Contains(script, want) {
			t.Errorf(".ci/lint.sh lacks %q", want)
		}
	}
}
