package config

import (
	"net"
	"net/netip"
)

// httpsAndMetrics checks the HTTP keys for HTTPS and /metrics.
func (v *validator) httpsAndMetrics() {
	h := &v.c.HTTP
	v.positive("http.write_timeout", int64(h.WriteTimeout), h.WriteTimeout.String())
	v.positive("http.session_idle", int64(h.SessionIdle), h.SessionIdle.String())
	if h.SessionMax < h.SessionIdle {
		v.errorf("http.session_max", "%s is shorter than session_idle %s", h.SessionMax, h.SessionIdle)
	}
	switch {
	case h.TLSCertFile != "" && h.TLSKeyFile == "":
		v.errorf("http.tls_cert_file", "needs tls_key_file")
	case h.TLSCertFile == "" && h.TLSKeyFile != "":
		v.errorf("http.tls_key_file", "needs tls_cert_file")
	}
	if h.TLSCertFile != "" {
		v.file("http.tls_cert_file", h.TLSCertFile)
	}
	if h.TLSKeyFile != "" {
		v.file("http.tls_key_file", h.TLSKeyFile)
	}

	switch h.MetricsAuth {
	case MetricsToken, MetricsNone:
	default:
		v.errorf("http.metrics_auth", "unknown mode %s (want token or none)", quote(string(h.MetricsAuth)))
	}
	if h.MetricsListen == "" {
		if h.MetricsAuth == MetricsNone {
			v.errorf("http.metrics_auth", "none needs metrics_listen on a loopback address: the API's listener serves /metrics only with a token")
		}
		return
	}
	if !v.addr("http.metrics_listen", h.MetricsListen) {
		return
	}
	others := []struct{ key, addr string }{{"http.listen", h.Listen}}
	if v.c.Broker.Mode == ModeEmbedded {
		others = append(others,
			struct{ key, addr string }{"broker.embedded.listen", v.c.Broker.Embedded.Listen},
			struct{ key, addr string }{"broker.embedded.tls_listen", v.c.Broker.Embedded.TLSListen})
	}
	for _, o := range others {
		if o.addr == h.MetricsListen && !anyPort(o.addr) {
			v.errorf("http.metrics_listen", "same address as %s", o.key)
		}
	}
	if h.MetricsAuth == MetricsNone && !loopback(h.MetricsListen) {
		v.errorf("http.metrics_listen", "%s is not a loopback address: /metrics without a token is served only on 127.0.0.1 or [::1] (or set metrics_auth: token)", quote(h.MetricsListen))
	}
}

// loopback reports whether the listen address addr is on a loopback IP
// address. A name ("localhost") does not count: what it resolves to is
// not the config's to know.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}
