package http_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/your-org/tenantkit/internal/apperr"
	"github.com/your-org/tenantkit/internal/tenancy"
	"github.com/your-org/tenantkit/internal/testenv"
)

// problemBody is the decoded RFC 9457 body of an error response.
type problemBody struct {
	Type     string              `json:"type"`
	Title    string              `json:"title"`
	Status   int                 `json:"status"`
	Detail   string              `json:"detail"`
	Code     apperr.Code         `json:"code"`
	Instance string              `json:"instance"`
	Errors   []apperr.FieldError `json:"errors"`
}

// leakMarkers must never appear in an error body: SQL, driver, library or runtime internals.
var leakMarkers = []string{"sql", "pgx", "pq:", "postgres", "goroutine", "panic", ".go:", "runtime",
	"signature is invalid", "token is malformed:", "token is unverifiable", "token has invalid",
	"illegal base64", "crypto/", "constraint", "relation ", "jsonb"}

// requireProblem asserts that res is a problem+json error with status and
// code, that its body is well-formed and shows no internals; it returns the body.
func requireProblem(t testing.TB, what string, res testenv.Response, status int, code apperr.Code) problemBody {
	t.Helper()
	if res.Status >= 500 && status < 500 {
		t.Errorf("%s: got %d (server error) for a client mistake: %s", what, res.Status, res.Body)
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		t.Errorf("%s: content type %q, want application/problem+json (body %s)", what, ct, res.Body)
	}
	var p problemBody
	if err := json.Unmarshal(res.Body, &p); err != nil {
		t.Errorf("%s: body is not JSON: %v: %s", what, err, res.Body)
		return p
	}
	if res.Status != status || p.Code != code {
		t.Errorf("%s: got %d %s, want %d %s (body %s)", what, res.Status, p.Code, status, code, res.Body)
	}
	if p.Status != res.Status || p.Type == "" || p.Title == "" {
		t.Errorf("%s: incomplete problem body %s", what, res.Body)
	}
	lower := strings.ToLower(p.Detail + " " + p.Title)
	for _, e := range p.Errors {
		lower += " " + strings.ToLower(e.Field+" "+e.Message)
	}
	for _, m := range leakMarkers {
		if strings.Contains(lower, m) {
			t.Errorf("%s: body leaks internals (%q): %s", what, m, res.Body)
		}
	}
	return p
}

