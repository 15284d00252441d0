package tenancy

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// EnsureDatabase creates the database named in dsn when it does not exist,
// connecting to the maintenance database "postgres" with the same role.
func EnsureDatabase(ctx context.Context, dsn string) (created bool, err error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return false, fmt.Errorf("parse database url: %w", err)
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err == nil {
		return false, conn.Close(ctx)
	}
	if pgCode(err) != "3D000" { // invalid_catalog_name: the database is missing
		return false, fmt.Errorf("connect to %s: %w", cfg.Database, err)
	}
	name := cfg.Database
	cfg.Database = "postgres"
	conn, err = pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return false, fmt.Errorf("connect to maintenance database to create %s: %w", name, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE DATABASE `+QuoteIdent(name)); err != nil && pgCode(err) != "42P04" {
		return false, fmt.Errorf("create database %s: %w", name, err)
	}
	return true, nil
}
