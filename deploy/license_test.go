package deploy

import (
	"strings"
	"testing"
)

// TestLicense_IsMITKeptInTheImageAndNamedInTheReadme: without a license
// nobody may copy the kit, and MIT's one condition is that its notice travels
// with every copy, the image included.
func TestLicense_IsMITKeptInTheImageAndNamedInTheReadme(t *testing.T) {
	t.Parallel()
	lic := read(t, "LICENSE")
	for _, want := range []string{"MIT License", "Copyright (c) 2026 The tenantkit authors",
		"The above copyright notice and this permission notice shall be included in all"} {
		if !strings.Contains(lic, want) {
			t.Errorf("LICENSE lacks %q", want)
		}
	}
	if !strings.Contains(read(t, "Dockerfile"), "COPY LICENSE ") {
		t.Error("the Dockerfile does not copy LICENSE into the image")
	}
	readme := read(t, "README.md")
	for _, want := range []string{"## License", "MIT ([LICENSE](LICENSE))", "[SECURITY.md](SECURITY.md)"} {
		if !strings.Contains(readme, want) {
			t.Errorf("README.md lacks %q", want)
		}
	}
	sec := read(t, "SECURITY.md")
	for _, want := range []string{"Report a vulnerability", "docs/security.md"} {
		if !strings.Contains(sec, want) {
			t.Errorf("SECURITY.md lacks %q", want)
		}
	}
}
