package tenancy_test

import (
	"os"
	"testing"

	"github.com/your-org/tenantkit/internal/testenv"
)

// TestMain stops the second Postgres cluster the cells tests start.
func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }
