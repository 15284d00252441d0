package http

import (
	"context"
	"net/http"
	"reflect"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/your-org/tenantkit/internal/models"
	"github.com/your-org/tenantkit/internal/page"
)

// Resource is one tenant API resource: its routes under /api/v1 and the Go
// types of the JSON it reads and writes, by OpenAPI schema name. The OpenAPI
// test holds internal/http/docs/openapi.json to both, so a resource needs no
// test edit of its own to be checked.
type Resource struct {
	Register func(api *echo.Group)
	Schemas  map[string]reflect.Type
}

// With adds routes to the resource (an action such as POST /{id}/send).
func (r Resource) With(routes func(api *echo.Group)) Resource {
	base := r.Register
	r.Register = func(api *echo.Group) {
		base(api)
		routes(api)
	}
	return r
}

// Input is a resource's request body (a struct of pointer fields, value
// receivers): it validates itself, becomes a new row, or a patch.
type Input[T any] interface {
	Validate(create bool) error
	Row() *T
	models.Patch
}

// Store is what CRUD routes need; models.Store implements it.
type Store[T any] interface {
	Create(ctx context.Context, row *T) error
	Get(ctx context.Context, id uuid.UUID) (*T, error)
	List(ctx context.Context, limit int, after *page.Cursor) ([]T, *string, error)
	Update(ctx context.Context, id uuid.UUID, patch models.Patch) (*T, error)
	Delete(ctx context.Context, id uuid.UUID) error
}

// Page is the body of a list response.
type Page[T any] struct {
	Items      []T     `json:"items"`
	NextCursor *string `json:"next_cursor"`
}

// CRUD is a tenant-owned resource at /api/v1/<plural>: POST (201), GET list
// (newest first, ?limit=&cursor=), GET/PATCH/DELETE /{id} (200/200/204,
// not_found for another tenant's id). Its schemas are named after the model:
// T's name, <T>Page, <T>Create and <T>Update.
func CRUD[T any, In Input[T]](plural string, store Store[T]) Resource {
	name := reflect.TypeFor[T]().Name()
	what := models.Noun[T]()
	return Resource{
		Register: func(api *echo.Group) {
			api.POST("/"+plural, createRow[T, In](store))
			api.GET("/"+plural, listRows(store))
			api.GET("/"+plural+"/:id", getRow(store, what))
			api.PATCH("/"+plural+"/:id", updateRow[T, In](store, what))
			api.DELETE("/"+plural+"/:id", deleteRow(store, what))
		},
		Schemas: map[string]reflect.Type{
			name: reflect.TypeFor[T](), name + "Page": reflect.TypeFor[Page[T]](),
			name + "Create": reflect.TypeFor[In](), name + "Update": reflect.TypeFor[In](),
		},
	}
}

type lister[T any] interface {
	List(ctx context.Context, limit int, after *page.Cursor) ([]T, *string, error)
}

type getter[T any] interface {
	Get(ctx context.Context, id uuid.UUID) (*T, error)
}

func createRow[T any, In Input[T]](store Store[T]) echo.HandlerFunc {
	return func(c echo.Context) error {
		var in In
		if err := decodeJSON(c, &in); err != nil {
			return err
		}
		if err := in.Validate(true); err != nil {
			return err
		}
		row := in.Row()
		if err := store.Create(c.Request().Context(), row); err != nil {
			return err
		}
		return c.JSON(http.StatusCreated, row)
	}
}

func listRows[T any](store lister[T]) echo.HandlerFunc {
	return func(c echo.Context) error {
		limit, after, err := pageQuery(c)
		if err != nil {
			return err
		}
		items, next, err := store.List(c.Request().Context(), limit, after)
		if err != nil {
			return err
		}
		if items == nil {
			items = []T{}
		}
		return c.JSON(http.StatusOK, Page[T]{Items: items, NextCursor: next})
	}
}

func getRow[T any](store getter[T], what string) echo.HandlerFunc {
	return func(c echo.Context) error {
		id, err := pathID(c, "id", what)
		if err != nil {
			return err
		}
		row, err := store.Get(c.Request().Context(), id)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, row)
	}
}

func updateRow[T any, In Input[T]](store Store[T], what string) echo.HandlerFunc {
	return func(c echo.Context) error {
		id, err := pathID(c, "id", what)
		if err != nil {
			return err
		}
		var in In
		if err := decodeJSON(c, &in); err != nil {
			return err
		}
		if err := in.Validate(false); err != nil {
			return err
		}
		row, err := store.Update(c.Request().Context(), id, in)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, row)
	}
}

func deleteRow[T any](store Store[T], what string) echo.HandlerFunc {
	return func(c echo.Context) error {
		id, err := pathID(c, "id", what)
		if err != nil {
			return err
		}
		if err := store.Delete(c.Request().Context(), id); err != nil {
			return err
		}
		return c.NoContent(http.StatusNoContent)
	}
}

// pageQuery reads the limit and cursor query parameters of a list route.
func pageQuery(c echo.Context) (int, *page.Cursor, error) {
	limit, err := page.Limit(c.QueryParam("limit"))
	if err != nil {
		return 0, nil, err
	}
	after, err := page.Decode(c.QueryParam("cursor"))
	return limit, after, err
}
