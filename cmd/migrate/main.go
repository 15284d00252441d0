// Command migrate applies the kit's versioned migrations as the owner role:
// the control plane, the shared schema and every premium tenant schema.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"syscall"

	"github.com/your-org/tenantkit/internal/config"
	"github.com/your-org/tenantkit/migrations"
)

const usage = `usage: migrate <command> [flags]

Commands:
  up              migrate the control plane, then public, then every premium
                  schema that is behind, guarding every tenant table after each
                  migration (refusing what cannot be guarded), then check the
                  catalog; exit 1 if any target failed
      --concurrency N   premium schemas at once (default: DB_POOL_SIZE, at most 8)
      --json            machine-readable report on stdout
      --wait D          wait this long for a running migrate (default 15m; 0: fail at once)
      --all             run every schema through goose, ignoring the version
                        bookkeeping (slow; repairs it)
  status          current and latest version of every target; flags drift and
                  every unguarded tenant relation (table, view, function)
      --json, --check (exit 1 when anything is behind, ahead, missing or stale,
                  or any relation is unguarded)
  down --to N     reverse tenant migrations above N in every premium schema,
                  then public (the control plane is left alone)
      --concurrency N, --json, --wait D
  new NAME        write a numbered SQL migration with Up and Down sections
      --control         into migrations/control (default migrations/tenant)
      --dir DIR         migrations directory (default: ./migrations, searched upwards)
  tenant ID       migrate one premium tenant's schema (id or identifier)
      --json, --wait D
  demo            create the demo tenants and print ready-to-paste curl commands

Progress goes to stderr: a counter with ETA on a terminal, plain lines otherwise.

Environment: MIGRATE_DATABASE_URL (owner role), DATABASE_URL (app role to create
and grant), DB_POOL_SIZE (default concurrency), and for demo JWT_SECRET. With
cells, MIGRATE_TENANCY_CELLS (and TENANCY_CELLS for each cell's app role): every
command runs over every cell, its premium schemas and its tenant databases
(docs/scaling.md, "Cells").
See docs/contract.md for the full list.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	var exit exitCode
	switch {
	case err == nil:
	case errors.As(err, &exit):
		os.Exit(int(exit))
	default:
		fmt.Fprintln(os.Stderr, "migrate:", err)
		os.Exit(1)
	}
}

// exitCode ends the process with a status after output was already written.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return cli{getenv: getenv, stdout: stdout, stderr: stderr,
		control: migrations.Control(), tenant: migrations.Tenant()}.run(ctx, args)
}

// cli is one invocation; tests give it their own migration sets.
type cli struct {
	getenv          func(string) string
	stdout, stderr  io.Writer
	control, tenant fs.FS
}

func (c cli) run(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(c.stdout, usage)
		if len(args) == 0 {
			return exitCode(2)
		}
		return nil
	}
	cmd, rest := args[0], args[1:]
	if cmd == "new" {
		return runNew(rest, c.stdout, c.stderr)
	}
	switch cmd {
	case "up", "status", "down", "tenant", "demo":
	default:
		fmt.Fprintf(c.stderr, "unknown command %q\n\n%s", cmd, usage)
		return exitCode(2)
	}
	cfg, err := config.Load(c.getenv, config.Migrate)
	if err != nil {
		fmt.Fprintln(c.stderr, err)
		return exitCode(2)
	}
	m, err := newMigration(ctx, cfg, c)
	if err != nil {
		return err
	}
	defer m.close()
	switch cmd {
	case "up":
		return m.up(ctx, rest)
	case "status":
		return m.status(ctx, rest)
	case "down":
		return m.down(ctx, rest)
	case "tenant":
		return m.tenant(ctx, rest)
	default:
		return m.demo(ctx, c.getenv)
	}
}

// parseFlags parses flags before and after positional arguments (`tenant
// acme --json`), which the flag package alone stops at; the positional
// arguments are left in a final parse so fs.Args() returns them.
func parseFlags(name string, args []string, out io.Writer, define func(*flag.FlagSet)) (*flag.FlagSet, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(out)
	define(fs)
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return fs, exitCode(2)
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
	_ = fs.Parse(append([]string{"--"}, positional...))
	return fs, nil
}
