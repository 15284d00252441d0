package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/your-org/tenantkit/internal/app"
	tkhttp "github.com/your-org/tenantkit/internal/http"
	"github.com/your-org/tenantkit/internal/models"
	"github.com/your-org/tenantkit/internal/tenancy"
	"github.com/your-org/tenantkit/internal/tenancy/cachestore"
)

// serveConfig is what the server process needs; the load generator sends it
// as JSON on the child's stdin.
type serveConfig struct {
	AppURL, OwnerURL, RedisURL string
	Schemas                    map[uuid.UUID]string // tenant id -> schema, for the baselines
	// With -pgbouncer: the kit again through PgBouncer, and direct with the
	// exec mode PgBouncer 1.18 needs.
	PooledURL, DescribeURL string
}

// serveAddrs is what the server process answers on its stdout.
type serveAddrs struct {
	Bare, Plumbing, Kit, Debug string
	KitPgBouncer, KitDescribe  string // -pgbouncer only
}

// serveMain runs the three servers until stdin closes (the load generator
// exited). They live in their own process so that the load generator's CPU
// is not counted against them, as in a deployment.
func serveMain(in io.Reader, out io.Writer) error {
	dec := json.NewDecoder(in)
	var cfg serveConfig
	if err := dec.Decode(&cfg); err != nil {
		return fmt.Errorf("read serve config: %w", err)
	}
	var addrs serveAddrs
	var closers []func()
	defer func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}()
	listen := func(h http.Handler) (string, error) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", err
		}
		srv := &http.Server{Handler: h}
		go srv.Serve(ln)
		closers = append(closers, func() { srv.Close() })
		return "http://" + ln.Addr().String(), nil
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))

	kit, stop, err := kitServer(cfg, quiet)
	closers = append(closers, stop)
	if err != nil {
		return err
	}
	if addrs.Kit, err = listen(kit); err != nil {
		return err
	}
	for _, v := range []struct {
		url  string
		addr *string
	}{{cfg.PooledURL, &addrs.KitPgBouncer}, {cfg.DescribeURL, &addrs.KitDescribe}} {
		if v.url == "" {
			continue
		}
		c := cfg
		c.AppURL = v.url
		h, stop, err := kitServer(c, quiet)
		closers = append(closers, stop)
		if err != nil {
			return err
		}
		if *v.addr, err = listen(h); err != nil {
			return err
		}
	}
	bare, err := ownerGORM(cfg.OwnerURL, &closers)
	if err != nil {
		return err
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	if addrs.Bare, err = listen(baseline(e, bare, cfg.Schemas)); err != nil {
		return err
	}
	plumbing, err := ownerGORM(cfg.OwnerURL, &closers)
	if err != nil {
		return err
	}
	if addrs.Plumbing, err = listen(baseline(tkhttp.NewPlain(quiet, prometheus.NewRegistry()), plumbing, cfg.Schemas)); err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	if addrs.Debug, err = listen(mux); err != nil {
		return err
	}
	if err := json.NewEncoder(out).Encode(addrs); err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, os.Stdin) // until the parent goes away
	return nil
}

// benchPool is every server's pool: DB_POOL_SIZE=40 DB_MAX_OVERFLOW=0, sized
// for the bench's 32 clients. database/sql closes a connection returned while
// MaxIdleConns are idle, so with the default 25 + 15 a load of 32 opens and
// closes connections all the time (about 30 a second here): a backend start
// each, and for the kit its statements prepared again. That cost, which
// favoured neither side clearly but swamped the difference, is the pool's, not
// tenancy's: docs/operations.md, "Connections".
var benchPool = tenancy.PoolConfig{MaxIdle: 40, MaxOverflow: 0}

