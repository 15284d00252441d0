package tenancy_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/your-org/tenantkit/internal/apperr"
	"github.com/your-org/tenantkit/internal/tenancy"
)

const jwtTestSecret = "unit-secret-unit-secret-unit-secret-0123"

func jwtSign(t testing.TB, m jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(m, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func jwtClaims(id string) jwt.MapClaims {
	return jwt.MapClaims{"tenant_id": id, "exp": time.Now().Add(time.Hour).Unix()}
}

func b64json(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func newResolver(t testing.TB, cfg tenancy.JWTConfig, l tenancy.Lookup) *tenancy.JWTResolver {
	t.Helper()
	r, err := tenancy.NewJWTResolver(cfg, l)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestJWT_TenantIDRefusesForgedAndMalformedTokens(t *testing.T) {
	t.Parallel()
	r := newResolver(t, tenancy.JWTConfig{Algorithm: "HS256", Secret: []byte(jwtTestSecret), Leeway: time.Second}, nil)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	id := uuid.New()
	valid := jwtSign(t, jwt.SigningMethodHS256, []byte(jwtTestSecret), jwtClaims(id.String()))
	got, err := r.TenantID(valid)
	if err != nil || got != id {
		t.Fatalf("valid token: %v %v", got, err)
	}
	parts := strings.Split(valid, ".")
	with := func(mut func(jwt.MapClaims)) string {
		c := jwtClaims(id.String())
		mut(c)
		return jwtSign(t, jwt.SigningMethodHS256, []byte(jwtTestSecret), c)
	}
	invalid := map[string]string{
		"empty":                 "",
		"garbage":               "garbage",
		"two parts":             parts[0] + "." + parts[1],
		"four parts":            valid + ".x",
		"oversize":              valid + strings.Repeat("A", 8192),
		"alg none":              jwtSign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, jwtClaims(id.String())),
		"alg none, signature":   b64json(t, map[string]string{"alg": "none"}) + "." + parts[1] + "." + parts[2],
		"alg None":              b64json(t, map[string]string{"alg": "None"}) + "." + parts[1] + ".",
		"alg missing":           b64json(t, map[string]string{"typ": "JWT"}) + "." + parts[1] + "." + parts[2],
		"signature stripped":    parts[0] + "." + parts[1] + ".",
		"signature flipped":     parts[0] + "." + parts[1] + "." + flip(parts[2]),
		"payload of another":    parts[0] + "." + b64json(t, jwtClaims(uuid.NewString())) + "." + parts[2],
		"wrong secret":          jwtSign(t, jwt.SigningMethodHS256, []byte(strings.Repeat("w", 40)), jwtClaims(id.String())),
		"HS384 same secret":     jwtSign(t, jwt.SigningMethodHS384, []byte(jwtTestSecret), jwtClaims(id.String())),
		"RS256":                 jwtSign(t, jwt.SigningMethodRS256, rsaKey, jwtClaims(id.String())),
		"expired":               with(func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Minute).Unix() }),
		"no exp":                with(func(c jwt.MapClaims) { delete(c, "exp") }),
		"exp string":            with(func(c jwt.MapClaims) { c["exp"] = "never" }),
		"exp null":              with(func(c jwt.MapClaims) { c["exp"] = nil }),
		"nbf in the future":     with(func(c jwt.MapClaims) { c["nbf"] = time.Now().Add(time.Hour).Unix() }),
		"no tenant claim":       with(func(c jwt.MapClaims) { delete(c, "tenant_id") }),
		"empty tenant claim":    with(func(c jwt.MapClaims) { c["tenant_id"] = "" }),
		"numeric tenant claim":  with(func(c jwt.MapClaims) { c["tenant_id"] = 12 }),
		"array tenant claim":    with(func(c jwt.MapClaims) { c["tenant_id"] = []string{id.String()} }),
		"object tenant claim":   with(func(c jwt.MapClaims) { c["tenant_id"] = map[string]string{"id": id.String()} }),
		"claims not an object":  parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`["x"]`)) + "." + parts[2],
		"header not JSON":       base64.RawURLEncoding.EncodeToString([]byte("{")) + "." + parts[1] + "." + parts[2],
		"padded base64 segment": parts[0] + "=." + parts[1] + "." + parts[2],
	}
	for what, tok := range invalid {
		_, err := r.TenantID(tok)
		if c := apperr.CodeOf(err); c != apperr.InvalidCredentials {
			t.Errorf("%s: code %q (%v), want invalid_credentials", what, c, err)
		}
	}
	notFound := map[string]string{
		"identifier claim":   with(func(c jwt.MapClaims) { c["tenant_id"] = "acme" }),
		"braced uuid claim":  with(func(c jwt.MapClaims) { c["tenant_id"] = "{" + id.String() + "}" }),
		"urn uuid claim":     with(func(c jwt.MapClaims) { c["tenant_id"] = "urn:uuid:" + id.String() }),
		"dashless uuid":      with(func(c jwt.MapClaims) { c["tenant_id"] = strings.ReplaceAll(id.String(), "-", "") }),
		"sql in claim":       with(func(c jwt.MapClaims) { c["tenant_id"] = "x'; drop schema public; --" }),
		"uuid plus trailing": with(func(c jwt.MapClaims) { c["tenant_id"] = id.String() + " " }),
	}
	for what, tok := range notFound {
		_, err := r.TenantID(tok)
		if c := apperr.CodeOf(err); c != apperr.TenantNotFound {
			t.Errorf("%s: code %q (%v), want tenant_not_found", what, c, err)
		}
	}
	// The client-facing detail never carries the library's reason.
	_, err = r.TenantID(invalid["wrong secret"])
	if e, _ := apperr.As(err); e == nil || strings.Contains(e.Detail, "signature") {
		t.Errorf("detail exposes the verification failure: %+v", e)
	}
}

