//go:build browser

// The headless-browser check needs Chromium, so it is behind the browser
// build tag instead of skipping: run it with .ci/browser.sh (which installs
// Debian's chromium), or go test -tags browser with CHROMIUM_BIN set.

package http

import (
	"context"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestDocs_RendersInHeadlessChromium(t *testing.T) {
	bin := os.Getenv("CHROMIUM_BIN")
	if bin == "" {
		for _, b := range []string{"chromium", "chromium-browser", "google-chrome"} {
			if p, err := exec.LookPath(b); err == nil {
				bin = p
				break
			}
		}
	}
	if bin == "" {
		t.Fatal("no Chromium found: run .ci/browser.sh (installs Debian's chromium) or set CHROMIUM_BIN")
	}
	srv := httptest.NewServer(fullServer(t))
	t.Cleanup(srv.Close)

	// A hang guard, not a timed assertion: Chromium must not block the suite.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
		"--disable-extensions", "--disable-background-networking", "--user-data-dir="+t.TempDir(),
		// No network but this server: a CDN reference cannot load.
		"--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
		"--enable-logging=stderr", "--v=0",
		"--virtual-time-budget=30000", "--dump-dom", srv.URL+"/docs")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v\n%s", err, stderr.String())
	}
	dom := string(out)

	if !regexp.MustCompile(`class="title"[^>]*>tenantkit API`).MatchString(dom) {
		t.Errorf("the page shows no API title: Swagger UI did not render the document\n%.2000s", dom)
	}
	for _, bad := range []string{"Failed to load API definition", "errors-wrapper"} {
		if strings.Contains(dom, bad) {
			t.Errorf("the page shows %q", bad)
		}
	}
	// Every documented operation is rendered, and nothing else.
	s, _ := loadSpec(t)
	var want []string
	for key := range operations(t, s) {
		want = append(want, key)
	}
	var got []string
	op := regexp.MustCompile(`(?s)opblock-summary-method">([A-Z]+)<.*?data-path="([^"]+)"`)
	for _, m := range op.FindAllStringSubmatch(dom, -1) {
		got = append(got, m[1]+" "+strings.ReplaceAll(m[2], "\u200b", ""))
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("rendered operations:\n%v\nwant:\n%v", got, want)
	}
	// A blocked script or stylesheet (CSP or a missing asset) is a failure.
	for _, line := range strings.Split(stderr.String(), "\n") {
		if strings.Contains(line, "Content Security Policy") || strings.Contains(line, "Refused to") ||
			strings.Contains(line, "ERR_NAME_NOT_RESOLVED") || strings.Contains(line, "Failed to load resource") {
			t.Errorf("browser console: %s", line)
		}
	}
	t.Logf("rendered %d operations with %s", len(got), bin)
}