// doReq sends a hand-built request (custom Host, chunked body...) through the stack.
func doReq(t testing.TB, s *testenv.Stack, req *http.Request) testenv.Response {
	t.Helper()
	resp, err := s.Server.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return testenv.Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// newReq builds a request to the stack; headers are pairs.
func newReq(t testing.TB, s *testenv.Stack, method, path string, body io.Reader, headers ...string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, s.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return req
}

// currentTenantID asserts GET /api/v1/tenant succeeds and returns the tenant's id.
func currentTenantID(t testing.TB, s *testenv.Stack, what, path string, headers ...string) string {
	t.Helper()
	res := s.Do(t, "GET", path, nil, headers...)
	if res.Status != http.StatusOK {
		t.Errorf("%s: GET %s: %d %s, want 200", what, path, res.Status, res.Body)
		return ""
	}
	var v struct{ ID, Identifier string }
	res.JSON(t, &v)
	return v.ID
}

func bearer(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

// claimsFor are valid claims for tenant id, expiring in an hour.
func claimsFor(id string) jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{"tenant_id": id, "sub": "user-1", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
}

func sign(t testing.TB, m jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(m, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// unsignedToken hand-crafts header.payload.signature with any alg header.
func unsignedToken(t testing.TB, header map[string]any, claims jwt.MapClaims, sig string) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	return enc(header) + "." + enc(claims) + "." + sig
}

type keys struct {
	rsa     *rsa.PrivateKey
	rsaPEM  []byte
	ec      *ecdsa.PrivateKey
	edPub   ed25519.PublicKey
	edPriv  ed25519.PrivateKey
	otherRS *rsa.PrivateKey
}

func newKeys(t testing.TB) keys {
	t.Helper()
	var k keys
	var err error
	if k.rsa, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	if k.otherRS, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	if k.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	if k.edPub, k.edPriv, err = ed25519.GenerateKey(rand.Reader); err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.rsa.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	k.rsaPEM = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	return k
}

func pubJWT(alg string, pub crypto.PublicKey) tenancy.JWTConfig {
	return tenancy.JWTConfig{Algorithm: alg, PublicKey: pub, TenantClaim: "tenant_id", Leeway: time.Second}
}

// TestResolution_ContractErrorTable drives every credential failure of the
// contract's error table through the real stack: each gets its 4xx problem, none a 500.
func TestResolution_ContractErrorTable(t *testing.T) {
	t.Parallel()
	s := testenv.NewStack(t, testenv.StackOptions{AuthFailureBurst: 1000} /* every row fails on purpose: not the throttle's test */)
	ctx := context.Background()
	k := newKeys(t)
	acme := s.Tenant(t, "acme", tenancy.TierStandard)
	prem := s.Tenant(t, "prem-co", tenancy.TierPremium)
	susp := s.Tenant(t, "dormant", tenancy.TierStandard)
	secret := []byte(testenv.JWTSecret)
	id := acme.ID.String()

	key, err := func() (string, error) { _, k, err := s.Store.CreateAPIKey(ctx, acme.ID, "ci"); return k, err }()
	if err != nil {
		t.Fatal(err)
	}
	revokedKey, revoked, err := s.Store.CreateAPIKey(ctx, acme.ID, "old")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Store.RevokeAPIKey(ctx, acme.ID, revokedKey.ID); err != nil {
		t.Fatal(err)
	}
	_, suspKey, err := s.Store.CreateAPIKey(ctx, susp.ID, "ci")
	if err != nil {
		t.Fatal(err)
	}
	if res := s.Do(t, "PATCH", "/admin/v1/tenants/"+susp.ID.String(), map[string]string{"status": "suspended"}, testenv.AsAdmin()...); res.Status != http.StatusOK {
		t.Fatalf("suspend: %d %s", res.Status, res.Body)
	}

	noExp := claimsFor(id)
	delete(noExp, "exp")
	expired := claimsFor(id)
	expired["exp"] = time.Now().Add(-time.Hour).Unix()
	noClaim := claimsFor(id)
	delete(noClaim, "tenant_id")
	emptyClaim := claimsFor(id)
	emptyClaim["tenant_id"] = ""
	numClaim := claimsFor(id)
	numClaim["tenant_id"] = 42
	stringExp := claimsFor(id)
	stringExp["exp"] = "tomorrow"
	valid := sign(t, jwt.SigningMethodHS256, secret, claimsFor(id))
	parts := strings.Split(valid, ".")

	type row struct {
		name    string
		headers []string
		status  int
		code    apperr.Code
	}
	rows := []row{
		{"no credentials", nil, 401, apperr.MissingCredentials},
		{"basic auth is no bearer", []string{"Authorization", "Basic dXNlcjpwYXNz"}, 401, apperr.MissingCredentials},
		{"X-Tenant-ID alone", []string{"X-Tenant-ID", id}, 401, apperr.MissingCredentials},
		{"garbage token", bearer("garbage"), 401, apperr.InvalidCredentials},
		{"garbage three parts", bearer("a.b.c"), 401, apperr.InvalidCredentials},
		{"empty bearer", []string{"Authorization", "Bearer "}, 401, apperr.MissingCredentials},
		{"blank bearer", []string{"Authorization", "Bearer    \t"}, 401, apperr.MissingCredentials},
		{"oversize token", bearer(strings.Repeat("a", 9000)), 401, apperr.InvalidCredentials},
		{"alg none", bearer(sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claimsFor(id))), 401, apperr.InvalidCredentials},
		{"alg NONE with HS signature", bearer(unsignedToken(t, map[string]any{"alg": "NONE", "typ": "JWT"}, claimsFor(id), parts[2])), 401, apperr.InvalidCredentials},
		{"alg none header on valid payload", bearer(unsignedToken(t, map[string]any{"alg": "none"}, claimsFor(id), "")), 401, apperr.InvalidCredentials},
		{"signature stripped", bearer(parts[0] + "." + parts[1] + "."), 401, apperr.InvalidCredentials},
		{"payload swapped", bearer(parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"tenant_id":"`+prem.ID.String()+`","exp":9999999999}`)) + "." + parts[2]), 401, apperr.InvalidCredentials},
		{"HS256 wrong secret", bearer(sign(t, jwt.SigningMethodHS256, []byte("another-secret-another-secret-0123456"), claimsFor(id))), 401, apperr.InvalidCredentials},
		{"HS512 with the right secret (algorithm pinned)", bearer(sign(t, jwt.SigningMethodHS512, secret, claimsFor(id))), 401, apperr.InvalidCredentials},
		{"RS256 to an HS256 server", bearer(sign(t, jwt.SigningMethodRS256, k.rsa, claimsFor(id))), 401, apperr.InvalidCredentials},
		{"ES256 to an HS256 server", bearer(sign(t, jwt.SigningMethodES256, k.ec, claimsFor(id))), 401, apperr.InvalidCredentials},
		{"expired", bearer(sign(t, jwt.SigningMethodHS256, secret, expired)), 401, apperr.InvalidCredentials},
		{"no exp", bearer(sign(t, jwt.SigningMethodHS256, secret, noExp)), 401, apperr.InvalidCredentials},
		{"exp not a number", bearer(sign(t, jwt.SigningMethodHS256, secret, stringExp)), 401, apperr.InvalidCredentials},
		{"tenant claim missing", bearer(sign(t, jwt.SigningMethodHS256, secret, noClaim)), 401, apperr.InvalidCredentials},
		{"tenant claim empty", bearer(sign(t, jwt.SigningMethodHS256, secret, emptyClaim)), 401, apperr.InvalidCredentials},
		{"tenant claim not a string", bearer(sign(t, jwt.SigningMethodHS256, secret, numClaim)), 401, apperr.InvalidCredentials},
		{"unknown tenant UUID", bearer(testenv.Token(t, uuid.NewString())), 404, apperr.TenantNotFound},
		{"suspended tenant (jwt)", bearer(testenv.Token(t, susp.ID.String())), 403, apperr.TenantSuspended},
		{"suspended tenant (api key)", []string{"X-API-Key", suspKey}, 403, apperr.TenantSuspended},
		{"revoked API key", []string{"X-API-Key", revoked}, 401, apperr.InvalidCredentials},
		{"long prefix of a valid API key", []string{"X-API-Key", key[:len(key)-1]}, 401, apperr.InvalidCredentials},
		{"short prefix of a valid API key", []string{"X-API-Key", key[:12]}, 401, apperr.InvalidCredentials},
		{"display prefix of a valid API key", []string{"X-API-Key", key[:len("tk_12345678")]}, 401, apperr.InvalidCredentials},
		{"valid API key with a suffix", []string{"X-API-Key", key + "x"}, 401, apperr.InvalidCredentials},
		{"well-formed unknown API key", []string{"X-API-Key", "tk_abcdefgh_" + strings.Repeat("Q", 43)}, 401, apperr.InvalidCredentials},
		{"API key with SQL", []string{"X-API-Key", "tk_' OR 1=1 --" + strings.Repeat("x", 30)}, 401, apperr.InvalidCredentials},
	}
	for _, r := range rows {
		for _, path := range []string{"/api/v1/tenant", "/api/v1/projects"} {
			res := s.Do(t, "GET", path, nil, r.headers...)
			requireProblem(t, r.name+" "+path, res, r.status, r.code)
			if r.status == 401 && res.Header.Get("WWW-Authenticate") == "" {
				t.Errorf("%s: 401 without WWW-Authenticate", r.name)
			}
		}
	}

	// The same tenant's valid credentials work, so the rows above failed for the reason named.
	for what, h := range map[string][]string{"jwt": bearer(valid), "api key": {"X-API-Key", key}} {
		if got := currentTenantID(t, s, what, "/api/v1/tenant", h...); got != id {
			t.Errorf("%s: resolved %q, want %s", what, got, id)
		}
	}
	if got := currentTenantID(t, s, "premium jwt", "/api/v1/tenant", testenv.AsTenant(t, prem)...); got != prem.ID.String() {
		t.Errorf("premium tenant resolved %q", got)
	}
}

// TestResolution_UnknownAndMalformedTenantClaimsLookAlike: a UUID naming no
// tenant and a claim that is no UUID at all (even a real tenant's
// identifier) get the same 404 body, apart from the instance.
func TestResolution_UnknownAndMalformedTenantClaimsLookAlike(t *testing.T) {
	t.Parallel()
	s := testenv.NewStack(t, testenv.StackOptions{})
	s.Tenant(t, "acme", tenancy.TierStandard)
	secret := []byte(testenv.JWTSecret)
	var bodies []problemBody
	for i, claim := range []string{uuid.NewString(), "acme", "not-a-uuid", "x;drop schema public", "{" + uuid.NewString() + "}",
		"urn:uuid:" + uuid.NewString(), strings.ReplaceAll(uuid.NewString(), "-", ""), "ünïcode", strings.Repeat("a", 40)} {
		c := claimsFor("")
		c["tenant_id"] = claim
		path := "/api/v1/tenant"
		if i%2 == 1 {
			path = "/api/v1/projects"
		}
		p := requireProblem(t, "claim "+claim, s.Do(t, "GET", path, nil, bearer(sign(t, jwt.SigningMethodHS256, secret, c))...), 404, apperr.TenantNotFound)
		if p.Instance != path {
			t.Errorf("claim %q: instance %q, want %q", claim, p.Instance, path)
		}
		p.Instance = ""
		bodies = append(bodies, p)
	}
	for i := 1; i < len(bodies); i++ {
		if !equalProblems(bodies[0], bodies[i]) {
			t.Errorf("404 bodies differ: %+v vs %+v", bodies[0], bodies[i])
		}
	}
}

func equalProblems(a, b problemBody) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

// TestResolution_SuspendedTenantForbiddenUntilReactivated suspends and
// reactivates a tenant of each tier over the admin API.
func TestResolution_SuspendedTenantForbiddenUntilReactivated(t *testing.T) {
	t.Parallel()
	s := testenv.NewStack(t, testenv.StackOptions{})
	for _, tier := range []tenancy.Tier{tenancy.TierStandard, tenancy.TierPremium} {
		tn := s.Tenant(t, "sleepy-"+string(tier), tier)
		_, key, err := s.Store.CreateAPIKey(context.Background(), tn.ID, "k")
		if err != nil {
			t.Fatal(err)
		}
		creds := map[string][]string{"jwt": testenv.AsTenant(t, tn), "api key": {"X-API-Key", key}}
		setStatus := func(status string) {
			t.Helper()
			res := s.Do(t, "PATCH", "/admin/v1/tenants/"+tn.ID.String(), map[string]string{"status": status}, testenv.AsAdmin()...)
			var got tenancy.Tenant
			res.JSON(t, &got)
			if res.Status != http.StatusOK || string(got.Status) != status {
				t.Fatalf("PATCH status=%s: %d %s", status, res.Status, res.Body)
			}
		}
		setStatus("suspended")
		for what, h := range creds {
			for _, path := range []string{"/api/v1/tenant", "/api/v1/projects"} {
				requireProblem(t, string(tier)+" suspended "+what+" "+path, s.Do(t, "GET", path, nil, h...), 403, apperr.TenantSuspended)
			}
			requireProblem(t, string(tier)+" suspended POST "+what, s.Do(t, "POST", "/api/v1/projects", map[string]string{"name": "x"}, h...), 403, apperr.TenantSuspended)
		}
		setStatus("active")
		for what, h := range creds {
			if got := currentTenantID(t, s, string(tier)+" reactivated "+what, "/api/v1/tenant", h...); got != tn.ID.String() {
				t.Errorf("%s reactivated %s resolved %q", tier, what, got)
			}
			if res := s.Do(t, "POST", "/api/v1/projects", map[string]string{"name": "back"}, h...); res.Status != http.StatusCreated {
				t.Errorf("%s reactivated %s: create project %d %s", tier, what, res.Status, res.Body)
			}
		}
	}
}

// TestResolution_AsymmetricAlgorithms: RS256, ES256 and EdDSA servers accept
// their own tokens and refuse every confusion, including an HS256 token whose
// HMAC secret is the server's RSA public key in PEM form.
func TestResolution_AsymmetricAlgorithms(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	k := newKeys(t)
	tn := d.Tenant(t, "asym", tenancy.TierStandard)
	id := tn.ID.String()
	secret := []byte(testenv.JWTSecret)

	rs := testenv.NewStackOn(t, d, testenv.StackOptions{JWT: pubJWT("RS256", &k.rsa.PublicKey)})
	es := testenv.NewStackOn(t, d, testenv.StackOptions{JWT: pubJWT("ES256", &k.ec.PublicKey)})
	ed := testenv.NewStackOn(t, d, testenv.StackOptions{JWT: pubJWT("EdDSA", k.edPub)})

	good := map[string]struct {
		s   *testenv.Stack
		tok string
	}{
		"RS256": {rs, sign(t, jwt.SigningMethodRS256, k.rsa, claimsFor(id))},
		"ES256": {es, sign(t, jwt.SigningMethodES256, k.ec, claimsFor(id))},
		"EdDSA": {ed, sign(t, jwt.SigningMethodEdDSA, k.edPriv, claimsFor(id))},
	}
	for alg, g := range good {
		if got := currentTenantID(t, g.s, alg, "/api/v1/tenant", bearer(g.tok)...); got != id {
			t.Errorf("%s server resolved %q, want %s", alg, got, id)
		}
	}

	pubDER, _ := x509.MarshalPKIXPublicKey(&k.rsa.PublicKey)
	bad := []struct {
		name string
		s    *testenv.Stack
		tok  string
	}{
		{"HS256 forged with the RSA public key PEM", rs, sign(t, jwt.SigningMethodHS256, k.rsaPEM, claimsFor(id))},
		{"HS256 forged with the RSA public key DER", rs, sign(t, jwt.SigningMethodHS256, pubDER, claimsFor(id))},
		{"HS256 with the HS secret", rs, sign(t, jwt.SigningMethodHS256, secret, claimsFor(id))},
		{"RS256 by another key", rs, sign(t, jwt.SigningMethodRS256, k.otherRS, claimsFor(id))},
		{"PS256 by the right key", rs, sign(t, jwt.SigningMethodPS256, k.rsa, claimsFor(id))},
		{"RS512 by the right key", rs, sign(t, jwt.SigningMethodRS512, k.rsa, claimsFor(id))},
		{"alg none", rs, sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claimsFor(id))},
		{"RS256 token to ES256 server", es, good["RS256"].tok},
		{"EdDSA token to ES256 server", es, good["EdDSA"].tok},
		{"ES256 token to EdDSA server", ed, good["ES256"].tok},
		{"HS256 forged with the Ed25519 public key", ed, sign(t, jwt.SigningMethodHS256, []byte(k.edPub), claimsFor(id))},
		{"RS256 token with no exp", rs, sign(t, jwt.SigningMethodRS256, k.rsa, jwt.MapClaims{"tenant_id": id})},
	}
	for _, b := range bad {
		requireProblem(t, b.name, b.s.Do(t, "GET", "/api/v1/tenant", nil, bearer(b.tok)...), 401, apperr.InvalidCredentials)
	}
}

// TestResolution_IssuerAudienceLeeway checks iss and aud when configured and
// allows clock skew up to the leeway, not beyond.
func TestResolution_IssuerAudienceLeeway(t *testing.T) {
	t.Parallel()
	secret := []byte(testenv.JWTSecret)
	s := testenv.NewStack(t, testenv.StackOptions{JWT: tenancy.JWTConfig{Algorithm: "HS256", Secret: secret,
		TenantClaim: "org", Issuer: "https://id.example.test", Audience: "tenantkit-api", Leeway: 30 * time.Second}})
	tn := s.Tenant(t, "claims-co", tenancy.TierStandard)
	now := time.Now()
	base := func(mut func(jwt.MapClaims)) string {
		c := jwt.MapClaims{"org": tn.ID.String(), "iss": "https://id.example.test", "aud": "tenantkit-api",
			"exp": now.Add(time.Hour).Unix()}
		mut(c)
		return sign(t, jwt.SigningMethodHS256, secret, c)
	}
	ok := map[string]string{
		"all claims right":          base(func(jwt.MapClaims) {}),
		"aud list containing ours":  base(func(c jwt.MapClaims) { c["aud"] = []string{"other", "tenantkit-api"} }),
		"expired within the leeway": base(func(c jwt.MapClaims) { c["exp"] = now.Add(-10 * time.Second).Unix() }),
		"nbf within the leeway":     base(func(c jwt.MapClaims) { c["nbf"] = now.Add(10 * time.Second).Unix() }),
	}
	for what, tok := range ok {
		if got := currentTenantID(t, s, what, "/api/v1/tenant", bearer(tok)...); got != tn.ID.String() {
			t.Errorf("%s: resolved %q", what, got)
		}
	}
	bad := map[string]string{
		"no iss":                 base(func(c jwt.MapClaims) { delete(c, "iss") }),
		"wrong iss":              base(func(c jwt.MapClaims) { c["iss"] = "https://evil.example.test" }),
		"no aud":                 base(func(c jwt.MapClaims) { delete(c, "aud") }),
		"wrong aud":              base(func(c jwt.MapClaims) { c["aud"] = "another-api" }),
		"aud list without ours":  base(func(c jwt.MapClaims) { c["aud"] = []string{"a", "b"} }),
		"expired beyond leeway":  base(func(c jwt.MapClaims) { c["exp"] = now.Add(-2 * time.Minute).Unix() }),
		"nbf beyond leeway":      base(func(c jwt.MapClaims) { c["nbf"] = now.Add(2 * time.Minute).Unix() }),
		"no exp":                 base(func(c jwt.MapClaims) { delete(c, "exp") }),
		"default claim name":     base(func(c jwt.MapClaims) { c["tenant_id"] = c["org"]; delete(c, "org") }),
		"iss differs in case":    base(func(c jwt.MapClaims) { c["iss"] = "https://ID.example.test" }),
		"aud is a number":        base(func(c jwt.MapClaims) { c["aud"] = 7 }),
		"iss is an object":       base(func(c jwt.MapClaims) { c["iss"] = map[string]string{"x": "y"} }),
		"exp far in the past":    base(func(c jwt.MapClaims) { c["exp"] = 1 }),
		"exp negative":           base(func(c jwt.MapClaims) { c["exp"] = -1 }),
		"exp is a float in past": base(func(c jwt.MapClaims) { c["exp"] = float64(now.Unix()) - 3600.5 }),
	}
	for what, tok := range bad {
		requireProblem(t, what, s.Do(t, "GET", "/api/v1/tenant", nil, bearer(tok)...), 401, apperr.InvalidCredentials)
	}
}

// TestChain_FirstPresentCredentialDecides: with jwt,api_key the X-Tenant-ID
// header is never consulted, and a present but invalid bearer is not rescued
// by a valid API key.
func TestChain_FirstPresentCredentialDecides(t *testing.T) {
	t.Parallel()
	s := testenv.NewStack(t, testenv.StackOptions{Strategies: []string{"jwt", "api_key"}})
	a := s.Tenant(t, "alpha", tenancy.TierStandard)
	b := s.Tenant(t, "bravo", tenancy.TierPremium)
	_, keyB, err := s.Store.CreateAPIKey(context.Background(), b.ID, "k")
	if err != nil {
		t.Fatal(err)
	}
	for _, hv := range []string{a.ID.String(), "alpha"} {
		requireProblem(t, "X-Tenant-ID "+hv, s.Do(t, "GET", "/api/v1/tenant", nil, "X-Tenant-ID", hv), 401, apperr.MissingCredentials)
	}
	cases := []struct {
		name    string
		headers []string
		want    string
	}{
		{"jwt wins over X-Tenant-ID", append(testenv.AsTenant(t, a), "X-Tenant-ID", b.ID.String()), a.ID.String()},
		{"api key wins over X-Tenant-ID", []string{"X-API-Key", keyB, "X-Tenant-ID", a.ID.String()}, b.ID.String()},
		{"jwt wins over api key", append(testenv.AsTenant(t, a), "X-API-Key", keyB), a.ID.String()},
		{"non-bearer Authorization falls through to api key", []string{"Authorization", "Basic eDp5", "X-API-Key", keyB}, b.ID.String()},
	}
	for _, c := range cases {
		if got := currentTenantID(t, s, c.name, "/api/v1/tenant", c.headers...); got != c.want {
			t.Errorf("%s: resolved %q, want %s", c.name, got, c.want)
		}
	}
	refused := map[string][]string{
		"invalid bearer + valid api key":       {"Authorization", "Bearer garbage", "X-API-Key", keyB},
		"expired bearer + valid api key":       {"Authorization", "Bearer " + sign(t, jwt.SigningMethodHS256, []byte(testenv.JWTSecret), jwt.MapClaims{"tenant_id": b.ID.String(), "exp": 1}), "X-API-Key", keyB},
		"invalid api key + valid X-Tenant-ID":  {"X-API-Key", "tk_nope", "X-Tenant-ID", a.ID.String()},
		"unknown-tenant bearer + valid apikey": {"Authorization", "Bearer " + testenv.Token(t, uuid.NewString()), "X-API-Key", keyB},
	}
	for what, h := range refused {
		res := s.Do(t, "GET", "/api/v1/tenant", nil, h...)
		if res.Status == http.StatusOK {
			t.Errorf("%s: resolved (%s), want refused by the first present credential", what, res.Body)
			continue
		}
		want, code := 401, apperr.InvalidCredentials
		if strings.HasPrefix(what, "unknown-tenant") {
			want, code = 404, apperr.TenantNotFound
		}
		requireProblem(t, what, res, want, code)
	}
}

// TestSkipPaths_MatchWholeSegments: /health is skipped, /healthz is resolved
// like any other path and so refused without credentials.
func TestSkipPaths_MatchWholeSegments(t *testing.T) {
	t.Parallel()
	s := testenv.NewStack(t, testenv.StackOptions{})
	for _, p := range []string{"/health", "/ready", "/metrics"} {
		if res := s.Do(t, "GET", p, nil); res.Status != http.StatusOK {
			t.Errorf("GET %s without credentials: %d %s, want 200", p, res.Status, res.Body)
		}
	}
	// Skipped but unrouted: 404 not_found, not a credentials error.
	for _, p := range []string{"/health/deep", "/docs", "/admin"} {
		requireProblem(t, p, s.Do(t, "GET", p, nil), 404, apperr.NotFound)
	}
	for _, p := range []string{"/healthz", "/health-check", "/readyz", "/metricsx", "/docsx", "/administrator", "/adminx/v1/tenants", "/api/v1/health", "/", "/nope"} {
		requireProblem(t, p, s.Do(t, "GET", p, nil), 401, apperr.MissingCredentials)
	}
}

// TestOptions_NotTenantResolved: CORS preflights carry no credentials and are
// never refused for lacking them.
func TestOptions_NotTenantResolved(t *testing.T) {
	t.Parallel()
	s := testenv.NewStack(t, testenv.StackOptions{})
	for _, p := range []string{"/api/v1/projects", "/api/v1/tenant", "/api/v1/projects/" + uuid.NewString(), "/healthz"} {
		res := s.Do(t, "OPTIONS", p, nil, "Origin", "https://app.example.test", "Access-Control-Request-Method", "POST")
		if res.Status == http.StatusUnauthorized || res.Status >= 500 {
			t.Errorf("OPTIONS %s: %d %s, want no credentials check", p, res.Status, res.Body)
		}
	}
	// Any other method on the same path is resolved.
	requireProblem(t, "GET after OPTIONS", s.Do(t, "GET", "/api/v1/projects", nil), 401, apperr.MissingCredentials)
}
