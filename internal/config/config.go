// Package config loads the binaries' configuration from the environment
// (docs/contract.md) and validates it as a whole: every problem in one error.
package config

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/your-org/tenantkit/internal/tenancy"
)

// Binary says which binary loads the configuration: each checks what it uses.
type Binary int

const (
	API Binary = iota
	Worker
	Migrate
)

// Config is everything the three binaries read from the environment.
type Config struct {
	DatabaseURL        string
	MigrateDatabaseURL string
	RedisURL           string
	HTTPAddr           string
	AdminToken         string
	AdminActorHeader   string            // audit actor header; empty: the token's fingerprint
	AutoMove           bool              // TENANCY_AUTO_MOVE: a tier change schedules the move
	TierRule           *tenancy.TierRule // TENANCY_PREMIUM_RULE, e.g. plan=enterprise

	Resolution tenancy.ResolutionConfig
	Placement  tenancy.Placement
	Pool       tenancy.PoolConfig
	// Cells are the Postgres clusters tenants live on, default first
	// (TENANCY_CELLS, MIGRATE_TENANCY_CELLS; docs/scaling.md, "Cells").
	Cells []tenancy.Cell
	// Budget caps the connections a process opens across every pool.
	Budget            tenancy.Budget
	CacheEnabled      bool
	CacheTTL          time.Duration
	WorkerConcurrency int
	WorkerAddr        string
	RateLimitRPS      float64 // per tenant per api process; 0 disables
	RateLimitBurst    int
	AuthFailureBurst  int     // failed credential attempts per client address before 429
	AuthFailureRPS    float64 // their refill rate
	LogLevel          string
	LogFormat         string
}

// Strategies are the built-in resolution strategies.
var Strategies = []string{"jwt", "header", "subdomain", "path", "api_key"}

// Load reads the environment through getenv and validates it for binary b.
func Load(getenv func(string) string, b Binary) (Config, error) {
	l := loader{getenv: getenv}
	c := Config{
		DatabaseURL:        l.str("DATABASE_URL", "postgres://tenantkit_app@localhost:5432/tenantkit?sslmode=disable"),
		MigrateDatabaseURL: l.str("MIGRATE_DATABASE_URL", "postgres://postgres@localhost:5432/tenantkit?sslmode=disable"),
		RedisURL:           l.str("REDIS_URL", "redis://localhost:6379/0"),
		HTTPAddr:           l.str("HTTP_ADDR", ":8080"),
		AdminToken:         l.str("ADMIN_TOKEN", ""),
		AdminActorHeader:   l.str("ADMIN_ACTOR_HEADER", ""),
		CacheEnabled:       l.boolean("CACHE_ENABLED", true),
		CacheTTL:           l.duration("CACHE_TTL", 2*time.Minute),
		WorkerConcurrency:  l.integer("WORKER_CONCURRENCY", 10, 1, 1000),
		WorkerAddr:         l.str("WORKER_HTTP_ADDR", ":9090"),
		RateLimitRPS:       l.float("RATE_LIMIT_RPS", 0, 0, 1e6),
		AuthFailureBurst:   l.integer("AUTH_FAILURE_BURST", tenancy.DefaultAuthFailureBurst, 1, 1_000_000),
		AuthFailureRPS:     l.float("AUTH_FAILURE_RPS", tenancy.DefaultAuthFailureRPS, 0.001, 1e6),
		LogLevel:           l.oneOf("LOG_LEVEL", "info", "debug", "info", "warn", "error"),
		LogFormat:          l.oneOf("LOG_FORMAT", "json", "json", "text"),
		Pool: tenancy.PoolConfig{
			MaxIdle:     l.integer("DB_POOL_SIZE", 25, 1, 10000),
			MaxOverflow: l.integer("DB_MAX_OVERFLOW", 15, 0, 10000),
			MaxLifetime: l.duration("DB_POOL_RECYCLE", 30*time.Minute),
		},
		Resolution: tenancy.ResolutionConfig{
			Header:       l.str("TENANCY_TENANT_HEADER", "X-Tenant-ID"),
			DomainSuffix: l.str("TENANCY_DOMAIN_SUFFIX", ""),
			PathPrefix:   l.str("TENANCY_PATH_PREFIX", "/t"),
			// A chain of identifiers only authenticates nobody: opt in.
			AllowUnauthenticated: l.boolean("TENANCY_ALLOW_UNAUTHENTICATED", false),
			JWT: tenancy.JWTConfig{
				Algorithm:   l.oneOf("JWT_ALGORITHM", "HS256", "HS256", "HS384", "HS512", "RS256", "ES256", "EdDSA"),
				Secret:      []byte(l.str("JWT_SECRET", "")),
				TenantClaim: l.str("JWT_TENANT_CLAIM", "tenant_id"),
				Issuer:      l.str("JWT_ISSUER", ""),
				Audience:    l.str("JWT_AUDIENCE", ""),
				Leeway:      l.duration("JWT_LEEWAY", 30*time.Second),
			},
		},
	}
	l.url("DATABASE_URL", c.DatabaseURL, "postgres", "postgresql")
	l.execMode("DATABASE_URL", c.DatabaseURL)
	l.url("MIGRATE_DATABASE_URL", c.MigrateDatabaseURL, "postgres", "postgresql")
	l.url("REDIS_URL", c.RedisURL, "redis", "rediss")
	c.RateLimitBurst = l.integer("RATE_LIMIT_BURST", max(1, int(2*c.RateLimitRPS)), 1, 1_000_000)
	c.Placement = l.placement()
	c.Cells = l.cells(&c, b)
	c.Budget = l.budget(c)
	c.AutoMove = l.boolean("TENANCY_AUTO_MOVE", false)
	if rule, err := tenancy.ParseTierRule(l.str("TENANCY_PREMIUM_RULE", "")); err != nil {
		l.fail(err.Error())
	} else {
		c.TierRule = rule
	}
	c.Resolution.Proxies = l.proxies()
	c.Resolution.Strategies = l.resolution()

	if b == API || b == Worker {
		c.validateServing(&l, b)
	}
	if len(l.problems) > 0 {
		return c, &Error{Problems: l.problems}
	}
	return c, nil
}

