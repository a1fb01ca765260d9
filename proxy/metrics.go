package proxy

import (
	"time"

	"github.com/mcproxy/mcproxy/health"
	"github.com/mcproxy/mcproxy/protocol"
	"github.com/prometheus/client_golang/prometheus"
)

// latencyBuckets span a loopback hit (tens of µs) to the backend timeout.
var latencyBuckets = []float64{
	25e-6, 50e-6, 100e-6, 250e-6, 500e-6,
	1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 500e-3,
	1, 2.5, 5,
}

// commandLatency is the per-command latency histogram: from the moment the
// command was read to the moment its reply was written to the client's
// buffer. Observers are resolved once per command, so the hot path is one
// Observe.
type commandLatency struct {
	vec *prometheus.HistogramVec
	obs [protocol.NumOps]prometheus.Observer
}

func newCommandLatency() *commandLatency {
	l := &commandLatency{vec: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "mcproxy_command_duration_seconds",
		Help:    "Time from reading a command to writing its reply, by command.",
		Buckets: latencyBuckets,
	}, []string{"command"})}
	// Every command with a reply worth timing; quit and verbosity are not.
	for op := protocol.Op(1); op < protocol.NumOps; op++ {
		if op != protocol.OpQuit && op != protocol.OpVerbosity {
			l.obs[op] = l.vec.WithLabelValues(op.String())
		}
	}
	return l
}

func (l *commandLatency) observe(op protocol.Op, since time.Time) {
	if o := l.obs[op]; o != nil {
		o.Observe(time.Since(since).Seconds())
	}
}

// Collector returns a Prometheus collector of the proxy's metrics. It reads
// the same counters that "stats" reports, at scrape time, so metrics cost
// the request path nothing beyond those counters (and the latency
// histogram, when Options.CommandLatency is set).
func (p *Proxy) Collector() prometheus.Collector { return (*collector)(p) }

type collector Proxy

// newDesc describes one of the proxy's metrics; labels are its variable
// labels (the proxy uses no constant ones).
func newDesc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

