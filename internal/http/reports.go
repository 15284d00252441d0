package http

import (
	"context"
	"net/http"
	"reflect"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/your-org/tenantkit/internal/apperr"
	"github.com/your-org/tenantkit/internal/models"
	"github.com/your-org/tenantkit/internal/page"
)

// ReportService stores report requests and hands them to the worker.
type ReportService interface {
	Request(ctx context.Context, kind string) (*models.Report, error)
	Get(ctx context.Context, id uuid.UUID) (*models.Report, error)
	List(ctx context.Context, limit int, after *page.Cursor) ([]models.Report, *string, error)
}

// ReportInput is the body of POST /api/v1/reports.
type ReportInput struct {
	Kind string `json:"kind"`
}

// Reports is /api/v1/reports: POST enqueues a report (202), GET lists the
// tenant's reports newest first, GET /{id} returns one.
func Reports(svc ReportService) Resource {
	return Resource{
		Register: func(api *echo.Group) {
			api.POST("/reports", requestReport(svc))
			api.GET("/reports", listRows(svc))
			api.GET("/reports/:id", getRow(svc, "report"))
		},
		Schemas: map[string]reflect.Type{
			"Report": reflect.TypeFor[models.Report](), "ReportPage": reflect.TypeFor[Page[models.Report]](),
			"ReportCreate": reflect.TypeFor[ReportInput](),
		},
	}
}

func requestReport(svc ReportService) echo.HandlerFunc {
	return func(c echo.Context) error {
		var in ReportInput
		if err := decodeJSON(c, &in); err != nil {
			return err
		}
		if in.Kind != models.ReportProjectSummary {
			return apperr.Invalid(apperr.FieldError{Field: "kind", Message: "must be project_summary"})
		}
		r, err := svc.Request(c.Request().Context(), in.Kind)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusAccepted, r)
	}
}
