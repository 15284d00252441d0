package deploy

import (
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

type workflow struct {
	Env  map[string]string `yaml:"env"`
	Jobs map[string]job    `yaml:"jobs"`
}

type job struct {
	Needs     any                  `yaml:"needs"`
	Container any                  `yaml:"container"`
	Services  map[string]ghService `yaml:"services"`
	Env       map[string]string    `yaml:"env"`
	Steps     []step               `yaml:"steps"`
}

type ghService struct {
	Image   string            `yaml:"image"`
	Env     map[string]string `yaml:"env"`
	Ports   []string          `yaml:"ports"`
	Options string            `yaml:"options"`
}

type step struct {
	Uses string            `yaml:"uses"`
	Run  string            `yaml:"run"`
	With map[string]string `yaml:"with"`
}

// needs returns the job's needs as a list (a string or a list in YAML).
func (j job) needs() []string {
	switch n := j.Needs.(type) {
	case string:
		return []string{n}
	case []any:
		var out []string
		for _, v := range n {
			s, _ := v.(string)
			out = append(out, s)
		}
		return out
	}
	return nil
}

func (j job) script() string {
	var b strings.Builder
	for _, s := range j.Steps {
		b.WriteString(s.Run + "\n")
	}
	return b.String()
}

func loadWorkflows(t *testing.T) map[string]workflow {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(root, ".github", "workflows", "*.y*ml"))
	out := map[string]workflow{}
	for _, f := range files {
		rel, _ := filepath.Rel(root, f)
		var w workflow
		parseYAML(t, rel, read(t, rel), &w)
		if len(w.Jobs) == 0 {
			t.Errorf("%s has no jobs", rel)
		}
		out[filepath.Base(f)] = w
	}
	return out
}

// dependsOn reports whether job a needs b, directly or transitively.
func dependsOn(w workflow, a, b string) bool {
	seen := map[string]bool{}
	var walk func(string) bool
	walk = func(j string) bool {
		if seen[j] {
			return false
		}
		seen[j] = true
		for _, n := range w.Jobs[j].needs() {
			if n == b || walk(n) {
				return true
			}
		}
		return false
	}
	return walk(a)
}

var (
	makeCall    = regexp.MustCompile(`(?m)(?:^|[;&|]\s*|\s)make\s+([a-z][a-z0-9-]*)`)
	scriptCall  = regexp.MustCompile(`(?:^|\s)(?:bash\s+|\./)?((?:\.ci|scripts)/[A-Za-z0-9_.-]+)`)
	migrateCall = regexp.MustCompile(`(?:^|[\s/"'])migrate\s+([a-z][a-z-]*)([^\n|;&>]*)`)
	flagUse     = regexp.MustCompile(`(?:^|\s)--?([a-z][a-z-]*)`)
	flagDef     = regexp.MustCompile(`(?m)^\s+-([a-z][a-z-]*)\b`)
)

// migrateFlags lists the flags `migrate CMD --help` documents.
func migrateFlags(t *testing.T, cmd string) map[string]bool {
	t.Helper()
	out, _ := runBinary(t, "migrate", nil, cmd, "--help")
	flags := map[string]bool{}
	for _, m := range flagDef.FindAllStringSubmatch(out, -1) {
		flags[m[1]] = true
	}
	return flags
}

// TestWorkflows_CallOnlyTargetsScriptsAndCommandsThatExist parses every
// workflow and checks each make target, repository script, migrate command
// and `needs` it names.
func TestWorkflows_CallOnlyTargetsScriptsAndCommandsThatExist(t *testing.T) {
	t.Parallel()
	targets := makeTargets(t)
	cmds := migrateCommands(t)
	for file, w := range loadWorkflows(t) {
		for name, j := range w.Jobs {
			for _, n := range j.needs() {
				if _, ok := w.Jobs[n]; !ok {
					t.Errorf("%s job %s needs unknown job %s", file, name, n)
				}
			}
			for _, s := range j.Steps {
				if s.Uses == "actions/setup-go@v5" && s.With["go-version-file"] != "go.mod" {
					t.Errorf("%s job %s: setup-go must read the version from go.mod (go-version-file: go.mod)", file, name)
				}
			}
			script := j.script()
			for _, m := range makeCall.FindAllStringSubmatch(script, -1) {
				if !targets[m[1]] {
					t.Errorf("%s job %s runs `make %s`: no such Makefile target", file, name, m[1])
				}
			}
			for _, m := range scriptCall.FindAllStringSubmatch(script, -1) {
				if !exists(m[1]) {
					t.Errorf("%s job %s runs %s: no such file", file, name, m[1])
				}
			}
			for _, m := range migrateCall.FindAllStringSubmatch(script, -1) {
				if !cmds[m[1]] {
					t.Errorf("%s job %s runs `migrate %s`: not a migrate command (%v)", file, name, m[1], cmds)
					continue
				}
				for _, f := range flagUse.FindAllStringSubmatch(m[2], -1) {
					if f[1] != "help" && !migrateFlags(t, m[1])[f[1]] {
						t.Errorf("%s job %s runs `migrate %s --%s`: `migrate %s --help` lists no such flag", file, name, m[1], f[1], m[1])
					}
				}
			}
			if img, ok := j.Container.(string); ok && strings.HasPrefix(img, "golang:") && !strings.HasPrefix(img, "golang:"+goVersion(t)) {
				t.Errorf("%s job %s runs in %s, but go.mod wants Go %s", file, name, img, goVersion(t))
			}
		}
	}
}

