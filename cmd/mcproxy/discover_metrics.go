package main

import (
	"github.com/prometheus/client_golang/prometheus"
)

// discoveryCollector exports each discovered pool's lookups: the
// Watchers' counters and the size of the list in force, read at scrape
// time (nothing is counted twice or on the data path).
type discoveryCollector struct{ d *discovery }

var (
	discoverLookupsDesc = prometheus.NewDesc("mcproxy_discover_lookups_total",
		"DNS lookups of a discovered pool's backends, good or not.", []string{"pool"}, nil)
	discoverFailuresDesc = prometheus.NewDesc("mcproxy_discover_failures_total",
		"DNS lookups that got no answer (an error, SERVFAIL, a timeout); the last list stays.", []string{"pool"}, nil)
	discoverEmptyDesc = prometheus.NewDesc("mcproxy_discover_empty_total",
		"DNS lookups whose answer named no backend; the last list stays.", []string{"pool"}, nil)
	discoverCappedDesc = prometheus.NewDesc("mcproxy_discover_removals_capped_total",
		"Backends missing from DNS kept in the pool by health.max_ejected, summed over lookups.", []string{"pool"}, nil)
	discoverLastSuccessDesc = prometheus.NewDesc("mcproxy_discover_last_success_timestamp_seconds",
		"When the last good DNS answer of the pool came (0: none yet).", []string{"pool"}, nil)
	discoverBackendsDesc = prometheus.NewDesc("mcproxy_discover_backends",
		"Backends of the pool found in DNS, as last applied.", []string{"pool"}, nil)
)

// Describe implements prometheus.Collector.
func (c discoveryCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{discoverLookupsDesc, discoverFailuresDesc, discoverEmptyDesc,
		discoverCappedDesc, discoverLastSuccessDesc, discoverBackendsDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c discoveryCollector) Collect(ch chan<- prometheus.Metric) {
	lists := c.d.snapshot()
	for _, pool := range c.d.order {
		n := c.d.watchers[pool].Counts()
		var last float64
		if !n.LastSuccess.IsZero() {
			last = float64(n.LastSuccess.UnixNano()) / 1e9
		}
		ch <- prometheus.MustNewConstMetric(discoverLookupsDesc, prometheus.CounterValue, float64(n.Lookups), pool)
		ch <- prometheus.MustNewConstMetric(discoverFailuresDesc, prometheus.CounterValue, float64(n.Failures), pool)
		ch <- prometheus.MustNewConstMetric(discoverEmptyDesc, prometheus.CounterValue, float64(n.Empty), pool)
		ch <- prometheus.MustNewConstMetric(discoverCappedDesc, prometheus.CounterValue, float64(n.Capped), pool)
		ch <- prometheus.MustNewConstMetric(discoverLastSuccessDesc, prometheus.GaugeValue, last, pool)
		ch <- prometheus.MustNewConstMetric(discoverBackendsDesc, prometheus.GaugeValue, float64(len(lists[pool])), pool)
	}
}

// registerDiscovery shows the discovered pools' metrics on the admin
// server, when the config has discovered pools and an admin address.
func (a *adminEndpoint) registerDiscovery(d *discovery) {
	if a.srv != nil && d != nil && len(d.order) > 0 {
		a.reg.MustRegister(discoveryCollector{d})
	}
}
