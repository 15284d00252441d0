package main

import (
	"io"

	"github.com/hibiken/asynq"
	"github.com/hibiken/asynq/x/metrics"
	"github.com/prometheus/client_golang/prometheus"
)

// registerQueueMetrics adds asynq's own queue collector (size, latency,
// paused, processed/failed counts, per queue and state) to the worker's
// /metrics. It reads Redis at scrape time, so every worker reports the same
// shared queues; the series are per queue, never per tenant.
func registerQueueMetrics(reg prometheus.Registerer, redis asynq.RedisConnOpt) (io.Closer, error) {
	insp := asynq.NewInspector(redis)
	if err := reg.Register(metrics.NewQueueMetricsCollector(insp)); err != nil {
		insp.Close()
		return nil, err
	}
	return insp, nil
}
