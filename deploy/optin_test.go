package deploy

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// The jobs of deploy.yml as the opt-in check needs them: conditions,
// environments and whatever could carry a secret.
type gatedWorkflow struct {
	Jobs map[string]gatedJob `yaml:"jobs"`
}

type gatedJob struct {
	If          string            `yaml:"if"`
	Environment any               `yaml:"environment"`
	Needs       any               `yaml:"needs"`
	Env         map[string]string `yaml:"env"`
	Steps       []struct {
		Run  string            `yaml:"run"`
		With map[string]string `yaml:"with"`
		Env  map[string]string `yaml:"env"`
	} `yaml:"steps"`
}

func (j gatedJob) needs() []string { return job{Needs: j.Needs}.needs() }

// text is everything of the job that runs or is handed to a step.
func (j gatedJob) text() string {
	var b strings.Builder
	for k, v := range j.Env {
		fmt.Fprintf(&b, "%s=%s\n", k, v)
	}
	for _, s := range j.Steps {
		b.WriteString(s.Run + "\n")
		for k, v := range s.With {
			fmt.Fprintf(&b, "%s=%s\n", k, v)
		}
		for k, v := range s.Env {
			fmt.Fprintf(&b, "%s=%s\n", k, v)
		}
	}
	return b.String()
}

var (
	secretRef   = regexp.MustCompile(`secrets\.([A-Za-z_][A-Za-z0-9_]*)`)
	varRef      = regexp.MustCompile(`vars\.([A-Za-z_][A-Za-z0-9_]*)`)
	migrateRuns = regexp.MustCompile(`(?:^|[\s/"'])migrate\s+(?:up|down|tenant)\b`)
	deployRuns  = regexp.MustCompile(`vars\.DEPLOY_COMMAND|\$\{?DEPLOY_COMMAND\b`)
	statusFunc  = regexp.MustCompile(`\b(always|success|failure|cancelled)\s*\(`)
)

// touchesProduction reports why a job would migrate or deploy: it enters an
// environment, runs a migration, uses a secret other than the run's own
// GITHUB_TOKEN, or runs the fork's DEPLOY_COMMAND.
func (j gatedJob) touchesProduction() string {
	t := j.text()
	switch {
	case j.Environment != nil:
		return fmt.Sprintf("enters environment %v", j.Environment)
	case migrateRuns.MatchString(t):
		return "runs " + strings.TrimSpace(migrateRuns.FindString(t))
	case deployRuns.MatchString(t):
		return "runs DEPLOY_COMMAND"
	}
	for _, m := range secretRef.FindAllStringSubmatch(t, -1) {
		if m[1] != "GITHUB_TOKEN" {
			return "uses secrets." + m[1]
		}
	}
	return ""
}

// jobsThatRun simulates a push to main: which jobs run, given the
// repository variables. Jobs that run are taken to succeed.
func jobsThatRun(w gatedWorkflow, vars map[string]string) (map[string]bool, error) {
	result := map[string]string{}
	var visit func(name string, path []string) error
	visit = func(name string, path []string) error {
		if _, done := result[name]; done {
			return nil
		}
		if slices.Contains(path, name) {
			return fmt.Errorf("needs cycle: %v", append(path, name))
		}
		j, ok := w.Jobs[name]
		if !ok {
			return fmt.Errorf("unknown job %s", name)
		}
		allOK := true
		for _, n := range j.needs() {
			if err := visit(n, append(path, name)); err != nil {
				return err
			}
			allOK = allOK && result[n] == "success"
		}
		cond := strings.TrimSpace(j.If)
		if strings.HasPrefix(cond, "${{") && strings.HasSuffix(cond, "}}") {
			cond = strings.TrimSpace(cond[3 : len(cond)-2])
		}
		// GitHub's rule: a condition without a status function is ANDed with success().
		switch {
		case cond == "":
			cond = "success()"
		case !statusFunc.MatchString(cond):
			cond = "success() && (" + cond + ")"
		}
		v, err := evalExpr(cond, exprEnv{
			lookup: func(p []string) any {
				switch {
				case len(p) == 2 && p[0] == "vars":
					return vars[p[1]] // unset variables are ''
				case len(p) == 2 && p[0] == "github" && p[1] == "event_name":
					return "push"
				case len(p) == 2 && p[0] == "github" && p[1] == "ref":
					return "refs/heads/main"
				case len(p) == 2 && p[0] == "github" && p[1] == "ref_name":
					return "main"
				case len(p) == 3 && p[0] == "needs" && p[2] == "result":
					return result[p[1]]
				}
				return nil
			},
			status: map[string]bool{"success": allOK},
		})
		if err != nil {
			return fmt.Errorf("job %s: %w", name, err)
		}
		result[name] = "skipped"
		if truthy(v) {
			result[name] = "success"
		}
		return nil
	}
	ran := map[string]bool{}
	for name := range w.Jobs {
		if err := visit(name, nil); err != nil {
			return nil, err
		}
		ran[name] = result[name] == "success"
	}
	return ran, nil
}

