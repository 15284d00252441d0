package app

import (
	tkhttp "github.com/your-org/tenantkit/internal/http"
	"github.com/your-org/tenantkit/internal/models"
)

// projectResource wires /api/v1/projects.
func projectResource(d Deps) Resource {
	return Resource{HTTP: tkhttp.CRUD[models.Project, tkhttp.ProjectInput]("projects", models.Projects{DB: d.DB})}
}
