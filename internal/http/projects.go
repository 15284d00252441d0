package http

import (
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/your-org/tenantkit/internal/apperr"
	"github.com/your-org/tenantkit/internal/models"
)

// ProjectInput is the body of POST and PATCH /api/v1/projects.
type ProjectInput struct {
	Name        *string `json:"name"`
	Description *string `json:"description"`
}

const maxDescription = 10_000

// Validate implements Input: name is required on create, 1–200 characters.
func (in ProjectInput) Validate(create bool) error {
	var fields []apperr.FieldError
	if in.Name == nil && create {
		fields = append(fields, apperr.FieldError{Field: "name", Message: "is required"})
	} else if in.Name != nil {
		if n := utf8.RuneCountInString(*in.Name); n < 1 || n > 200 {
			fields = append(fields, apperr.FieldError{Field: "name", Message: "must be 1 to 200 characters"})
		}
	}
	if in.Description != nil && utf8.RuneCountInString(*in.Description) > maxDescription {
		fields = append(fields, apperr.FieldError{Field: "description", Message: "must be at most 10000 characters"})
	}
	if len(fields) > 0 {
		return apperr.Invalid(fields...)
	}
	return nil
}

// Row implements Input.
func (in ProjectInput) Row() *models.Project {
	p := &models.Project{Name: *in.Name}
	if in.Description != nil {
		p.Description = *in.Description
	}
	return p
}

// Changes implements models.Patch.
func (in ProjectInput) Changes() map[string]any {
	return models.ProjectPatch{Name: in.Name, Description: in.Description}.Changes()
}

// pathID parses the :id parameter; a malformed id is simply not found.
func pathID(c echo.Context, param, what string) (uuid.UUID, error) {
	id, err := uuid.Parse(c.Param(param))
	if err != nil {
		return uuid.Nil, apperr.New(apperr.NotFound, "%s not found", what)
	}
	return id, nil
}
