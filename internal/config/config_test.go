package config_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/your-org/tenantkit/internal/config"
	"github.com/your-org/tenantkit/internal/tenancy"
)

func env(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }

const goodSecret = "a-jwt-secret-of-at-least-32-bytes-long"

func mustLoad(t *testing.T, kv map[string]string, b config.Binary) config.Config {
	t.Helper()
	c, err := config.Load(env(kv), b)
	if err != nil {
		t.Fatalf("Load(%v): %v", kv, err)
	}
	return c
}

func problems(t *testing.T, err error) []string {
	t.Helper()
	ce, ok := err.(*config.Error)
	if !ok {
		t.Fatalf("error %T %v, want *config.Error", err, err)
	}
	return ce.Problems
}

func TestLoad_DefaultsFollowTheContract(t *testing.T) {
	t.Parallel()
	c := mustLoad(t, map[string]string{"JWT_SECRET": goodSecret}, config.API)
	checks := map[string][2]any{
		"DATABASE_URL":         {c.DatabaseURL, "postgres://tenantkit_app@localhost:5432/tenantkit?sslmode=disable"},
		"MIGRATE_DATABASE_URL": {c.MigrateDatabaseURL, "postgres://postgres@localhost:5432/tenantkit?sslmode=disable"},
		"REDIS_URL":            {c.RedisURL, "redis://localhost:6379/0"},
		"HTTP_ADDR":            {c.HTTPAddr, ":8080"},
		"ADMIN_TOKEN":          {c.AdminToken, ""},
		"strategy":             {strings.Join(c.Resolution.Strategies, ","), "jwt"},
		"isolation":            {c.Placement.Strategy, tenancy.Hybrid},
		"premium isolation":    {c.Placement.Premium, tenancy.IsolationSchema},
		"standard isolation":   {c.Placement.Standard, tenancy.IsolationRLS},
		"header":               {c.Resolution.Header, "X-Tenant-ID"},
		"suffix":               {c.Resolution.DomainSuffix, ""},
		"path prefix":          {c.Resolution.PathPrefix, "/t"},
		"proxies":              {len(c.Resolution.Proxies), 0},
		"jwt algorithm":        {c.Resolution.JWT.Algorithm, "HS256"},
		"jwt claim":            {c.Resolution.JWT.TenantClaim, "tenant_id"},
		"jwt issuer":           {c.Resolution.JWT.Issuer, ""},
		"jwt audience":         {c.Resolution.JWT.Audience, ""},
		"jwt leeway":           {c.Resolution.JWT.Leeway, 30 * time.Second},
		"pool size":            {c.Pool.MaxIdle, 25},
		"overflow":             {c.Pool.MaxOverflow, 15},
		"recycle":              {c.Pool.MaxLifetime, 30 * time.Minute},
		"cache":                {c.CacheEnabled, true},
		"cache ttl":            {c.CacheTTL, 2 * time.Minute},
		"workers":              {c.WorkerConcurrency, 10},
		"log level":            {c.LogLevel, "info"},
		"log format":           {c.LogFormat, "json"},
	}
	for name, v := range checks {
		if v[0] != v[1] {
			t.Errorf("%s = %v, want %v", name, v[0], v[1])
		}
	}
	// The worker and migrate need no JWT secret; the api does (jwt is the default strategy).
	mustLoad(t, nil, config.Worker)
	mustLoad(t, nil, config.Migrate)
	if _, err := config.Load(env(nil), config.API); err == nil || !strings.Contains(err.Error(), "JWT_SECRET") {
		t.Errorf("api without JWT_SECRET: %v", err)
	}
}