var (
	descCommands = newDesc("mcproxy_commands_total",
		"Commands answered, by command and result; retrievals count once per key.", "command", "result")
	descConnections = newDesc("mcproxy_client_connections",
		"Client connections open now.")
	descConnectionsTotal = newDesc("mcproxy_client_connections_total",
		"Client connections accepted since start.")
	descRejected = newDesc("mcproxy_client_connections_rejected_total",
		"Client connections refused because limits.max_connections was reached.")
	descLoopsAwake = newDesc("mcproxy_event_loops_awake",
		"Event loops that serve clients now; with event_loops at 0 the others sleep until the load needs them.")
	descLoopMoves = newDesc("mcproxy_event_loop_moves_total",
		"Client sessions moved from one event loop to another as loops woke or went to sleep.")
	descConnYields = newDesc("mcproxy_client_yields_total",
		"Times a client used up its turn budget (limits.reqs_per_event, limits.read_bytes_per_event) and yielded to the other clients of its event loop (memcached's conn_yields).")
	descListenDisabled = newDesc("mcproxy_listen_disabled_total",
		"Times mcproxy stopped accepting clients until a descriptor was released: at EMFILE/ENFILE, or with the clients at the descriptor cap (memcached's listen_disabled_num). Clients wait in the listen backlog meanwhile.")
	descListenDisabledSeconds = newDesc("mcproxy_listen_disabled_seconds_total",
		"Time spent not accepting clients, the pause under way included (memcached's time_in_listen_disabled_us).")
	descAccepting = newDesc("mcproxy_accepting_connections",
		"1 while mcproxy accepts clients, 0 while it waits for a descriptor to be released.")
	descDescriptorCap = newDesc("mcproxy_client_descriptor_cap",
		"Clients the descriptor limit (RLIMIT_NOFILE) leaves room for once the descriptors of backends, health probes, listeners and the admin endpoint are reserved.")
	descClientErrors = newDesc("mcproxy_client_errors_total",
		"Commands refused as bad input (CLIENT_ERROR, ERROR, too large).")
	descProtocolRejects = newDesc("mcproxy_client_protocol_rejects_total",
		"Client connections closed for speaking another protocol: http (a request line, such as a browser sends), binary (memcached's binary protocol), tls.", "kind")
	descBytesRead = newDesc("mcproxy_client_read_bytes_total",
		"Bytes read from clients.")
	descBytesWritten = newDesc("mcproxy_client_written_bytes_total",
		"Bytes written to clients.")
	descBackendRequests = newDesc("mcproxy_backend_requests_total",
		"Commands sent to a backend.", "backend")
	descBackendErrors = newDesc("mcproxy_backend_errors_total",
		"Commands that got no reply from a backend, by kind: timeout, connection (refused, reset, closed), down (not sent: known down), protocol (the backend's reply did not answer the command; a reply with nothing asked counts once).", "backend", "kind")
	descBackendUp = newDesc("mcproxy_backend_up",
		"1 when the health checker considers the backend up, else 0.", "backend")
	descBackendInRing = newDesc("mcproxy_backend_in_ring",
		"1 when the backend owns keys in the current ring, else 0.", "backend")
	descEjections = newDesc("mcproxy_backend_ejections_total",
		"Times the health checker marked the backend down.", "backend")
	descReadds = newDesc("mcproxy_backend_readds_total",
		"Times the health checker marked the backend up again.", "backend")
	descConsecutiveFailures = newDesc("mcproxy_backend_consecutive_failures",
		"Failures in a row the health checker has seen for the backend.", "backend")
	descBackendInfo = newDesc("mcproxy_backend_info",
		"Always 1; the addr label is the address of the backend named by the backend label.", "backend", "addr")
	descEjectionCapped = newDesc("mcproxy_backend_ejection_capped",
		"1 when the backend is down but kept in the ring by health.max_ejected (its keys fail fast), else 0.", "backend")
	descEjectionsCapped = newDesc("mcproxy_backend_ejections_capped_total",
		"Times health.max_ejected kept the failed backend in the ring instead of ejecting it.", "backend")
	descRingMembers = newDesc("mcproxy_ring_members",
		"Backends in the current ring, counting those the ejection cap holds there down.")
	descLiveBackends = newDesc("mcproxy_live_backends",
		"Backends that serve their keys: in the ring and not held there down by health.max_ejected. 0: every command fails, and /readyz answers 503.")
	descBackends = newDesc("mcproxy_backends",
		"Backends configured.")
	descGeneration = newDesc("mcproxy_config_generation",
		"Config generation in force: 1 at start, one more per applied reload.")
	descReloads = newDesc("mcproxy_config_reloads_total",
		"Config reloads applied.")
	descHandedOver = newDesc("mcproxy_clients_handed_over_total",
		"Client connections this process handed to a new mcproxy process during an upgrade.")
	descAdopted = newDesc("mcproxy_clients_adopted_total",
		"Client connections this process took over from an old mcproxy process during an upgrade.")
	descReloadFailures = newDesc("mcproxy_config_reload_failures_total",
		"Config reloads refused (the file did not load or validate).")
	descReloadTime = newDesc("mcproxy_config_last_reload_timestamp_seconds",
		"Unix time the config in force was applied.")
	descOutputLimitDisconnects = newDesc("mcproxy_client_output_limit_disconnects_total",
		"Clients disconnected because the replies held for them passed twice limits.client_output_limit.")
	descFailoverCapped = newDesc("mcproxy_failover_capped_writes_total",
		"Commands (set, add, replace, cas, touch) and gat/gats keys sent to a stand-in backend, their exptime capped at failover.ttl.")
	descFailoverInvalidations = newDesc("mcproxy_failover_invalidations_total",
		"Deletes sent beside a change of a key to drop its copies on backends that held it before a ring change.")
	descFailoverInvalidationErrors = newDesc("mcproxy_failover_invalidation_errors_total",
		"Invalidating deletes that failed (no reply or an error reply).")
	descFailoverLateWrites = newDesc("mcproxy_failover_late_writes_total",
		"Sets and adds answered after the ring changed under them, whose copy off the new ring was then deleted.")
)

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		descCommands, descConnections, descConnectionsTotal, descRejected, descConnYields,
		descLoopsAwake, descLoopMoves,
		descListenDisabled, descListenDisabledSeconds, descAccepting, descDescriptorCap, descClientErrors, descProtocolRejects,
		descBytesRead, descBytesWritten, descBackendRequests, descBackendErrors, descBackendUp,
		descBackendInRing, descEjections, descReadds, descConsecutiveFailures, descRingMembers, descLiveBackends,
		descBackends, descGeneration, descReloads, descReloadFailures, descReloadTime, descHandedOver, descAdopted,
		descBackendInfo, descEjectionCapped, descEjectionsCapped,
		descOutputLimitDisconnects,
		descFailoverCapped, descFailoverInvalidations, descFailoverInvalidationErrors, descFailoverLateWrites,
		descPoolBackends, descPoolRingMembers, descPoolLiveBackends, descPoolFailoverCapped,
		descPoolFailoverInvalidations, descPoolWarmHits, descPoolWarmCopies, descPoolWarmCopyErrors, descPoolWarmDeletes,
		descPoolReplicas, descPoolLaterCopyReads, descPoolCopyWrites, descPoolCopyWriteErrors,
		descBackendLaterCopyReads, descBackendCopyWrites, descBackendCopyWriteErrors,
	} {
		ch <- d
	}
	if c.latency != nil {
		c.latency.vec.Describe(ch)
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	p := (*Proxy)(c)
	st := &p.stats
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for op := protocol.Op(1); op < protocol.NumOps; op++ {
		for res := result(0); res < numResults; res++ {
			if v := st.results[op][res].Load(); v > 0 {
				counter(descCommands, v, op.String(), resultNames[res])
			}
		}
	}
	gauge(descConnections, float64(st.currConnections.Load()))
	counter(descConnectionsTotal, st.totalConnections.Total())
	counter(descRejected, st.rejectedConnections.Total())
	counter(descConnYields, st.connYields.Total())
	gauge(descLoopsAwake, float64(p.balance.active.Load()))
	counter(descLoopMoves, p.balance.moves.Load())
	disabled, disabledMicros, accepting := p.gate.disabledStats(true)
	counter(descListenDisabled, disabled)
	ch <- prometheus.MustNewConstMetric(descListenDisabledSeconds, prometheus.CounterValue, float64(disabledMicros)/1e6)
	gauge(descAccepting, boolFloat(accepting))
	gauge(descDescriptorCap, float64(p.descriptorBudget().clientCap()))
	counter(descClientErrors, st.clientErrors.Total())
	for f := protocol.Foreign(1); f < protocol.NumForeign; f++ {
		counter(descProtocolRejects, st.protocolRejects[f].Total(), f.String())
	}
	counter(descBytesRead, st.bytesRead.Total())
	counter(descBytesWritten, st.bytesWritten.Total())

	t := p.table.Load()
	status := map[string]health.Status{}
	for _, s := range p.health.Snapshot() {
		status[s.Name] = s
	}
	for _, b := range t.all {
		counter(descBackendRequests, b.requests(), b.name)
		for k, name := range failKindNames {
			counter(descBackendErrors, b.failed[k].Load(), b.name, name)
		}
		s, tracked := status[b.name]
		up := !tracked || s.State == health.Up
		gauge(descBackendUp, boolFloat(up), b.name)
		gauge(descBackendInRing, boolFloat(t.inRing(b)), b.name)
		counter(descEjections, s.Ejections, b.name)
		counter(descReadds, s.Readds, b.name)
		gauge(descConsecutiveFailures, float64(s.ConsecutiveFailures), b.name)
		gauge(descBackendInfo, 1, b.name, b.addr)
		gauge(descEjectionCapped, boolFloat(b.capped.Load()), b.name)
		counter(descEjectionsCapped, b.cappedEjections.Load(), b.name)
		c.collectBackendCopies(ch, b) // stats_pools.go
	}
	gauge(descRingMembers, float64(len(t.ringMembers())))
	gauge(descLiveBackends, float64(t.liveBackends()))
	gauge(descBackends, float64(len(t.all)))
	gen, at := p.ConfigGeneration()
	gauge(descGeneration, float64(gen))
	counter(descReloads, gen-1)
	counter(descReloadFailures, st.reloadFailures.Load())
	counter(descHandedOver, st.handedOver.Load())
	counter(descAdopted, st.adopted.Load())
	gauge(descReloadTime, float64(at.UnixNano())/1e9)
	counter(descOutputLimitDisconnects, st.outputLimitDisconnects.Total())
	counter(descFailoverCapped, st.failoverCappedWrites.Total())
	counter(descFailoverInvalidations, st.failoverInvalidations.Total())
	counter(descFailoverInvalidationErrors, st.failoverInvalidationErrors.Total())
	counter(descFailoverLateWrites, st.failoverLateWrites.Total())
	c.collectPools(ch)
	if c.latency != nil {
		c.latency.vec.Collect(ch)
	}
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
