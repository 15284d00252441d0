package http_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus"

	tkhttp "github.com/your-org/tenantkit/internal/http"
)

// plainServer serves route at /x behind the kit's plumbing and mws.
func plainServer(t *testing.T, route echo.HandlerFunc, mws ...echo.MiddlewareFunc) *httptest.Server {
	t.Helper()
	e := tkhttp.NewPlain(slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
	e.Use(mws...)
	e.GET("/x", route)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return srv
}

// A JSON body past net/http's 2 KiB buffer (a page of items) goes out whole,
// with its Content-Length, and is the bytes encoding/json makes of it.
func TestJSON_LargeBodyHasContentLength(t *testing.T) {
	t.Parallel()
	items := make([]map[string]string, 50)
	for i := range items {
		items[i] = map[string]string{"name": strings.Repeat("n", 80), "html": "<b>&</b>"}
	}
	srv := plainServer(t, func(c echo.Context) error { return c.JSON(http.StatusOK, map[string]any{"items": items}) })
	resp, err := http.Get(srv.URL + "/x")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var want bytes.Buffer
	_ = json.NewEncoder(&want).Encode(map[string]any{"items": items})
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, want.Bytes()) {
		t.Fatalf("status %d, body %.80q, want %.80q", resp.StatusCode, body, want.Bytes())
	}
	if len(resp.TransferEncoding) > 0 || resp.ContentLength != int64(len(body)) {
		t.Errorf("transfer encoding %v, content length %d for %d bytes", resp.TransferEncoding, resp.ContentLength, len(body))
	}
}

// A fork that adds Echo's Gzip middleware gets a compressed body with the
// right length, not the uncompressed length on a gzip body.
func TestJSON_GzipMiddlewareKeepsLengthRight(t *testing.T) {
	t.Parallel()
	items := strings.Repeat("x", 4000)
	srv := plainServer(t, func(c echo.Context) error { return c.JSON(http.StatusOK, map[string]string{"items": items}) },
		middleware.Gzip())
	resp, err := http.Get(srv.URL + "/x") // the transport asks for gzip and decompresses
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got map[string]string
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || got["items"] != items || !resp.Uncompressed {
		t.Errorf("decoded %d bytes, uncompressed %v: %v", len(got["items"]), resp.Uncompressed, err)
	}
}
