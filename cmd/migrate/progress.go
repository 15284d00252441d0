package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/your-org/tenantkit/internal/tenancy"
)

// progress shows a run as it goes, so migrating 1,000 tenants is never
// silent: on a terminal one redrawn line (bar, count, rate, ETA, failures),
// elsewhere (CI logs) one plain line per finished target.
type progress struct {
	w     io.Writer
	tty   bool
	now   func() time.Time
	phase string
	total int
	done  int
	fails int
	start time.Time
	drawn time.Time
	open  bool // a redrawn line is on screen
}

func newProgress(w io.Writer) *progress {
	return &progress{w: w, tty: isTerminal(w) && os.Getenv("TERM") != "dumb", now: time.Now}
}

func (p *progress) Begin(phase string, total int) {
	p.finish()
	p.phase, p.total, p.done, p.fails, p.start = phase, total, 0, 0, p.now()
	if total > 1 && !p.tty {
		fmt.Fprintf(p.w, "%s: %d to migrate\n", phase, total)
	}
}

func (p *progress) Done(r tenancy.TargetResult) {
	p.done++
	if r.Outcome == tenancy.Failed {
		p.fails++
	}
	if !p.tty {
		fmt.Fprintf(p.w, "%s [%d/%d] %s: %s%s\n", p.phase, p.done, p.total, r.Schema, describe(r), p.eta(" eta "))
		return
	}
	if r.Outcome == tenancy.Failed { // failures stay on screen above the bar
		p.clear()
		fmt.Fprintf(p.w, "%s: %s\n", r.Schema, describe(r))
	}
	if now := p.now(); now.Sub(p.drawn) >= 100*time.Millisecond || p.done == p.total || r.Outcome == tenancy.Failed {
		p.drawn = now
		p.draw()
	}
}

func (p *progress) draw() {
	const width = 24
	filled := width
	if p.total > 0 {
		filled = width * p.done / p.total
	}
	line := fmt.Sprintf("%s [%s%s] %d/%d", p.phase, strings.Repeat("#", filled), strings.Repeat(".", width-filled), p.done, p.total)
	if el := p.now().Sub(p.start).Seconds(); el > 0 {
		line += fmt.Sprintf("  %.0f/s", float64(p.done)/el)
	}
	line += p.eta("  ETA ")
	if p.fails > 0 {
		line += fmt.Sprintf("  %d failed", p.fails)
	}
	fmt.Fprint(p.w, "\r\033[K"+line)
	p.open = true
}

// eta extrapolates the time per finished target to the rest.
func (p *progress) eta(prefix string) string {
	if p.done == 0 || p.done >= p.total {
		return ""
	}
	per := p.now().Sub(p.start) / time.Duration(p.done)
	return prefix + roundDuration(per*time.Duration(p.total-p.done)).String()
}

func (p *progress) clear() {
	if p.open {
		fmt.Fprint(p.w, "\r\033[K")
		p.open = false
	}
}

// finish ends a redrawn line so what follows starts on its own.
func (p *progress) finish() {
	if p.open {
		fmt.Fprintln(p.w)
		p.open = false
	}
}

func roundDuration(d time.Duration) time.Duration {
	if d >= 10*time.Second {
		return d.Round(time.Second)
	}
	return d.Round(100 * time.Millisecond)
}

// describe is one target's outcome in a few words.
func describe(r tenancy.TargetResult) string {
	var s string
	switch r.Outcome {
	case tenancy.Migrated:
		verb := "migrated"
		if r.To < r.From {
			verb = "reverted"
		}
		s = fmt.Sprintf("%s %s → %s", verb, version(r.From), version(r.To))
	case tenancy.Current:
		s = "already current at " + version(r.To)
	case tenancy.Failed:
		s = "FAILED: " + errText(r.Err)
	case tenancy.Skipped:
		s = "skipped"
	}
	if r.Note != "" {
		s += " (" + r.Note + ")"
	}
	if r.Duration > 0 {
		s += fmt.Sprintf(" in %s", r.Duration.Round(time.Millisecond))
	}
	return s
}

func version(v int64) string {
	if v < 0 {
		return "?"
	}
	return fmt.Sprint(v)
}

func errText(err error) string {
	if err == nil {
		return "unknown error"
	}
	return strings.Join(strings.Fields(err.Error()), " ") // one line, whatever the SQL error looked like
}
