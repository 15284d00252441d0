// Package page implements newest-first keyset paging shared by every list
// endpoint: an opaque cursor naming the last row seen, and limit parsing.
package page

import (
	"encoding/base64"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/your-org/tenantkit/internal/apperr"
)

const (
	DefaultLimit = 20
	MaxLimit     = 100
)

// Cursor names the last row of a page ordered by (created_at DESC, id DESC).
type Cursor struct {
	CreatedAt time.Time
	ID        uuid.UUID
}

// Encode renders the cursor as an opaque URL-safe token.
func (c Cursor) Encode() string {
	raw := c.CreatedAt.UTC().Format(time.RFC3339Nano) + "|" + c.ID.String()
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

// Decode parses a token from Encode; "" means the first page.
func Decode(token string) (*Cursor, error) {
	if token == "" {
		return nil, nil
	}
	bad := apperr.Invalid(apperr.FieldError{Field: "cursor", Message: "is not a cursor returned by this API"})
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return nil, bad
	}
	ts, id, ok := strings.Cut(string(raw), "|")
	if !ok {
		return nil, bad
	}
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return nil, bad
	}
	u, err := uuid.Parse(id)
	if err != nil {
		return nil, bad
	}
	return &Cursor{CreatedAt: t, ID: u}, nil
}

// Limit parses a limit query value: 1..MaxLimit, DefaultLimit when empty.
func Limit(s string) (int, error) {
	if s == "" {
		return DefaultLimit, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > MaxLimit {
		return 0, apperr.Invalid(apperr.FieldError{Field: "limit", Message: "must be an integer from 1 to 100"})
	}
	return n, nil
}

// Next returns the next_cursor for a page fetched with limit+1 rows: the
// rows to return and the cursor, nil on the last page.
func Next[T any](rows []T, limit int, key func(T) Cursor) ([]T, *string) {
	if len(rows) <= limit {
		return rows, nil
	}
	rows = rows[:limit]
	s := key(rows[limit-1]).Encode()
	return rows, &s
}
