package main

import (
	"testing"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/your-org/tenantkit/internal/testenv"
)

func TestQueueMetrics_ReportTheSizeOfEveryQueue(t *testing.T) {
	t.Parallel()
	url, prefix := testenv.Redis(t)
	opt, err := asynq.ParseRedisURI(url)
	if err != nil {
		t.Fatal(err)
	}
	queue := prefix + "-queue-metrics" // asynq has no key prefix: a queue of our own
	client := asynq.NewClient(opt)
	defer client.Close()
	insp := asynq.NewInspector(opt)
	defer insp.Close()
	t.Cleanup(func() { _ = insp.DeleteQueue(queue, true) })
	for range 3 {
		if _, err := client.Enqueue(asynq.NewTask("test:queue-metrics", nil), asynq.Queue(queue)); err != nil {
			t.Fatal(err)
		}
	}

	reg := prometheus.NewRegistry()
	closer, err := registerQueueMetrics(reg, opt)
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Close()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["queue"] != queue {
				continue
			}
			if labels["state"] != "" {
				got[f.GetName()+"/"+labels["state"]] = m.GetGauge().GetValue()
			} else {
				got[f.GetName()] = m.GetGauge().GetValue()
			}
		}
	}
	if got["asynq_queue_size"] != 3 || got["asynq_tasks_enqueued_total/pending"] != 3 {
		t.Errorf("queue %s metrics = %v, want size 3 and 3 pending", queue, got)
	}
	if _, ok := got["asynq_queue_latency_seconds"]; !ok {
		t.Errorf("no latency series for queue %s: %v", queue, got)
	}
}
