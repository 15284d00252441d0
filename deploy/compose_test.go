package deploy

import (
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/your-org/tenantkit/internal/config"
)

type composeFile struct {
	Services map[string]service `yaml:"services"`
	Volumes  map[string]any     `yaml:"volumes"`
}

type service struct {
	Image       string            `yaml:"image"`
	Build       any               `yaml:"build"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Ports       []string          `yaml:"ports"`
	Restart     string            `yaml:"restart"`
	Healthcheck *struct {
		Test    []string `yaml:"test"`
		Disable bool     `yaml:"disable"`
	} `yaml:"healthcheck"`
	DependsOn map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
}

// ours reports whether the service runs the project's image.
func (s service) ours() bool { return s.Build != nil }

// binary is the cmd/ binary the service runs.
func (s service) binary() string {
	if len(s.Command) == 0 {
		return "api" // the image's CMD
	}
	return path.Base(s.Command[0])
}

func (s service) healthy() bool {
	return s.Healthcheck != nil && !s.Healthcheck.Disable && len(s.Healthcheck.Test) > 1
}

// containerPorts are the published container-side ports.
func (s service) containerPorts() []string {
	var out []string
	for _, p := range s.Ports {
		parts := strings.Split(p, ":")
		out = append(out, strings.TrimSuffix(parts[len(parts)-1], "/tcp"))
	}
	return out
}

var variable = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}`)

// interpolate resolves ${VAR:-default} as `docker compose` does with an
// empty environment, and lists variables with no default: a fresh clone
// must come up without a .env file.
func interpolate(text string) (string, []string) {
	var missing []string
	out := variable.ReplaceAllStringFunc(text, func(m string) string {
		sub := variable.FindStringSubmatch(m)
		if !strings.Contains(m, "-") {
			missing = append(missing, sub[1])
		}
		return sub[2]
	})
	return out, missing
}

func loadCompose(t *testing.T) composeFile {
	t.Helper()
	text, missing := interpolate(read(t, "docker-compose.yml"))
	if len(missing) > 0 {
		t.Errorf("docker-compose.yml uses variables without a default: %v", missing)
	}
	var c composeFile
	parseYAML(t, "docker-compose.yml", text, &c)
	for _, name := range []string{"postgres", "redis", "migrate", "seed", "api", "worker", "asynqmon"} {
		if _, ok := c.Services[name]; !ok {
			t.Fatalf("docker-compose.yml has no %s service", name)
		}
	}
	return c
}

func getenv(env map[string]string) func(string) string {
	return func(k string) string { return env[k] }
}

func TestCompose_EveryBinaryAcceptsItsEnvironment(t *testing.T) {
	t.Parallel()
	c := loadCompose(t)
	known := knownVariables(t)
	kinds := map[string]config.Binary{"api": config.API, "worker": config.Worker, "migrate": config.Migrate}
	for name, s := range c.Services {
		if !s.ours() {
			continue
		}
		kind, ok := kinds[s.binary()]
		if !ok {
			t.Errorf("%s runs %q, which is not one of the binaries %v", name, s.binary(), binaries(t))
			continue
		}
		// The same validation the binary runs at start-up: it would refuse
		// to start, listing every problem.
		if _, err := config.Load(getenv(s.Environment), kind); err != nil {
			t.Errorf("%s (%s) would refuse to start: %v", name, s.binary(), err)
		}
		for k := range s.Environment {
			if !known[k] {
				t.Errorf("%s sets %s, which no binary reads (typo?)", name, k)
			}
		}
		for _, k := range []string{"DATABASE_URL", "MIGRATE_DATABASE_URL", "REDIS_URL"} {
			if s.Environment[k] == "" {
				t.Errorf("%s: %s is not set, so the binary would use its localhost default", name, k)
			}
		}
		if s.binary() == "api" || s.binary() == "migrate" {
			if len(s.Environment["JWT_SECRET"]) < 32 {
				t.Errorf("%s: JWT_SECRET must be set (≥ 32 bytes): tokens are signed and checked with it", name)
			}
		}
	}
}

