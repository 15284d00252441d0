package deploy

import (
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// TestRepo_CitesOnlyFilesItContains keeps a fork self-contained: the contract
// and design notes are docs/contract.md and docs/design.md, and nothing in
// the repository points at a file outside it.
func TestRepo_CitesOnlyFilesItContains(t *testing.T) {
	t.Parallel()
	for _, f := range []string{"docs/contract.md", "docs/design.md"} {
		if !strings.HasPrefix(read(t, f), "> This is the repository's copy") {
			t.Errorf("%s must say at the top that it is the repository's copy", f)
		}
	}
	cmd := exec.Command("git", "ls-files")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	outside := regexp.MustCompile(`\.\./shared|CONTRACT\.md|DESIGN\.md`)
	for _, f := range strings.Fields(string(out)) {
		if strings.HasPrefix(f, "internal/http/docs/assets/") || f == "go.sum" || !exists(f) {
			continue
		}
		for i, line := range strings.Split(read(t, f), "\n") {
			if outside.MatchString(line) {
				t.Errorf("%s:%d cites a file outside the repository (cite docs/contract.md or docs/design.md): %s", f, i+1, strings.TrimSpace(line))
			}
		}
	}
}
