package proxy

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// appendPoolStats renders "stats pools": one group of lines per pool,
// named pool:<name>:<field>, then one line per route, route:<n>:<field>.
func (p *Proxy) appendPoolStats(dst []byte) []byte {
	w := statWriter{b: dst}
	t := p.table.Load()
	for _, pt := range t.pools {
		pre := "pool:" + pt.pool.name + ":"
		o := pt.opts
		w.str(pre+"distribution", o.Distribution)
		if o.Hash != "" {
			w.str(pre+"hash", o.Hash)
		}
		if o.HashTag != "" {
			w.str(pre+"hash_tag", sanitizeStat(o.HashTag))
		}
		w.int64(pre+"backends", int64(len(pt.all)))
		w.int64(pre+"ring_members", int64(len(pt.members)))
		w.int64(pre+"live_backends", int64(pt.liveBackends()))
		w.int64(pre+"max_ejected_backends", int64(p.maxEjectedOf(len(pt.all))))
		w.int64(pre+"replicas", int64(pt.pool.replicas))
		c := pt.pool.counters
		w.uint64(pre+"failover_capped_writes", c.failoverCappedWrites.Load())
		w.uint64(pre+"failover_invalidations", c.failoverInvalidations.Load())
		w.uint64(pre+"warm_hits", c.warmHits.Load())
		w.uint64(pre+"warm_copies", c.warmCopies.Load())
		w.uint64(pre+"warm_copy_errors", c.warmCopyErrors.Load())
		w.uint64(pre+"warm_deletes", c.warmDeletes.Load())
		w.appendCopyStats(pre, &c.copyCounters)
	}
	for i, r := range t.routes {
		pre := "route:" + strconv.Itoa(i) + ":"
		if r.prefix != "" {
			w.str(pre+"prefix", sanitizeStat(r.prefix))
		}
		w.str(pre+"pool", r.pool.pool.name)
		if r.warm != nil {
			w.str(pre+"warm_from", r.warm.pool.name)
		}
	}
	w.b = append(w.b, "END\r\n"...)
	return w.b
}

// maxEjectedOf is the ejection cap of a pool of n backends.
func (p *Proxy) maxEjectedOf(n int) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.maxEjected.Limit(n)
}

// weightOf returns b's weight in the first pool of t that lists it, and
// the names of those pools, for "stats backends".
func (t *routeTable) weightOf(b *backend) (weight int, pools string) {
	for _, pt := range t.pools {
		for i, m := range pt.all {
			if m != b {
				continue
			}
			if pools == "" {
				weight = pt.pool.weights[i]
			} else {
				pools += ","
			}
			pools += pt.pool.name
		}
	}
	return weight, pools
}

var (
	descPoolBackends = newDesc("mcproxy_pool_backends",
		"Backends configured in the pool.", "pool")
	descPoolRingMembers = newDesc("mcproxy_pool_ring_members",
		"Backends in the pool's placement now (ejected ones are out).", "pool")
	descPoolLiveBackends = newDesc("mcproxy_pool_live_backends",
		"Backends of the pool that serve its keys: in its placement and not held there down by the ejection cap.", "pool")
	descPoolFailoverCapped = newDesc("mcproxy_pool_failover_capped_writes_total",
		"Writes and gat keys of the pool sent to a stand-in backend, their exptime capped at failover.ttl.", "pool")
	descPoolFailoverInvalidations = newDesc("mcproxy_pool_failover_invalidations_total",
		"Invalidating deletes the pool's failover sent.", "pool")
	descPoolWarmHits = newDesc("mcproxy_pool_warm_hits_total",
		"Reads that missed on the pool and hit on its route's warm_from pool.", "pool")
	descPoolWarmCopies = newDesc("mcproxy_pool_warm_copies_total",
		"Values copied into the pool from its route's warm_from pool.", "pool")
	descPoolWarmCopyErrors = newDesc("mcproxy_pool_warm_copy_errors_total",
		"Warm-up copies that failed or were undone because the old copy changed.", "pool")
	descPoolWarmDeletes = newDesc("mcproxy_pool_warm_deletes_total",
		"Deletes of old copies on the warm_from pool after a write or delete on the pool.", "pool")
	descPoolReplicas = newDesc("mcproxy_pool_replicas",
		"Backends that hold each key of the pool.", "pool")
	descPoolLaterCopyReads = newDesc("mcproxy_pool_later_copy_reads_total",
		"Reads of the pool served by a later copy after the first missed or failed.", "pool")
	descPoolCopyWrites = newDesc("mcproxy_pool_copy_writes_total",
		"Writes and deletes sent to copies of a key besides the first.", "pool")
	descPoolCopyWriteErrors = newDesc("mcproxy_pool_copy_write_errors_total",
		"Copy writes that failed; the client was answered with an error.", "pool")
	descBackendLaterCopyReads = newDesc("mcproxy_backend_later_copy_reads_total",
		"Reads the backend served as a later copy after the first missed or failed.", "backend")
	descBackendCopyWrites = newDesc("mcproxy_backend_copy_writes_total",
		"Writes and deletes sent to the backend as a copy besides the first.", "backend")
	descBackendCopyWriteErrors = newDesc("mcproxy_backend_copy_write_errors_total",
		"Copy writes to the backend that failed.", "backend")
)