func (c *Config) validateServing(l *loader, b Binary) {
	if c.AdminToken != "" && len(c.AdminToken) < 32 && b == API {
		l.fail("ADMIN_TOKEN must be at least 32 bytes (or unset to disable the admin API)")
	}
	if b != API {
		return
	}
	r := &c.Resolution
	if !r.AllowUnauthenticated && !hasCredential(r.Strategies) && len(r.Strategies) > 0 {
		l.fail("TENANCY_RESOLUTION_STRATEGY=" + strings.Join(r.Strategies, ",") + " has no credential strategy (jwt, api_key): " +
			"anyone who can reach the api could act as any tenant; add one, or set TENANCY_ALLOW_UNAUTHENTICATED=true " +
			"only behind a gateway that authenticates callers and sets the tenant itself")
	}
	for _, s := range r.Strategies {
		switch s {
		case "jwt":
			c.loadJWTKey(l)
		case "subdomain":
			if !strings.HasPrefix(r.DomainSuffix, ".") || len(r.DomainSuffix) < 3 {
				l.fail("TENANCY_DOMAIN_SUFFIX is required by the subdomain strategy and must start with '.', e.g. .example.com")
			}
		case "path":
			if !strings.HasPrefix(r.PathPrefix, "/") || r.PathPrefix == "/" {
				l.fail("TENANCY_PATH_PREFIX must start with '/' and name a segment, e.g. /t")
			}
		case "header":
			if strings.TrimSpace(r.Header) == "" {
				l.fail("TENANCY_TENANT_HEADER must not be empty with the header strategy")
			}
		}
	}
}

// CredentialStrategies are the built-in strategies that authenticate; the
// others (header, subdomain, path) only name a tenant.
var CredentialStrategies = []string{"jwt", "api_key"}

