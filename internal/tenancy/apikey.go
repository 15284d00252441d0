package tenancy

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strings"
)

// API keys look like tk_<8 char prefix>_<43 char secret>; the prefix helps
// people tell keys apart and is shown in listings, the rest is 256 random bits.
const apiKeyScheme = "tk_"

// NewAPIKeySecret returns a fresh key and its display prefix.
func NewAPIKeySecret() (key, prefix string) {
	b := make([]byte, 38)
	_, _ = rand.Read(b) // crypto/rand never fails on supported platforms
	s := base64.RawURLEncoding.EncodeToString(b)
	prefix = apiKeyScheme + strings.ToLower(strings.NewReplacer("-", "x", "_", "y").Replace(s[:8]))
	return prefix + "_" + s[8:], prefix
}

// HashAPIKey is the value stored and looked up; only exact keys match.
func HashAPIKey(key string) []byte {
	h := sha256.Sum256([]byte(key))
	return h[:]
}

// PlausibleAPIKey reports whether key has an API key's shape: garbage is
// refused before it costs a lookup.
func PlausibleAPIKey(key string) bool {
	return len(key) >= 32 && len(key) <= 128 && strings.HasPrefix(key, apiKeyScheme)
}
