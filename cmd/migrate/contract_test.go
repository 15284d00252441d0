package main

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/your-org/tenantkit/internal/testenv"
)

// The deploy workflow reads `migrate up --json` with jq. A renamed or dropped
// key would not fail there (jq prints null) but silently blank the deploy
// summary, so every key its jq programs require is checked here in the raw
// output of a real run, not through this package's own report struct.
func TestUp_JSONHasEveryKeyDeployYmlReads(t *testing.T) {
	t.Parallel()
	wf, err := os.ReadFile("../../.github/workflows/deploy.yml")
	if err != nil {
		t.Fatal(err)
	}
	programs := regexp.MustCompile(`(?s)jq -r '([^']*)' migrate-report\.json`).FindAllStringSubmatch(string(wf), -1)
	if len(programs) == 0 {
		t.Fatal("deploy.yml runs no jq program over migrate-report.json: update this test with the workflow")
	}
	d := testenv.Postgres(t)
	owner, app := freshDatabase(t, d)
	r := migrate(t, owner, app, nil, "up", "--json")
	if r.code != 0 {
		t.Fatalf("up: exit %d\n%s", r.code, r.stderr)
	}
	var raw map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &raw); err != nil {
		t.Fatalf("--json output is not one JSON object: %v\n%s", err, r.stdout)
	}
	checked := 0
	for _, p := range programs {
		checked += checkJQPaths(t, p[1], raw)
	}
	if checked < 5 {
		t.Errorf("checked only %d keys of deploy.yml's jq programs: is the path parser still right?", checked)
	}
}

// checkJQPaths follows the paths of a jq program (".a", ".list[] | ... .b")
// through v; a path followed by "//" has a fallback and may be absent. It
// returns how many keys it checked.
func checkJQPaths(t *testing.T, program string, v map[string]any) int {
	t.Helper()
	scope := []map[string]any{v}
	where := "report"
	n := 0
	tokens := regexp.MustCompile(`\.([a-z_]+)(\[\])?(\s*//)?`).FindAllStringSubmatch(program, -1)
	for _, tok := range tokens {
		key, each, optional := tok[1], tok[2] != "", tok[3] != ""
		if optional {
			continue
		}
		n++
		var next []map[string]any
		for _, obj := range scope {
			val, ok := obj[key]
			if !ok || val == nil {
				t.Errorf("deploy.yml's jq reads %s.%s; the raw `migrate up --json` output has %v there (program %q)", where, key, val, strings.TrimSpace(program))
				continue
			}
			if !each {
				continue
			}
			list, ok := val.([]any)
			if !ok || len(list) == 0 {
				t.Errorf("deploy.yml's jq iterates %s.%s[]; the output has %v", where, key, val)
				continue
			}
			for _, x := range list {
				if m, ok := x.(map[string]any); ok {
					next = append(next, m)
				}
			}
		}
		if each {
			scope, where = next, where+"."+key+"[]"
		}
	}
	return n
}

// migrate up creates the app role named in DATABASE_URL with exactly the
// documented attributes (docs/security.md, invariant 3). The role name is
// fresh, so the cluster-wide role test setup creates cannot stand in for it.
func TestUp_CreatesTheAppRoleWithExactlyTheDocumentedAttributes(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	role := "tk_role_" + strings.ReplaceAll(d.Name, "tk_test_", "")
	t.Cleanup(func() { _, _ = d.Owner.Exec(`DROP ROLE IF EXISTS ` + role) }) // runs after the database is dropped
	owner, app := freshDatabase(t, d)
	app = strings.Replace(app, testenv.AppRole+"@", role+"@", 1)
	if !strings.Contains(app, role+"@") {
		t.Fatalf("could not put role %s into %s", role, app)
	}
	if r := migrate(t, owner, app, nil, "up"); r.code != 0 {
		t.Fatalf("up: exit %d\n%s", r.code, r.stderr)
	}
	var login, super, bypass, createdb, createrole, replication bool
	var memberOf int
	err := d.Owner.QueryRow(`SELECT rolcanlogin, rolsuper, rolbypassrls, rolcreatedb, rolcreaterole, rolreplication,
		(SELECT count(*) FROM pg_auth_members m WHERE m.member = r.oid)
		FROM pg_roles r WHERE rolname = $1`, role).Scan(&login, &super, &bypass, &createdb, &createrole, &replication, &memberOf)
	if err != nil {
		t.Fatalf("role %s after migrate up: %v", role, err)
	}
	if !login || super || bypass || createdb || createrole || replication || memberOf != 0 {
		t.Errorf("role %s: login=%v superuser=%v bypassrls=%v createdb=%v createrole=%v replication=%v member of %d roles; "+
			"want LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOREPLICATION, member of none",
			role, login, super, bypass, createdb, createrole, replication, memberOf)
	}
}
