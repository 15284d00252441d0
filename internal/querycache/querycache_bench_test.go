package querycache_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/your-org/tenantkit/internal/models"
	"github.com/your-org/tenantkit/internal/querycache"
	"github.com/your-org/tenantkit/internal/tenancy"
	"github.com/your-org/tenantkit/internal/testenv"
)

// BenchmarkQueryCache prints the cost of a tenant's 20-row project page
// served by the query cache (generation read + entry read + decode) next to
// the same query run on Postgres.
//
//	make bench-cache
func BenchmarkQueryCache(b *testing.B) {
	d := testenv.Postgres(b)
	tn := d.Tenant(b, "qbench", tenancy.TierPremium)
	ctx := tenancy.WithTenant(context.Background(), tn)
	g := openGORM(b, d, redisCacher(b))
	for i := range 20 {
		if err := (models.Projects{DB: g}).Create(ctx, &models.Project{Name: fmt.Sprintf("project %02d", i)}); err != nil {
			b.Fatal(err)
		}
	}
	page := func(b *testing.B, scopes ...func(*gorm.DB) *gorm.DB) {
		var ps []models.Project
		if err := g.WithContext(ctx).Scopes(scopes...).Order("created_at DESC, id DESC").Limit(20).Find(&ps).Error; err != nil || len(ps) != 20 {
			b.Fatalf("page: %d rows, %v", len(ps), err)
		}
	}
	perOp := map[string]time.Duration{}
	b.Run("postgres", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			page(b)
		}
		perOp["postgres"] = b.Elapsed() / time.Duration(b.N)
	})
	b.Run("cache_hit", func(b *testing.B) {
		page(b, querycache.Cached)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			page(b, querycache.Cached)
		}
		perOp["cache_hit"] = b.Elapsed() / time.Duration(b.N)
	})
	if p, h := perOp["postgres"], perOp["cache_hit"]; p > 0 && h > 0 {
		fmt.Fprintf(os.Stdout, "\n20-row project page: postgres %s, query cache hit %s (%.2fx postgres)\n", p, h, float64(h)/float64(p))
	}
}
