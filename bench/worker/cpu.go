package main

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/your-org/tenantkit/bench/internal/proccpu"
)

// cpuMeter sums the CPU time of everything a task touches: this process,
// the Postgres backends connected to the bench database and the private
// redis-server (when the bench started one).
type cpuMeter struct {
	db       *sql.DB // maintenance connection; not in the bench database
	dbName   string
	redisPID int
}

func (m *cpuMeter) countsRedis() bool { return m.redisPID != 0 }

type cpuSample struct {
	self     time.Duration
	backends map[int]time.Duration
	redis    time.Duration
}

func (m *cpuMeter) sample(ctx context.Context) (cpuSample, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return cpuSample{}, err
	}
	s := cpuSample{self: time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), backends: map[int]time.Duration{}}
	rows, err := m.db.QueryContext(ctx, `SELECT pid FROM pg_stat_activity WHERE datname = $1`, m.dbName)
	if err != nil {
		return s, fmt.Errorf("list bench backends: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var pid int
		if err := rows.Scan(&pid); err != nil {
			return s, err
		}
		if t, err := proccpu.Process(pid); err == nil { // a backend may just have exited
			s.backends[pid] = t
		}
	}
	if m.redisPID != 0 {
		if s.redis, err = proccpu.Process(m.redisPID); err != nil {
			return s, err
		}
	}
	return s, rows.Err()
}

// since is the CPU used between b and s; a backend that appeared in between
// is charged all of its time.
func (s cpuSample) since(b cpuSample) time.Duration {
	d := s.self - b.self + s.redis - b.redis
	for pid, t := range s.backends {
		d += t - b.backends[pid]
	}
	return d
}

// startRedis runs a private redis-server, so that its CPU is the bench's
// alone and no shared queue is touched.
func startRedis(ctx context.Context) (url string, pid int, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", 0, nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	dir, err := os.MkdirTemp("", "bench-worker-redis-")
	if err != nil {
		return "", 0, nil, err
	}
	cmd := exec.Command("redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", dir)
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return "", 0, nil, fmt.Errorf("start redis-server (or pass -redis URL): %w", err)
	}
	stop = func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		os.RemoveAll(dir)
	}
	url = fmt.Sprintf("redis://127.0.0.1:%d/0", port)
	c := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port)})
	defer c.Close()
	for deadline := time.Now().Add(10 * time.Second); c.Ping(ctx).Err() != nil; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			stop()
			return "", 0, nil, fmt.Errorf("redis-server on port %d does not answer", port)
		}
	}
	return url, cmd.Process.Pid, stop, nil
}