func TestLoad_ReadsEveryVariable(t *testing.T) {
	t.Parallel()
	id := uuid.New()
	c := mustLoad(t, map[string]string{
		"DATABASE_URL": "postgresql://app:pw@db:5432/x", "MIGRATE_DATABASE_URL": "postgres://owner@db/x", "REDIS_URL": "rediss://r:6380/2",
		"HTTP_ADDR": "127.0.0.1:9000", "ADMIN_TOKEN": strings.Repeat("t", 32), "TENANCY_RESOLUTION_STRATEGY": " JWT , api_key,header,subdomain,path ",
		"TENANCY_ISOLATION_STRATEGY": "rls", "TENANCY_PREMIUM_ISOLATION_STRATEGY": "rls", "TENANCY_STANDARD_ISOLATION_STRATEGY": "schema",
		"PREMIUM_TENANT_IDS": " " + id.String() + " ,", "TENANCY_TENANT_HEADER": "X-Org", "TENANCY_DOMAIN_SUFFIX": ".example.com",
		"TENANCY_PATH_PREFIX": "/orgs", "TENANCY_TRUSTED_PROXIES": "10.0.0.0/8, 192.168.1.7,::1", "JWT_SECRET": goodSecret,
		"JWT_ALGORITHM": "hs512", "JWT_TENANT_CLAIM": "org", "JWT_ISSUER": "iss", "JWT_AUDIENCE": "aud", "JWT_LEEWAY": "5s",
		"DB_POOL_SIZE": "5", "DB_MAX_OVERFLOW": "0", "DB_POOL_RECYCLE": "1m", "CACHE_ENABLED": "false", "CACHE_TTL": "10s",
		"WORKER_CONCURRENCY": "3", "LOG_LEVEL": "DEBUG", "LOG_FORMAT": "text",
	}, config.API)
	if got := strings.Join(c.Resolution.Strategies, ","); got != "jwt,api_key,header,subdomain,path" {
		t.Errorf("strategies %q", got)
	}
	if c.Resolution.JWT.Algorithm != "HS512" || c.Resolution.JWT.TenantClaim != "org" || c.Resolution.JWT.Leeway != 5*time.Second ||
		c.Resolution.JWT.Issuer != "iss" || c.Resolution.JWT.Audience != "aud" || string(c.Resolution.JWT.Secret) != goodSecret {
		t.Errorf("jwt %+v", c.Resolution.JWT)
	}
	if !c.Placement.PremiumIDs[id] || c.Placement.Strategy != tenancy.IsolationRLS || c.Placement.Standard != tenancy.IsolationSchema {
		t.Errorf("placement %+v", c.Placement)
	}
	if len(c.Resolution.Proxies) != 3 || !c.Resolution.Proxies.Trusts("192.168.1.7:1") || c.Resolution.Proxies.Trusts("192.168.1.8:1") || !c.Resolution.Proxies.Trusts("[::1]:1") {
		t.Errorf("proxies %v", c.Resolution.Proxies)
	}
	if c.Pool.MaxIdle != 5 || c.Pool.MaxOverflow != 0 || c.Pool.MaxLifetime != time.Minute || c.CacheEnabled || c.CacheTTL != 10*time.Second ||
		c.WorkerConcurrency != 3 || c.LogLevel != "debug" || c.LogFormat != "text" || c.Resolution.Header != "X-Org" || c.Resolution.PathPrefix != "/orgs" {
		t.Errorf("config %+v", c)
	}
	if name, pw := c.AppRole(); name != "app" || pw != "pw" {
		t.Errorf("AppRole = %q, %q", name, pw)
	}
}

