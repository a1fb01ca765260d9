package proxy

import (
	"bytes"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/mcproxy/mcproxy/health"
	"github.com/mcproxy/mcproxy/protocol"
)

// statsCommand asks a backend for its general stats, which plain "stats"
// adds up.
var statsCommand = []byte("stats\r\n")

// dispatchStats answers stats from the proxy's own counters. Plain "stats"
// also asks every live backend for its stats, to add up the fields that
// describe stored data (curr_items, bytes, ...).
func (s *session) dispatchStats(req *protocol.Request) {
	var sub string
	if len(req.Args) > 0 {
		sub = string(req.Args[0])
	}
	switch sub {
	case "":
		s.sendToEveryBackend(newRequest(s, protocol.OpStats), statsCommand, nil)
	case "backends":
		s.enqueueLocalBytes(s.p.appendBackendStats(nil))
	case "pools":
		s.enqueueLocalBytes(s.p.appendPoolStats(nil))
	case "settings":
		s.enqueueLocalBytes(s.p.appendSettings(nil))
	case "reset":
		// Only the proxy's own "stats" counters: a client cannot zero the
		// backends' counters, which the views above add up, and metrics
		// (counters that only grow) are not affected.
		s.p.stats.reset()
		s.enqueueLocal("RESET")
	default:
		if backendStatsGroups[sub] {
			s.dispatchBackendStats(sub)
			return
		}
		s.enqueueLocal("ERROR")
	}
}

// summedBackendStats are the stats that describe stored data; the proxy
// reports their sum over the live backends.
var summedBackendStats = []string{
	"get_expired", "get_flushed", "limit_maxbytes", "bytes", "curr_items",
	"total_items", "expired_unfetched", "evicted_unfetched", "evictions", "reclaimed",
}

// statWriter appends "STAT <name> <value>" lines to b.
type statWriter struct{ b []byte }

// str writes a line with a text value.
func (w *statWriter) str(name, v string) {
	w.b = append(w.b, "STAT "...)
	w.b = append(w.b, name...)
	w.b = append(w.b, ' ')
	w.b = append(w.b, v...)
	w.b = append(w.b, "\r\n"...)
}

// uint64 writes a line with an unsigned number, a counter's.
func (w *statWriter) uint64(name string, v uint64) { w.str(name, strconv.FormatUint(v, 10)) }

// int64 writes a line with a signed number.
func (w *statWriter) int64(name string, v int64) { w.str(name, strconv.FormatInt(v, 10)) }

// appendStats renders "stats": the proxy's counters, then the sums over the
// backends that answered r's sub-requests.
func (p *Proxy) appendStats(dst []byte, r *request) []byte {
	w := statWriter{b: dst}
	p.writeProcessStats(&w)
	p.writeConnectionStats(&w)
	p.writeCommandStats(&w)
	p.writeBackendTotals(&w)
	p.writeConfigStats(&w)
	writeSummedStats(&w, r)
	w.b = append(w.b, "END\r\n"...)
	return w.b
}

// writeProcessStats writes the process lines of "stats", as memcached's.
func (p *Proxy) writeProcessStats(w *statWriter) {
	now := time.Now()
	w.int64("pid", int64(os.Getpid()))
	w.int64("uptime", int64(now.Sub(p.started)/time.Second))
	w.int64("time", now.Unix())
	w.str("version", FullVersion(p.opts.Version))
	w.int64("pointer_size", 64)
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		w.str("rusage_user", strconv.FormatFloat(float64(ru.Utime.Sec)+float64(ru.Utime.Usec)/1e6, 'f', 6, 64))
		w.str("rusage_system", strconv.FormatFloat(float64(ru.Stime.Sec)+float64(ru.Stime.Usec)/1e6, 'f', 6, 64))
	}
}

// writeConnectionStats writes the client connection lines of "stats":
// counts, limits, yields and the pauses in accepting (accept.go).
func (p *Proxy) writeConnectionStats(w *statWriter) {
	c := &p.stats
	w.int64("max_connections", int64(p.opts.MaxConnections))
	w.int64("curr_connections", c.currConnections.Load())
	w.uint64("total_connections", c.totalConnections.Load())
	w.uint64("rejected_connections", c.rejectedConnections.Load())
	w.uint64("conn_yields", c.connYields.Load())
	p.writeLoopStats(w) // loop_balance.go
	disabled, disabledMicros, accepting := p.gate.disabledStats(false)
	w.int64("reserved_fds", int64(p.descriptorBudget().reserved()))
	w.str("accepting_conns", boolDigit(accepting))
	w.uint64("listen_disabled_num", disabled)
	w.uint64("time_in_listen_disabled_us", disabledMicros)
}

