package main

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/your-org/tenantkit/internal/querycache"
	"github.com/your-org/tenantkit/internal/testenv"
	"github.com/your-org/tenantkit/internal/testenv/redisproc"
)

// Why row 6: deleting a tenant invalidates its API keys and registry entries
// in every process: re-created with the same id, the deleted tenant's key
// does not work on the new one, in either process, within 2 s; and the
// query-cache generation of the id moves on.
func TestAPI_DeletedTenantsKeysStopWorkingInEveryProcess(t *testing.T) {
	t.Parallel()
	srv := redisproc.Start(t)
	d := testenv.Postgres(t)
	api1, api2 := startCacheAPI(t, d, srv.URL()), startCacheAPI(t, d, srv.URL())
	id := createCacheTenant(t, api1, "doomed", "standard")
	var key struct{ Key string }
	json.Unmarshal(api1.must(t, 201, "POST", "/admin/v1/tenants/"+id+"/api-keys", map[string]string{"name": "ci"}, asAdmin...).body, &key)
	for range 2 { // warm both processes' caches
		for _, a := range []cacheAPI{api1, api2} {
			a.must(t, 200, "GET", "/api/v1/tenant", nil, "X-API-Key", key.Key)
		}
	}
	opt, _ := redis.ParseURL(srv.URL())
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	prefix := "tenantkit:" + d.Name + ":"
	cacher := querycache.RedisCacher{Redis: rdb, Prefix: prefix}
	before, err := cacher.Generation(context.Background(), uuid.MustParse(id))
	if err != nil {
		t.Fatal(err)
	}

	api1.must(t, 204, "DELETE", "/admin/v1/tenants/"+id, nil, asAdmin...)
	api1.must(t, 201, "POST", "/admin/v1/tenants", map[string]string{"id": id, "identifier": "reborn", "name": "reborn", "tier": "standard"}, asAdmin...)
	deleted := time.Now()
	for _, a := range []cacheAPI{api1, api2} {
		eventually(t, deleted, 2*time.Second, "the deleted tenant's key is refused", func() bool {
			r := a.do(t, "GET", "/api/v1/tenant", nil, "X-API-Key", key.Key)
			return r.status == 401 && r.code() == "invalid_credentials"
		})
		r := a.must(t, 200, "GET", "/api/v1/tenant", nil, asJWT(t, id)...)
		if !bytes.Contains(r.body, []byte(`"reborn"`)) {
			t.Errorf("the re-created tenant is served from a stale entry: %s", r.body)
		}
	}
	after, err := cacher.Generation(context.Background(), uuid.MustParse(id))
	if err != nil || after <= before {
		t.Errorf("query-cache generation %d -> %d (%v): a deleted tenant's cached queries must be orphaned", before, after, err)
	}
	if n, _ := rdb.Keys(context.Background(), "*"+key.Key+"*").Result(); len(n) != 0 {
		t.Errorf("a raw API key is stored in Redis: %v", n)
	}
}
