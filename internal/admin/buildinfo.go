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
