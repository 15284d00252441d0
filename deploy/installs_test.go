package deploy

import (
	"fmt"
	"go/ast"
	"go/build"
	"go/parser"
	"go/token"
	"maps"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// programCall is one place test code starts a program: exec.Command,
// exec.CommandContext or exec.LookPath. names are the candidates the name
// argument resolves to (a list of alternatives, as when a test tries
// chromium, then chromium-browser): one of them must be installable.
type programCall struct {
	pos   string
	names []string
	tags  string // the file's //go:build line when the default build skips it
}

var programName = regexp.MustCompile(`^[a-z0-9][a-z0-9._+-]*$`)

// execCalls finds the program calls of one parsed file.
func execCalls(fset *token.FileSet, f *ast.File) []programCall {
	execName := ""
	for _, imp := range f.Imports {
		if p, _ := strconv.Unquote(imp.Path.Value); p == "os/exec" {
			execName = "exec"
			if imp.Name != nil {
				execName = imp.Name.Name
			}
		}
	}
	if execName == "" {
		return nil
	}
	var calls []programCall
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		if x, ok := sel.X.(*ast.Ident); !ok || x.Name != execName {
			return true
		}
		arg := map[string]int{"Command": 0, "LookPath": 0, "CommandContext": 1}
		i, ok := arg[sel.Sel.Name]
		if !ok || len(call.Args) <= i {
			return true
		}
		calls = append(calls, programCall{
			pos:   fset.Position(call.Pos()).String(),
			names: candidateNames(call.Args[i], 0),
		})
		return true
	})
	return calls
}

// candidateNames follows a program-name expression back to its string
// literals: a literal, a variable's assignment, a range over a list, the last
// argument of a call (filepath.Join(dir, "initdb"), pgBin("pg_ctl")), the
// right side of a concatenation. Parameters and fields resolve to nothing.
func candidateNames(e ast.Expr, depth int) []string {
	if depth > 6 || e == nil {
		return nil
	}
	switch e := e.(type) {
	case *ast.BasicLit:
		s, err := strconv.Unquote(e.Value)
		if err != nil {
			return nil
		}
		if strings.HasPrefix(s, "/") {
			s = path.Base(s)
		}
		if programName.MatchString(s) {
			return []string{s}
		}
	case *ast.ParenExpr:
		return candidateNames(e.X, depth+1)
	case *ast.UnaryExpr: // `range list` in a for statement's assignment
		return candidateNames(e.X, depth+1)
	case *ast.BinaryExpr:
		return candidateNames(e.Y, depth+1)
	case *ast.CallExpr:
		if len(e.Args) > 0 {
			return candidateNames(e.Args[len(e.Args)-1], depth+1)
		}
	case *ast.CompositeLit:
		var out []string
		for _, el := range e.Elts {
			if kv, ok := el.(*ast.KeyValueExpr); ok {
				el = kv.Value
			}
			out = append(out, candidateNames(el, depth+1)...)
		}
		return out
	case *ast.Ident:
		if e.Obj == nil {
			return nil
		}
		switch d := e.Obj.Decl.(type) {
		case *ast.AssignStmt:
			for i, l := range d.Lhs {
				if id, ok := l.(*ast.Ident); ok && id.Name == e.Name {
					if len(d.Rhs) == len(d.Lhs) {
						return candidateNames(d.Rhs[i], depth+1)
					}
					return candidateNames(d.Rhs[0], depth+1)
				}
			}
		case *ast.ValueSpec:
			for i, id := range d.Names {
				if id.Name == e.Name && i < len(d.Values) {
					return candidateNames(d.Values[i], depth+1)
				}
			}
		}
	}
	return nil
}

// testPrograms finds every program call in the code `go test` compiles:
// test files, and the packages under internal/testenv that only tests import.
func testPrograms(t *testing.T) []programCall {
	t.Helper()
	fset := token.NewFileSet()
	var calls []programCall
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); n == ".git" || n == "testdata" || n == "node_modules" || (strings.HasPrefix(n, ".") && p != root) {
				return filepath.SkipDir
			}
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		isHelper := strings.HasPrefix(filepath.ToSlash(rel), "internal/testenv/")
		if !strings.HasSuffix(p, ".go") || (!strings.HasSuffix(p, "_test.go") && !isHelper) {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, parser.ParseComments)
		if err != nil {
			return err
		}
		tags := ""
		if ok, _ := build.Default.MatchFile(filepath.Dir(p), filepath.Base(p)); !ok {
			for _, c := range f.Comments {
				for _, l := range c.List {
					if strings.HasPrefix(l.Text, "//go:build ") {
						tags = strings.TrimPrefix(l.Text, "//go:build ")
					}
				}
			}
			if tags == "" {
				return nil // another GOOS or GOARCH
			}
		}
		for _, c := range execCalls(fset, f) {
			c.tags = tags
			c.pos = strings.TrimPrefix(c.pos, root+string(os.PathSeparator))
			calls = append(calls, c)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return calls
}

