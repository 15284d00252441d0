package deploy

import (
	"encoding/json"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

type instruction struct {
	Cmd  string // upper-case keyword
	Args string
}

type stage struct {
	From, Name string
	Body       []instruction
}

// parseDockerfile splits the Dockerfile into stages of instructions,
// joining continuation lines and dropping comments.
func parseDockerfile(t *testing.T) (args map[string]string, stages []stage) {
	t.Helper()
	args = map[string]string{}
	text := regexp.MustCompile(`\\\n(\s*#[^\n]*\n)*`).ReplaceAllString(read(t, "Dockerfile"), " ")
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		cmd, rest, _ := strings.Cut(line, " ")
		in := instruction{Cmd: strings.ToUpper(cmd), Args: strings.TrimSpace(rest)}
		switch {
		case in.Cmd == "FROM":
			f := strings.Fields(in.Args)
			s := stage{From: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				s.Name = f[2]
			}
			stages = append(stages, s)
		case len(stages) == 0 && in.Cmd == "ARG":
			k, v, _ := strings.Cut(in.Args, "=")
			args[k] = v
		case len(stages) > 0:
			stages[len(stages)-1].Body = append(stages[len(stages)-1].Body, in)
		}
	}
	if len(stages) < 2 {
		t.Fatalf("Dockerfile has %d stages: want a multi-stage build (builder and runtime)", len(stages))
	}
	return args, stages
}

func (s stage) all(cmd string) []string {
	var out []string
	for _, in := range s.Body {
		if in.Cmd == cmd {
			out = append(out, in.Args)
		}
	}
	return out
}

// execForm parses a JSON exec form such as ["/usr/local/bin/api"].
func execForm(t *testing.T, what, args string) []string {
	t.Helper()
	var out []string
	if err := json.Unmarshal([]byte(args), &out); err != nil {
		t.Errorf("%s %s: use the exec form [\"...\"] (distroless has no shell): %v", what, args, err)
	}
	return out
}

func TestDockerfile_BuildsEveryBinaryStaticallyWithGoModsVersion(t *testing.T) {
	t.Parallel()
	args, stages := parseDockerfile(t)
	build := stages[0]
	if want := goVersion(t); args["GO_VERSION"] != want || !strings.Contains(build.From, "${GO_VERSION}") {
		t.Errorf("builder is %s with GO_VERSION=%q, want go.mod's %s", build.From, args["GO_VERSION"], want)
	}
	run := strings.Join(build.all("RUN"), "\n")
	if !strings.Contains(run, "CGO_ENABLED=0") {
		t.Error("the build must set CGO_ENABLED=0: the runtime image has no libc")
	}
	for _, b := range binaries(t) {
		if !strings.Contains(run, "./cmd/"+b) {
			t.Errorf("the build does not compile ./cmd/%s", b)
		}
	}
}