// TestLoad_ListsEveryProblemInOneError sets many bad variables at once.
func TestLoad_ListsEveryProblemInOneError(t *testing.T) {
	t.Parallel()
	bad := map[string]string{
		"DATABASE_URL":                "mysql://app@db/x",
		"REDIS_URL":                   "http://r",
		"TENANCY_RESOLUTION_STRATEGY": "jwt,subdomain,path,carrier-pigeon,jwt",
		"TENANCY_ISOLATION_STRATEGY":  "silo",
		"PREMIUM_TENANT_IDS":          "not-a-uuid",
		"TENANCY_TRUSTED_PROXIES":     "10.0.0.0/33",
		"TENANCY_PATH_PREFIX":         "/",
		"JWT_ALGORITHM":               "none",
		"JWT_LEEWAY":                  "-5s",
		"DB_POOL_SIZE":                "lots",
		"DB_POOL_RECYCLE":             "forever",
		"CACHE_ENABLED":               "maybe",
		"WORKER_CONCURRENCY":          "0",
		"LOG_LEVEL":                   "loud",
		"LOG_FORMAT":                  "xml",
		"ADMIN_TOKEN":                 "short",
	}
	_, err := config.Load(env(bad), config.API)
	if err == nil {
		t.Fatal("accepted")
	}
	ps := problems(t, err)
	msg := err.Error()
	for _, name := range []string{"DATABASE_URL", "REDIS_URL", "carrier-pigeon", "listed twice", "TENANCY_ISOLATION_STRATEGY", "PREMIUM_TENANT_IDS",
		"TENANCY_TRUSTED_PROXIES", "TENANCY_PATH_PREFIX", "TENANCY_DOMAIN_SUFFIX", "JWT_ALGORITHM", "JWT_LEEWAY", "DB_POOL_SIZE",
		"DB_POOL_RECYCLE", "CACHE_ENABLED", "WORKER_CONCURRENCY", "LOG_LEVEL", "LOG_FORMAT", "ADMIN_TOKEN", "JWT_SECRET"} {
		if !strings.Contains(msg, name) {
			t.Errorf("error does not mention %s:\n%s", name, msg)
		}
	}
	if len(ps) < 19 || strings.Count(msg, "\n  - ") != len(ps) {
		t.Errorf("%d problems, want every one listed on its own line:\n%s", len(ps), msg)
	}
}

// TestLoad_NeverShowsSecrets: neither the error nor Redacted() carries a password, token or secret.
func TestLoad_NeverShowsSecrets(t *testing.T) {
	t.Parallel()
	secrets := []string{"db-pass-S3CRET", "owner-pass-S3CRET", "redis-pass-S3CRET", "short-jwt-S3CRET", "adm-S3CRET", "query-pass-S3CRET"}
	bad := map[string]string{
		"DATABASE_URL":         "mysql://app:db-pass-S3CRET@db/x",
		"MIGRATE_DATABASE_URL": "postgres://owner:owner-pass-S3CRET@db:bad-port/x",
		"REDIS_URL":            "redis//:redis-pass-S3CRET@r",
		"JWT_SECRET":           "short-jwt-S3CRET",
		"ADMIN_TOKEN":          "adm-S3CRET",
	}
	c, err := config.Load(env(bad), config.API)
	if err == nil {
		t.Fatal("accepted")
	}
	shown := err.Error() + fmt.Sprint(c.Redacted())
	for _, s := range secrets {
		if strings.Contains(shown, s) {
			t.Errorf("secret %q shown:\n%s", s, shown)
		}
	}

	good := map[string]string{
		"DATABASE_URL":         "postgres://app:db-pass-S3CRET@db/x?sslmode=disable",
		"MIGRATE_DATABASE_URL": "postgres://owner@db/x?password=query-pass-S3CRET&sslmode=disable",
		"REDIS_URL":            "redis://:redis-pass-S3CRET@r:6379/0",
		"JWT_SECRET":           "short-jwt-S3CRET-padded-to-32-bytes-or-more",
		"ADMIN_TOKEN":          "adm-S3CRET-padded-to-32-bytes-or-more",
	}
	c = mustLoad(t, good, config.API)
	b, _ := json.Marshal(c.Redacted())
	shown = string(b) + fmt.Sprintf("%v %+v", c.Redacted(), c.Redacted())
	for _, s := range secrets {
		if strings.Contains(shown, s) {
			t.Errorf("Redacted() shows %q: %s", s, b)
		}
	}
	if !strings.Contains(shown, "db/x") || !strings.Contains(shown, "HS256") {
		t.Errorf("Redacted() hides too much to be useful: %s", b)
	}
	for raw, want := range map[string]string{
		"postgres://u:p4ss@h/db":             "postgres://u:xxxxx@h/db",
		"postgres://u@h/db?password=p4ss":    "p4ss",
		"host=h user=u password=p4ss dbname": "p4ss",
		"redis//:p4ss@r":                     "p4ss",
		"postgres://u@h/db?sslmode=disable":  "postgres://u@h/db?sslmode=disable",
	} {
		got := config.RedactURL(raw)
		if strings.Contains(got, "p4ss") || (strings.HasPrefix(want, "postgres") && got != want) {
			t.Errorf("RedactURL(%q) = %q", raw, got)
		}
	}
}