// offValues are repository variable sets of a fork that has not opted in.
var offValues = []map[string]string{
	{}, {"DEPLOY_ENABLED": ""}, {"DEPLOY_ENABLED": "false"}, {"DEPLOY_ENABLED": "0"},
	{"DEPLOY_ENABLED": "1"}, {"DEPLOY_ENABLED": "yes"}, {"DEPLOY_ENABLED": "no"},
	// Everything else set, opt-in missing: configuring is not consenting.
	{"DEPLOY_COMMAND": "kubectl apply -f k8s/"},
}

// optInProblems lists how w would migrate or deploy without DEPLOY_ENABLED=true,
// fail to say so, or fail to deploy once opted in.
func optInProblems(w gatedWorkflow) []string {
	var problems []string
	var prod []string
	for name, j := range w.Jobs {
		if j.touchesProduction() != "" {
			prod = append(prod, name)
		}
	}
	sort.Strings(prod)
	if len(prod) == 0 {
		return []string{"no job migrates or deploys: the check found nothing to hold to the opt-in"}
	}
	for _, vars := range offValues {
		ran, err := jobsThatRun(w, vars)
		if err != nil {
			return append(problems, err.Error())
		}
		notice := false
		for name, r := range ran {
			if !r {
				continue
			}
			j := w.Jobs[name]
			if why := j.touchesProduction(); why != "" {
				problems = append(problems, fmt.Sprintf("with variables %v job %s runs and %s: it must be skipped until DEPLOY_ENABLED=true", vars, name, why))
			}
			if strings.Contains(j.text(), "GITHUB_STEP_SUMMARY") && strings.Contains(j.text(), "DEPLOY_ENABLED") {
				notice = true
			}
		}
		if !notice {
			problems = append(problems, fmt.Sprintf("with variables %v no job writes to $GITHUB_STEP_SUMMARY why nothing was deployed and how to opt in (DEPLOY_ENABLED)", vars))
		}
	}
	on := map[string]string{"DEPLOY_ENABLED": "true"}
	ran, err := jobsThatRun(w, on)
	if err != nil {
		return append(problems, err.Error())
	}
	for _, name := range prod {
		if !ran[name] {
			problems = append(problems, fmt.Sprintf("with DEPLOY_ENABLED=true job %s does not run", name))
		}
	}
	for name, r := range ran {
		if r && strings.Contains(w.Jobs[name].text(), "GITHUB_STEP_SUMMARY") && w.Jobs[name].touchesProduction() == "" &&
			strings.Contains(strings.ToLower(w.Jobs[name].text()), "skipped") {
			problems = append(problems, fmt.Sprintf("with DEPLOY_ENABLED=true job %s still reports the deploy as skipped", name))
		}
	}
	sort.Strings(problems)
	return problems
}

func loadDeployWorkflow(t *testing.T) gatedWorkflow {
	t.Helper()
	var w gatedWorkflow
	parseYAML(t, ".github/workflows/deploy.yml", read(t, ".github/workflows/deploy.yml"), &w)
	return w
}

// TestDeploy_RunsNothingUntilTheForkOptsIn: a fresh fork has no secrets and
// no DEPLOY_COMMAND, so its first push must neither migrate nor deploy (nor
// fail trying): deploy.yml stays green and says in the run summary what to set.
func TestDeploy_RunsNothingUntilTheForkOptsIn(t *testing.T) {
	t.Parallel()
	for _, p := range optInProblems(loadDeployWorkflow(t)) {
		t.Error("deploy.yml: " + p)
	}
}

