// Command migrate applies the kit's versioned migrations as the owner role:
// the control plane, the shared schema and every premium tenant schema.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/your-org/tenantkit/internal/config"
)

const usage = `usage: migrate <command> [flags]

Commands:
  up              migrate the control plane, public and every premium schema
  status          show current and latest version of every target
  down --to N     reverse tenant migrations in every target down to version N
  new NAME        write a numbered SQL migration (--control for the control plane)
  tenant ID       migrate one tenant's schema (id or identifier)
  demo            create the demo tenants and print ready-to-paste curl commands

Environment: MIGRATE_DATABASE_URL (owner role), DATABASE_URL (app role to create
and grant), and for demo JWT_SECRET. See CONTRACT.md for the full list.
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
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, usage)
		if len(args) == 0 {
			return exitCode(2)
		}
		return nil
	}
	cmd, rest := args[0], args[1:]
	if cmd == "new" {
		return runNew(rest, stdout)
	}
	cfg, err := config.Load(getenv, config.Migrate)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitCode(2)
	}
	m, err := newMigration(ctx, cfg, stdout, stderr)
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
	case "demo":
		return m.demo(ctx, getenv)
	}
	fmt.Fprintf(stderr, "unknown command %q\n\n%s", cmd, usage)
	return exitCode(2)
}

func parseFlags(name string, args []string, define func(*flag.FlagSet)) (*flag.FlagSet, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	define(fs)
	return fs, fs.Parse(args)
}