// kitServer is the tenant stack, wired as cmd/api wires it.
func kitServer(cfg serveConfig, quiet *slog.Logger) (http.Handler, func(), error) {
	var closers []func()
	stop := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	appDB, err := tenancy.OpenDB(cfg.AppURL, benchPool)
	if err != nil {
		return nil, stop, err
	}
	closers = append(closers, func() { appDB.Close() })
	// Routed as cmd/api routes with its default budget: one cell, database
	// tenants possible (docs/scaling.md, "Cells").
	pools, err := tenancy.OpenPools(tenancy.PoolsConfig{Cells: []tenancy.Cell{{Name: tenancy.DefaultCell, AppDSN: cfg.AppURL}},
		Budget: tenancy.Budget{DatabasePool: 2, MaxDatabases: 16}, Default: appDB})
	if err != nil {
		return nil, stop, err
	}
	closers = append(closers, func() { pools.Close() })
	gdb, err := tenancy.OpenGORM(pools, quiet)
	if err != nil {
		return nil, stop, err
	}
	// Tenant lookups go through the same two-level cache as cmd/api: a warm
	// resolution makes no database or Redis round trip.
	opt, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		return nil, stop, fmt.Errorf("parse redis url: %w", err)
	}
	rdb := redis.NewClient(opt)
	closers = append(closers, func() { rdb.Close() })
	lookup := cachestore.New(cachestore.Config{Store: &tenancy.PGStore{DB: appDB}, Redis: rdb,
		Prefix: "tenantkit:bench:", Log: quiet})
	runCtx, stopCache := context.WithCancel(context.Background())
	closers = append(closers, stopCache)
	go lookup.Run(runCtx)
	chain, err := tenancy.NewChain(tenancy.ResolutionConfig{Strategies: []string{"jwt"},
		JWT: tenancy.JWTConfig{Algorithm: "HS256", Secret: []byte(jwtSecret), TenantClaim: "tenant_id"}}, lookup, nil)
	if err != nil {
		return nil, stop, err
	}
	return tkhttp.New(tkhttp.Config{Log: quiet, Registry: prometheus.NewRegistry(),
		Tenancy:   &tenancy.Middleware{Resolver: chain, Skip: tkhttp.SkipPaths},
		Resources: app.Routes(app.Deps{DB: gdb, Log: quiet})}), stop, nil
}

// ownerGORM is plain GORM over pgx's stdlib driver as the table owner: what
// an app without tenancy would open.
func ownerGORM(ownerURL string, closers *[]func()) (*gorm.DB, error) {
	db, err := sql.Open("pgx", ownerURL)
	if err != nil {
		return nil, err
	}
	db.SetMaxIdleConns(benchPool.MaxIdle)
	db.SetMaxOpenConns(benchPool.MaxIdle + benchPool.MaxOverflow)
	*closers = append(*closers, func() { db.Close() })
	return gorm.Open(postgres.New(postgres.Config{Conn: db}), &gorm.Config{SkipDefaultTransaction: true, Logger: logger.Discard})
}

// projectPage is the kit's list body.
type projectPage struct {
	Items      []models.Project `json:"items"`
	NextCursor *string          `json:"next_cursor"`
}

// baseline serves GET /projects/:tenant with the tenant's page of projects:
// the same query and JSON as the kit's list, WHERE tenant_id = ?, with
// whatever plumbing e carries (none for the bare baseline).
func baseline(e *echo.Echo, db *gorm.DB, schemas map[uuid.UUID]string) *echo.Echo {
	tables := make(map[uuid.UUID]string, len(schemas))
	for id, s := range schemas {
		tables[id] = tenancy.QuoteIdent(s) + ".projects"
	}
	e.GET("/projects/:tenant", func(c echo.Context) error {
		id, err := uuid.Parse(c.Param("tenant"))
		if err != nil || tables[id] == "" {
			return echo.ErrNotFound
		}
		var rows []models.Project
		err = db.WithContext(c.Request().Context()).Table(tables[id]).
			Where("tenant_id = ?", id).Order("created_at DESC, id DESC").Limit(21).Find(&rows).Error
		if err != nil {
			return err
		}
		out := projectPage{Items: rows}
		if len(rows) > 20 {
			out.Items = rows[:20]
			s := "cursor"
			out.NextCursor = &s
		}
		return c.JSON(http.StatusOK, out)
	})
	return e
}