// writeCommandStats writes the command and traffic lines of "stats", as
// memcached's.
func (p *Proxy) writeCommandStats(w *statWriter) {
	c := &p.stats
	w.uint64("cmd_get", c.cmdGet.Load())
	w.uint64("cmd_set", c.cmdSet.Load())
	w.uint64("cmd_flush", c.cmdFlush.Load())
	w.uint64("cmd_touch", c.cmdTouch.Load())
	w.uint64("cmd_meta", c.cmdMeta.Load())
	w.uint64("get_hits", c.getHits.Load())
	w.uint64("get_misses", c.getMisses.Load())
	w.uint64("delete_misses", c.deleteMisses.Load())
	w.uint64("delete_hits", c.deleteHits.Load())
	w.uint64("incr_misses", c.incrMisses.Load())
	w.uint64("incr_hits", c.incrHits.Load())
	w.uint64("decr_misses", c.decrMisses.Load())
	w.uint64("decr_hits", c.decrHits.Load())
	w.uint64("cas_misses", c.casMisses.Load())
	w.uint64("cas_hits", c.casHits.Load())
	w.uint64("cas_badval", c.casBadval.Load())
	w.uint64("touch_hits", c.touchHits.Load())
	w.uint64("touch_misses", c.touchMisses.Load())
	w.uint64("bytes_read", c.bytesRead.Load())
	w.uint64("bytes_written", c.bytesWritten.Load())
	w.uint64("client_errors", c.clientErrors.Load())
	w.uint64("output_limit_disconnects", c.outputLimitDisconnects.Load())
	for f := protocol.Foreign(1); f < protocol.NumForeign; f++ {
		w.uint64("protocol_rejects_"+f.String(), c.protocolRejects[f].Load())
	}
}

// writeBackendTotals writes the proxy's lines about its backends: their
// requests and failures over all of them, and the failover counters.
func (p *Proxy) writeBackendTotals(w *statWriter) {
	c := &p.stats
	t := p.table.Load()
	var requests, errs, timeouts uint64
	for _, b := range t.all {
		requests += b.requests()
		errs += b.failures()
		timeouts += b.failed[failTimeout].Load()
	}
	w.int64("backends", int64(len(t.all)))
	w.int64("live_backends", int64(t.liveBackends()))
	w.uint64("backend_requests", requests)
	w.uint64("backend_errors", errs)
	w.uint64("backend_timeouts", timeouts)
	w.uint64("failover_capped_writes", c.failoverCappedWrites.Load())
	w.uint64("failover_invalidations", c.failoverInvalidations.Load())
	w.uint64("failover_invalidation_errors", c.failoverInvalidationErrors.Load())
	w.uint64("failover_late_writes", c.failoverLateWrites.Load())
}

// writeConfigStats writes the config generation lines of "stats".
func (p *Proxy) writeConfigStats(w *statWriter) {
	gen, at := p.ConfigGeneration()
	w.uint64("config_generation", gen)
	w.int64("config_reload_time", at.Unix())
	w.uint64("config_reload_failures", p.stats.reloadFailures.Load())
	w.uint64("clients_handed_over", p.stats.handedOver.Load())
	w.uint64("clients_adopted", p.stats.adopted.Load())
}

// writeSummedStats writes how many backends answered r's sub-requests and
// the sums of the fields that describe their stored data.
func writeSummedStats(w *statWriter, r *request) {
	sums := make([]uint64, len(summedBackendStats))
	answered := 0
	for _, sub := range r.subs {
		if !sub.ok() {
			continue
		}
		answered++
		addBackendStats(sums, sub.reply.Raw)
	}
	w.int64("backends_reporting", int64(answered))
	for i, name := range summedBackendStats {
		w.uint64(name, sums[i])
	}
}

// addBackendStats adds the summed fields of one backend's "stats" reply.
func addBackendStats(sums []uint64, raw []byte) {
	for len(raw) > 0 {
		line := raw
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			line, raw = raw[:i], raw[i+1:]
		} else {
			raw = nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		f := bytes.Fields(line)
		if len(f) != 3 || string(f[0]) != "STAT" {
			continue
		}
		for i, name := range summedBackendStats {
			if string(f[1]) == name {
				if v, err := strconv.ParseUint(string(f[2]), 10, 64); err == nil {
					sums[i] += v
				}
			}
		}
	}
}

