package tenancy

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
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

// IsUnavailable reports whether err means the database could not be reached
// or is shutting down, rather than that the statement was wrong: callers
// answer 503 unavailable (and retry tasks) instead of 500.
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	var (
		connErr *pgconn.ConnectError
		netErr  net.Error
	)
	if errors.As(err, &connErr) || errors.As(err, &netErr) || errors.Is(err, driver.ErrBadConn) || errors.Is(err, ErrCellUnavailable) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || pgconn.Timeout(err) {
		return true
	}
	switch code := pgCode(err); {
	case strings.HasPrefix(code, "08"), // connection exception
		code == "57P01", code == "57P02", code == "57P03", // admin/crash shutdown, cannot connect now
		code == "53300", // too many connections
		code == "TK503": // the tenant is moving between tiers (tenancy.move_fence)
		return true
	}
	return false
}

// IsTenantGone reports whether err is a write refused because its tenant was
// deleted meanwhile: a violation of a <table>_tenant_fk constraint
// (migrations/tenant/00003_tenant_fk.sql). A request that resolved its
// tenant just before the deletion gets tenant_not_found, not a 500.
// A schema tenant's statement whose schema was dropped meanwhile is one too
// (TenantGoneError, from the binding driver).
func IsTenantGone(err error) bool {
	var pe *pgconn.PgError
	var gone *TenantGoneError
	return errors.As(err, &gone) ||
		errors.As(err, &pe) && pe.Code == "23503" && strings.HasSuffix(pe.ConstraintName, "_tenant_fk")
}

// TenantGoneError is a statement that failed because its tenant's schema no
// longer exists: the tenant was deleted while the request was in flight.
type TenantGoneError struct{ Err error }

func (e *TenantGoneError) Error() string { return "tenant deleted meanwhile: " + e.Err.Error() }
func (e *TenantGoneError) Unwrap() error { return e.Err }
