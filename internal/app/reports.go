package app

import (
	"github.com/hibiken/asynq"

	tkhttp "github.com/your-org/tenantkit/internal/http"
	"github.com/your-org/tenantkit/internal/models"
	"github.com/your-org/tenantkit/internal/tasks"
)

// reportResource wires /api/v1/reports (the api stores and enqueues) and the
// report tasks (the worker generates and cleans up).
func reportResource(d Deps) Resource {
	reports := models.Reports{DB: d.DB}
	w := &tasks.ReportWorker{Reports: reports, Projects: models.Projects{DB: d.DB}, Log: d.Log}
	return Resource{
		HTTP: tkhttp.Reports(&tasks.Reports{Store: reports, Tasks: d.Tasks, Log: d.Log}),
		Tasks: map[string]asynq.Handler{
			tasks.TypeReportGenerate: tasks.Handler(w.Generate),
			tasks.TypeReportCleanup:  tasks.Handler(w.Cleanup),
		},
	}
}