// collectPools sends the per-pool metrics.
func (c *collector) collectPools(ch chan<- prometheus.Metric) {
	p := (*Proxy)(c)
	for _, pt := range p.table.Load().pools {
		name, pc := pt.pool.name, pt.pool.counters
		g := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, name)
		}
		n := func(d *prometheus.Desc, v uint64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), name)
		}
		g(descPoolBackends, float64(len(pt.all)))
		g(descPoolRingMembers, float64(len(pt.members)))
		g(descPoolLiveBackends, float64(pt.liveBackends()))
		n(descPoolFailoverCapped, pc.failoverCappedWrites.Load())
		n(descPoolFailoverInvalidations, pc.failoverInvalidations.Load())
		n(descPoolWarmHits, pc.warmHits.Load())
		n(descPoolWarmCopies, pc.warmCopies.Load())
		n(descPoolWarmCopyErrors, pc.warmCopyErrors.Load())
		n(descPoolWarmDeletes, pc.warmDeletes.Load())
		g(descPoolReplicas, float64(pt.pool.replicas))
		n(descPoolLaterCopyReads, pc.laterReads.Load())
		n(descPoolCopyWrites, pc.copyWrites.Load())
		n(descPoolCopyWriteErrors, pc.copyWriteErrors.Load())
	}
}

// appendCopyStats writes a pool's or a backend's copy counters
// (replica.go) under the prefix pre.
func (w *statWriter) appendCopyStats(pre string, c *copyCounters) {
	w.uint64(pre+"later_copy_reads", c.laterReads.Load())
	w.uint64(pre+"copy_writes", c.copyWrites.Load())
	w.uint64(pre+"copy_write_errors", c.copyWriteErrors.Load())
}

// copyStatsOf returns the copy counters of the backend named name; zero
// counters when it never was in a pool table.
func (p *Proxy) copyStatsOf(name string) *copyCounters {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c := p.copyStats[name]; c != nil {
		return c
	}
	return &copyCounters{}
}

// collectBackendCopies sends backend b's copy counters.
func (c *collector) collectBackendCopies(ch chan<- prometheus.Metric, b *backend) {
	cc := (*Proxy)(c).copyStatsOf(b.name)
	for d, v := range map[*prometheus.Desc]uint64{
		descBackendLaterCopyReads:  cc.laterReads.Load(),
		descBackendCopyWrites:      cc.copyWrites.Load(),
		descBackendCopyWriteErrors: cc.copyWriteErrors.Load(),
	} {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), b.name)
	}
}

// zoneOf returns b's zone, as the first pool that lists it has it.
func (t *routeTable) zoneOf(b *backend) string {
	for _, pt := range t.pools {
		for i, m := range pt.all {
			if m == b {
				return pt.pool.zones[i]
			}
		}
	}
	return ""
}
