package http_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/your-org/tenantkit/internal/tenancy"
	"github.com/your-org/tenantkit/internal/testenv"
)

// fuzzRoutes are the requests whose bodies and queries the decoders read;
// {p} is a project of the tenant, {t} a tenant.
var fuzzRoutes = []struct{ method, path string }{
	{"POST", "/api/v1/projects"},
	{"PATCH", "/api/v1/projects/{p}"},
	{"GET", "/api/v1/projects"},
	{"POST", "/admin/v1/tenants"},
	{"PATCH", "/admin/v1/tenants/{t}"},
	{"GET", "/admin/v1/tenants"},
	{"POST", "/admin/v1/tenants/{t}/api-keys"},
}

// FuzzRequestDecoders sends arbitrary bodies and queries to every decoding
// route of the real stack (Postgres, the app role, both tiers) and holds it
// to invariant 9: unknown input never yields a 5xx. The seed corpus in
// testdata/fuzz/FuzzRequestDecoders runs with every `go test`; fuzz further
// with `go test -run '^$' -fuzz FuzzRequestDecoders ./internal/http/`.
func FuzzRequestDecoders(f *testing.F) {
	s := testenv.NewStack(f, testenv.StackOptions{AuthFailureBurst: 1_000_000})
	prem := s.Tenant(f, "fuzz-prem", tenancy.TierPremium)
	std := s.Tenant(f, "fuzz-std", tenancy.TierStandard)
	ids := map[*tenancy.Tenant]string{}
	for _, tn := range []*tenancy.Tenant{prem, std} {
		res := s.Do(f, "POST", "/api/v1/projects", map[string]string{"name": "seed"}, testenv.AsTenant(f, tn)...)
		var p struct{ ID string }
		res.JSON(f, &p)
		ids[tn] = p.ID
	}
	f.Add(uint8(0), "", []byte(`{"name":"a"}`))
	f.Add(uint8(3), "", []byte(`{"identifier":"fz-x","name":"x","tier":"standard","metadata":{"a":[1,{"b":"\u0000"}]}}`))
	f.Add(uint8(5), "q=%00&limit=5", []byte(nil))
	f.Fuzz(func(t *testing.T, route uint8, query string, body []byte) {
		r := fuzzRoutes[int(route)%len(fuzzRoutes)]
		tn := prem
		if route >= 128 {
			tn = std
		}
		path := strings.NewReplacer("{p}", ids[tn], "{t}", tn.ID.String()).Replace(r.path)
		if query != "" {
			path += "?" + query
		}
		req, err := http.NewRequest(r.method, s.URL+path, bytes.NewReader(body))
		if err != nil {
			t.Skip("not a request a client can send")
		}
		req.Header.Set("Content-Type", "application/json")
		if strings.HasPrefix(r.path, "/admin/") {
			req.Header.Set("Authorization", "Bearer "+testenv.AdminToken)
		} else {
			req.Header.Set("Authorization", "Bearer "+testenv.Token(t, tn.ID.String()))
		}
		res, err := s.Server.Client().Do(req)
		if err != nil {
			t.Skip("refused by the client or transport")
		}
		defer res.Body.Close()
		if res.StatusCode >= 500 {
			t.Fatalf("%s %s with %q: %d", r.method, path, body, res.StatusCode)
		}
	})
}
