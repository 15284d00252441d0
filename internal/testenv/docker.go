package testenv

import (
	"fmt"
	"time"

	"github.com/ory/dockertest/v3"
)

// Containers are started at most once per test binary and removed by their
// expiry: dockertest has no hook at process exit.
const containerTTL = 20 * 60 // seconds

func dockerPool() (*dockertest.Pool, error) {
	pool, err := dockertest.NewPool("")
	if err != nil {
		return nil, err
	}
	if err := pool.Client.Ping(); err != nil {
		return nil, fmt.Errorf("no docker daemon: %w", err)
	}
	pool.MaxWait = 60 * time.Second
	return pool, nil
}

func dockerPostgres() (string, error) {
	pool, err := dockerPool()
	if err != nil {
		return "", err
	}
	res, err := pool.Run("postgres", "15", []string{"POSTGRES_HOST_AUTH_METHOD=trust"})
	if err != nil {
		return "", err
	}
	_ = res.Expire(containerTTL)
	u := fmt.Sprintf("postgres://postgres@%s/postgres?sslmode=disable", res.GetHostPort("5432/tcp"))
	return u, pool.Retry(func() error { return ping(u) })
}

func dockerRedis() (string, error) {
	pool, err := dockerPool()
	if err != nil {
		return "", err
	}
	res, err := pool.Run("redis", "7", nil)
	if err != nil {
		return "", err
	}
	_ = res.Expire(containerTTL)
	u := fmt.Sprintf("redis://%s/0", res.GetHostPort("6379/tcp"))
	return u, pool.Retry(func() error { return pingRedis(u) })
}
