package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// healthcheck GETs the api's /health (or the URL given) and fails unless it
// answers 2xx: the runtime image is distroless, with no curl to do it.
func healthcheck(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) > 1 {
		return fmt.Errorf("healthcheck takes at most one URL, got %d arguments", len(args))
	}
	url := ""
	if len(args) == 1 {
		url = args[0]
	} else {
		addr := getenv("HTTP_ADDR")
		if addr == "" {
			addr = ":8080"
		}
		_, port, err := net.SplitHostPort(addr)
		if err != nil {
			return fmt.Errorf("healthcheck: HTTP_ADDR %q: %w", addr, err)
		}
		url = "http://" + net.JoinHostPort("127.0.0.1", port) + "/health"
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("healthcheck: %s answered %d", url, resp.StatusCode)
	}
	fmt.Fprintf(stdout, "healthy: %s answered %d\n", url, resp.StatusCode)
	return nil
}
