package http

import (
	"bytes"
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/your-org/tenantkit/internal/apperr"
	"github.com/your-org/tenantkit/internal/tenancy"
)

// Hostile bytes (invariant 9): NUL and invalid UTF-8 never reach the
// database, where text and jsonb refuse them with an error the client did
// not cause. They are refused up front with validation_failed naming the
// field. Go's encoding/json would silently turn invalid UTF-8 (and unpaired
// UTF-16 surrogate escapes) into U+FFFD and keep \u0000, so JSON is checked
// on its raw bytes, before it is decoded.

// readHeaders are the request headers the kit reads.
var readHeaders = []string{"Authorization", tenancy.APIKeyHeader, "Host", "X-Forwarded-Host", "X-Forwarded-For", headerRequestID}

// rejectHostileBytes refuses NUL or invalid UTF-8 in query parameters and in
// the headers the kit reads, before tenant resolution and routing.
func rejectHostileBytes(m *tenancy.Middleware) echo.MiddlewareFunc {
	headers := append([]string(nil), readHeaders...)
	if m != nil {
		if chain, ok := m.Resolver.(tenancy.Chain); ok {
			for _, r := range chain {
				if h, ok := r.(tenancy.HeaderResolver); ok {
					headers = append(headers, h.Header)
				}
			}
		}
	}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			var fields []apperr.FieldError
			for _, h := range headers {
				v := r.Header.Values(h)
				if h == "Host" {
					v = []string{r.Host}
				}
				for _, s := range v {
					if msg := hostileText(s); msg != "" {
						fields = append(fields, apperr.FieldError{Field: "header " + h, Message: msg})
						break
					}
				}
			}
			fields = append(fields, hostileQuery(r.URL.RawQuery)...)
			if len(fields) > 0 {
				return apperr.Invalid(fields...)
			}
			return next(c)
		}
	}
}

// hostileQuery checks every parameter name and value of a raw query.
func hostileQuery(raw string) []apperr.FieldError {
	if raw == "" {
		return nil
	}
	var fields []apperr.FieldError
	for pair := range strings.SplitSeq(raw, "&") {
		k, v, _ := strings.Cut(pair, "=")
		key, kerr := url.QueryUnescape(k)
		val, verr := url.QueryUnescape(v)
		if kerr != nil || hostileText(key) != "" {
			fields = append(fields, apperr.FieldError{Field: "query", Message: "parameter names must be valid UTF-8 without NUL"})
			continue
		}
		if verr != nil {
			continue // echo drops pairs it cannot unescape: the parameter is absent
		}
		if msg := hostileText(val); msg != "" {
			fields = append(fields, apperr.FieldError{Field: key, Message: msg})
		}
	}
	return fields
}

// hostileText names what is wrong with s, or returns "".
func hostileText(s string) string {
	switch {
	case !utf8.ValidString(s):
		return "must be valid UTF-8"
	case strings.IndexByte(s, 0) >= 0:
		return "must not contain NUL"
	}
	return ""
}

// hostileJSON walks raw JSON and returns the first string (key or value)
// holding invalid UTF-8, a \u0000 escape or an unpaired surrogate escape,
// with the path of its field ("metadata.plan", "tags[2]"). Malformed JSON is
// not its business: it returns nil and lets the decoder say why.
func hostileJSON(raw []byte) *apperr.FieldError {
	type frame struct {
		obj     bool
		wantKey bool
		label   string
		idx     int
	}
	var st []*frame
	path := func(withTop bool) string {
		var b strings.Builder
		for i, f := range st {
			if i == len(st)-1 && !withTop {
				break
			}
			if f.obj {
				if b.Len() > 0 {
					b.WriteByte('.')
				}
				b.WriteString(f.label)
			} else {
				b.WriteString("[" + strconv.Itoa(f.idx) + "]")
			}
		}
		if b.Len() == 0 {
			return "body"
		}
		return b.String()
	}
	done := func() { // a value of the top frame is complete
		if len(st) == 0 {
			return
		}
		if top := st[len(st)-1]; top.obj {
			top.wantKey = true
		} else {
			top.idx++
		}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	prev := int64(0)
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil
		}
		cur := dec.InputOffset()
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{':
				st = append(st, &frame{obj: true, wantKey: true})
			case '[':
				st = append(st, &frame{})
			default:
				st = st[:len(st)-1]
				done()
			}
		case string:
			isKey := len(st) > 0 && st[len(st)-1].obj && st[len(st)-1].wantKey
			lit := raw[prev:cur]
			if i := bytes.IndexByte(lit, '"'); i >= 0 {
				lit = lit[i:]
			}
			if msg := hostileLiteral(lit); msg != "" {
				if isKey {
					return &apperr.FieldError{Field: path(false), Message: "keys " + msg}
				}
				return &apperr.FieldError{Field: path(true), Message: msg}
			}
			if isKey {
				st[len(st)-1].label, st[len(st)-1].wantKey = v, false
			} else {
				done()
			}
		default:
			done()
		}
		prev = cur
	}
}

// hostileLiteral checks one JSON string literal, quotes included, as sent.
func hostileLiteral(lit []byte) string {
	if !utf8.Valid(lit) {
		return "must be valid UTF-8"
	}
	for i := 0; i < len(lit); i++ {
		if lit[i] != '\\' || i+1 >= len(lit) {
			continue
		}
		if lit[i+1] != 'u' {
			i++
			continue
		}
		r, ok := hex4(lit, i+2)
		switch {
		case !ok:
			return "" // malformed escape: the decoder refuses it
		case r == 0:
			return "must not contain NUL"
		case r >= 0xDC00 && r <= 0xDFFF:
			return "must be valid UTF-8 (unpaired surrogate escape)"
		case r >= 0xD800 && r <= 0xDBFF:
			lo, ok := rune(0), false
			if i+7 < len(lit) && lit[i+6] == '\\' && lit[i+7] == 'u' {
				lo, ok = hex4(lit, i+8)
			}
			if !ok || lo < 0xDC00 || lo > 0xDFFF {
				return "must be valid UTF-8 (unpaired surrogate escape)"
			}
			i += 6
		}
		i += 5
	}
	return ""
}

func hex4(b []byte, at int) (rune, bool) {
	if at+4 > len(b) {
		return 0, false
	}
	n, err := strconv.ParseUint(string(b[at:at+4]), 16, 32)
	return rune(n), err == nil
}
