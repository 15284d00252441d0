package deploy

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestDocs_SecurityCitesOnlyTestsThatExist keeps docs/security.md honest: a
// renamed or deleted test breaks the threat model's proof, and every
// invariant of docs/design.md keeps at least one test.
func TestDocs_SecurityCitesOnlyTestsThatExist(t *testing.T) {
	t.Parallel()
	doc := read(t, "docs/security.md")
	defined := definedTests(t)
	cited := regexp.MustCompile("`((?:Test|Fuzz)[A-Za-z0-9_]+)`")
	for _, m := range cited.FindAllStringSubmatch(doc, -1) {
		if !defined[m[1]] {
			t.Errorf("docs/security.md cites %s, which no test file defines", m[1])
		}
	}
	design := read(t, "docs/design.md")
	want := len(regexp.MustCompile(`(?m)^\d+\. `).FindAllString(design[strings.Index(design, "## Invariants"):], -1))
	sections := regexp.MustCompile(`(?m)^### (\d+)\. `).FindAllStringSubmatchIndex(doc, -1)
	if len(sections) != want {
		t.Fatalf("docs/security.md has %d invariant sections, want docs/design.md's %d", len(sections), want)
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

// definedTests are the Test and Fuzz functions of every _test.go file.
func definedTests(t *testing.T) map[string]bool {
	t.Helper()
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
	return defined
}

// mutation is the header of one mutations/NN-slug.patch (.ci/mutations.sh).
type mutation struct {
	invariants map[string]bool // "1".."N", "threat"
	kills      map[string]bool
}

func loadMutations(t *testing.T) map[string]mutation {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(root, "mutations", "*.patch"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no mutations/*.patch (%v)", err)
	}
	out := map[string]mutation{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		header, _, ok := strings.Cut(string(b), "\n---\n")
		if !ok {
			t.Errorf("%s: no header (Mutation:, Invariant:, Packages:, Kills:, then ---)", f)
			continue
		}
		m := mutation{invariants: map[string]bool{}, kills: map[string]bool{}}
		for _, line := range strings.Split(header, "\n") {
			k, v, _ := strings.Cut(line, ":")
			for _, w := range strings.Fields(v) {
				switch k {
				case "Invariant":
					m.invariants[w] = true
				case "Kills":
					m.kills[w] = true
				}
			}
		}
		slug := regexp.MustCompile(`^\d+-`).ReplaceAllString(strings.TrimSuffix(filepath.Base(f), ".patch"), "")
		if _, dup := out[slug]; dup {
			t.Errorf("two mutations named %s", slug)
		}
		out[slug] = m
	}
	return out
}

// TestDocs_SecurityCitationsFailUnderTheirMutations keeps every citation of
// docs/security.md true, not only existing: each invariant section and each
// threat row names the mutations that break its defence, and every test it
// cites is one that .ci/mutations.sh (make test-mutations) requires to fail
// under one of those mutations. Every mutation is listed in the document.
func TestDocs_SecurityCitationsFailUnderTheirMutations(t *testing.T) {
	t.Parallel()
	doc := read(t, "docs/security.md")
	muts := loadMutations(t)
	defined := definedTests(t)
	for slug, m := range muts {
		for k := range m.kills {
			if !defined[k] {
				t.Errorf("mutation %s lists %s under Kills, which no test file defines", slug, k)
			}
		}
		if len(m.kills) == 0 {
			t.Errorf("mutation %s lists no Kills", slug)
		}
	}
	cited := regexp.MustCompile("`((?:Test|Fuzz)[A-Za-z0-9_]+)`")
	named := regexp.MustCompile("`([a-z0-9]+(?:-[a-z0-9]+)+)`")
	listed := map[string]bool{}
	// check holds one claim (an invariant section or a threat row) to its mutations.
	check := func(where, invariant, text string) {
		killers := map[string]bool{}
		var mine []string
		for _, m := range named.FindAllStringSubmatch(text, -1) {
			mu, ok := muts[m[1]]
			if !ok {
				continue
			}
			listed[m[1]] = true
			mine = append(mine, m[1])
			if !mu.invariants[invariant] {
				t.Errorf("%s lists mutation %s, whose Invariant header does not name %s", where, m[1], invariant)
			}
			for k := range mu.kills {
				killers[k] = true
			}
		}
		tests := cited.FindAllStringSubmatch(text, -1)
		if len(tests) > 0 && len(mine) == 0 {
			t.Errorf("%s cites tests but lists no mutation (mutations/*.patch) that they catch", where)
		}
		for _, c := range tests {
			if !killers[c[1]] {
				t.Errorf("%s cites %s, which none of its mutations %v lists under Kills: add it where it fails, or cite a test that does", where, c[1], mine)
			}
		}
	}
	sections := regexp.MustCompile(`(?m)^### (\d+)\. `).FindAllStringSubmatchIndex(doc, -1)
	for i, s := range sections {
		end := len(doc)
		if i+1 < len(sections) {
			end = sections[i+1][0]
		}
		if j := strings.Index(doc[s[0]:end], "\n## "); j >= 0 {
			end = s[0] + j
		}
		n := doc[s[2]:s[3]]
		check("invariant "+n, n, doc[s[0]:end])
	}
	threats := strings.Index(doc, "\n## Other threats")
	if threats < 0 {
		t.Fatal(`docs/security.md has no "## Other threats" table`)
	}
	rest := doc[threats+1:]
	if j := strings.Index(rest[3:], "\n## "); j >= 0 {
		rest = rest[:j+3]
	}
	for _, line := range strings.Split(rest, "\n") {
		if !strings.HasPrefix(line, "| ") || strings.HasPrefix(line, "| threat") || strings.HasPrefix(line, "|---") {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimPrefix(line, "| "), " |")
		check("threat row "+strconv.Quote(name), "threat", line)
	}
	for slug := range muts {
		if !listed[slug] {
			t.Errorf("mutation %s is not listed in docs/security.md beside the invariant or threat it attacks", slug)
		}
	}
}
