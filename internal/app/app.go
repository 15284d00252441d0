// Package app is the domain's wiring: every tenant resource's store, routes
// and task handlers, built from the dependencies each binary has, and the
// tenant caches. cmd/api, cmd/worker and internal/testenv all call it, so a
// resource is registered here once (make resource appends its line).
package app

import (
	"fmt"
	"log/slog"

	"github.com/hibiken/asynq"
	"gorm.io/gorm"

	tkhttp "github.com/your-org/tenantkit/internal/http"
	"github.com/your-org/tenantkit/internal/tasks"
)

// Deps are what resources are built from.
type Deps struct {
	DB    *gorm.DB       // tenancy.OpenGORM over the app role
	Tasks tasks.Enqueuer // enqueues tenant tasks (a *tasks.Client)
	Log   *slog.Logger
}

// Resource is one tenant resource: its HTTP routes and its task handlers.
type Resource struct {
	HTTP  tkhttp.Resource          // zero: no routes
	Tasks map[string]asynq.Handler // task type → handler, run by cmd/worker
}

// Resources lists the domain's tenant resources, one line each; each
// resource's wiring is in its own file here (projects.go, reports.go).
func Resources(d Deps) []Resource {
	return []Resource{
		projectResource(d),
		reportResource(d),
		// make resource: new resources go above this line.
	}
}

// Routes returns the resources' routes for http.Config.Resources.
func Routes(d Deps) []tkhttp.Resource {
	var out []tkhttp.Resource
	for _, r := range Resources(d) {
		if r.HTTP.Register != nil {
			out = append(out, r.HTTP)
		}
	}
	return out
}

// TaskHandlers returns the resources' task handlers for
// tasks.WorkerConfig.Handlers; a task type registered twice is an error.
func TaskHandlers(d Deps) (map[string]asynq.Handler, error) {
	out := map[string]asynq.Handler{}
	for _, r := range Resources(d) {
		for typ, h := range r.Tasks {
			if _, dup := out[typ]; dup {
				return nil, fmt.Errorf("task type %q is registered by two resources", typ)
			}
			out[typ] = h
		}
	}
	return out, nil
}
