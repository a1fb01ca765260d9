// Package bench is the engine of mcbench, the load tool that measures mcproxy
// against direct memcached and twemproxy on the same workload.
//
// It speaks the memcached text protocol over raw TCP itself, with no client
// library, so the tool's own cost is small and the same for every target:
//
//   - Config and Run: the workload. Each connection is one goroutine that
//     drives an internal/tools/loadgen worker: it writes up to Pipeline commands
//     in one write, then reads and validates their replies. Keys are drawn uniformly from a fixed key space with a
//     per-goroutine seeded generator; get and set are mixed by a ratio; gets
//     may ask for several keys at once.
//   - Histogram: a fixed-size HDR-style log-bucket latency histogram that
//     records without allocating and merges across goroutines.
//   - RunOutputLimit: the output-limit scenario (outputlimit.go), which
//     starts memcached and a given mcproxy binary itself and measures the
//     proxy's peak RSS and another client's gets while one client does
//     not read its replies.
//
// Replies are read by internal/tools/textclient's strict, allocation-free
// Reader, and a run only ever sends traffic to 127.0.0.0/8, ::1 or
// localhost (textclient.ResolveLoopback).
//
// Every run is bounded: it stops after Duration (and, if set, after Requests
// operations), every socket operation has a deadline, and errors are counted
// (with a reconnect) rather than ending the run.
package bench