// listedPrograms parses .ci/test-programs: program → Debian package ("-" for
// none needed).
func listedPrograms(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for i, l := range strings.Split(read(t, ".ci/test-programs"), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		f := strings.Fields(l)
		if len(f) < 2 {
			t.Errorf(".ci/test-programs:%d: want `program package`, got %q", i+1, l)
			continue
		}
		out[f[0]] = f[1]
	}
	return out
}

// installProblems lists the programs test code starts that CI would not
// have: not in .ci/test-programs (listed), or not provided by the .ci script
// that runs a tagged test; and the ci.yml jobs that run go test before
// installing them.
func installProblems(t *testing.T, calls []programCall, listed map[string]string, ci workflow) []string {
	t.Helper()
	var problems []string
	tagScripts := map[string][]string{} // build tag → .ci scripts that run go test with it
	scripts, _ := filepath.Glob(filepath.Join(root, ".ci", "*"))
	for _, s := range scripts {
		rel, _ := filepath.Rel(root, s)
		for _, m := range regexp.MustCompile(`go test [^\n]*-tags[ =]([a-z0-9_,]+)`).FindAllStringSubmatch(read(t, rel), -1) {
			for _, tag := range strings.Split(m[1], ",") {
				tagScripts[tag] = append(tagScripts[tag], filepath.ToSlash(rel))
			}
		}
	}
	var ciScript strings.Builder
	for _, j := range ci.Jobs {
		ciScript.WriteString(j.script())
	}
	for _, c := range calls {
		if len(c.names) == 0 || slices.ContainsFunc(c.names, func(n string) bool { return listed[n] != "" }) {
			continue
		}
		if c.tags == "" {
			problems = append(problems, fmt.Sprintf("%s starts %s: add it with its Debian package to .ci/test-programs (CI installs from that list)", c.pos, strings.Join(c.names, " or ")))
			continue
		}
		// A tagged test runs from the .ci script that passes its tag; that script provides the program.
		covered := false
		for tag, scripts := range tagScripts {
			if !strings.Contains(c.tags, tag) {
				continue
			}
			for _, s := range scripts {
				if strings.Contains(ciScript.String(), s) && slices.ContainsFunc(c.names, func(n string) bool { return strings.Contains(read(t, s), n) }) {
					covered = true
				}
			}
		}
		if !covered {
			problems = append(problems, fmt.Sprintf("%s (//go:build %s) starts %s: no .ci script that ci.yml runs with that tag installs it; add it to .ci/test-programs", c.pos, c.tags, strings.Join(c.names, " or ")))
		}
	}
	installs := regexp.MustCompile(`\.ci/(install|services)\.sh`)
	goTest := regexp.MustCompile(`(?m)(^|[;&|]\s*)go test\b`)
	for name, j := range ci.Jobs {
		installed := false
		for _, s := range j.Steps {
			if installs.MatchString(s.Run) {
				installed = true
			}
			if goTest.MatchString(s.Run) && !installed {
				problems = append(problems, fmt.Sprintf("ci.yml job %s runs go test before installing the programs the tests start: add a step `bash .ci/install.sh` (or .ci/services.sh) before it", name))
				break
			}
		}
	}
	return problems
}

