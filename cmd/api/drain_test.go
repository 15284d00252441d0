package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"testing"
)

// SIGTERM while a request is in flight: the server stops accepting, lets the
// request finish with its 200 and full body, then run returns nil.
func TestServe_DrainsAnInFlightRequestOnShutdown(t *testing.T) {
	t.Parallel()
	entered, release := make(chan struct{}), make(chan struct{})
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/slow" {
			return // the probes below
		}
		close(entered)
		<-release
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "finished")
	})
	ctx, cancel := context.WithCancel(context.Background()) // cancel is what main's SIGTERM does
	defer cancel()
	ready := make(chan string, 1)
	served := make(chan error, 1)
	go func() {
		served <- serve(ctx, slog.New(slog.NewTextHandler(io.Discard, nil)), "127.0.0.1:0", slow, ready)
	}()
	addr := <-ready

	type result struct {
		status int
		body   string
		err    error
	}
	got := make(chan result, 1)
	go func() {
		res, err := http.Get("http://" + addr + "/slow")
		if err != nil {
			got <- result{err: err}
			return
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		got <- result{res.StatusCode, string(b), err}
	}()
	<-entered
	cancel()
	// The shutdown has begun when the listener refuses new connections.
	for {
		res, err := http.Get("http://" + addr + "/probe")
		if err != nil {
			break
		}
		res.Body.Close()
	}
	close(release)
	r := <-got
	if r.err != nil || r.status != http.StatusOK || r.body != "finished" {
		t.Errorf("in-flight request: status %d body %q err %v, want 200 finished", r.status, r.body, r.err)
	}
	if err := <-served; err != nil {
		t.Errorf("serve after drain: %v, want nil", err)
	}
}
