package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Cluster is a real Postgres server the tests start themselves (initdb +
// pg_ctl) in a temporary directory on a free local port: a second "cell",
// so that cells in tests are different servers, not two databases on one.
type Cluster struct {
	URL  string // superuser postgres, database postgres
	Port int
	dir  string
	cred *syscall.Credential // run as postgres when we are root (initdb refuses root)
}

var (
	secondOnce sync.Once
	second     *Cluster
	secondErr  error
)

// SecondCluster returns the second Postgres server shared by the tests of
// this process, starting it on first use. Stop it from TestMain with
// StopClusters (Main does). Tests that stop a server use NewCluster instead.
func SecondCluster(t testing.TB) *Cluster {
	t.Helper()
	secondOnce.Do(func() { second, secondErr = startCluster() })
	if secondErr != nil {
		t.Fatalf("start a second Postgres cluster (initdb, pg_ctl; see .ci/test-programs): %v", secondErr)
	}
	return second
}

// NewCluster starts a Postgres server of the test's own, stopped and
// removed when the test ends.
func NewCluster(t testing.TB) *Cluster {
	t.Helper()
	c, err := startCluster()
	if err != nil {
		t.Fatalf("start a Postgres cluster (initdb, pg_ctl; see .ci/test-programs): %v", err)
	}
	t.Cleanup(func() { _ = c.remove() })
	return c
}

// Main runs the package's tests and then stops the clusters they started:
// func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }.
func Main(m *testing.M) int {
	code := m.Run()
	StopClusters()
	return code
}

// StopClusters stops and removes the shared second cluster, if started.
func StopClusters() {
	if second != nil {
		_ = second.remove()
	}
}

// StartCluster starts a throwaway cluster outside a test (bench/migrate);
// the caller removes it with Remove.
func StartCluster() (*Cluster, error) { return startCluster() }

// Remove stops the cluster and deletes its directory.
func (c *Cluster) Remove() error { return c.remove() }

func startCluster() (*Cluster, error) {
	dir, err := os.MkdirTemp("", "tk-cell-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{dir: dir}
	if os.Geteuid() == 0 {
		if c.cred, err = postgresUser(); err != nil {
			_ = os.RemoveAll(dir)
			return nil, err
		}
		if err := os.Chown(dir, int(c.cred.Uid), int(c.cred.Gid)); err != nil {
			_ = os.RemoveAll(dir)
			return nil, err
		}
	}
	data := filepath.Join(dir, "data")
	if out, err := c.run("initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %w: %s", err, out)
	}
	if c.Port, err = freePort(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	c.URL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", c.Port)
	if err := c.Start(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	if err := ensureRole(c.URL); err != nil {
		_ = c.remove()
		return nil, err
	}
	return c, nil
}

// Start starts the server (again) on its port.
func (c *Cluster) Start() error {
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200", c.Port, c.dir)
	if out, err := c.run("pg_ctl", "-D", filepath.Join(c.dir, "data"), "-l", filepath.Join(c.dir, "log"), "-o", opts, "-w", "-t", "60", "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(c.dir, "log"))
		return fmt.Errorf("pg_ctl start: %w: %s %s", err, out, log)
	}
	return nil
}

// Stop stops the server (fast shutdown: open connections are cut).
func (c *Cluster) Stop() error {
	if out, err := c.run("pg_ctl", "-D", filepath.Join(c.dir, "data"), "-m", "fast", "-w", "-t", "60", "stop"); err != nil {
		return fmt.Errorf("pg_ctl stop: %w: %s", err, out)
	}
	return nil
}

func (c *Cluster) remove() error {
	err := c.Stop()
	return errors.Join(err, os.RemoveAll(c.dir))
}

func (c *Cluster) run(name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = c.dir
	if c.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	}
	return cmd.CombinedOutput()
}

func postgresUser() (*syscall.Credential, error) {
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, a postgres user must exist to run initdb: %w", err)
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return nil, err
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return nil, err
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