func TestDockerfile_RuntimeIsSmallNonRootAndHealthChecked(t *testing.T) {
	t.Parallel()
	_, stages := parseDockerfile(t)
	rt := stages[len(stages)-1]
	if !strings.Contains(rt.From, "distroless") && !strings.Contains(rt.From, "scratch") && !strings.Contains(rt.From, "alpine") {
		t.Errorf("runtime image %s: want a small one (distroless/static)", rt.From)
	}
	users := rt.all("USER")
	if len(users) == 0 {
		t.Fatal("runtime stage sets no USER: it would run as root")
	}
	if u := strings.Split(users[len(users)-1], ":")[0]; u == "root" || u == "0" {
		t.Errorf("runtime USER %s is root", u)
	}
	// Every binary is copied from the builder into /usr/local/bin.
	installed := map[string]bool{}
	for _, c := range rt.all("COPY") {
		f := strings.Fields(c)
		if len(f) < 3 || !strings.HasPrefix(f[0], "--from=") {
			continue
		}
		for _, src := range f[1 : len(f)-1] {
			installed[path.Join(f[len(f)-1], path.Base(src))] = true
		}
	}
	for _, b := range binaries(t) {
		if !installed["/usr/local/bin/"+b] {
			t.Errorf("runtime image lacks /usr/local/bin/%s (copied: %v)", b, installed)
		}
	}
	hc := rt.all("HEALTHCHECK")
	if len(hc) != 1 {
		t.Fatalf("runtime stage has %d HEALTHCHECKs, want 1", len(hc))
	}
	_, cmd, ok := strings.Cut(hc[0], "CMD ")
	test := execForm(t, "HEALTHCHECK", cmd)
	if !ok || len(test) < 2 || !installed[test[0]] || test[1] != "healthcheck" {
		t.Errorf("HEALTHCHECK %q: want CMD [\"/usr/local/bin/api\", \"healthcheck\"]", hc[0])
	} else if out, err := runBinary(t, path.Base(test[0]), []string{"HTTP_ADDR=127.0.0.1:1"}, test[1:]...); err == nil {
		t.Errorf("the HEALTHCHECK command succeeds with nothing listening:\n%s", out)
	}
	cmds := rt.all("CMD")
	if len(cmds) != 1 || !slices.Equal(execForm(t, "CMD", cmds[0]), []string{"/usr/local/bin/api"}) {
		t.Errorf("CMD %v: want [\"/usr/local/bin/api\"], so compose can run the other binaries by path", cmds)
	}
	if e := rt.all("ENTRYPOINT"); len(e) > 0 {
		t.Errorf("ENTRYPOINT %v would prefix every compose command", e)
	}
	// Listen addresses the image sets are the ports it exposes.
	exposed := strings.Fields(strings.Join(rt.all("EXPOSE"), " "))
	env := strings.Join(rt.all("ENV"), " ")
	for _, v := range []string{"HTTP_ADDR", "WORKER_HTTP_ADDR"} {
		m := regexp.MustCompile(v + `=\S*:(\d+)`).FindStringSubmatch(env)
		if m == nil {
			t.Errorf("runtime ENV does not set %s", v)
			continue
		}
		if !slices.Contains(exposed, m[1]) {
			t.Errorf("%s listens on %s but the image exposes %v", v, m[1], exposed)
		}
	}
}

// dockerignored applies .dockerignore the way Docker does: patterns are
// relative to the root, a match on a directory excludes what is inside,
// later lines win and "!" re-includes.
func dockerignored(patterns []string, file string) bool {
	ignored := false
	for _, p := range patterns {
		neg := strings.HasPrefix(p, "!")
		p = strings.TrimPrefix(p, "!")
		p = strings.TrimPrefix(filepath.Clean(p), "/")
		match := false
		for dir := file; dir != "." && dir != "/"; dir = filepath.Dir(dir) {
			if ok, _ := filepath.Match(p, dir); ok {
				match = true
				break
			}
			if rest, ok := strings.CutPrefix(p, "**/"); ok {
				if ok, _ := filepath.Match(rest, filepath.Base(dir)); ok {
					match = true
					break
				}
			}
		}
		if match {
			ignored = !neg
		}
	}
	return ignored
}

func TestDockerignore_KeepsWhatTheBuildNeedsAndDropsSecrets(t *testing.T) {
	t.Parallel()
	var patterns []string
	for _, l := range strings.Split(read(t, ".dockerignore"), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			patterns = append(patterns, l)
		}
	}
	needed := []string{"go.mod", "go.sum"}
	for _, dir := range []string{"cmd", "internal", "migrations"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || strings.HasSuffix(p, "_test.go") {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			needed = append(needed, rel)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range needed {
		if dockerignored(patterns, f) {
			t.Errorf(".dockerignore excludes %s, which the image build needs", f)
		}
	}
	if !slices.Contains(needed, filepath.Join("internal", "http", "docs", "openapi.json")) {
		t.Error("the walk missed the embedded docs: is the test looking at the right tree?")
	}
	for _, f := range []string{".git/config", ".env", "bin/api", ".env.production"} {
		if !dockerignored(patterns, f) {
			t.Errorf(".dockerignore lets %s into the build context", f)
		}
	}
}
