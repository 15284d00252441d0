package tenancy

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/hashicorp/golang-lru/v2/expirable"

	"github.com/your-org/tenantkit/internal/apperr"
)

// JWTConfig pins how bearer tokens are verified.
type JWTConfig struct {
	Algorithm   string           // HS256, HS384, HS512, RS256, ES256 or EdDSA; the only one accepted
	Secret      []byte           // for HS*
	PublicKey   crypto.PublicKey // for RS256, ES256, EdDSA
	TenantClaim string           // claim holding the tenant id (a UUID)
	Issuer      string           // checked when set
	Audience    string           // checked when set
	Leeway      time.Duration
}

// JWTResolver reads "Authorization: Bearer <jwt>" and resolves the tenant id
// in its tenant claim. The algorithm is pinned, so alg:none, algorithm
// confusion (an HS token signed with the RSA public key) and tokens for
// another algorithm are all rejected; exp is always required.
type JWTResolver struct {
	cfg      JWTConfig
	key      any
	parser   *jwt.Parser
	lookup   Lookup
	verified *expirable.LRU[string, verifiedToken]
}

// verifiedToken is a token that passed verification, remembered until it
// expires (and for verifiedTTL at most): clients send the same token on every
// request, and re-verifying it (base64, JSON, signature) was the largest
// per-request cost of resolution. Only successes are kept, so garbage
// tokens cannot evict real ones.
type verifiedToken struct {
	tenant  uuid.UUID
	expires time.Time
}

const (
	verifiedTTL  = time.Minute
	verifiedSize = 10_000
)

// NewJWTResolver validates cfg and returns the resolver.
func NewJWTResolver(cfg JWTConfig, lookup Lookup) (*JWTResolver, error) {
	var key any
	switch {
	case strings.HasPrefix(cfg.Algorithm, "HS"):
		if len(cfg.Secret) < 32 {
			return nil, fmt.Errorf("jwt: %s secret must be at least 32 bytes", cfg.Algorithm)
		}
		key = cfg.Secret
	case cfg.Algorithm == "RS256" || cfg.Algorithm == "ES256" || cfg.Algorithm == "EdDSA":
		if err := CheckPublicKey(cfg.Algorithm, cfg.PublicKey); err != nil {
			return nil, err
		}
		key = cfg.PublicKey
	default:
		return nil, fmt.Errorf("jwt: unsupported algorithm %q", cfg.Algorithm)
	}
	if cfg.TenantClaim == "" {
		cfg.TenantClaim = "tenant_id"
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods([]string{cfg.Algorithm}),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(cfg.Leeway),
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	return &JWTResolver{cfg: cfg, key: key, parser: jwt.NewParser(opts...), lookup: lookup,
		verified: expirable.NewLRU[string, verifiedToken](verifiedSize, nil, verifiedTTL)}, nil
}

// CheckPublicKey refuses a key that cannot verify alg, so that a wrong key
// file fails at start-up instead of turning every token away.
func CheckPublicKey(alg string, key crypto.PublicKey) error {
	ok := false
	switch k := key.(type) {
	case *rsa.PublicKey:
		ok = alg == "RS256"
	case *ecdsa.PublicKey:
		ok = alg == "ES256" && k.Curve == elliptic.P256()
	case ed25519.PublicKey:
		ok = alg == "EdDSA"
	}
	if key == nil {
		return fmt.Errorf("jwt: %s needs a public key", alg)
	}
	if !ok {
		return fmt.Errorf("jwt: a %T cannot verify %s tokens", key, alg)
	}
	return nil
}

// BearerToken returns the token of an "Authorization: Bearer" header.
func BearerToken(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != "" // "Bearer " with nothing after it is no credential
}

func (j *JWTResolver) Resolve(r *http.Request) (*Tenant, error) {
	raw, ok := BearerToken(r)
	if !ok {
		return nil, ErrNoCredential
	}
	id, err := j.TenantID(raw)
	if err != nil {
		return nil, err
	}
	t, err := j.lookup.TenantByID(r.Context(), id)
	return t, notFoundAs(err, errTenantNotFound)
}

// TenantID verifies a token and returns the tenant id it names.
func (j *JWTResolver) TenantID(raw string) (uuid.UUID, error) {
	invalid := func(why string, err error) error {
		return apperr.Wrap(apperr.InvalidCredentials, err, why)
	}
	if raw == "" || len(raw) > 8192 {
		return uuid.Nil, invalid("bearer token is malformed", nil)
	}
	if v, ok := j.verified.Get(raw); ok && time.Now().Before(v.expires) {
		return v.tenant, nil
	}
	claims := jwt.MapClaims{}
	tok, err := j.parser.ParseWithClaims(raw, claims, func(*jwt.Token) (any, error) { return j.key, nil })
	if err != nil {
		return uuid.Nil, invalid("bearer token is invalid or expired", err)
	}
	// RFC 7515 §4.1.11: a recipient must reject a token whose "crit" lists
	// an extension it does not understand. The kit understands none, and an
	// empty list is forbidden too, so any "crit" is refused.
	if _, ok := tok.Header["crit"]; ok {
		return uuid.Nil, invalid("bearer token has critical header parameters this server does not understand", nil)
	}
	v, ok := claims[j.cfg.TenantClaim].(string)
	if !ok || v == "" {
		return uuid.Nil, invalid(fmt.Sprintf("bearer token has no %q claim", j.cfg.TenantClaim), nil)
	}
	id, err := uuid.Parse(v)
	if err != nil || len(v) != 36 {
		return uuid.Nil, errTenantNotFound()
	}
	if exp, err := claims.GetExpirationTime(); err == nil && exp != nil {
		j.verified.Add(raw, verifiedToken{tenant: id, expires: exp.Time.Add(j.cfg.Leeway)})
	}
	return id, nil
}

// SignHS is a helper for seeds, tests and docs: an HS-signed token for tenantID.
func SignHS(alg string, secret []byte, claim string, tenantID uuid.UUID, ttl time.Duration) (string, error) {
	m := jwt.GetSigningMethod(alg)
	if m == nil {
		return "", fmt.Errorf("unknown algorithm %q", alg)
	}
	now := time.Now()
	return jwt.NewWithClaims(m, jwt.MapClaims{
		claim: tenantID.String(),
		"sub": "demo-user",
		"iat": now.Unix(),
		"exp": now.Add(ttl).Unix(),
	}).SignedString(secret)
}
