package http

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/your-org/tenantkit/internal/apperr"
)

// MaxBodyBytes is the largest request body accepted (413 beyond).
const MaxBodyBytes = 1 << 20

func jsonEncode(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// decodeJSON reads exactly one JSON object into v, refusing other media
// types, unknown fields, trailing data and oversize bodies with 4xx codes.
func decodeJSON(c echo.Context, v any) error {
	r := c.Request()
	mt, _, _ := mime.ParseMediaType(r.Header.Get(echo.HeaderContentType))
	if mt != "application/json" && !(strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json")) {
		return apperr.New(apperr.UnsupportedMediaType, "request body must be application/json")
	}
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		return bodyError(err)
	}
	if f := hostileJSON(raw); f != nil {
		return apperr.Invalid(*f)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return bodyError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if err != nil {
			return bodyError(err)
		}
		return apperr.New(apperr.BadRequest, "request body must hold a single JSON value")
	}
	return nil
}

func bodyError(err error) error {
	var (
		tooLarge *http.MaxBytesError
		typeErr  *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &tooLarge):
		return apperr.New(apperr.PayloadTooLarge, "request body exceeds 1 MiB")
	case errors.As(err, &typeErr) && typeErr.Field != "":
		return apperr.Invalid(apperr.FieldError{Field: typeErr.Field, Message: "must be a JSON " + typeErr.Type.Kind().String()})
	case errors.Is(err, io.EOF):
		return apperr.New(apperr.BadRequest, "request body is empty")
	case strings.HasPrefix(err.Error(), "json: unknown field"):
		return apperr.New(apperr.BadRequest, "request body has an %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	return apperr.New(apperr.BadRequest, "request body is not valid JSON")
}
