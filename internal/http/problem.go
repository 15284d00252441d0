package http

import (
	"errors"
	"log/slog"
	"math"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/your-org/tenantkit/internal/apperr"
	"github.com/your-org/tenantkit/internal/logging"
	"github.com/your-org/tenantkit/internal/tenancy"
)

// statusOf is the one table from error codes to HTTP statuses.
var statusOf = map[apperr.Code]int{
	apperr.MissingCredentials:   http.StatusUnauthorized,
	apperr.InvalidCredentials:   http.StatusUnauthorized,
	apperr.TenantNotFound:       http.StatusNotFound,
	apperr.TenantSuspended:      http.StatusForbidden,
	apperr.NotFound:             http.StatusNotFound,
	apperr.ValidationFailed:     http.StatusBadRequest,
	apperr.BadRequest:           http.StatusBadRequest,
	apperr.Conflict:             http.StatusConflict,
	apperr.PayloadTooLarge:      http.StatusRequestEntityTooLarge,
	apperr.UnsupportedMediaType: http.StatusUnsupportedMediaType,
	apperr.MethodNotAllowed:     http.StatusMethodNotAllowed,
	apperr.RateLimited:          http.StatusTooManyRequests,
	apperr.Unavailable:          http.StatusServiceUnavailable,
	apperr.Internal:             http.StatusInternalServerError,
}

// codeOfStatus maps Echo's own errors (no route, body limit...) into codes.
var codeOfStatus = map[int]apperr.Code{
	http.StatusNotFound:              apperr.NotFound,
	http.StatusMethodNotAllowed:      apperr.MethodNotAllowed,
	http.StatusRequestEntityTooLarge: apperr.PayloadTooLarge,
	http.StatusUnsupportedMediaType:  apperr.UnsupportedMediaType,
	http.StatusTooManyRequests:       apperr.RateLimited,
	http.StatusUnauthorized:          apperr.MissingCredentials,
	http.StatusServiceUnavailable:    apperr.Unavailable,
}

// Problem is an RFC 9457 problem details body.
type Problem struct {
	Type     string              `json:"type"`
	Title    string              `json:"title"`
	Status   int                 `json:"status"`
	Detail   string              `json:"detail,omitempty"`
	Code     apperr.Code         `json:"code"`
	Instance string              `json:"instance,omitempty"`
	Errors   []apperr.FieldError `json:"errors,omitempty"`
}

// ProblemFor renders err; internal details never reach the body.
func ProblemFor(err error) Problem {
	var he *echo.HTTPError
	if errors.As(err, &he) && !isAppErr(err) {
		code, ok := codeOfStatus[he.Code]
		if !ok {
			code = apperr.BadRequest
			if he.Code >= 500 {
				code = apperr.Internal
			}
		}
		p := problem(code, he.Code)
		if he.Code < 500 {
			if msg, ok := he.Message.(string); ok {
				p.Detail = msg
			}
		}
		return p
	}
	e, ok := apperr.As(err)
	if !ok && tenancy.IsUnavailable(err) {
		e, ok = apperr.New(apperr.Unavailable, "a dependency is unavailable, retry later"), true
	}
	if !ok && tenancy.IsTenantGone(err) {
		e, ok = apperr.New(apperr.TenantNotFound, "tenant not found"), true
	}
	if !ok {
		return problem(apperr.Internal, 500)
	}
	status, ok := statusOf[e.Code]
	if !ok {
		status = 500
	}
	p := problem(e.Code, status)
	if status < 500 || e.Code == apperr.Unavailable {
		p.Detail, p.Errors = e.Detail, e.Fields
	}
	return p
}

func isAppErr(err error) bool { _, ok := apperr.As(err); return ok }

func problem(code apperr.Code, status int) Problem {
	return Problem{
		Type:   "https://tenantkit.dev/problems/" + string(code),
		Title:  http.StatusText(status),
		Status: status,
		Code:   code,
	}
}

// errorHandler is Echo's HTTPErrorHandler: every error becomes problem+json.
func errorHandler(log *slog.Logger) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		p := ProblemFor(err)
		p.Instance = c.Request().URL.Path
		if p.Status >= 500 {
			logging.From(c.Request().Context(), log).Error("request failed", "err", err, "status", p.Status)
		}
		if e, ok := apperr.As(err); ok && e.RetryAfter > 0 {
			c.Response().Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(e.RetryAfter.Seconds()))))
		}
		if (p.Code == apperr.RateLimited || p.Code == apperr.Unavailable) && c.Response().Header().Get("Retry-After") == "" {
			c.Response().Header().Set("Retry-After", strconv.Itoa(1))
		}
		if p.Code == apperr.MissingCredentials || p.Code == apperr.InvalidCredentials {
			c.Response().Header().Set("WWW-Authenticate", `Bearer realm="tenantkit"`)
		}
		if c.Request().Method == http.MethodHead {
			_ = c.NoContent(p.Status)
			return
		}
		c.Response().Header().Set(echo.HeaderContentType, "application/problem+json")
		c.Response().WriteHeader(p.Status)
		_ = jsonEncode(c.Response(), p)
	}
}
