package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/your-org/tenantkit/internal/tenancy"
)

type stats struct {
	requests, errors int64
	firstError       string // what the first failed request got
	elapsed          time.Duration
	latencies        []time.Duration
	cpu              cpuSpent
	rounds           []float64 // req/s of each round
}

func (s *stats) merge(o *stats) {
	s.requests += o.requests
	s.errors += o.errors
	s.elapsed += o.elapsed
	s.latencies = append(s.latencies, o.latencies...)
	s.cpu.pg += o.cpu.pg
	s.cpu.server += o.cpu.server
	s.cpu.client += o.cpu.client
	s.cpu.machine += o.cpu.machine
	s.rounds = append(s.rounds, o.rps())
}

func (s *stats) rps() float64 { return float64(s.requests) / s.elapsed.Seconds() }

func (s *stats) perReq(d time.Duration) float64 {
	if s.requests == 0 {
		return 0
	}
	return float64(d.Microseconds()) / float64(s.requests)
}

// other is the machine's CPU per request outside Postgres, the servers and
// the load generator: mostly the kernel's network stack.
func (s *stats) other() float64 {
	return s.perReq(s.cpu.machine) - s.perReq(s.cpu.pg) - s.perReq(s.cpu.server) - s.perReq(s.cpu.client)
}

func (s *stats) pct(p float64) float64 {
	if len(s.latencies) == 0 {
		return 0
	}
	sort.Slice(s.latencies, func(i, j int) bool { return s.latencies[i] < s.latencies[j] })
	i := int(float64(len(s.latencies)-1) * p / 100)
	return float64(s.latencies[i].Microseconds()) / 1000
}

type figure struct {
	RequestsPerSecond float64 `json:"requests_per_second"`
	P50ms             float64 `json:"p50_ms"`
	P99ms             float64 `json:"p99_ms"`
	Requests          int64   `json:"requests"`
	PostgresCPUus     float64 `json:"postgres_cpu_us_per_request"`
	ServerCPUus       float64 `json:"server_cpu_us_per_request"`
	ClientCPUus       float64 `json:"load_generator_cpu_us_per_request"`
	OtherCPUus        float64 `json:"other_cpu_us_per_request"`
	MachineCPUus      float64 `json:"machine_cpu_us_per_request"`
}

// ratioRow is one line of the ratio table: kit over baseline.
type ratioRow struct {
	name, kit, base string
	target          float64
}

var ratioRows = []ratioRow{
	{"RLS tenant vs bare Echo+GORM", "kit/rls", "bare/rls", 0.90},
	{"schema tenant vs bare", "kit/schema", "bare/schema", 0.90},
	{"alternating RLS+schema vs bare", "kit/mixed", "bare/mixed", 0.85},
	{"many tenants (random) vs bare", "kit/many", "bare/many", 0.80},
	{"RLS tenancy vs plumbing", "kit/rls", "plumbing/rls", 0.95},
	{"schema tenancy vs plumbing", "kit/schema", "plumbing/schema", 0.95},
	// -pgbouncer: through PgBouncer 1.18 (cache_describe) over direct
	// (cache_statement), then split into the exec mode and the pooler hop.
	{"PgBouncer vs direct, RLS", "pgbouncer/rls", "kit/rls", 0},
	{"PgBouncer vs direct, schema", "pgbouncer/schema", "kit/schema", 0},
	{"PgBouncer vs direct, mixed", "pgbouncer/mixed", "kit/mixed", 0},
	{"PgBouncer vs direct, many", "pgbouncer/many", "kit/many", 0},
	{"describe vs statement, mixed", "describe/mixed", "kit/mixed", 0},
	{"describe vs statement, many", "describe/many", "kit/many", 0},
	{"PgBouncer hop alone, mixed", "pgbouncer/mixed", "describe/mixed", 0},
}

