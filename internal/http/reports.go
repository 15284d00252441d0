package http

import (
	"context"
	"net/http"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/your-org/tenantkit/internal/apperr"
	"github.com/your-org/tenantkit/internal/models"
)

// ReportService stores report requests and hands them to the worker.
type ReportService interface {
	Request(ctx context.Context, kind string) (*models.Report, error)
	Get(ctx context.Context, id uuid.UUID) (*models.Report, error)
}

type reportHandlers struct{ svc ReportService }

func (h reportHandlers) create(c echo.Context) error {
	var in struct {
		Kind string `json:"kind"`
	}
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	if in.Kind != models.ReportProjectSummary {
		return apperr.Invalid(apperr.FieldError{Field: "kind", Message: "must be project_summary"})
	}
	r, err := h.svc.Request(c.Request().Context(), in.Kind)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, r)
}

func (h reportHandlers) get(c echo.Context) error {
	id, err := pathID(c, "id", "report")
	if err != nil {
		return err
	}
	r, err := h.svc.Get(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, r)
}
