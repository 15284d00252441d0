// Package migrations embeds the kit's versioned SQL.
//
//   - control/: the control plane, schema tenancy (tables are schema-qualified).
//   - tenant/: the domain tables, applied to public (standard tenants under RLS)
//     and to every premium tenant schema; unqualified, run with search_path set.
package migrations

import (
	"embed"
	"io/fs"
)

//go:embed control/*.sql tenant/*.sql
var all embed.FS

// Control returns the control-plane migrations.
func Control() fs.FS { return sub("control") }

// Tenant returns the domain migrations for public and every tenant schema.
func Tenant() fs.FS { return sub("tenant") }

func sub(dir string) fs.FS {
	f, err := fs.Sub(all, dir)
	if err != nil {
		panic(err) // the directory is embedded at compile time
	}
	return f
}
