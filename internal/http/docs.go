package http

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"

	"github.com/your-org/tenantkit/internal/apperr"
)

// The docs ship inside the binary so /docs works with no network and no CDN;
// scripts/docs-assets.sh refreshes the vendored Swagger UI files.
//
//go:embed docs/openapi.json docs/index.html docs/assets
var docsFS embed.FS

// DocsCSP is the Content-Security-Policy header of /docs: scripts, styles and
// requests only from this server (the page's <meta> repeats it, but only a
// header also forbids framing). Swagger UI sets inline styles, hence
// 'unsafe-inline' for styles only.
const DocsCSP = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; " +
	"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// Docs returns the embedded OpenAPI document, the docs page and a handler for
// its assets, ready for Config.OpenAPI, Config.DocsHTML and Config.DocsAssets.
func Docs() (openAPI, page []byte, assets http.Handler) {
	openAPI = mustRead("docs/openapi.json")
	page = mustRead("docs/index.html")
	sub, err := fs.Sub(docsFS, "docs/assets")
	if err != nil {
		panic(err) // the directory is embedded above: unreachable
	}
	return openAPI, page, assetHandler(sub)
}

func mustRead(name string) []byte {
	b, err := docsFS.ReadFile(name)
	if err != nil {
		panic(err) // embedded above: unreachable
	}
	return b
}

// assetHandler serves files only (no directory listings, problem+json 404s)
// and lets browsers cache them for an hour: they change only with the binary.
func assetHandler(assets fs.FS) http.Handler {
	files := http.FileServerFS(assets)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(r.URL.Path, "/")
		if st, err := fs.Stat(assets, name); err != nil || st.IsDir() || !fs.ValidPath(name) {
			p := ProblemFor(apperr.New(apperr.NotFound, "no such docs asset"))
			p.Instance = "/docs/assets/" + name
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(p.Status)
			_ = jsonEncode(w, p)
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=3600")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		files.ServeHTTP(w, r)
	})
}
