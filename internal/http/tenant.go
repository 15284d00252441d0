package http

import (
	"net/http"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/your-org/tenantkit/internal/tenancy"
)

type tenantView struct {
	ID         uuid.UUID         `json:"id"`
	Identifier string            `json:"identifier"`
	Name       string            `json:"name"`
	Status     tenancy.Status    `json:"status"`
	Tier       tenancy.Tier      `json:"tier"`
	Isolation  tenancy.Isolation `json:"isolation"`
}

func currentTenant(c echo.Context) error {
	t, err := tenancy.MustFromContext(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, tenantView{ID: t.ID, Identifier: t.Identifier, Name: t.Name,
		Status: t.Status, Tier: t.Tier, Isolation: t.Isolation})
}
