package http

import (
	"net/http"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/your-org/tenantkit/internal/apperr"
	"github.com/your-org/tenantkit/internal/models"
	"github.com/your-org/tenantkit/internal/page"
)

type projectHandlers struct{ store models.Projects }

type projectInput struct {
	Name        *string `json:"name"`
	Description *string `json:"description"`
}

const maxDescription = 10_000

func (in projectInput) validate(create bool) error {
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

// pathID parses the :id parameter; a malformed id is simply not found.
func pathID(c echo.Context, param, what string) (uuid.UUID, error) {
	id, err := uuid.Parse(c.Param(param))
	if err != nil {
		return uuid.Nil, apperr.New(apperr.NotFound, "%s not found", what)
	}
	return id, nil
}

func (h projectHandlers) create(c echo.Context) error {
	var in projectInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	if err := in.validate(true); err != nil {
		return err
	}
	p := &models.Project{Name: *in.Name}
	if in.Description != nil {
		p.Description = *in.Description
	}
	if err := h.store.Create(c.Request().Context(), p); err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, p)
}

type projectPage struct {
	Items      []models.Project `json:"items"`
	NextCursor *string          `json:"next_cursor"`
}

func (h projectHandlers) list(c echo.Context) error {
	limit, err := page.Limit(c.QueryParam("limit"))
	if err != nil {
		return err
	}
	after, err := page.Decode(c.QueryParam("cursor"))
	if err != nil {
		return err
	}
	items, next, err := h.store.List(c.Request().Context(), limit, after)
	if err != nil {
		return err
	}
	if items == nil {
		items = []models.Project{}
	}
	return c.JSON(http.StatusOK, projectPage{Items: items, NextCursor: next})
}

func (h projectHandlers) get(c echo.Context) error {
	id, err := pathID(c, "id", "project")
	if err != nil {
		return err
	}
	p, err := h.store.Get(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, p)
}

func (h projectHandlers) update(c echo.Context) error {
	id, err := pathID(c, "id", "project")
	if err != nil {
		return err
	}
	var in projectInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	if err := in.validate(false); err != nil {
		return err
	}
	p, err := h.store.Update(c.Request().Context(), id, models.ProjectPatch{Name: in.Name, Description: in.Description})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, p)
}

func (h projectHandlers) delete(c echo.Context) error {
	id, err := pathID(c, "id", "project")
	if err != nil {
		return err
	}
	if err := h.store.Delete(c.Request().Context(), id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
