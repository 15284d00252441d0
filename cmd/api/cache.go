package main

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"

	tkhttp "github.com/your-org/tenantkit/internal/http"
)

// redisReady reports Redis as degraded, not down: without it the api still
// serves, from Postgres.
func redisReady(rdb *redis.Client) func(context.Context) error {
	return func(ctx context.Context) error {
		if err := rdb.Ping(ctx).Err(); err != nil {
			return fmt.Errorf("%w: %v", tkhttp.ErrDegraded, err)
		}
		return nil
	}
}
