package http

import (
	"bytes"
	"encoding/json"
	"strconv"
	"sync"

	"github.com/labstack/echo/v4"
)

// wholeJSON is the servers' echo.JSONSerializer: it writes a response with
// its Content-Length, from a pooled buffer. Echo's default hands the encoded
// body to net/http with no length, so one past its 2 KiB buffer (a page of
// list items) went out chunked: chunk framing on both ends, and clients and
// proxies that cannot see the size up front. Same bytes (HTML escaped,
// newline ended). A fork adding Echo's Gzip middleware is safe: it drops the
// length when it compresses.
type wholeJSON struct {
	echo.DefaultJSONSerializer // Deserialize, for Bind
	bufs                       *sync.Pool
}

func newWholeJSON() wholeJSON {
	return wholeJSON{bufs: &sync.Pool{New: func() any { return new(bytes.Buffer) }}}
}

// maxPooledBuffer keeps an occasional huge response's buffer out of the pool.
const maxPooledBuffer = 64 << 10

func (s wholeJSON) Serialize(c echo.Context, v any, indent string) error {
	buf := s.bufs.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() <= maxPooledBuffer {
			s.bufs.Put(buf)
		}
	}()
	enc := json.NewEncoder(buf)
	if indent != "" {
		enc.SetIndent("", indent)
	}
	if err := enc.Encode(v); err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderContentLength, strconv.Itoa(buf.Len()))
	_, err := c.Response().Write(buf.Bytes())
	return err
}