// appendBackendStats renders "stats backends": one group of lines per
// configured backend, named backend:<name>:<field> (the name is the
// address unless the config names it).
func (p *Proxy) appendBackendStats(dst []byte) []byte {
	w := statWriter{b: dst}
	t := p.table.Load()
	status := map[string]healthStatus{}
	for _, st := range p.health.Snapshot() {
		status[st.Name] = healthStatus{state: backendState(st), failures: st.ConsecutiveFailures,
			lastChange: st.LastChange, ejections: st.Ejections, readds: st.Readds, lastError: st.LastError}
	}
	for _, b := range t.all {
		pre := "backend:" + b.name + ":"
		st, ok := status[b.name]
		if !ok {
			st.state = "up"
		}
		w.str(pre+"state", st.state)
		w.str(pre+"in_ring", strconv.FormatBool(t.inRing(b)))
		weight, pools := t.weightOf(b)
		w.int64(pre+"weight", int64(weight))
		w.str(pre+"pools", sanitizeStat(pools))
		w.int64(pre+"connections", int64(len(b.conns)))
		w.uint64(pre+"requests", b.requests())
		w.uint64(pre+"errors", b.failures())
		for k, name := range failKindNames {
			w.uint64(pre+"errors_"+name, b.failed[k].Load())
		}
		w.int64(pre+"consecutive_failures", int64(st.failures))
		w.uint64(pre+"ejections", st.ejections)
		w.uint64(pre+"readds", st.readds)
		var since int64
		if !st.lastChange.IsZero() {
			since = st.lastChange.Unix()
		}
		w.int64(pre+"last_change", since)
		if st.lastError != "" {
			w.str(pre+"last_error", sanitizeStat(st.lastError))
		}
		w.str(pre+"addr", b.addr)
		w.str(pre+"ejection_capped", boolDigit(b.capped.Load()))
		w.uint64(pre+"ejections_capped", b.cappedEjections.Load())
		if z := t.zoneOf(b); z != "" {
			w.str(pre+"zone", sanitizeStat(z))
		}
		w.appendCopyStats(pre, p.copyStatsOf(b.name)) // stats_pools.go
	}
	w.b = append(w.b, "END\r\n"...)
	return w.b
}

// backendState is a backend's state in "stats backends": up or down as
// the health checker says, but a down backend that has yet to prove itself
// (added by a reload) is "joining", and one whose last probe answered,
// waiting for health.success_limit probes (or its flap hold-down) to be
// re-added, is "recovering".
func backendState(st health.Status) string {
	switch {
	case st.State == health.Up:
		return "up"
	case st.Joining:
		return "joining"
	case st.ConsecutiveFailures == 0:
		return "recovering"
	}
	return "down"
}

type healthStatus struct {
	state      string
	failures   int
	lastChange time.Time
	ejections  uint64
	readds     uint64
	lastError  string
}

func boolDigit(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// sanitizeStat makes free text fit one STAT value: no spaces or line breaks.
func sanitizeStat(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c <= ' ' || c == 0x7f {
			b[i] = '_'
		}
	}
	return string(b)
}

// appendSettings renders "stats settings" with memcached's names where one
// exists; clients read item_size_max from here.
func (p *Proxy) appendSettings(dst []byte) []byte {
	w := statWriter{b: dst}
	o := &p.opts
	w.int64("maxconns", int64(o.MaxConnections))
	w.int64("item_size_max", int64(o.MaxItemSize))
	w.str("idle_timeout", strconv.FormatInt(int64(o.ClientIdleTimeout/time.Second), 10))
	w.int64("client_output_limit", int64(o.ClientOutputLimit))
	w.int64("reqs_per_event", int64(o.ReqsPerEvent))
	w.int64("read_bytes_per_event", int64(o.ReadBytesPerEvent))
	w.int64("event_loops", int64(len(p.loops)))
	w.int64("backend_connections", int64(o.Connections))
	w.str("backend_timeout", o.Timeout.String())
	w.str("backend_connect_timeout", o.ConnectTimeout.String())
	w.str("auto_eject", strconv.FormatBool(o.AutoEject))
	w.str("flush_on_readd", strconv.FormatBool(o.AutoEject && o.FlushOnReadd))
	p.mu.Lock()
	maxEjected, pool := p.maxEjected, len(p.backends)
	p.mu.Unlock()
	w.str("max_ejected", maxEjected.String())
	w.int64("max_ejected_backends", int64(maxEjected.Limit(pool)))
	w.str("flush_enabled", yesNo(!o.DisableFlushAll)) // memcached's name and spelling
	w.str("failover_ttl", o.FailoverTTL.String())
	w.int64("replicas", int64(p.table.Load().routes[len(p.table.Load().routes)-1].pool.pool.replicas)) // the default route's pool
	if o.Zone != "" {
		w.str("zone", sanitizeStat(o.Zone))
	}
	hc := p.health.Config()
	w.str("health_interval", hc.Interval.String())
	w.str("health_timeout", hc.Timeout.String())
	w.int64("health_failure_limit", int64(hc.FailureLimit))
	w.int64("health_success_limit", int64(hc.SuccessLimit))
	p.mu.Lock()
	rc := p.ringCfg
	p.mu.Unlock()
	w.int64("ring_partitions", int64(rc.Partitions))
	w.int64("ring_replication_factor", int64(rc.ReplicationFactor))
	w.str("ring_load", strconv.FormatFloat(rc.Load, 'f', -1, 64))
	w.b = append(w.b, "END\r\n"...)
	return w.b
}
