package deploy

import (
	"path/filepath"
	"testing"
)

// TestDependabot_WatchesGoModulesActionsAndImagesWeekly: a fork keeps
// receiving updates for every manifest the kit ships, grouped into one pull
// request per ecosystem a week, and each entry points at a directory that
// holds its manifest.
func TestDependabot_WatchesGoModulesActionsAndImagesWeekly(t *testing.T) {
	t.Parallel()
	var cfg struct {
		Version int `yaml:"version"`
		Updates []struct {
			Ecosystem string `yaml:"package-ecosystem"`
			Directory string `yaml:"directory"`
			Schedule  struct {
				Interval string `yaml:"interval"`
			} `yaml:"schedule"`
			Groups map[string]struct {
				Patterns []string `yaml:"patterns"`
			} `yaml:"groups"`
		} `yaml:"updates"`
	}
	parseYAML(t, ".github/dependabot.yml", read(t, ".github/dependabot.yml"), &cfg)
	if cfg.Version != 2 {
		t.Errorf("dependabot.yml version %d, want 2", cfg.Version)
	}
	manifest := map[string]string{
		"gomod":          "go.mod",
		"github-actions": ".github/workflows",
		"docker":         "Dockerfile",
		"docker-compose": "docker-compose.yml",
	}
	seen := map[string]bool{}
	for _, u := range cfg.Updates {
		seen[u.Ecosystem] = true
		if m, ok := manifest[u.Ecosystem]; ok && !exists(filepath.Join(u.Directory, m)) {
			t.Errorf("dependabot.yml %s looks in %s, which holds no %s", u.Ecosystem, u.Directory, m)
		}
		if u.Schedule.Interval != "weekly" {
			t.Errorf("dependabot.yml %s: interval %q, want weekly", u.Ecosystem, u.Schedule.Interval)
		}
		grouped := false
		for _, g := range u.Groups {
			for _, p := range g.Patterns {
				grouped = grouped || p == "*"
			}
		}
		if !grouped {
			t.Errorf("dependabot.yml %s: no group with pattern \"*\" (one pull request per ecosystem)", u.Ecosystem)
		}
	}
	for eco := range manifest {
		if !seen[eco] {
			t.Errorf("dependabot.yml does not update %s", eco)
		}
	}
}
