package main

import (
	"context"
	"database/sql"
	"os"
	"time"

	"github.com/your-org/tenantkit/bench/internal/proccpu"
)

// cpuMeter reads the CPU time of the bench's Postgres backends (from
// /proc/<pid>/stat, so it works without pg_stat_statements, which needs
// shared_preload_libraries) and of the server process. Both sides of a ratio are
// measured the same way, so the figures compare even on a noisy machine.
type cpuMeter struct {
	owner  *sql.DB
	db     string
	server int // pid of the server process
	pooler int // pid of PgBouncer (-pgbouncer), counted with Postgres
}

// cpuSample is cumulative CPU time at one instant.
type cpuSample struct {
	backends map[int]time.Duration // per backend pid
	server   time.Duration
	pooler   time.Duration
	client   time.Duration // this process: the load generator
	machine  time.Duration // every CPU of the machine, busy time
}

// cpuSpent is the CPU time of one phase, by where it went.
type cpuSpent struct {
	pg, server, client, machine time.Duration
}

func (m cpuMeter) sample(ctx context.Context) cpuSample {
	s := cpuSample{backends: map[int]time.Duration{}}
	s.server, _ = proccpu.Process(m.server)
	s.client, _ = proccpu.Process(os.Getpid())
	s.machine, _ = proccpu.MachineBusy()
	if m.pooler != 0 {
		s.pooler, _ = proccpu.Process(m.pooler)
	}
	rows, err := m.owner.QueryContext(ctx, `SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, m.db)
	if err != nil {
		return s
	}
	defer rows.Close()
	for rows.Next() {
		var pid int
		if rows.Scan(&pid) == nil {
			if d, err := proccpu.Process(pid); err == nil { // a backend may just have exited
				s.backends[pid] = d
			}
		}
	}
	return s
}

// since returns the CPU spent between b and s. A backend that started in
// between counts from zero; one that ended is lost (the pools keep their
// connections, so few are).
func (s cpuSample) since(b cpuSample) cpuSpent {
	var pg time.Duration
	for pid, d := range s.backends {
		pg += d - b.backends[pid]
	}
	return cpuSpent{pg: pg + s.pooler - b.pooler, server: s.server - b.server, client: s.client - b.client,
		machine: s.machine - b.machine}
}