func hasCredential(strategies []string) bool {
	for _, s := range strategies {
		for _, c := range CredentialStrategies {
			if s == c {
				return true
			}
		}
	}
	return false
}

// Unauthenticated reports whether the api serves a chain of identifiers
// only (allowed by TENANCY_ALLOW_UNAUTHENTICATED): it then warns at start-up.
func (c Config) Unauthenticated() bool { return !hasCredential(c.Resolution.Strategies) }

func (c *Config) loadJWTKey(l *loader) {
	alg := c.Resolution.JWT.Algorithm
	if strings.HasPrefix(alg, "HS") {
		if len(c.Resolution.JWT.Secret) < 32 {
			l.fail("JWT_SECRET is required by the jwt strategy with " + alg + " and must be at least 32 bytes")
		}
		return
	}
	path := l.getenv("JWT_PUBLIC_KEY_FILE")
	if path == "" {
		l.fail("JWT_PUBLIC_KEY_FILE is required with JWT_ALGORITHM=" + alg)
		return
	}
	key, err := readPublicKey(path)
	if err == nil {
		err = tenancy.CheckPublicKey(alg, key)
	}
	if err != nil {
		l.fail("JWT_PUBLIC_KEY_FILE: " + err.Error())
		return
	}
	c.Resolution.JWT.PublicKey = key
}

func readPublicKey(path string) (crypto.PublicKey, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(raw)
	if block == nil {
		return nil, errors.New("no PEM block found")
	}
	if key, err := x509.ParsePKIXPublicKey(block.Bytes); err == nil {
		return key, nil
	}
	if cert, err := x509.ParseCertificate(block.Bytes); err == nil {
		return cert.PublicKey, nil
	}
	return nil, errors.New("not a PEM public key or certificate")
}

// AppRole is the role name of DATABASE_URL, and its password if any.
func (c Config) AppRole() (name, password string) {
	u, err := url.Parse(c.DatabaseURL)
	if err != nil || u.User == nil {
		return "", ""
	}
	pw, _ := u.User.Password()
	return u.User.Username(), pw
}

// Error lists every configuration problem.
type Error struct{ Problems []string }

func (e *Error) Error() string {
	return "invalid configuration:\n  - " + strings.Join(e.Problems, "\n  - ")
}

// Redacted renders the configuration for logs with secrets masked.
func (c Config) Redacted() map[string]any {
	return map[string]any{
		"database_url":          RedactURL(c.DatabaseURL),
		"migrate_database_url":  RedactURL(c.MigrateDatabaseURL),
		"redis_url":             RedactURL(c.RedisURL),
		"http_addr":             c.HTTPAddr,
		"admin_api":             c.AdminToken != "",
		"resolution":            strings.Join(c.Resolution.Strategies, ","),
		"jwt_algorithm":         c.Resolution.JWT.Algorithm,
		"jwt_secret":            mask(string(c.Resolution.JWT.Secret)),
		"cache_enabled":         c.CacheEnabled,
		"cache_ttl":             c.CacheTTL.String(),
		"db_pool_size":          c.Pool.MaxIdle,
		"db_max_overflow":       c.Pool.MaxOverflow,
		"cells":                 c.cellNames(),
		"max_connections":       c.Budget.MaxConnections,
		"worker_concurrency":    c.WorkerConcurrency,
		"rate_limit_rps":        c.RateLimitRPS,
		"rate_limit_burst":      c.RateLimitBurst,
		"auth_failure_burst":    c.AuthFailureBurst,
		"auth_failure_rps":      c.AuthFailureRPS,
		"allow_unauthenticated": c.Resolution.AllowUnauthenticated,
	}
}

func mask(s string) string {
	if s == "" {
		return ""
	}
	return "***"
}

// RedactURL hides the password of a connection URL, in its user info or in
// its query (libpq takes password= there too). Anything that is not a URL
// with a scheme, such as a key=value DSN, is hidden whole.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Opaque != "" {
		return "<unparsable url>"
	}
	if q := u.Query(); len(q) > 0 {
		masked := false
		for k := range q {
			if lk := strings.ToLower(k); strings.Contains(lk, "pass") || strings.Contains(lk, "secret") || strings.Contains(lk, "token") {
				q.Set(k, "xxxxx")
				masked = true
			}
		}
		if masked {
			u.RawQuery = q.Encode()
		}
	}
	return u.Redacted()
}