func writeFile(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func pemOf(t *testing.T, typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func TestLoad_StrategyRequirements(t *testing.T) {
	t.Parallel()
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	der := func(k any) []byte {
		b, err := x509.MarshalPKIXPublicKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "t"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	cert, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &rsaKey.PublicKey, rsaKey)
	if err != nil {
		t.Fatal(err)
	}
	rsaFile := writeFile(t, "rsa.pem", pemOf(t, "PUBLIC KEY", der(&rsaKey.PublicKey)))
	ok := map[string]map[string]string{
		"RS256 with a PEM key":         {"JWT_ALGORITHM": "RS256", "JWT_PUBLIC_KEY_FILE": rsaFile},
		"RS256 with a certificate":     {"JWT_ALGORITHM": "RS256", "JWT_PUBLIC_KEY_FILE": writeFile(t, "c.pem", pemOf(t, "CERTIFICATE", cert))},
		"ES256 with a PEM key":         {"JWT_ALGORITHM": "ES256", "JWT_PUBLIC_KEY_FILE": writeFile(t, "ec.pem", pemOf(t, "PUBLIC KEY", der(&ecKey.PublicKey)))},
		"EdDSA with a PEM key":         {"JWT_ALGORITHM": "EdDSA", "JWT_PUBLIC_KEY_FILE": writeFile(t, "ed.pem", pemOf(t, "PUBLIC KEY", der(edPub)))},
		"HS256 with a 32-byte secret":  {"JWT_SECRET": strings.Repeat("s", 32)},
		"subdomain with a suffix":      {"TENANCY_RESOLUTION_STRATEGY": "subdomain", "TENANCY_DOMAIN_SUFFIX": ".example.com", "TENANCY_ALLOW_UNAUTHENTICATED": "true"},
		"header needs no jwt secret":   {"TENANCY_RESOLUTION_STRATEGY": "header", "TENANCY_ALLOW_UNAUTHENTICATED": "true"},
		"api_key needs no jwt secret":  {"TENANCY_RESOLUTION_STRATEGY": "api_key"},
		"path with a custom prefix":    {"TENANCY_RESOLUTION_STRATEGY": "path", "TENANCY_PATH_PREFIX": "/orgs", "TENANCY_ALLOW_UNAUTHENTICATED": "true"},
		"admin token of 32 bytes":      {"TENANCY_RESOLUTION_STRATEGY": "api_key", "ADMIN_TOKEN": strings.Repeat("a", 32)},
		"RS256 ignores a short secret": {"JWT_ALGORITHM": "RS256", "JWT_PUBLIC_KEY_FILE": rsaFile, "JWT_SECRET": "short"},
	}
	for what, kv := range ok {
		c := mustLoad(t, kv, config.API)
		if strings.HasPrefix(kv["JWT_ALGORITHM"], "RS") || strings.HasPrefix(kv["JWT_ALGORITHM"], "E") {
			if c.Resolution.JWT.PublicKey == nil {
				t.Errorf("%s: no public key loaded", what)
			}
			if _, err := tenancy.NewJWTResolver(c.Resolution.JWT, nil); err != nil {
				t.Errorf("%s: the loaded key does not make a resolver: %v", what, err)
			}
		}
	}
	bad := map[string]struct {
		kv   map[string]string
		want string
	}{
		"subdomain without suffix":  {map[string]string{"TENANCY_RESOLUTION_STRATEGY": "subdomain"}, "TENANCY_DOMAIN_SUFFIX"},
		"suffix without a dot":      {map[string]string{"TENANCY_RESOLUTION_STRATEGY": "subdomain", "TENANCY_DOMAIN_SUFFIX": "example.com"}, "TENANCY_DOMAIN_SUFFIX"},
		"short JWT secret":          {map[string]string{"JWT_SECRET": strings.Repeat("s", 31)}, "JWT_SECRET"},
		"short HS512 secret":        {map[string]string{"JWT_ALGORITHM": "HS512", "JWT_SECRET": "short"}, "JWT_SECRET"},
		"RS256 without key file":    {map[string]string{"JWT_ALGORITHM": "RS256", "JWT_SECRET": goodSecret}, "JWT_PUBLIC_KEY_FILE"},
		"RS256 with a missing file": {map[string]string{"JWT_ALGORITHM": "RS256", "JWT_PUBLIC_KEY_FILE": "/nonexistent/key.pem"}, "JWT_PUBLIC_KEY_FILE"},
		"RS256 with a non-PEM file": {map[string]string{"JWT_ALGORITHM": "RS256", "JWT_PUBLIC_KEY_FILE": writeFile(t, "x.pem", []byte("not pem"))}, "JWT_PUBLIC_KEY_FILE"},
		"RS256 with a garbage PEM":  {map[string]string{"JWT_ALGORITHM": "RS256", "JWT_PUBLIC_KEY_FILE": writeFile(t, "g.pem", pemOf(t, "PUBLIC KEY", []byte("garbage")))}, "JWT_PUBLIC_KEY_FILE"},
		"ES256 given an RSA key":    {map[string]string{"JWT_ALGORITHM": "ES256", "JWT_PUBLIC_KEY_FILE": rsaFile}, "JWT_PUBLIC_KEY_FILE"},
		"EdDSA given an RSA key":    {map[string]string{"JWT_ALGORITHM": "EdDSA", "JWT_PUBLIC_KEY_FILE": rsaFile}, "JWT_PUBLIC_KEY_FILE"},
		"jwt later in the chain":    {map[string]string{"TENANCY_RESOLUTION_STRATEGY": "api_key,jwt"}, "JWT_SECRET"},
		"path prefix without slash": {map[string]string{"TENANCY_RESOLUTION_STRATEGY": "path", "TENANCY_PATH_PREFIX": "t"}, "TENANCY_PATH_PREFIX"},
		"short admin token":         {map[string]string{"TENANCY_RESOLUTION_STRATEGY": "header", "ADMIN_TOKEN": strings.Repeat("a", 31)}, "ADMIN_TOKEN"},
		"empty strategy in chain":   {map[string]string{"TENANCY_RESOLUTION_STRATEGY": "header,,api_key"}, "TENANCY_RESOLUTION_STRATEGY"},
	}
	for what, b := range bad {
		_, err := config.Load(env(b.kv), config.API)
		if err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%s: %v, want a problem naming %s", what, err, b.want)
		}
	}
	// The worker does not serve HTTP: resolution and admin settings are not its concern.
	mustLoad(t, map[string]string{"TENANCY_RESOLUTION_STRATEGY": "subdomain", "ADMIN_TOKEN": "short"}, config.Worker)
}

// Identification is not authentication (invariant 10): a chain of
// identifiers only refuses to start unless TENANCY_ALLOW_UNAUTHENTICATED.
func TestLoad_IdentifierOnlyChainNeedsAllowUnauthenticated(t *testing.T) {
	t.Parallel()
	for _, chain := range []string{"header", "path", "subdomain", "header,path"} {
		kv := map[string]string{"TENANCY_RESOLUTION_STRATEGY": chain, "TENANCY_DOMAIN_SUFFIX": ".example.com"}
		_, err := config.Load(env(kv), config.API)
		if err == nil || !strings.Contains(err.Error(), "TENANCY_ALLOW_UNAUTHENTICATED") {
			t.Errorf("%s: %v, want a refusal naming TENANCY_ALLOW_UNAUTHENTICATED", chain, err)
		}
		kv["TENANCY_ALLOW_UNAUTHENTICATED"] = "true"
		if c := mustLoad(t, kv, config.API); !c.Resolution.AllowUnauthenticated || !c.Unauthenticated() {
			t.Errorf("%s: allowed chain not marked unauthenticated", chain)
		}
	}
	for _, chain := range []string{"jwt", "api_key", "jwt,header", "subdomain,api_key"} {
		kv := map[string]string{"TENANCY_RESOLUTION_STRATEGY": chain, "JWT_SECRET": goodSecret, "TENANCY_DOMAIN_SUFFIX": ".example.com"}
		if c := mustLoad(t, kv, config.API); c.Unauthenticated() {
			t.Errorf("%s: a chain with a credential is unauthenticated", chain)
		}
	}
	if _, err := config.Load(env(map[string]string{"TENANCY_ALLOW_UNAUTHENTICATED": "maybe"}), config.API); err == nil {
		t.Error("TENANCY_ALLOW_UNAUTHENTICATED=maybe accepted")
	}
}

func TestLoad_AuthFailureThrottle(t *testing.T) {
	t.Parallel()
	c := mustLoad(t, map[string]string{"JWT_SECRET": goodSecret}, config.API)
	if c.AuthFailureBurst != 50 || c.AuthFailureRPS != 1 {
		t.Errorf("defaults %d / %g, want 50 / 1", c.AuthFailureBurst, c.AuthFailureRPS)
	}
	c = mustLoad(t, map[string]string{"JWT_SECRET": goodSecret, "AUTH_FAILURE_BURST": "10", "AUTH_FAILURE_RPS": "0.5"}, config.API)
	if c.AuthFailureBurst != 10 || c.AuthFailureRPS != 0.5 {
		t.Errorf("read %d / %g", c.AuthFailureBurst, c.AuthFailureRPS)
	}
	for _, kv := range []map[string]string{{"AUTH_FAILURE_BURST": "0"}, {"AUTH_FAILURE_BURST": "x"}, {"AUTH_FAILURE_RPS": "0"}, {"AUTH_FAILURE_RPS": "-1"}} {
		kv["JWT_SECRET"] = goodSecret
		if _, err := config.Load(env(kv), config.API); err == nil {
			t.Errorf("%v accepted", kv)
		}
	}
}

// DATABASE_URL may carry the pgx exec mode PgBouncer 1.18 needs
// (cache_describe) or the default; modes the tenant binding cannot run
// correctly are refused at start-up, not at the first jsonb write.
func TestLoad_DatabaseURLExecMode(t *testing.T) {
	t.Parallel()
	base := "postgres://tenantkit_app@pgbouncer:6432/tenantkit?sslmode=disable"
	for mode, ok := range map[string]bool{"": true, "cache_statement": true, "cache_describe": true,
		"exec": false, "simple_protocol": false, "describe_exec": false} {
		u := base
		if mode != "" {
			u += "&default_query_exec_mode=" + mode
		}
		_, err := config.Load(env(map[string]string{"DATABASE_URL": u, "JWT_SECRET": goodSecret}), config.API)
		if got := err == nil; got != ok {
			t.Errorf("default_query_exec_mode=%q: accepted %v, want %v (%v)", mode, got, ok, err)
		}
		if err != nil && !strings.Contains(err.Error(), "cache_describe") {
			t.Errorf("default_query_exec_mode=%q: %v does not name the mode to use", mode, err)
		}
	}
}
