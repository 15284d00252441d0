package tenancy_test

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/your-org/tenantkit/internal/apperr"
	"github.com/your-org/tenantkit/internal/tenancy"
)

// The fuzz keys are fixed so that testdata/fuzz holds validly signed seeds
// (regenerate those if these change).
const fuzzSecret = "fuzz-secret-fuzz-secret-fuzz-secret-0123"

var fuzzEdKey = ed25519.NewKeyFromSeed([]byte("tenantkit-fuzz-ed25519-seed-0001"))

// contractIdentifier is docs/contract.md's identifier rule, compiled here on its own.
var contractIdentifier = regexp.MustCompile(`^[a-z][a-z0-9-]{1,30}[a-z0-9]$`)

// handIdentifier is the same rule written without regular expressions.
func handIdentifier(s string) bool {
	if len(s) < 3 || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		lower, digit := c >= 'a' && c <= 'z', c >= '0' && c <= '9'
		switch {
		case i == 0 && !lower:
			return false
		case i == len(s)-1 && !lower && !digit:
			return false
		case !lower && !digit && c != '-':
			return false
		}
	}
	return true
}

var safeSchema = regexp.MustCompile(`^tenant_[a-z][a-z0-9_]{1,30}[a-z0-9]$`)

func FuzzValidIdentifier(f *testing.F) {
	for _, s := range append([]string{"acme", "a-b", "abc", "a1", "a--b", strings.Repeat("z", 32)}, hostileIdentifiers...) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := tenancy.ValidIdentifier(s)
		if want := contractIdentifier.MatchString(s); got != want {
			t.Fatalf("ValidIdentifier(%q) = %v, contract regex says %v", s, got, want)
		}
		if want := handIdentifier(s); got != want {
			t.Fatalf("ValidIdentifier(%q) = %v, hand check says %v", s, got, want)
		}
		err := tenancy.ValidateIdentifier(s)
		if (err == nil) != got {
			t.Fatalf("ValidateIdentifier(%q) = %v disagrees with ValidIdentifier = %v", s, err, got)
		}
		if err != nil {
			if e, ok := apperr.As(err); !ok || e.Code != apperr.ValidationFailed || len(e.Fields) != 1 || e.Fields[0].Field != "identifier" {
				t.Fatalf("ValidateIdentifier(%q) = %v, want validation_failed on identifier", s, err)
			}
			return
		}
		// A valid identifier always makes a safe, unambiguous schema name.
		schema := tenancy.SchemaName(s)
		if !safeSchema.MatchString(schema) || len(schema) > 63 {
			t.Fatalf("SchemaName(%q) = %q is not a safe Postgres identifier", s, schema)
		}
		if q := tenancy.QuoteIdent(schema); q != `"`+schema+`"` {
			t.Fatalf("QuoteIdent(%q) = %s", schema, q)
		}
		tn := tenancy.Tenant{Identifier: s, Isolation: tenancy.IsolationSchema}
		if tn.Schema() != schema {
			t.Fatalf("Tenant.Schema() = %q, want %q", tn.Schema(), schema)
		}
	})
}

// FuzzJWTTenantID: TenantID never panics, and accepts a token only if an
// independent check finds it signed with the pinned algorithm and key, with
// an exp and the tenant id it returns; forged tokens never get as far as
// tenant_not_found either.
func FuzzJWTTenantID(f *testing.F) {
	hs, err := tenancy.NewJWTResolver(tenancy.JWTConfig{Algorithm: "HS256", Secret: []byte(fuzzSecret), Leeway: time.Minute}, nil)
	if err != nil {
		f.Fatal(err)
	}
	ed, err := tenancy.NewJWTResolver(tenancy.JWTConfig{Algorithm: "EdDSA", PublicKey: fuzzEdKey.Public()}, nil)
	if err != nil {
		f.Fatal(err)
	}
	id := uuid.NewString()
	exp := time.Now().Add(time.Hour).Unix()
	for _, c := range []jwt.MapClaims{{"tenant_id": id, "exp": exp}, {"tenant_id": "acme", "exp": exp}, {"tenant_id": id}, {"exp": exp}} {
		for _, tok := range []string{
			mustSign(f, jwt.SigningMethodHS256, []byte(fuzzSecret), c),
			mustSign(f, jwt.SigningMethodHS512, []byte(fuzzSecret), c),
			mustSign(f, jwt.SigningMethodEdDSA, fuzzEdKey, c),
			mustSign(f, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, c),
		} {
			f.Add(tok)
		}
	}
	for _, s := range []string{"", ".", "..", "a.b.c", "eyJhbGciOiJub25lIn0.e30.", strings.Repeat("A", 9000)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		for alg, r := range map[string]*tenancy.JWTResolver{"HS256": hs, "EdDSA": ed} {
			got, err := r.TenantID(raw)
			code := apperr.CodeOf(err)
			if err != nil && code != apperr.InvalidCredentials && code != apperr.TenantNotFound {
				t.Fatalf("%s: TenantID(%q) failed with code %q: %v", alg, raw, code, err)
			}
			if err != nil && code == apperr.InvalidCredentials {
				continue
			}
			claims, ok := verifiedClaims(alg, raw)
			if !ok {
				t.Fatalf("%s: TenantID(%q) = %v, %v for a token not signed with the pinned key", alg, raw, got, err)
			}
			if _, hasExp := claims["exp"]; !hasExp {
				t.Fatalf("%s: token without exp got past verification: %q", alg, raw)
			}
			if err == nil {
				if s, _ := claims["tenant_id"].(string); !strings.EqualFold(s, got.String()) {
					t.Fatalf("%s: TenantID = %s, claim says %q", alg, got, claims["tenant_id"])
				}
			}
		}
	})
}