func report(out io.Writer, o options, phases []phase, results map[string]*stats, bind bindCost, took time.Duration) error {
	figs := map[string]figure{}
	for name, s := range results {
		figs[name] = figure{RequestsPerSecond: s.rps(), P50ms: s.pct(50), P99ms: s.pct(99), Requests: s.requests,
			PostgresCPUus: s.perReq(s.cpu.pg), ServerCPUus: s.perReq(s.cpu.server),
			ClientCPUus: s.perReq(s.cpu.client), OtherCPUus: s.other(), MachineCPUus: s.perReq(s.cpu.machine)}
	}
	fmt.Fprintf(out, "\n%-17s %7s %7s %7s   %s\n", "phase (all rounds)", "req/s", "p50 ms", "p99 ms",
		"CPU µs/req: Postgres + server + load generator + kernel and the rest = machine")
	for _, p := range phases {
		f := figs[p.name]
		fmt.Fprintf(out, "%-17s %7.0f %7.2f %7.2f   %4.0f + %4.0f + %4.0f + %4.0f = %4.0f\n", p.name, f.RequestsPerSecond, f.P50ms, f.P99ms,
			f.PostgresCPUus, f.ServerCPUus, f.ClientCPUus, f.OtherCPUus, f.MachineCPUus)
	}
	ratios := map[string]float64{}
	fmt.Fprintf(out, "\nratios, kit / baseline: req/s is the median of the rounds' ratios; CPU/req is the baseline's\n"+
		"Postgres + server CPU per request over the kit's (what req/s converges to when CPU bound)\n")
	fmt.Fprintf(out, "%-32s %7s %15s %8s %10s\n", "ratio", "req/s", "rounds min–max", "target", "CPU/req")
	for _, r := range ratioRows {
		k, b := results[r.kit], results[r.base]
		if k == nil || b == nil {
			continue
		}
		// The median of the rounds' ratios: a round starved by other load on
		// the machine moves the total, not the median.
		var per []float64
		for i := range k.rounds {
			if k.rounds[i] > 0 && b.rounds[i] > 0 {
				per = append(per, k.rounds[i]/b.rounds[i])
			}
		}
		if len(per) == 0 {
			continue
		}
		sort.Float64s(per)
		all, lo, hi := per[len(per)/2], per[0], per[len(per)-1]
		// CPU per request (Postgres + server) of the baseline over the kit's:
		// what the throughput ratio converges to when the machine is CPU bound,
		// and steadier than req/s when other processes share the cores.
		cpu := (b.perReq(b.cpu.pg) + b.perReq(b.cpu.server)) / (k.perReq(k.cpu.pg) + k.perReq(k.cpu.server))
		ratios[r.kit+"/"+r.base] = all
		ratios[r.kit+"/"+r.base+"/cpu"] = cpu
		mark := "ok"
		if all < r.target {
			mark = "BELOW"
		}
		if r.target == 0 { // measured, no target
			fmt.Fprintf(out, "%-32s %6.3f× %7.3f–%.3f× %7s %9.3f×\n", r.name, all, lo, hi, "–", cpu)
			continue
		}
		fmt.Fprintf(out, "%-32s %6.3f× %7.3f–%.3f× %6.2f× %9.3f×  %s\n", r.name, all, lo, hi, r.target, cpu, mark)
	}
	fmt.Fprintf(out, "\nbinding statement pipelined with SELECT 1, median round trip (RLS tenants now also fix search_path):\n"+
		"  tenant only %.1f µs, tenant + search_path %.1f µs: %+.1f µs per statement\n",
		bind.tenantOnly, bind.withPath, bind.withPath-bind.tenantOnly)
	fmt.Fprintf(out, "\nHow to read: the servers run in a child process and this process generates the load, so\n"+
		"both sides are measured alike and neither pays for the client; Postgres, the servers and the\n"+
		"client share the machine's cores, so absolute req/s move with other load but ratios of\n"+
		"alternating rounds in one run hold. A ratio measured with a load generator on another machine\n"+
		"is lower when the database is remote (round trips weigh more) and higher when Postgres is the\n"+
		"bottleneck. (total %s; phases of %s × %d rounds, %d clients)\n",
		took.Round(time.Second), o.duration, o.rounds, o.concurrency)

	doc := map[string]any{
		"when": time.Now().UTC().Format(time.RFC3339), "concurrency": o.concurrency, "rounds": o.rounds,
		"phase_seconds": o.duration.Seconds(), "rows": o.rows, "noise_tenants": o.noise, "many_tenants": 2 * o.many,
		"figures": figs, "ratios": ratios,
		"binding_us": map[string]float64{"tenant_only": bind.tenantOnly, "tenant_and_search_path": bind.withPath},
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	path := filepath.Join(o.out, "api-"+time.Now().UTC().Format("20060102T150405Z")+".json")
	b, _ := json.MarshalIndent(doc, "", "  ")
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Fprintln(out, "figures written to", path)
	return nil
}

// bindCost is the round-trip time of a binding statement pipelined with
// SELECT 1, in µs: what fixing search_path for RLS tenants adds.
type bindCost struct{ tenantOnly, withPath float64 }

func bindingCost(ctx context.Context, appURL string, t *tenancy.Tenant) (bindCost, error) {
	conn, err := pgx.Connect(ctx, appURL)
	if err != nil {
		return bindCost{}, err
	}
	defer conn.Close(ctx)
	forms := []struct {
		sql  string
		args []any
	}{
		{"select set_config('app.current_tenant', $1, true)", []any{t.ID.String()}},
		{"select set_config('app.current_tenant', $1, true), set_config('search_path', $2, true)", []any{t.ID.String(), `"public"`}},
	}
	// Short alternating chunks, median per form: steady on a busy machine.
	var chunks [2][]float64
	const n = 50
	for round := 0; round < 21; round++ {
		for i, f := range forms {
			start := time.Now()
			for j := 0; j < n; j++ {
				b := &pgx.Batch{}
				b.Queue(f.sql, f.args...)
				b.Queue("select 1")
				if err := conn.SendBatch(ctx, b).Close(); err != nil {
					return bindCost{}, err
				}
			}
			if round > 0 { // the first round warms up
				chunks[i] = append(chunks[i], float64(time.Since(start).Microseconds())/n)
			}
		}
	}
	median := func(xs []float64) float64 { sort.Float64s(xs); return xs[len(xs)/2] }
	return bindCost{tenantOnly: median(chunks[0]), withPath: median(chunks[1])}, nil
}
