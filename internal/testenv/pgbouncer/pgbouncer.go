// Package pgbouncer runs a private PgBouncer in transaction pooling mode in
// front of the test cluster, so that tests exercise the kit the way a
// deployment behind a transaction pooler does: consecutive transactions of
// one client connection may run on different server connections, and one
// server connection serves many clients in turn.
package pgbouncer

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Options configure Start.
type Options struct {
	// Upstream is any DSN of the Postgres server to pool (only its host and
	// port are used; every database is pooled under its own name).
	Upstream string
	// AuthUser is a superuser of the upstream that pgbouncer looks other
	// roles up with (auth_query), so that any role may log in; with trust
	// nobody is asked for a password.
	AuthUser string
	// PoolSize is default_pool_size: server connections per database and
	// user. Keep it below the clients' connections so that they share.
	PoolSize int
}

// Server is one pgbouncer process on a free loopback port.
type Server struct {
	Port   int
	Dir    string // its config and log
	cmd    *exec.Cmd
	exited chan error // Wait's result, once the process ends
}

// Start launches pgbouncer (pool_mode=transaction) and stops it when the
// test ends. The test fails (never skips) when pgbouncer is missing.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	s, err := Run(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// Run launches pgbouncer (pool_mode=transaction); the caller stops it (the
// benchmarks use it outside tests).
func Run(o Options) (*Server, error) {
	bin, err := exec.LookPath("pgbouncer")
	if err != nil {
		// Debian installs it in /usr/sbin, which a non-root PATH may lack.
		if _, serr := os.Stat("/usr/sbin/pgbouncer"); serr != nil {
			return nil, fmt.Errorf("pgbouncer is needed (apt-get install pgbouncer, or bash .ci/install.sh): %w", err)
		}
		bin = "/usr/sbin/pgbouncer"
	}
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		return nil, fmt.Errorf("pgbouncer --version: %w", err)
	}
	// Debian 12 ships 1.18; newer ones (Ubuntu's on CI) can keep prepared
	// statements, which this harness turns off to test what 1.18 does.
	extra := ""
	if version(string(out)) >= 121 {
		extra = "max_prepared_statements = 0\n"
	}
	up, err := url.Parse(o.Upstream)
	if err != nil {
		return nil, fmt.Errorf("pgbouncer upstream: %w", err)
	}
	host, port := up.Hostname(), up.Port()
	if host == "" {
		host = "127.0.0.1"
	}
	if port == "" {
		port = "5432"
	}
	if o.PoolSize <= 0 {
		o.PoolSize = 2
	}
	if o.AuthUser == "" {
		o.AuthUser = up.User.Username()
	}
	// Not t.TempDir: as root, pgbouncer runs as postgres, who may not
	// enter a test's private temporary tree.
	dir, err := os.MkdirTemp("", "tk-pgbouncer-")
	if err != nil {
		return nil, err
	}
	s := &Server{Dir: dir}
	ok := false
	defer func() {
		if !ok {
			s.Stop()
		}
	}()
	if s.Port, err = freePort(); err != nil {
		return nil, err
	}
	ini := fmt.Sprintf(`[databases]
* = host=%s port=%s

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
auth_type = trust
auth_file = %s
auth_user = %s
pool_mode = transaction
default_pool_size = %d
min_pool_size = 0
reserve_pool_size = 0
max_client_conn = 1000
server_lifetime = 3600
server_idle_timeout = 60
ignore_startup_parameters = extra_float_digits
log_connections = 0
log_disconnections = 0
logfile = %s
%s`, host, port, s.Port, filepath.Join(dir, "users.txt"), o.AuthUser, o.PoolSize, filepath.Join(dir, "pgbouncer.log"), extra)
	files := map[string]string{"users.txt": fmt.Sprintf("%q \"\"\n", o.AuthUser), "pgbouncer.ini": ini}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			return nil, err
		}
	}
	s.cmd = exec.Command(bin, filepath.Join(dir, "pgbouncer.ini"))
	// Killed with the process that started it, even one that crashed
	// before its cleanup ran.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if os.Geteuid() == 0 {
		// pgbouncer refuses to run as root: start it as the postgres user,
		// which must be able to read the config and write the log.
		pg, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("pgbouncer will not run as root and there is no postgres user: %w", err)
		}
		uid, _ := strconv.Atoi(pg.Uid)
		gid, _ := strconv.Atoi(pg.Gid)
		for _, f := range []string{dir, filepath.Join(dir, "users.txt"), filepath.Join(dir, "pgbouncer.ini")} {
			if err := os.Chown(f, uid, gid); err != nil {
				return nil, err
			}
		}
		s.cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	var stderr strings.Builder
	s.cmd.Stdout, s.cmd.Stderr = &stderr, &stderr
	if err := s.cmd.Start(); err != nil {
		s.cmd = nil
		return nil, fmt.Errorf("start pgbouncer: %w", err)
	}
	s.exited = make(chan error, 1)
	go func() { s.exited <- s.cmd.Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.addr(), 200*time.Millisecond)
		if err == nil {
			c.Close()
			ok = true
			return s, nil
		}
		select {
		case werr := <-s.exited:
			s.exited <- werr
			log, _ := os.ReadFile(filepath.Join(dir, "pgbouncer.log"))
			return nil, fmt.Errorf("pgbouncer exited (%v):\n%s%s", werr, stderr.String(), log)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "pgbouncer.log"))
			return nil, fmt.Errorf("pgbouncer on %s does not answer: %v\n%s%s", s.addr(), err, stderr.String(), log)
		}
	}
}

// PID is the pgbouncer process's (the benchmarks meter its CPU).
func (s *Server) PID() int { return s.cmd.Process.Pid }

func (s *Server) addr() string { return "127.0.0.1:" + strconv.Itoa(s.Port) }

// URL rewrites dsn (a postgres:// URL) to reach the same database and user
// through this pgbouncer, adding query parameters (e.g.
// default_query_exec_mode=exec).
func (s *Server) URL(dsn string, params map[string]string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		panic(fmt.Sprintf("pgbouncer: not a URL: %v", err))
	}
	u.Host = s.addr()
	q := u.Query()
	for k, v := range params {
		q.Set(k, v)
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// Stop kills pgbouncer and removes its directory.
func (s *Server) Stop() {
	if s.cmd != nil {
		_ = s.cmd.Process.Kill()
		<-s.exited
		s.cmd = nil
	}
	os.RemoveAll(s.Dir)
}

// version reads "PgBouncer 1.18.0" as 118.
func version(out string) int {
	var major, minor int
	if _, err := fmt.Sscanf(strings.TrimSpace(out), "PgBouncer %d.%d", &major, &minor); err != nil {
		return 0
	}
	return major*100 + minor
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
