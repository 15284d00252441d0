// Package citusdb creates a database on a Citus cluster the way the tests
// and benchmarks need it: Citus 12.1 does not propagate CREATE DATABASE, so
// the database, the extension and the worker registrations are made on each
// node by hand (docs/scaling.md, Citus).
package citusdb

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"strconv"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
)

// Node is one worker as the coordinator registered it.
type Node struct {
	Host string
	Port int
}

// Workers returns the workers registered in the database of coordinatorURL
// (a superuser), or an error saying why that database is no Citus coordinator.
func Workers(ctx context.Context, coordinatorURL string) ([]Node, error) {
	db, err := sql.Open("pgx", coordinatorURL)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	var v string
	if err := db.QueryRowContext(ctx, `SELECT coalesce((SELECT extversion FROM pg_extension WHERE extname = 'citus'), '')`).Scan(&v); err != nil {
		return nil, err
	}
	if v == "" {
		return nil, fmt.Errorf("%s has no citus extension: it is no Citus coordinator (make test-citus starts one)", Redact(coordinatorURL))
	}
	rows, err := db.QueryContext(ctx, `SELECT nodename, nodeport FROM pg_dist_node WHERE groupid <> 0 AND noderole = 'primary' ORDER BY nodeid`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Node
	for rows.Next() {
		var n Node
		if err := rows.Scan(&n.Host, &n.Port); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s has no worker registered (citus_add_node)", Redact(coordinatorURL))
	}
	return out, nil
}

// Create creates database name on the coordinator and every worker, with the
// citus extension everywhere, the coordinator and workers registered, and
// citus.enable_schema_based_sharding on (before its first migrate up, as
// Citus documents it). Registrations sync cluster-wide objects (roles) to
// the workers: callers serialise concurrent Creates.
func Create(ctx context.Context, coordinatorURL, name string, workers []Node) error {
	nodes := []string{coordinatorURL}
	for _, w := range workers {
		nodes = append(nodes, OnNode(coordinatorURL, w))
	}
	for _, n := range nodes {
		if err := exec(ctx, n, `CREATE DATABASE `+name); err != nil {
			return fmt.Errorf("create database on %s: %w", Redact(n), err)
		}
		if err := exec(ctx, WithDatabase(n, name), `CREATE EXTENSION citus`); err != nil {
			return fmt.Errorf("create extension on %s: %w", Redact(n), err)
		}
	}
	cu, err := url.Parse(coordinatorURL)
	if err != nil {
		return err
	}
	setup := fmt.Sprintf(`SELECT citus_set_coordinator_host(%s, %s)`, literal(cu.Hostname()), cu.Port())
	for _, w := range workers {
		setup += fmt.Sprintf(`; SELECT citus_add_node(%s, %d)`, literal(w.Host), w.Port)
	}
	setup += `; ALTER DATABASE ` + name + ` SET citus.enable_schema_based_sharding = on`
	if err := exec(ctx, WithDatabase(coordinatorURL, name), setup); err != nil {
		return fmt.Errorf("register workers: %w", err)
	}
	return nil
}

// Drop drops database name on the coordinator and every worker.
func Drop(ctx context.Context, coordinatorURL, name string, workers []Node) {
	nodes := []string{coordinatorURL}
	for _, w := range workers {
		nodes = append(nodes, OnNode(coordinatorURL, w))
	}
	for _, n := range nodes {
		_ = exec(ctx, n, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`)
	}
}

// OnNode is u pointing at worker n (same user, database and options).
func OnNode(u string, n Node) string {
	p, err := url.Parse(u)
	if err != nil {
		return u
	}
	p.Host = n.Host + ":" + strconv.Itoa(n.Port)
	return p.String()
}

// WithDatabase is u pointing at database name.
func WithDatabase(u, name string) string {
	p, err := url.Parse(u)
	if err != nil {
		return u
	}
	p.Path = "/" + name
	return p.String()
}

// Redact hides a password in u.
func Redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "the database URL"
	}
	return p.Redacted()
}

func literal(s string) string {
	out := "'"
	for _, r := range s {
		if r == '\'' {
			out += "'"
		}
		out += string(r)
	}
	return out + "'"
}

func exec(ctx context.Context, dsn, stmt string) error {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.ExecContext(ctx, stmt)
	return err
}
