// Command scaffold writes a tenant-owned CRUD resource (make resource):
//
//	go run ./tools/scaffold -name invoice -fields "number:text amount_cents:bigint"
package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/your-org/tenantkit/internal/scaffold"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "scaffold:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("scaffold", flag.ContinueOnError)
	name := fs.String("name", "", "singular snake_case name, e.g. invoice")
	plural := fs.String("plural", "", "plural (default: name + s/es/ies)")
	fields := fs.String("fields", "", `columns as "column:type ...": text, bigint, integer, boolean, timestamptz, uuid`)
	root := fs.String("root", ".", "repository root")
	if err := fs.Parse(args); err != nil {
		return err
	}
	fl, err := scaffold.ParseFields(*fields)
	if err != nil {
		return err
	}
	res, err := scaffold.Generate(scaffold.Config{Root: *root, Name: *name, Plural: *plural, Fields: fl})
	for _, f := range res.Created {
		fmt.Fprintln(stdout, "created ", f)
	}
	for _, f := range res.Modified {
		fmt.Fprintln(stdout, "modified", f)
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, "next: go test ./internal/http/ ./internal/app/, then make run (migrate up applies the new migration)")
	return nil
}