// TestCI_RunsVetLintUnitIntegrationRaceBuildAndBrowser checks that ci.yml
// covers every stage, and that its service containers are where
// internal/testenv looks for them.
func TestCI_RunsVetLintUnitIntegrationRaceBuildAndBrowser(t *testing.T) {
	t.Parallel()
	w, ok := loadWorkflows(t)["ci.yml"]
	if !ok {
		t.Fatal(".github/workflows/ci.yml is missing")
	}
	var all strings.Builder
	for _, j := range w.Jobs {
		all.WriteString(j.script())
	}
	script := all.String()
	for what, re := range map[string]string{
		"vet":                        `go vet \./\.\.\.`,
		"lint (make lint)":           `make lint`,
		"race detector":              `go test -race[^\n]*\./\.\.\.`,
		"build":                      `make build|go build`,
		"image build":                `docker build`,
		"headless browser docs test": `\.ci/browser\.sh`,
		"mutation suite":             `\.ci/mutations\.sh|make test-mutations`,
		"all tests":                  `go test [^\n]*\./\.\.\.`,
	} {
		if !regexp.MustCompile(re).MatchString(script) {
			t.Errorf("ci.yml has no %s step (looked for /%s/)", what, re)
		}
	}
	// Jobs that run the suite need real services, reachable where the TEST_*
	// variables say: the suite fails, never skips, without them.
	testenvVars := map[string]bool{}
	for _, m := range regexp.MustCompile(`Getenv\("(TEST_[A-Z_]+)"\)`).FindAllStringSubmatch(read(t, "internal/testenv/testenv.go"), -1) {
		testenvVars[m[1]] = true
	}
	env := map[string]string{}
	for k, v := range w.Env {
		env[k] = v
		if strings.HasPrefix(k, "TEST_") && !testenvVars[k] {
			t.Errorf("ci.yml sets %s, which internal/testenv does not read (%v)", k, testenvVars)
		}
	}
	for _, k := range []string{"TEST_DATABASE_URL", "TEST_REDIS_URL"} {
		if !testenvVars[k] {
			t.Errorf("internal/testenv no longer reads %s", k)
		}
	}
	withServices := 0
	for name, j := range w.Jobs {
		s := j.script()
		runsSuite := regexp.MustCompile(`go test [^\n]*\./\.\.\.`).MatchString(s)
		if !runsSuite {
			continue
		}
		if len(j.Services) == 0 {
			t.Errorf("ci.yml job %s runs the whole suite without service containers", name)
			continue
		}
		withServices++
		for svc, port := range map[string]string{"postgres": "5432", "redis": "6379"} {
			c, ok := j.Services[svc]
			if !ok {
				t.Errorf("ci.yml job %s has no %s service", name, svc)
				continue
			}
			if !slices.Contains(c.Ports, port+":"+port) || !strings.Contains(c.Options, "--health-cmd") {
				t.Errorf("ci.yml job %s service %s: publish %s:%s with a health check, so steps start when it answers", name, svc, port, port)
			}
		}
		for k, svc := range map[string]string{"TEST_DATABASE_URL": "postgres", "TEST_REDIS_URL": "redis"} {
			v := env[k]
			if jv, ok := j.Env[k]; ok {
				v = jv
			}
			u, err := url.Parse(v)
			if err != nil || (u.Hostname() != "127.0.0.1" && u.Hostname() != "localhost") ||
				!slices.Contains(j.Services[svc].Ports, u.Port()+":"+u.Port()) {
				t.Errorf("ci.yml job %s: %s=%q does not reach the %s service container", name, k, v, svc)
			}
		}
		if pg := j.Services["postgres"]; pg.Env["POSTGRES_HOST_AUTH_METHOD"] != "trust" && pg.Env["POSTGRES_PASSWORD"] == "" {
			t.Errorf("ci.yml job %s: the postgres service needs POSTGRES_PASSWORD or trust auth to start", name)
		}
	}
	if withServices < 2 {
		t.Errorf("ci.yml runs the suite against services in %d jobs, want integration and race", withServices)
	}
}

// TestDeploy_MigratesEveryTenantBeforeDeploying checks deploy.yml's order:
// the image is built, `migrate up` runs, and the deploy needs both.
func TestDeploy_MigratesEveryTenantBeforeDeploying(t *testing.T) {
	t.Parallel()
	w, ok := loadWorkflows(t)["deploy.yml"]
	if !ok {
		t.Fatal(".github/workflows/deploy.yml is missing: build image, then `migrate up`, then deploy")
	}
	var migrateJob, buildJob, deployJob string
	for name, j := range w.Jobs {
		s := j.script()
		switch {
		case regexp.MustCompile(`migrate\s+up`).MatchString(s):
			migrateJob = name
		case strings.Contains(s, "docker build") || strings.Contains(s, "docker buildx") || slices.ContainsFunc(j.Steps, func(s step) bool {
			return strings.HasPrefix(s.Uses, "docker/build-push-action")
		}):
			buildJob = name
		}
	}
	for name := range w.Jobs {
		if name != migrateJob && name != buildJob && strings.Contains(strings.ToLower(name), "deploy") {
			deployJob = name
		}
	}
	if migrateJob == "" || buildJob == "" || deployJob == "" {
		t.Fatalf("deploy.yml: want a build job, a job running `migrate up` and a deploy job; found build=%q migrate=%q deploy=%q", buildJob, migrateJob, deployJob)
	}
	if !dependsOn(w, migrateJob, buildJob) {
		t.Errorf("deploy.yml: %s must need %s (migrate with the image being deployed)", migrateJob, buildJob)
	}
	if !dependsOn(w, deployJob, migrateJob) {
		t.Errorf("deploy.yml: %s must need %s, so a failed migration blocks the deploy", deployJob, migrateJob)
	}
}
