package deploy

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestDocs_SecurityCitesOnlyTestsThatExist keeps docs/security.md honest: a
// renamed or deleted test breaks the threat model's proof, and every
// invariant of docs/design.md keeps at least one test.
func TestDocs_SecurityCitesOnlyTestsThatExist(t *testing.T) {
	t.Parallel()
	doc := read(t, "docs/security.md")
	defined := map[string]bool{}
	funcs := regexp.MustCompile(`(?m)^func ((?:Test|Fuzz)[A-Za-z0-9_]+)\(`)
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, m := range funcs.FindAllStringSubmatch(string(b), -1) {
			defined[m[1]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	cited := regexp.MustCompile("`((?:Test|Fuzz)[A-Za-z0-9_]+)`")
	for _, m := range cited.FindAllStringSubmatch(doc, -1) {
		if !defined[m[1]] {
			t.Errorf("docs/security.md cites %s, which no test file defines", m[1])
		}
	}
	sections := regexp.MustCompile(`(?m)^### (\d)\. `).FindAllStringSubmatchIndex(doc, -1)
	if len(sections) != 9 {
		t.Fatalf("docs/security.md has %d invariant sections, want docs/design.md's 9", len(sections))
	}
	for i, s := range sections {
		end := len(doc)
		if i+1 < len(sections) {
			end = sections[i+1][0]
		}
		if !cited.MatchString(doc[s[0]:end]) {
			t.Errorf("invariant %s cites no test", doc[s[2]:s[3]])
		}
	}
}