type loader struct {
	getenv   func(string) string
	problems []string
}

func (l *loader) fail(msg string) { l.problems = append(l.problems, msg) }

func (l *loader) str(name, def string) string {
	if v := strings.TrimSpace(l.getenv(name)); v != "" {
		return v
	}
	return def
}

func (l *loader) oneOf(name, def string, allowed ...string) string {
	v := l.str(name, def)
	for _, a := range allowed {
		if strings.EqualFold(v, a) {
			return a
		}
	}
	l.fail(fmt.Sprintf("%s=%q must be one of %s", name, v, strings.Join(allowed, ", ")))
	return def
}

func (l *loader) float(name string, def, lo, hi float64) float64 {
	v := l.str(name, "")
	if v == "" {
		return def
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < lo || f > hi || f != f {
		l.fail(fmt.Sprintf("%s=%q must be a number from %g to %g", name, v, lo, hi))
		return def
	}
	return f
}

func (l *loader) integer(name string, def, lo, hi int) int {
	v := l.str(name, "")
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		l.fail(fmt.Sprintf("%s=%q must be an integer from %d to %d", name, v, lo, hi))
		return def
	}
	return n
}

func (l *loader) duration(name string, def time.Duration) time.Duration {
	v := l.str(name, "")
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		l.fail(fmt.Sprintf("%s=%q must be a duration such as 30s or 2m", name, v))
		return def
	}
	return d
}

func (l *loader) boolean(name string, def bool) bool {
	v := l.str(name, "")
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		l.fail(fmt.Sprintf("%s=%q must be true or false", name, v))
		return def
	}
	return b
}

func (l *loader) url(name, v string, schemes ...string) {
	u, err := url.Parse(v)
	if err != nil {
		l.fail(name + " is not a valid URL") // the URL may hold a password: never echo it
		return
	}
	for _, s := range schemes {
		if u.Scheme == s {
			return
		}
	}
	l.fail(fmt.Sprintf("%s must use scheme %s", name, strings.Join(schemes, " or ")))
}

// execMode checks the pgx default_query_exec_mode an app-role URL may carry:
// cache_statement (the default: direct, or PgBouncer >= 1.21 with
// max_prepared_statements) or cache_describe (PgBouncer 1.18 in transaction
// mode). exec and simple_protocol type arguments by their Go type ([]byte
// into a jsonb column fails) and describe_exec describes a premium tenant's
// statement outside its schema: docs/scaling.md.
func (l *loader) execMode(name, v string) {
	u, err := url.Parse(v)
	if err != nil {
		return // reported by url
	}
	switch m := u.Query().Get("default_query_exec_mode"); m {
	case "", "cache_statement", "cache_describe":
	default:
		l.fail(fmt.Sprintf("%s: default_query_exec_mode=%s is not supported by the tenant binding; "+
			"use cache_describe behind PgBouncer < 1.21 in transaction mode, else leave it unset (docs/scaling.md)", name, m))
	}
}

