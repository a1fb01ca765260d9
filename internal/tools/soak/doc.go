// Package soak is the engine of mcsoak, a long-running correctness test of
// mcproxy under failures.
//
// Run starts a few real memcached processes (internal/tools/memcachedproc)
// and the mcproxy binary (internal/tools/mcproxyproc) with a generated config
// (proxyconfig.go), then, for the run's duration, drives pipelined traffic
// through the proxy on many connections (workload.go, over internal/tools/textclient:
// set, cas, delete, get and gets of many keys at once, incr and add of
// counters) while a schedule kills and restarts one backend and freezes and
// thaws another (chaos.go), and internal/tools/backendwatch records the proxy's
// view of its backends from "stats backends" (timeline.go). Every value written names its key, its writer and a
// per-key version (values.go), and every read is classified by the checker
// (checker.go, register.go, counter.go) as fine, a miss, stale or bogus.
// The report (report.go) counts commands, errors and verdicts, shows the
// first stale and bogus reads in detail, the backend timeline, and the
// proxy's RSS and goroutines at the start and the end (footprint.go).
//
// Only loopback addresses are used, only processes the run started are
// signalled (by PID), and every loop is bounded in count and in time.
package soak
