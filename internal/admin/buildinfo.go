package admin

import (
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
)

// BuildInfo returns the mcproxy_build_info gauge: always 1, labelled with
// the proxy's version (the same string "version" answers) and the Go
// release it was built with, so dashboards can show what runs where and
// alerts can be joined on it.
func BuildInfo(version string) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "mcproxy_build_info",
		Help:        "Always 1; the labels say which mcproxy version, built with which Go, is running.",
		ConstLabels: prometheus.Labels{"version": version, "goversion": runtime.Version()},
	}, func() float64 { return 1 })
}

// ConnectionLimit returns the mcproxy_client_connections_limit gauge:
// limits.max_connections, which applies at start, so that alerts can relate
// mcproxy_client_connections to it.
func ConnectionLimit(max int) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "mcproxy_client_connections_limit",
		Help: "Client connections served at once before new ones are refused (limits.max_connections).",
	}, func() float64 { return float64(max) })
}