func (l *loader) resolution() []string {
	raw := l.str("TENANCY_RESOLUTION_STRATEGY", "jwt")
	var out []string
	seen := map[string]bool{}
	for _, s := range strings.Split(raw, ",") {
		s = strings.ToLower(strings.TrimSpace(s))
		known := false
		for _, k := range Strategies {
			known = known || s == k
		}
		switch {
		case !known:
			l.fail(fmt.Sprintf("TENANCY_RESOLUTION_STRATEGY: unknown strategy %q (known: %s)", s, strings.Join(Strategies, ", ")))
		case seen[s]:
			l.fail(fmt.Sprintf("TENANCY_RESOLUTION_STRATEGY: %q is listed twice", s))
		default:
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

func (l *loader) placement() tenancy.Placement {
	iso := func(name, def string, allowed ...string) tenancy.Isolation {
		return tenancy.Isolation(l.oneOf(name, def, allowed...))
	}
	p := tenancy.Placement{
		Strategy:   iso("TENANCY_ISOLATION_STRATEGY", "hybrid", "schema", "rls", "hybrid"),
		Premium:    iso("TENANCY_PREMIUM_ISOLATION_STRATEGY", "schema", "schema", "rls"),
		Standard:   iso("TENANCY_STANDARD_ISOLATION_STRATEGY", "rls", "schema", "rls"),
		PremiumIDs: map[uuid.UUID]bool{},
	}
	for _, s := range splitList(l.getenv("PREMIUM_TENANT_IDS")) {
		id, err := uuid.Parse(s)
		if err != nil {
			l.fail(fmt.Sprintf("PREMIUM_TENANT_IDS: %q is not a UUID", s))
			continue
		}
		p.PremiumIDs[id] = true
	}
	return p
}

func (l *loader) proxies() tenancy.TrustedProxies {
	var out tenancy.TrustedProxies
	for _, s := range splitList(l.getenv("TENANCY_TRUSTED_PROXIES")) {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			if a, aerr := netip.ParseAddr(s); aerr == nil {
				p = netip.PrefixFrom(a, a.BitLen())
			} else {
				l.fail(fmt.Sprintf("TENANCY_TRUSTED_PROXIES: %q is not a CIDR", s))
				continue
			}
		}
		out = append(out, p.Masked())
	}
	return out
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func (c Config) cellNames() string {
	names := make([]string, len(c.Cells))
	for i, cell := range c.Cells {
		names[i] = cell.Name
	}
	return strings.Join(names, ",")
}

// CellNames lists the configured cells, default first.
func (c Config) CellNames() []string {
	names := make([]string, len(c.Cells))
	for i, cell := range c.Cells {
		names[i] = cell.Name
	}
	return names
}

// cells reads TENANCY_CELLS and MIGRATE_TENANCY_CELLS: name=dsn lists with
// the same names, one of them default. Unset, they mean the one cell
// default of DATABASE_URL and MIGRATE_DATABASE_URL. Problems never quote a
// DSN: it may hold a password.
func (l *loader) cells(c *Config, b Binary) []tenancy.Cell {
	app := l.cellList("TENANCY_CELLS")
	owner := l.cellList("MIGRATE_TENANCY_CELLS")
	explicit := func(name string) bool { return strings.TrimSpace(l.getenv(name)) != "" }
	if app == nil {
		app = map[string]string{tenancy.DefaultCell: c.DatabaseURL}
	} else if d, ok := app[tenancy.DefaultCell]; ok {
		if explicit("DATABASE_URL") && d != c.DatabaseURL {
			l.fail("TENANCY_CELLS: cell default differs from DATABASE_URL (set one, or both alike)")
		}
		c.DatabaseURL = d
	}
	if owner == nil {
		owner = map[string]string{tenancy.DefaultCell: c.MigrateDatabaseURL}
	} else if d, ok := owner[tenancy.DefaultCell]; ok {
		if explicit("MIGRATE_DATABASE_URL") && d != c.MigrateDatabaseURL {
			l.fail("MIGRATE_TENANCY_CELLS: cell default differs from MIGRATE_DATABASE_URL (set one, or both alike)")
		}
		c.MigrateDatabaseURL = d
	}
	names := l.cellOrder("TENANCY_CELLS")
	if names == nil {
		names = l.cellOrder("MIGRATE_TENANCY_CELLS")
	}
	if names == nil {
		names = []string{tenancy.DefaultCell}
	}
	if _, ok := app[tenancy.DefaultCell]; !ok {
		l.fail("TENANCY_CELLS must name a cell default (the control plane's cluster)")
	}
	if _, ok := owner[tenancy.DefaultCell]; !ok {
		l.fail("MIGRATE_TENANCY_CELLS must name a cell default (the control plane's cluster)")
	}
	needOwner := b == Migrate || (b == API && c.AdminToken != "")
	out := []tenancy.Cell{{Name: tenancy.DefaultCell, AppDSN: app[tenancy.DefaultCell], OwnerDSN: owner[tenancy.DefaultCell]}}
	for _, n := range names {
		if n == tenancy.DefaultCell {
			continue
		}
		cell := tenancy.Cell{Name: n, AppDSN: app[n], OwnerDSN: owner[n]}
		if cell.AppDSN == "" && b != Migrate {
			l.fail(fmt.Sprintf("TENANCY_CELLS has no cell %s, which MIGRATE_TENANCY_CELLS names", n))
		}
		if cell.OwnerDSN == "" && needOwner {
			l.fail(fmt.Sprintf("MIGRATE_TENANCY_CELLS has no cell %s, which TENANCY_CELLS names (migrate and provisioning need its owner DSN)", n))
		}
		out = append(out, cell)
	}
	for n := range owner {
		if _, ok := app[n]; !ok && l.cellOrder("TENANCY_CELLS") != nil && b != Migrate {
			l.fail(fmt.Sprintf("MIGRATE_TENANCY_CELLS names cell %s, which TENANCY_CELLS does not", n))
		}
	}
	return out
}

// cellOrder returns the cell names of env var name in their order.
func (l *loader) cellOrder(name string) []string {
	var out []string
	for _, part := range splitList(l.getenv(name)) {
		if n, _, ok := strings.Cut(part, "="); ok {
			out = append(out, strings.TrimSpace(n))
		}
	}
	return out
}

// cellList parses one name=dsn list; nil when the variable is unset. A DSN
// must be a postgres URL without commas (percent-encode them).
func (l *loader) cellList(name string) map[string]string {
	raw := strings.TrimSpace(l.getenv(name))
	if raw == "" {
		return nil
	}
	out := map[string]string{}
	for i, part := range splitList(raw) {
		n, dsn, ok := strings.Cut(part, "=")
		n, dsn = strings.TrimSpace(n), strings.TrimSpace(dsn)
		switch {
		case !ok || !tenancy.ValidCellName(n):
			l.fail(fmt.Sprintf("%s: entry %d must be name=postgres://... with a name matching ^[a-z][a-z0-9_]{0,30}$", name, i+1))
			continue
		case out[n] != "":
			l.fail(fmt.Sprintf("%s: cell %s is listed twice", name, n))
			continue
		}
		u, err := url.Parse(dsn)
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || strings.TrimPrefix(u.Path, "/") == "" {
			l.fail(fmt.Sprintf("%s: cell %s must be a postgres:// URL naming a database", name, n))
			continue
		}
		out[n] = dsn
	}
	return out
}

// budget reads the connection budget (docs/scaling.md, "Connection budgets").
func (l *loader) budget(c Config) tenancy.Budget {
	perCell := c.Pool.MaxIdle + c.Pool.MaxOverflow
	b := tenancy.Budget{
		DatabasePool: l.integer("TENANCY_DATABASE_POOL_SIZE", 2, 1, 100),
		DatabaseIdle: l.duration("TENANCY_DATABASE_POOL_IDLE", 5*time.Minute),
	}
	cells := len(c.Cells)
	b.MaxConnections = l.integer("TENANCY_MAX_CONNECTIONS", cells*perCell+16*b.DatabasePool, 1, 1_000_000)
	if rest := b.MaxConnections - cells*perCell; rest < b.DatabasePool {
		l.fail(fmt.Sprintf("TENANCY_MAX_CONNECTIONS=%d leaves no room for one tenant database pool: %d cell(s) x (DB_POOL_SIZE %d + DB_MAX_OVERFLOW %d) + TENANCY_DATABASE_POOL_SIZE %d = %d",
			b.MaxConnections, cells, c.Pool.MaxIdle, c.Pool.MaxOverflow, b.DatabasePool, cells*perCell+b.DatabasePool))
	} else {
		b.MaxDatabases = rest / b.DatabasePool
	}
	return b
}
