package http

import (
	"strings"
	"unicode/utf8"

	"github.com/your-org/tenantkit/internal/apperr"
)

// Fields collects the validation failures of a request body, so an Input's
// Validate reports every bad field at once (400 validation_failed).
type Fields []apperr.FieldError

// Required records name as missing when a create request lacks it.
func (f *Fields) Required(name string, set, create bool) {
	if create && !set {
		*f = append(*f, apperr.FieldError{Field: name, Message: "is required"})
	}
}

// Text checks a text value when it is set: at most max characters, no NUL
// (PostgreSQL text cannot hold it).
func (f *Fields) Text(name string, v *string, max int) {
	switch {
	case v == nil:
	case strings.ContainsRune(*v, 0):
		*f = append(*f, apperr.FieldError{Field: name, Message: "must not contain NUL"})
	case utf8.RuneCountInString(*v) > max:
		*f = append(*f, apperr.FieldError{Field: name, Message: "is too long"})
	}
}

// Err is nil when every field is valid.
func (f Fields) Err() error {
	if len(f) == 0 {
		return nil
	}
	return apperr.Invalid(f...)
}