// TestDeploy_OptInCheckCatchesAnUngatedJob proves the check above is not
// vacuous: variants of deploy.yml that would migrate or deploy without the
// opt-in, or stay silent about skipping, are each caught.
func TestDeploy_OptInCheckCatchesAnUngatedJob(t *testing.T) {
	t.Parallel()
	base := read(t, ".github/workflows/deploy.yml")
	if !strings.Contains(base, "if: vars.DEPLOY_ENABLED == 'true'") {
		t.Fatal("deploy.yml no longer gates jobs with `if: vars.DEPLOY_ENABLED == 'true'`: update the variants of this test")
	}
	const (
		runsUngated = "must be skipped until DEPLOY_ENABLED=true"
		noNotice    = "no job writes to $GITHUB_STEP_SUMMARY"
		neverRuns   = "does not run"
	)
	variants := map[string]struct {
		want   string
		mutate func(w *gatedWorkflow)
	}{
		"every condition removed": {runsUngated, func(w *gatedWorkflow) {
			for n, j := range w.Jobs {
				j.If = ""
				w.Jobs[n] = j
			}
		}},
		"production jobs run always()": {runsUngated, func(w *gatedWorkflow) {
			for n, j := range w.Jobs {
				if j.touchesProduction() != "" {
					j.If = "always()"
					w.Jobs[n] = j
				}
			}
		}},
		"opt-in inverted to != 'false'": {runsUngated, func(w *gatedWorkflow) {
			for n, j := range w.Jobs {
				j.If = strings.ReplaceAll(j.If, "== 'true'", "!= 'false'")
				w.Jobs[n] = j
			}
		}},
		"opt-in on the wrong variable": {neverRuns, func(w *gatedWorkflow) {
			for n, j := range w.Jobs {
				j.If = strings.ReplaceAll(j.If, "vars.DEPLOY_ENABLED", "vars.DEPLOY_COMMAND")
				w.Jobs[n] = j
			}
		}},
		"no notice when skipped": {noNotice, func(w *gatedWorkflow) {
			for n, j := range w.Jobs {
				if j.touchesProduction() == "" && strings.Contains(j.text(), "GITHUB_STEP_SUMMARY") {
					delete(w.Jobs, n)
				}
			}
		}},
	}
	for name, v := range variants {
		var w gatedWorkflow
		parseYAML(t, "deploy.yml", base, &w)
		v.mutate(&w)
		problems := optInProblems(w)
		i := slices.IndexFunc(problems, func(p string) bool { return strings.Contains(p, v.want) })
		if i < 0 {
			t.Errorf("variant %q of deploy.yml: the opt-in check did not report %q (it reported %q)", name, v.want, problems)
			continue
		}
		t.Logf("variant %q caught: %s", name, problems[i])
	}
}

// TestReadme_DeploySectionListsWhatAForkSets: every secret and variable
// deploy.yml reads is named in the README's deploy section and in the notice
// a skipped run leaves in its summary.
func TestReadme_DeploySectionListsWhatAForkSets(t *testing.T) {
	t.Parallel()
	wf := read(t, ".github/workflows/deploy.yml")
	want := map[string]string{}
	for _, m := range secretRef.FindAllStringSubmatch(wf, -1) {
		if m[1] != "GITHUB_TOKEN" {
			want[m[1]] = "secret"
		}
	}
	for _, m := range varRef.FindAllStringSubmatch(wf, -1) {
		want[m[1]] = "variable"
	}
	if want["DEPLOY_ENABLED"] == "" || want["MIGRATE_DATABASE_URL"] == "" {
		t.Fatalf("deploy.yml reads %v: expected at least DEPLOY_ENABLED and MIGRATE_DATABASE_URL", want)
	}
	readme := read(t, "README.md")
	start := regexp.MustCompile(`(?m)^## Deploy from GitHub Actions\s*$`).FindStringIndex(readme)
	if start == nil {
		t.Fatal("README.md has no `## Deploy from GitHub Actions` section")
	}
	section := readme[start[1]:]
	if end := regexp.MustCompile(`(?m)^## `).FindStringIndex(section); end != nil {
		section = section[:end[0]]
	}
	var notice string
	var w gatedWorkflow
	parseYAML(t, "deploy.yml", wf, &w)
	for _, j := range w.Jobs {
		if j.touchesProduction() == "" && strings.Contains(j.text(), "GITHUB_STEP_SUMMARY") {
			notice += j.text()
		}
	}
	for name, kind := range want {
		if !strings.Contains(section, "`"+name+"`") {
			t.Errorf("README's deploy section does not name the %s `%s` that deploy.yml reads", kind, name)
		}
		if !strings.Contains(notice, name) {
			t.Errorf("deploy.yml's skipped-run notice does not name the %s %s", kind, name)
		}
	}
}
