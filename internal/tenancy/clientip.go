package tenancy

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// ClientIP is the address of the client that sent r: the peer, unless the
// peer is a trusted proxy, in which case the X-Forwarded-For entries are read
// from the right and the first one outside the trusted networks is the
// client. An entry that does not parse ends the walk at the peer (a proxy
// that writes garbage cannot be followed). It is Echo's
// ExtractIPFromXFFHeader rule with trust limited to p, so that the kit and
// Echo's RealIP agree (internal/http configures Echo from the same list).
func (p TrustedProxies) ClientIP(r *http.Request) netip.Addr {
	direct := peerAddr(r.RemoteAddr)
	xffs := r.Header.Values("X-Forwarded-For")
	if len(xffs) == 0 || !direct.IsValid() || !p.trustsAddr(direct) {
		return direct
	}
	entries := strings.Split(strings.Join(xffs, ","), ",")
	for i := len(entries) - 1; i >= 0; i-- {
		e := strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(entries[i]), "["), "]")
		a, err := netip.ParseAddr(e)
		if err != nil || a.Zone() != "" {
			return direct
		}
		if a = a.Unmap(); !p.trustsAddr(a) {
			return a
		}
	}
	first, _ := netip.ParseAddr(strings.Trim(strings.TrimSpace(entries[0]), "[]"))
	return first.Unmap() // every hop is trusted: the furthest one is the best guess
}

func peerAddr(remoteAddr string) netip.Addr {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	if h, _, ok := strings.Cut(host, "%"); ok && strings.Contains(host, ":") {
		host = h
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

func (p TrustedProxies) trustsAddr(a netip.Addr) bool {
	for _, n := range p {
		if n.Contains(a) {
			return true
		}
	}
	return false
}
