package http

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/your-org/tenantkit/internal/apperr"
	"github.com/your-org/tenantkit/internal/tenancy"
	"github.com/your-org/tenantkit/internal/tenantmove"
)

type moveAccepted struct {
	OperationID string `json:"operation_id"`
	*tenantmove.Operation
}

// moveTenant starts an online move of the tenant to another isolation tier;
// the worker runs it (GET /admin/v1/operations/{id} follows it).
func (a *Admin) moveTenant(c echo.Context) error {
	id, err := pathID(c, "id", "tenant")
	if err != nil {
		return err
	}
	var in struct {
		Isolation tenancy.Isolation `json:"isolation"`
		Cell      *string           `json:"cell"`
	}
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	if in.Cell != nil {
		return apperr.Invalid(apperr.FieldError{Field: "cell", Message: "moves between cells are not available yet"})
	}
	ctx := c.Request().Context()
	t, err := a.Store.TenantByID(ctx, id)
	if err != nil {
		return err
	}
	op, err := a.Moves.RequestMove(ctx, t, in.Isolation)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, moveAccepted{OperationID: op.ID.String(), Operation: op})
}

func (a *Admin) getOperation(c echo.Context) error {
	id, err := pathID(c, "id", "operation")
	if err != nil {
		return err
	}
	op, err := a.Moves.Get(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, op)
}

// autoMove schedules the move a tier change implies when TENANCY_AUTO_MOVE
// is on: the placement (tier, PREMIUM_TENANT_IDS, the isolation strategy)
// names another isolation than the tenant's. A move already under way is
// left alone. The operation id is returned in the Operation-Id header.
func (a *Admin) autoMove(c echo.Context, t *tenancy.Tenant) error {
	if !a.AutoMove || a.Moves == nil || t.Status == tenancy.StatusProvisioning {
		return nil
	}
	// Moves stay on the default cell between rls and schema (docs/scaling.md):
	// a tenant placed elsewhere keeps its placement when its tier changes.
	if t.CellOf() != tenancy.DefaultCell || t.Isolation == tenancy.IsolationDatabase {
		return nil
	}
	want := a.Lifecycle.Placement.Place(t.ID, t.Tier)
	if want == t.Isolation {
		return nil
	}
	op, err := a.Moves.RequestMove(c.Request().Context(), t, want)
	if apperr.CodeOf(err) == apperr.Conflict {
		return nil
	}
	if err != nil {
		return err
	}
	c.Response().Header().Set("Operation-Id", op.ID.String())
	return nil
}
