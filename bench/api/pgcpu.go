package main

import (
	"context"
	"database/sql"
	"os"
	"strconv"
	"strings"
	"time"
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
}

const clockTick = 100 // USER_HZ on Linux

func (m cpuMeter) sample(ctx context.Context) cpuSample {
	s := cpuSample{backends: map[int]time.Duration{}}
	s.server, _ = procCPU(m.server)
	if m.pooler != 0 {
		s.pooler, _ = procCPU(m.pooler)
	}
	rows, err := m.owner.QueryContext(ctx, `SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, m.db)
	if err != nil {
		return s
	}
	defer rows.Close()
	for rows.Next() {
		var pid int
		if rows.Scan(&pid) == nil {
			if d, ok := procCPU(pid); ok {
				s.backends[pid] = d
			}
		}
	}
	return s
}

// since returns the Postgres and process CPU spent between b and s. A
// backend that started in between counts from zero; one that ended is lost
// (the pools keep their connections, so few are).
func (s cpuSample) since(b cpuSample) (pg, server time.Duration) {
	for pid, d := range s.backends {
		pg += d - b.backends[pid]
	}
	return pg + s.pooler - b.pooler, s.server - b.server
}

func procCPU(pid int) (time.Duration, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	// Fields after the command name (which may hold spaces) in parentheses.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, false
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return time.Duration(ut+st) * time.Second / clockTick, true
}