// flip changes the first character of a base64url segment.
func flip(s string) string {
	if s[0] == 'A' {
		return "B" + s[1:]
	}
	return "A" + s[1:]
}

func TestJWT_AsymmetricAlgorithmsAndConfusion(t *testing.T) {
	t.Parallel()
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ec384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	edPub, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	rsaPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	id := uuid.New()
	c := jwtClaims(id.String())

	rs := newResolver(t, tenancy.JWTConfig{Algorithm: "RS256", PublicKey: &rsaKey.PublicKey}, nil)
	es := newResolver(t, tenancy.JWTConfig{Algorithm: "ES256", PublicKey: &ecKey.PublicKey}, nil)
	ed := newResolver(t, tenancy.JWTConfig{Algorithm: "EdDSA", PublicKey: edPub}, nil)
	ok := []struct {
		r   *tenancy.JWTResolver
		tok string
	}{
		{rs, jwtSign(t, jwt.SigningMethodRS256, rsaKey, c)},
		{es, jwtSign(t, jwt.SigningMethodES256, ecKey, c)},
		{ed, jwtSign(t, jwt.SigningMethodEdDSA, edPriv, c)},
	}
	for i, o := range ok {
		if got, err := o.r.TenantID(o.tok); err != nil || got != id {
			t.Errorf("algorithm %d: %v %v", i, got, err)
		}
	}
	bad := map[string]struct {
		r   *tenancy.JWTResolver
		tok string
	}{
		"HS256 keyed with the RSA PEM":    {rs, jwtSign(t, jwt.SigningMethodHS256, rsaPEM, c)},
		"HS256 keyed with the RSA DER":    {rs, jwtSign(t, jwt.SigningMethodHS256, der, c)},
		"HS256 keyed with the PEM, no LF": {rs, jwtSign(t, jwt.SigningMethodHS256, []byte(strings.TrimSpace(string(rsaPEM))), c)},
		"PS256 by the RSA key":            {rs, jwtSign(t, jwt.SigningMethodPS256, rsaKey, c)},
		"ES384 to ES256":                  {es, jwtSign(t, jwt.SigningMethodES384, ec384, c)},
		"ES256 by another key":            {es, jwtSign(t, jwt.SigningMethodES256, otherP256(t), c)},
		"HS256 keyed with Ed25519 pub":    {ed, jwtSign(t, jwt.SigningMethodHS256, []byte(edPub), c)},
		"RS256 to EdDSA":                  {ed, ok[0].tok},
		"EdDSA to RS256":                  {rs, ok[2].tok},
		"none to EdDSA":                   {ed, jwtSign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, c)},
	}
	for what, b := range bad {
		if _, err := b.r.TenantID(b.tok); apperr.CodeOf(err) != apperr.InvalidCredentials {
			t.Errorf("%s: %v, want invalid_credentials", what, err)
		}
	}
}

func otherP256(t testing.TB) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestJWT_IssuerAudienceLeewayWhenConfigured(t *testing.T) {
	t.Parallel()
	secret := []byte(jwtTestSecret)
	id := uuid.New()
	now := time.Now()
	tok := func(mut func(jwt.MapClaims)) string {
		c := jwt.MapClaims{"tid": id.String(), "iss": "issuer-a", "aud": []string{"api"}, "exp": now.Add(time.Hour).Unix()}
		mut(c)
		return jwtSign(t, jwt.SigningMethodHS256, secret, c)
	}
	strict := newResolver(t, tenancy.JWTConfig{Algorithm: "HS256", Secret: secret, TenantClaim: "tid", Issuer: "issuer-a", Audience: "api", Leeway: 5 * time.Second}, nil)
	lax := newResolver(t, tenancy.JWTConfig{Algorithm: "HS256", Secret: secret, TenantClaim: "tid"}, nil)
	cases := []struct {
		what          string
		tok           string
		strict, laxOK bool
	}{
		{"all right", tok(func(jwt.MapClaims) {}), true, true},
		{"no iss", tok(func(c jwt.MapClaims) { delete(c, "iss") }), false, true},
		{"other iss", tok(func(c jwt.MapClaims) { c["iss"] = "issuer-b" }), false, true},
		{"no aud", tok(func(c jwt.MapClaims) { delete(c, "aud") }), false, true},
		{"other aud", tok(func(c jwt.MapClaims) { c["aud"] = "web" }), false, true},
		{"aud string", tok(func(c jwt.MapClaims) { c["aud"] = "api" }), true, true},
		{"expired 3s ago", tok(func(c jwt.MapClaims) { c["exp"] = now.Add(-3 * time.Second).Unix() }), true, false},
		{"expired 60s ago", tok(func(c jwt.MapClaims) { c["exp"] = now.Add(-time.Minute).Unix() }), false, false},
	}
	for _, c := range cases {
		if _, err := strict.TenantID(c.tok); (err == nil) != c.strict {
			t.Errorf("strict %s: err=%v, want ok=%v", c.what, err, c.strict)
		}
		if _, err := lax.TenantID(c.tok); (err == nil) != c.laxOK {
			t.Errorf("lax %s: err=%v, want ok=%v", c.what, err, c.laxOK)
		}
	}
}

func TestNewJWTResolver_RefusesUnsafeConfiguration(t *testing.T) {
	t.Parallel()
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	for what, cfg := range map[string]tenancy.JWTConfig{
		"ES256 with an RSA key":    {Algorithm: "ES256", PublicKey: &rsaKey.PublicKey},
		"ES256 with a P-384 key":   {Algorithm: "ES256", PublicKey: &p384.PublicKey},
		"RS256 with an EC key":     {Algorithm: "RS256", PublicKey: &p384.PublicKey},
		"RS256 with Ed25519":       {Algorithm: "RS256", PublicKey: edPub},
		"EdDSA with an RSA key":    {Algorithm: "EdDSA", PublicKey: &rsaKey.PublicKey},
		"EdDSA with key bytes":     {Algorithm: "EdDSA", PublicKey: []byte(edPub)},
		"RS256 with a private key": {Algorithm: "RS256", PublicKey: rsaKey},
		"short HS secret":          {Algorithm: "HS256", Secret: []byte("too-short")},
		"no HS secret":             {Algorithm: "HS512"},
		"RS256 without a key":      {Algorithm: "RS256"},
		"ES256 without a key":      {Algorithm: "ES256"},
		"EdDSA without a key":      {Algorithm: "EdDSA"},
		"none":                     {Algorithm: "none", Secret: []byte(jwtTestSecret)},
		"empty algorithm":          {Secret: []byte(jwtTestSecret)},
		"PS256":                    {Algorithm: "PS256", PublicKey: &rsaKey.PublicKey},
		"lower-case hs256":         {Algorithm: "hs256", Secret: []byte(jwtTestSecret)},
	} {
		if _, err := tenancy.NewJWTResolver(cfg, nil); err == nil {
			t.Errorf("%s: accepted", what)
		}
	}
}

func TestBearerToken(t *testing.T) {
	t.Parallel()
	for header, want := range map[string]string{
		"Bearer abc": "abc", "bearer abc": "abc", "BEARER  abc ": "abc",
		"": "", "Bearer": "", "Bearer ": "", "Bearer    ": "", "Basic abc": "", "Bearerabc": "", "Token abc": "",
	} {
		r, _ := http.NewRequest("GET", "/", nil)
		r.Header.Set("Authorization", header)
		got, ok := tenancy.BearerToken(r)
		if got != want || ok != (want != "") {
			t.Errorf("BearerToken(%q) = %q, %v; want %q, %v", header, got, ok, want, want != "")
		}
	}
}

