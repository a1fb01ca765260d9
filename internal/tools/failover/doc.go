// Package failover is the engine of mcfailover, a benchmark of what clients
// of mcproxy see when one of three memcached backends dies or hangs and
// later comes back.
//
// One run is one Scenario. Run starts three memcached processes
// (internal/tools/memcachedproc) and an mcproxy binary
// (internal/tools/mcproxyproc) on free 127.0.0.1 ports (cluster.go), stores
// every key of the key space through the proxy and learns which backend owns a sample of
// them by asking each memcached directly (keys.go), then drives a closed-loop
// raw-TCP load of gets and sets through the proxy (load.go, over
// internal/tools/textclient) while internal/tools/backendwatch reads the proxy's "stats
// backends" every 20 ms. After a steady
// phase the first backend, the victim, is failed: SIGKILL for Kill, SIGSTOP
// for Freeze. After Config.DownFor it is recovered (started again, empty, on
// the same port; or SIGCONT), and the run waits for mcproxy to put it back in
// its ring. Every request is recorded with its start time, latency and
// outcome, and the Report (report.go) cuts the timeline into windows at the
// moments of failure, ejection, recovery and re-adding. The moments of
// ejection and re-adding are what the proxy publishes (state, in_ring,
// ejections, readds, last_error), never its log text.
//
// The package only ever signals processes it started, by their PID, and only
// sends traffic to 127.0.0.1. Every phase is bounded; the whole run is cut
// off after Config.MaxRun.
package failover