func mustSign(f *testing.F, m jwt.SigningMethod, key any, c jwt.MapClaims) string {
	tok, err := jwt.NewWithClaims(m, c).SignedString(key)
	if err != nil {
		f.Fatal(err)
	}
	return tok
}

// verifiedClaims checks a compact JWS independently of the JWT library.
func verifiedClaims(alg, raw string) (map[string]any, bool) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return nil, false
	}
	dec := base64.RawURLEncoding.DecodeString
	hb, err1 := dec(parts[0])
	pb, err2 := dec(parts[1])
	sig, err3 := dec(parts[2])
	if err1 != nil || err2 != nil || err3 != nil {
		return nil, false
	}
	var hdr map[string]any
	if json.NewDecoder(strings.NewReader(string(hb))).Decode(&hdr) != nil || hdr["alg"] != alg {
		return nil, false
	}
	signed := []byte(parts[0] + "." + parts[1])
	switch alg {
	case "HS256":
		m := hmac.New(sha256.New, []byte(fuzzSecret))
		m.Write(signed)
		if !hmac.Equal(m.Sum(nil), sig) {
			return nil, false
		}
	case "EdDSA":
		if !ed25519.Verify(fuzzEdKey.Public().(ed25519.PublicKey), signed, sig) {
			return nil, false
		}
	default:
		return nil, false
	}
	var claims map[string]any // decoded as leniently as the library does: the signature is what counts
	if json.NewDecoder(strings.NewReader(string(pb))).Decode(&claims) != nil {
		return nil, false
	}
	return claims, true
}

// FuzzIdentifierStrategies: whatever a header, path segment or host label
// holds, the header, path and subdomain resolvers never panic, answer only
// missing_credentials or tenant_not_found for unknown tenants, and never
// pass a malformed identifier to the store.
func FuzzIdentifierStrategies(f *testing.F) {
	for _, s := range append([]string{"acme", uuid.NewString(), "{" + uuid.NewString() + "}", "a/b", "a.b", "ACME", "acme:80"}, hostileIdentifiers...) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		l := newLookupSpy()
		resolvers := map[string]struct {
			r   tenancy.Resolver
			req *http.Request
		}{
			"header": {tenancy.HeaderResolver{Header: "X-Tenant-ID", Lookup: l},
				&http.Request{Header: http.Header{"X-Tenant-Id": {v}}, URL: &url.URL{Path: "/api/v1/tenant"}}},
			"path": {tenancy.PathResolver{Prefix: "/t", Lookup: l},
				&http.Request{Header: http.Header{}, URL: &url.URL{Path: "/t/" + v + "/api/v1/tenant"}}},
			"subdomain": {tenancy.SubdomainResolver{Suffix: ".example.test", Lookup: l},
				&http.Request{Header: http.Header{}, URL: &url.URL{Path: "/"}, Host: v + ".example.test"}},
		}
		for name, c := range resolvers {
			tn, err := c.r.Resolve(c.req)
			if code := apperr.CodeOf(err); tn != nil || (code != apperr.TenantNotFound && code != apperr.MissingCredentials) {
				t.Fatalf("%s %q: %v, %v; want tenant_not_found or missing_credentials", name, v, tn, err)
			}
		}
		if u := l.unsafeCalls(); len(u) > 0 {
			t.Fatalf("%q: malformed identifiers reached the store: %q", v, u)
		}
	})
}
