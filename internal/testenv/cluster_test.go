package testenv

import (
	"context"
	"os"
	"testing"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

// TestSecondCluster_IsAnotherServer checks that the second cluster is a
// different server holding migrated databases the app role can use.
func TestSecondCluster_IsAnotherServer(t *testing.T) {
	t.Parallel()
	c := SecondCluster(t)
	d := c.Postgres(t)
	main := Postgres(t)
	ctx := context.Background()
	var a, b string
	if err := d.Owner.QueryRowContext(ctx, `SELECT current_setting('port')`).Scan(&a); err != nil {
		t.Fatal(err)
	}
	if err := main.Owner.QueryRowContext(ctx, `SELECT current_setting('port')`).Scan(&b); err != nil {
		t.Fatal(err)
	}
	if a == b {
		t.Fatalf("second cluster answers on the same port %s as the main one", a)
	}
	var n int
	if err := d.App.QueryRowContext(ctx, `SELECT count(*) FROM public.projects`).Scan(&n); err != nil {
		t.Fatalf("app role on the second cluster: %v", err)
	}
}
