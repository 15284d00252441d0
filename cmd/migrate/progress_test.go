package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/your-org/tenantkit/internal/tenancy"
)

// fakeClock advances by step on every reading.
func fakeClock(step time.Duration) func() time.Time {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	return func() time.Time { now = now.Add(step); return now }
}

func TestProgress_PlainLinesWhenNotATerminal(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	p := &progress{w: &buf, now: fakeClock(time.Second)}
	p.Begin("premium schemas", 3)
	p.Done(tenancy.TargetResult{Target: tenancy.Target{Schema: "tenant_a"}, Outcome: tenancy.Migrated, From: 2, To: 3})
	p.Done(tenancy.TargetResult{Target: tenancy.Target{Schema: "tenant_b"}, Outcome: tenancy.Failed, Err: errors.New("ERROR: boom\n  detail")})
	p.Done(tenancy.TargetResult{Target: tenancy.Target{Schema: "tenant_c"}, Outcome: tenancy.Migrated, From: 2, To: 3})
	p.finish()
	out := buf.String()
	for _, want := range []string{
		"premium schemas: 3 to migrate\n",
		"premium schemas [1/3] tenant_a: migrated 2 → 3 eta ",
		"premium schemas [2/3] tenant_b: FAILED: ERROR: boom detail",
		"premium schemas [3/3] tenant_c: migrated 2 → 3\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "\r") || strings.Contains(out, "\033") {
		t.Errorf("plain output contains terminal control characters: %q", out)
	}
}

func TestProgress_RedrawnCounterWithETAOnATerminal(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	p := &progress{w: &buf, tty: true, now: fakeClock(time.Second)}
	p.Begin("premium schemas", 4)
	p.Done(tenancy.TargetResult{Target: tenancy.Target{Schema: "tenant_a"}, Outcome: tenancy.Migrated})
	p.Done(tenancy.TargetResult{Target: tenancy.Target{Schema: "tenant_b"}, Outcome: tenancy.Failed, Err: errors.New("boom")})
	p.finish()
	out := buf.String()
	if !strings.Contains(out, "\r\033[K") || !strings.Contains(out, "1/4") || !strings.Contains(out, "ETA ") {
		t.Errorf("terminal output has no redrawn counter with ETA: %q", out)
	}
	if !strings.Contains(out, "tenant_b: FAILED: boom\n") || !strings.Contains(out, "1 failed") {
		t.Errorf("a failure is not kept on screen and counted: %q", out)
	}
	if !strings.HasSuffix(out, "\n") {
		t.Errorf("finish leaves the cursor on the progress line: %q", out)
	}
}