func TestCompose_URLsNameServicesRolesAndPortsThatExist(t *testing.T) {
	t.Parallel()
	c := loadCompose(t)
	pg := c.Services["postgres"]
	pgUser := pg.Environment["POSTGRES_USER"]
	if pgUser == "" {
		pgUser = "postgres"
	}
	for name, s := range c.Services {
		if !s.ours() {
			continue
		}
		app, err := url.Parse(s.Environment["DATABASE_URL"])
		if err != nil {
			t.Fatalf("%s DATABASE_URL: %v", name, err)
		}
		owner, err := url.Parse(s.Environment["MIGRATE_DATABASE_URL"])
		if err != nil {
			t.Fatalf("%s MIGRATE_DATABASE_URL: %v", name, err)
		}
		for what, u := range map[string]*url.URL{"DATABASE_URL": app, "MIGRATE_DATABASE_URL": owner} {
			if u.Hostname() != "postgres" || u.Port() != "5432" || !slices.Contains(pg.containerPorts(), "5432") {
				t.Errorf("%s %s points at %s, want the postgres service on 5432", name, what, u.Host)
			}
			if db := strings.TrimPrefix(u.Path, "/"); db != pg.Environment["POSTGRES_DB"] {
				t.Errorf("%s %s names database %q, postgres creates %q", name, what, db, pg.Environment["POSTGRES_DB"])
			}
		}
		if pw, _ := owner.User.Password(); owner.User.Username() != pgUser || pw != pg.Environment["POSTGRES_PASSWORD"] {
			t.Errorf("%s MIGRATE_DATABASE_URL must log in as the postgres service's superuser %q with its password", name, pgUser)
		}
		// Invariant 3: api and worker must not run as the owner/superuser.
		if app.User.Username() == "" || app.User.Username() == pgUser {
			t.Errorf("%s DATABASE_URL logs in as %q: the app role must be a separate, non-superuser role", name, app.User.Username())
		}
		if _, ok := app.User.Password(); !ok {
			t.Errorf("%s DATABASE_URL has no password: `migrate up` creates the app role with it", name)
		}
		r, err := url.Parse(s.Environment["REDIS_URL"])
		if err != nil || r.Hostname() != "redis" || r.Port() != "6379" || !slices.Contains(c.Services["redis"].containerPorts(), "6379") {
			t.Errorf("%s REDIS_URL %q, want the redis service on 6379", name, s.Environment["REDIS_URL"])
		}
	}
	// Every service's DATABASE_URL is the same role (migrate creates the one api and worker use).
	want := c.Services["migrate"].Environment["DATABASE_URL"]
	for _, name := range []string{"api", "worker", "seed"} {
		if got := c.Services[name].Environment["DATABASE_URL"]; got != want {
			t.Errorf("%s DATABASE_URL differs from migrate's: migrate creates and grants the role api and worker log in as", name)
		}
	}
	// asynqmon reads the queues asynq writes.
	mon := strings.Join(c.Services["asynqmon"].Command, " ")
	if !strings.Contains(mon, c.Services["worker"].Environment["REDIS_URL"]) {
		t.Errorf("asynqmon %q does not watch the worker's REDIS_URL %s", mon, c.Services["worker"].Environment["REDIS_URL"])
	}
}

func TestCompose_StartOrderWaitsForHealthyServicesAndASuccessfulMigration(t *testing.T) {
	t.Parallel()
	c := loadCompose(t)
	for name, s := range c.Services {
		for dep, d := range s.DependsOn {
			ds, ok := c.Services[dep]
			switch {
			case !ok:
				t.Errorf("%s depends on unknown service %s", name, dep)
			case d.Condition == "service_healthy" && !ds.healthy():
				t.Errorf("%s waits for %s to be healthy, but %s has no health check", name, dep, dep)
			case d.Condition == "service_completed_successfully" && ds.Restart != "no":
				t.Errorf("%s waits for %s to complete, but %s restarts (%q)", name, dep, dep, ds.Restart)
			case d.Condition == "":
				t.Errorf("%s depends on %s with no condition: it would start before %s is ready", name, dep, dep)
			}
		}
	}
	mig := c.Services["migrate"]
	if mig.binary() != "migrate" || !slices.Equal(mig.Command[1:], []string{"up"}) {
		t.Errorf("migrate runs %v, want migrate up", mig.Command)
	}
	if mig.DependsOn["postgres"].Condition != "service_healthy" {
		t.Error("migrate must wait for postgres to be healthy")
	}
	for _, name := range []string{"api", "worker", "seed"} {
		if c.Services[name].DependsOn["migrate"].Condition != "service_completed_successfully" {
			t.Errorf("%s must wait for migrate: service_completed_successfully", name)
		}
	}
	for _, name := range []string{"api", "worker"} {
		if c.Services[name].DependsOn["redis"].Condition != "service_healthy" {
			t.Errorf("%s must wait for redis to be healthy", name)
		}
		if !c.Services[name].healthy() {
			t.Errorf("%s has no health check", name)
		}
	}
	for _, name := range []string{"migrate", "seed"} {
		if h := c.Services[name].Healthcheck; h == nil || !h.Disable {
			t.Errorf("%s is a one-shot: disable the image's api health check", name)
		}
	}
	seed := c.Services["seed"]
	if seed.binary() != "migrate" || !slices.Equal(seed.Command[1:], []string{"demo"}) {
		t.Errorf("seed runs %v, want migrate demo", seed.Command)
	}
}

