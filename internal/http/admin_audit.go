package http

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/your-org/tenantkit/internal/apperr"
	"github.com/your-org/tenantkit/internal/audit"
	"github.com/your-org/tenantkit/internal/tenancy"
)

// adminIntents maps admin routes to the audit action they perform; the
// registry writes of the request are recorded under it (audit.Hook).
var adminIntents = map[string]audit.Action{
	"POST /admin/v1/tenants":                        audit.Create,
	"PATCH /admin/v1/tenants/:id":                   audit.Update,
	"DELETE /admin/v1/tenants/:id":                  audit.Delete,
	"POST /admin/v1/tenants/:id/api-keys":           audit.KeyCreate,
	"DELETE /admin/v1/tenants/:id/api-keys/:key_id": audit.KeyRevoke,
	"POST /admin/v1/tenants/import":                 audit.Import,
	"POST /admin/v1/tenants/:id/move":               audit.MoveStart,
}

// TokenFingerprint names the admin token in the audit trail without
// revealing it: the first 16 hex digits of its SHA-256.
func TokenFingerprint(token string) string {
	h := sha256.Sum256([]byte(token))
	return "token:" + hex.EncodeToString(h[:8])
}

// auditContext puts the actor (ADMIN_ACTOR_HEADER when configured and sent,
// else the token's fingerprint) and the route's audit hook into the request
// context, so registry writes commit together with their audit event.
func (a *Admin) auditContext(next echo.HandlerFunc) echo.HandlerFunc {
	fp := TokenFingerprint(a.Token)
	return func(c echo.Context) error {
		actor := audit.Actor{Name: fp, Credential: fp, RequestID: c.Response().Header().Get(headerRequestID)}
		if a.ActorHeader != "" {
			if v := c.Request().Header.Get(a.ActorHeader); v != "" {
				if !validActor(v) {
					return apperr.Invalid(apperr.FieldError{Field: a.ActorHeader,
						Message: "must be 1 to 200 printable UTF-8 characters"})
				}
				actor.Name = v
			}
		}
		ctx := audit.WithActor(c.Request().Context(), actor)
		if intent, ok := adminIntents[c.Request().Method+" "+c.Path()]; ok {
			ctx = tenancy.WithWriteHook(ctx, audit.Hook(intent))
		}
		c.SetRequest(c.Request().WithContext(ctx))
		return next(c)
	}
}

func validActor(s string) bool {
	if !utf8.ValidString(s) || utf8.RuneCountInString(s) > 200 {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

type auditPage struct {
	Items      []audit.Event `json:"items"`
	NextCursor *string       `json:"next_cursor"`
}

func (a *Admin) listAudit(c echo.Context) error {
	var (
		f      audit.Filter
		fields []apperr.FieldError
	)
	if s := c.QueryParam("tenant_id"); s != "" {
		id, err := uuid.Parse(s)
		if err != nil || len(s) != 36 {
			fields = append(fields, apperr.FieldError{Field: "tenant_id", Message: "must be a UUID"})
		}
		f.TenantID = id
	}
	if s := c.QueryParam("action"); s != "" {
		f.Action = audit.Action(s)
		if !f.Action.Valid() {
			fields = append(fields, apperr.FieldError{Field: "action", Message: "must be one of the audit actions (see the API docs)"})
		}
	}
	if len(fields) > 0 {
		return apperr.Invalid(fields...)
	}
	limit, after, err := pageQuery(c)
	if err != nil {
		return err
	}
	items, next, err := a.Audit.List(c.Request().Context(), f, limit, after)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, auditPage{Items: items, NextCursor: next})
}
