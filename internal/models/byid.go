package models

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/your-org/tenantkit/internal/tenancy"
)

// byID loads the context tenant's row of model T by id. A missing row and
// another tenant's row are the same answer: notFound.
func byID[T any](ctx context.Context, db *gorm.DB, id uuid.UUID, what string, notFound func() error) (*T, error) {
	tdb, err := tenancy.DBFor(ctx, db)
	if err != nil {
		return nil, err
	}
	var row T
	err = tdb.Where("id = ?", id).Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, notFound()
	}
	if err != nil {
		return nil, fmt.Errorf("get %s %s: %w", what, id, err)
	}
	return &row, nil
}