// TestJWTResolver_ResolveMapsTheLookup: a verified id naming no tenant is
// tenant_not_found; other lookup failures are not disguised as client errors.
func TestJWTResolver_ResolveMapsTheLookup(t *testing.T) {
	t.Parallel()
	known := &tenancy.Tenant{ID: uuid.New(), Identifier: "acme", Status: tenancy.StatusActive}
	l := newLookupSpy(known)
	r := newResolver(t, tenancy.JWTConfig{Algorithm: "HS256", Secret: []byte(jwtTestSecret)}, l)
	req := func(tok string) *http.Request {
		q, _ := http.NewRequest("GET", "/", nil)
		if tok != "" {
			q.Header.Set("Authorization", "Bearer "+tok)
		}
		return q
	}
	if got, err := r.Resolve(req(jwtSign(t, jwt.SigningMethodHS256, []byte(jwtTestSecret), jwtClaims(known.ID.String())))); err != nil || got != known {
		t.Errorf("known tenant: %v %v", got, err)
	}
	if _, err := r.Resolve(req(jwtSign(t, jwt.SigningMethodHS256, []byte(jwtTestSecret), jwtClaims(uuid.NewString())))); apperr.CodeOf(err) != apperr.TenantNotFound {
		t.Errorf("unknown tenant: %v", err)
	}
	if _, err := r.Resolve(req("")); apperr.CodeOf(err) != apperr.MissingCredentials {
		t.Errorf("no token: %v", err)
	}
	calls := l.count()
	if _, err := r.Resolve(req("forged.token.here")); apperr.CodeOf(err) != apperr.InvalidCredentials || l.count() != calls {
		t.Errorf("forged token: %v, lookups %d -> %d (a forged token must not reach the store)", err, calls, l.count())
	}
	l.fail = errors.New("connection refused")
	if _, err := r.Resolve(req(jwtSign(t, jwt.SigningMethodHS256, []byte(jwtTestSecret), jwtClaims(known.ID.String())))); apperr.CodeOf(err) != apperr.Internal {
		t.Errorf("store failure: code %s (%v), want internal", apperr.CodeOf(err), err)
	}
}

func TestSignHS_RoundTrips(t *testing.T) {
	t.Parallel()
	id := uuid.New()
	for _, alg := range []string{"HS256", "HS384", "HS512"} {
		tok, err := tenancy.SignHS(alg, []byte(jwtTestSecret), "org", id, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		r := newResolver(t, tenancy.JWTConfig{Algorithm: alg, Secret: []byte(jwtTestSecret), TenantClaim: "org"}, nil)
		if got, err := r.TenantID(tok); err != nil || got != id {
			t.Errorf("%s: %v %v", alg, got, err)
		}
	}
	if _, err := tenancy.SignHS("XX1", []byte(jwtTestSecret), "org", id, time.Minute); err == nil {
		t.Error("SignHS accepted an unknown algorithm")
	}
	// Expired tokens from SignHS are refused.
	tok, _ := tenancy.SignHS("HS256", []byte(jwtTestSecret), "tenant_id", id, -time.Hour)
	if _, err := newResolver(t, tenancy.JWTConfig{Algorithm: "HS256", Secret: []byte(jwtTestSecret)}, nil).TenantID(tok); err == nil {
		t.Error("expired SignHS token accepted")
	}
}

func TestJWT_RememberedTokenStillExpires(t *testing.T) {
	t.Parallel()
	r := newResolver(t, tenancy.JWTConfig{Algorithm: "HS256", Secret: []byte(jwtTestSecret)}, nil)
	id := uuid.New()
	exp := time.Now().Add(1500 * time.Millisecond).Unix()
	tok := jwtSign(t, jwt.SigningMethodHS256, []byte(jwtTestSecret), jwt.MapClaims{"tenant_id": id.String(), "exp": exp})
	for i := 0; i < 2; i++ { // the second call is answered from the verified-token cache
		if got, err := r.TenantID(tok); err != nil || got != id {
			t.Fatalf("call %d: %v %v, want %s", i, got, err, id)
		}
	}
	// A token differing in one signature character is never answered from the cache.
	i := len(tok) - 5
	c := byte('A')
	if tok[i] == c {
		c = 'B'
	}
	if _, err := r.TenantID(tok[:i] + string(c) + tok[i+1:]); err == nil {
		t.Fatal("tampered token accepted")
	}
	time.Sleep(time.Until(time.Unix(exp, 0)) + 50*time.Millisecond)
	if _, err := r.TenantID(tok); apperr.CodeOf(err) != apperr.InvalidCredentials {
		t.Fatalf("expired remembered token: %v, want invalid_credentials", err)
	}
}