// TestCI_InstallsEveryProgramTheTestsStart: a test that starts a program the
// runner lacks fails only on GitHub. Every program the test code starts is in
// .ci/test-programs, which .ci/install.sh installs; ci.yml runs it before
// every go test, and `make test` (hence .ci/run) runs it through services.sh.
func TestCI_InstallsEveryProgramTheTestsStart(t *testing.T) {
	t.Parallel()
	calls := testPrograms(t)
	if len(calls) == 0 {
		t.Fatal("found no exec.Command/LookPath in the test code: the discovery is broken")
	}
	for _, c := range calls {
		if len(c.names) == 0 {
			t.Logf("%s: program name not resolvable from the source (a parameter or field); not checked", c.pos)
		}
	}
	for _, p := range installProblems(t, calls, listedPrograms(t), loadWorkflows(t)["ci.yml"]) {
		t.Error(p)
	}
	if !strings.Contains(read(t, ".ci/install.sh"), ".ci/test-programs") {
		t.Error(".ci/install.sh does not read .ci/test-programs")
	}
	if !strings.Contains(read(t, ".ci/services.sh"), "install.sh") {
		t.Error(".ci/services.sh (make test, .ci/run) does not run install.sh: local runs and CI would install different programs")
	}
	mk := read(t, "Makefile")
	if m := regexp.MustCompile(`(?m)^test:([^#\n]*)`).FindStringSubmatch(mk); m == nil || !slices.Contains(strings.Fields(m[1]), "services") {
		t.Error("Makefile: `test` must depend on `services`, which installs the test programs")
	}
	if m := regexp.MustCompile(`(?m)^services:.*\n((?:\t.*\n)+)`).FindStringSubmatch(mk); m == nil || !strings.Contains(m[1], ".ci/services.sh") {
		t.Error("Makefile: `services` must run .ci/services.sh")
	}
	if !strings.Contains(read(t, ".ci/run"), "make test") {
		t.Error(".ci/run must run `make test`")
	}
}

// TestCI_InstallCheckCatchesAMissingProgram proves the check above is not
// vacuous: a program dropped from the list, a new test starting an unlisted
// program, and a job that tests before installing are each reported.
func TestCI_InstallCheckCatchesAMissingProgram(t *testing.T) {
	t.Parallel()
	calls := testPrograms(t)
	listed := listedPrograms(t)
	ci := loadWorkflows(t)["ci.yml"]
	if p := installProblems(t, calls, listed, ci); len(p) != 0 {
		t.Fatalf("the repository itself has problems: %q", p)
	}

	noRedis := maps.Clone(listed)
	delete(noRedis, "redis-server")
	newTest := append(slices.Clone(calls), programCall{pos: "internal/x/pool_test.go:9:2", names: []string{"pgbouncer-ng"}})
	noInstall := workflow{Jobs: map[string]job{}}
	for name, j := range ci.Jobs {
		j.Steps = slices.DeleteFunc(slices.Clone(j.Steps), func(s step) bool {
			return strings.Contains(s.Run, ".ci/install.sh") || strings.Contains(s.Run, ".ci/services.sh")
		})
		noInstall.Jobs[name] = j
	}
	for name, c := range map[string]struct {
		problems []string
		want     string
	}{
		"redis-server dropped from the list":  {installProblems(t, calls, noRedis, ci), "starts redis-server"},
		"a test starting an unlisted program": {installProblems(t, newTest, listed, ci), "starts pgbouncer-ng"},
		"ci.yml without the install step":     {installProblems(t, calls, listed, noInstall), "before installing"},
	} {
		if !slices.ContainsFunc(c.problems, func(p string) bool { return strings.Contains(p, c.want) }) {
			t.Errorf("%s: want a problem containing %q, got %q", name, c.want, c.problems)
		}
	}
}

// TestProgramDiscovery_ResolvesLiteralsVariablesJoinsAndLists proves the
// discovery above sees the ways tests name programs, so a new test that
// starts pgbouncer or initdb cannot slip past it.
func TestProgramDiscovery_ResolvesLiteralsVariablesJoinsAndLists(t *testing.T) {
	t.Parallel()
	src := `package x
import (
	"context"
	"os"
	osexec "os/exec"
	"path/filepath"
)
func pgBin(name string) string { return name }
func f(ctx context.Context, bindir, param string) {
	osexec.Command("pgbouncer", "-q")
	osexec.CommandContext(ctx, filepath.Join(bindir, "initdb"), "-D", "x")
	osexec.Command(pgBin("pg_ctl"))
	osexec.Command("/usr/lib/postgresql/15/bin/postgres")
	name := "pg_createcluster"
	osexec.Command(name)
	var server = "redis-server"
	osexec.LookPath(server)
	for _, b := range []string{os.Getenv("CHROMIUM_BIN"), "chromium", "google-chrome"} {
		osexec.LookPath(b)
	}
	osexec.Command(param)
}
`
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "x_test.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range execCalls(fset, f) {
		got = append(got, fmt.Sprint(c.names))
	}
	want := []string{"[pgbouncer]", "[initdb]", "[pg_ctl]", "[postgres]", "[pg_createcluster]", "[redis-server]", "[chromium google-chrome]", "[]"}
	if !slices.Equal(got, want) {
		t.Errorf("discovered %q, want %q", got, want)
	}
}
