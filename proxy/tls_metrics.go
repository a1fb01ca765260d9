package proxy

import "github.com/prometheus/client_golang/prometheus"

// TLSCollector returns a Prometheus collector of the proxy's TLS counters
// (handshakes on both sides, bridged clients). Like Collector it reads
// counters kept anyway, at scrape time. The certificates' expiry is the
// caller's to export: it holds the files (cmd/mcproxy).
func (p *Proxy) TLSCollector() prometheus.Collector { return (*tlsCollector)(p) }

type tlsCollector Proxy

var (
	descTLSHandshakes = newDesc("mcproxy_tls_client_handshakes_total",
		"TLS handshakes of clients on the TLS listener, by result (ok, failed: no or untrusted certificate, clear text, timeout).", "result")
	descTLSClients = newDesc("mcproxy_tls_client_connections",
		"Clients connected over TLS now (also counted in mcproxy_client_connections).")
	descTLSBackendHandshakes = newDesc("mcproxy_backend_tls_handshakes_total",
		"TLS handshakes with backends, by result (ok, resumed: ok with a resumed session, failed: refused or certificate not verified).", "result")
)

func (c *tlsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descTLSHandshakes
	ch <- descTLSClients
	ch <- descTLSBackendHandshakes
}

func (c *tlsCollector) Collect(ch chan<- prometheus.Metric) {
	t := &(*Proxy)(c).tls
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	counter(descTLSHandshakes, t.handshakes.Load(), "ok")
	counter(descTLSHandshakes, t.handshakeFailures.Load(), "failed")
	ch <- prometheus.MustNewConstMetric(descTLSClients, prometheus.GaugeValue, float64(t.sessions.Load()))
	counter(descTLSBackendHandshakes, t.backendHandshakes.Load(), "ok")
	counter(descTLSBackendHandshakes, t.backendResumed.Load(), "resumed")
	counter(descTLSBackendHandshakes, t.backendFailures.Load(), "failed")
}
