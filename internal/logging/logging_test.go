package logging_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/your-org/tenantkit/internal/logging"
)

func lines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

func TestWithAttrs_EveryLineOfTheContextCarriesThem(t *testing.T) {
	var buf bytes.Buffer
	base := slog.New(slog.NewJSONHandler(&buf, nil))
	ctx := logging.WithAttrs(context.Background(), base, slog.String("request_id", "r1"))
	ctx = logging.WithAttrs(ctx, nil, slog.String("tenant_id", "t1"))

	logging.From(ctx, nil).Info("from")
	logging.Log(ctx, nil, slog.LevelInfo, "log", slog.Int("status", 200))

	for _, l := range lines(t, &buf) {
		if l["request_id"] != "r1" || l["tenant_id"] != "t1" {
			t.Errorf("line %v: want request_id r1 and tenant_id t1", l)
		}
	}
	if got := lines(t, &buf)[1]["status"]; got != float64(200) {
		t.Errorf("status = %v, want 200", got)
	}
}

// Two requests branching from one context must not see each other's
// attributes (the slice behind them is shared).
func TestWithAttrs_SiblingContextsDoNotShareAttributes(t *testing.T) {
	var buf bytes.Buffer
	base := slog.New(slog.NewJSONHandler(&buf, nil))
	// Added one at a time, so the slice has room to spare for an append.
	parent := logging.WithAttrs(context.Background(), base, slog.String("request_id", "r1"))
	parent = logging.WithAttrs(parent, nil, slog.String("a", "1"))
	parent = logging.WithAttrs(parent, nil, slog.String("b", "2"))
	one := logging.WithAttrs(parent, nil, slog.String("tenant_id", "one"))
	two := logging.WithAttrs(parent, nil, slog.String("tenant_id", "two"))
	logging.Log(one, nil, slog.LevelInfo, "one")
	logging.Log(two, nil, slog.LevelInfo, "two")
	logging.Log(parent, nil, slog.LevelInfo, "parent")

	ls := lines(t, &buf)
	if ls[0]["tenant_id"] != "one" || ls[1]["tenant_id"] != "two" {
		t.Errorf("tenant ids %v and %v, want one and two", ls[0]["tenant_id"], ls[1]["tenant_id"])
	}
	if _, ok := ls[2]["tenant_id"]; ok {
		t.Errorf("parent line carries tenant_id %v", ls[2]["tenant_id"])
	}
}

func TestLog_BelowTheLevelWritesNothing(t *testing.T) {
	var buf bytes.Buffer
	base := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn}))
	logging.Log(logging.With(context.Background(), base), nil, slog.LevelInfo, "quiet")
	if buf.Len() != 0 {
		t.Errorf("wrote %q below the level", buf.String())
	}
}

func TestFrom_WithoutALoggerReturnsTheFallback(t *testing.T) {
	fb := slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil))
	if got := logging.From(context.Background(), fb); got != fb {
		t.Error("From did not return the fallback")
	}
}
