// Package apperr is the kit's one error type: a closed set of codes that every
// layer speaks and that internal/http maps to HTTP statuses in a single table.
package apperr

import (
	"errors"
	"fmt"
	"time"
)

// Code is one of the closed set of error codes of docs/contract.md.
type Code string

const (
	MissingCredentials   Code = "missing_credentials"
	InvalidCredentials   Code = "invalid_credentials"
	TenantNotFound       Code = "tenant_not_found"
	TenantSuspended      Code = "tenant_suspended"
	NotFound             Code = "not_found"
	ValidationFailed     Code = "validation_failed"
	BadRequest           Code = "bad_request"
	Conflict             Code = "conflict"
	PayloadTooLarge      Code = "payload_too_large"
	UnsupportedMediaType Code = "unsupported_media_type"
	MethodNotAllowed     Code = "method_not_allowed"
	RateLimited          Code = "rate_limited"
	Unavailable          Code = "unavailable"
	Internal             Code = "internal"
)

// Throttled returns a rate_limited error telling the client to retry after wait.
func Throttled(wait time.Duration, format string, args ...any) *Error {
	e := New(RateLimited, format, args...)
	e.RetryAfter = wait
	return e
}

// FieldError names one invalid field of a validation_failed error.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Error carries a code, a message safe to show to clients, and the cause for logs.
type Error struct {
	Code   Code
	Detail string       // shown to clients
	Fields []FieldError // for ValidationFailed
	Err    error        // cause, for logs only
	// RetryAfter, when set on a rate_limited error, is how long the client
	// should wait (the Retry-After header).
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	switch {
	case e.Err != nil && e.Detail != "":
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Detail, e.Err)
	case e.Err != nil:
		return fmt.Sprintf("%s: %v", e.Code, e.Err)
	case e.Detail != "":
		return fmt.Sprintf("%s: %s", e.Code, e.Detail)
	}
	return string(e.Code)
}

func (e *Error) Unwrap() error { return e.Err }

// New returns an error with a client-safe detail.
func New(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Detail: fmt.Sprintf(format, args...)}
}

// Wrap attaches a code to a cause; the cause is logged, never shown.
func Wrap(code Code, err error, detail string) *Error {
	return &Error{Code: code, Detail: detail, Err: err}
}

// Invalid builds a validation_failed error from field problems.
func Invalid(fields ...FieldError) *Error {
	return &Error{Code: ValidationFailed, Detail: "request has invalid fields", Fields: fields}
}

// CodeOf returns the code of the first *Error in err's chain, or Internal.
func CodeOf(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Internal
}

// As returns the first *Error in err's chain.
func As(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}
