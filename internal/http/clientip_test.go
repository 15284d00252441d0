package http_test

import (
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/labstack/echo/v4"

	tkhttp "github.com/your-org/tenantkit/internal/http"
	"github.com/your-org/tenantkit/internal/tenancy"
)

// Echo's RealIP and the kit's failure throttle name the same client, from
// the same TENANCY_TRUSTED_PROXIES, whatever X-Forwarded-For says.
func TestClientIP_EchoAndTheKitAgree(t *testing.T) {
	t.Parallel()
	proxies := map[string]tenancy.TrustedProxies{
		"none":      nil,
		"10/8":      {netip.MustParsePrefix("10.0.0.0/8")},
		"v4 and v6": {netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8"), netip.MustParsePrefix("127.0.0.1/32")},
	}
	cases := []struct{ peer, xff, want string }{
		{"203.0.113.5:1234", "", "203.0.113.5"},
		{"203.0.113.5:1234", "198.51.100.1", "203.0.113.5"}, // untrusted peer: header ignored
		{"10.1.1.1:80", "198.51.100.1", "198.51.100.1"},
		{"10.1.1.1:80", "198.51.100.1, 10.2.2.2", "198.51.100.1"},
		{"10.1.1.1:80", "6.6.6.6, 198.51.100.1, 10.2.2.2", "198.51.100.1"}, // left entries are the client's own
		{"10.1.1.1:80", "garbage, 10.2.2.2", "10.1.1.1"},
		{"10.1.1.1:80", "10.3.3.3, 10.2.2.2", "10.3.3.3"},
		{"10.1.1.1:80", "[2001:db8::1]", "2001:db8::1"},
		{"[fd00::1]:80", "2001:db8::2", "2001:db8::2"},
		{"[::ffff:10.1.1.1]:80", "198.51.100.7", "198.51.100.7"},
		{"127.0.0.1:5", "198.51.100.8", "198.51.100.8"},
		{"192.168.1.1:5", "198.51.100.9", "192.168.1.1"}, // Echo's default private-network trust is off
	}
	for name, p := range proxies {
		e := echo.New()
		e.IPExtractor = tkhttp.IPExtractor(p)
		for _, c := range cases {
			req := httptest.NewRequest("GET", "/", nil)
			req.RemoteAddr = c.peer
			if c.xff != "" {
				req.Header.Set("X-Forwarded-For", c.xff)
			}
			ctx := e.NewContext(req, httptest.NewRecorder())
			echoIP, _ := netip.ParseAddr(ctx.RealIP())
			kit := p.ClientIP(req)
			if echoIP.Unmap() != kit {
				t.Errorf("%s: peer %s XFF %q: Echo says %s, the kit %s", name, c.peer, c.xff, ctx.RealIP(), kit)
			}
			if name == "v4 and v6" && kit.String() != c.want {
				t.Errorf("peer %s XFF %q: client %s, want %s", c.peer, c.xff, kit, c.want)
			}
		}
	}
}