func TestCompose_CommandsExistInTheBinaries(t *testing.T) {
	t.Parallel()
	c := loadCompose(t)
	bins := binaries(t)
	cmds := migrateCommands(t)
	for name, s := range c.Services {
		if !s.ours() {
			continue
		}
		if len(s.Command) > 0 && s.Command[0] != "/usr/local/bin/"+s.binary() {
			t.Errorf("%s runs %s: the image installs binaries in /usr/local/bin", name, s.Command[0])
		}
		if !slices.Contains(bins, s.binary()) {
			t.Errorf("%s runs %s, not a binary of cmd/ %v", name, s.binary(), bins)
		}
		if s.binary() == "migrate" && (len(s.Command) < 2 || !cmds[s.Command[1]]) {
			t.Errorf("%s runs %v: not a migrate command (%v)", name, s.Command, cmds)
		}
		if (s.binary() == "api" || s.binary() == "worker") && len(s.Command) > 1 {
			t.Errorf("%s passes arguments %v: %s takes its configuration from the environment only", name, s.Command[1:], s.binary())
		}
		if s.healthy() {
			checkHealthcheckCommand(t, name, s)
		}
	}
}

// checkHealthcheckCommand runs the service's health check command against a
// server that answers 200 on the path it probes, and 503 otherwise.
func checkHealthcheckCommand(t *testing.T, name string, s service) {
	t.Helper()
	test := s.Healthcheck.Test
	if test[0] != "CMD" || len(test) < 3 || path.Base(test[1]) != "api" || test[2] != "healthcheck" {
		t.Errorf("%s health check %v: distroless has no shell or curl, use [CMD, /usr/local/bin/api, healthcheck, URL]", name, test)
		return
	}
	if len(test) != 4 {
		t.Errorf("%s health check %v: name the URL, so it does not depend on the image's defaults", name, test)
		return
	}
	u, err := url.Parse(test[3])
	if err != nil {
		t.Errorf("%s health check URL: %v", name, err)
		return
	}
	addrVar := map[string]string{"api": "HTTP_ADDR", "worker": "WORKER_HTTP_ADDR"}[s.binary()]
	_, port, err := net.SplitHostPort(s.Environment[addrVar])
	if err != nil || u.Port() != port {
		t.Errorf("%s health check probes port %s, but %s=%q", name, u.Port(), addrVar, s.Environment[addrVar])
	}
	probed := u.Path
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != probed {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	target := *u
	target.Host = srv.Listener.Addr().String()
	if out, err := runBinary(t, "api", nil, "healthcheck", target.String()); err != nil {
		t.Errorf("%s health check command fails against a healthy server: %v\n%s", name, err, out)
	}
	target.Path = "/down"
	if _, err := runBinary(t, "api", nil, "healthcheck", target.String()); err == nil {
		t.Errorf("%s health check command succeeds against a 503", name)
	}
}

func TestCompose_PublishedPortsMatchListenAddresses(t *testing.T) {
	t.Parallel()
	c := loadCompose(t)
	for name, addrVar := range map[string]string{"api": "HTTP_ADDR", "worker": "WORKER_HTTP_ADDR"} {
		s := c.Services[name]
		_, port, err := net.SplitHostPort(s.Environment[addrVar])
		if err != nil {
			t.Errorf("%s: %s=%q: %v", name, addrVar, s.Environment[addrVar], err)
			continue
		}
		if !slices.Contains(s.containerPorts(), port) {
			t.Errorf("%s listens on %s (%s) but publishes %v", name, port, addrVar, s.Ports)
		}
	}
	// The seed prints curl commands for the api's published host port.
	apiHost := strings.Split(c.Services["api"].Ports[0], ":")[0]
	if got := c.Services["seed"].Environment["HTTP_ADDR"]; got != ":"+apiHost {
		t.Errorf("seed HTTP_ADDR=%q prints curls for the wrong port: the api is published on %s", got, apiHost)
	}
	published := map[string]string{}
	for name, s := range c.Services {
		for _, p := range s.Ports {
			parts := strings.Split(p, ":")
			if len(parts) < 2 {
				continue
			}
			host := parts[len(parts)-2]
			if other, dup := published[host]; dup {
				t.Errorf("host port %s is published by both %s and %s", host, other, name)
			}
			published[host] = name
		}
	}
}
