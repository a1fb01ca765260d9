// Package loadgen is the one client load of the tools and tests: mcbench's
// measured workload (internal/tools/bench), mcfailover's recorded load
// (internal/tools/failover) and the steady load of tests
// (internal/testkit/memcachedtest.StartLoad).
//
// A Worker drives one connection over internal/tools/textclient: it builds
// a batch of
// random gets and sets over a fixed key space (or sets of given keys),
// sends it in one write with a deadline, reads and checks every reply, and
// hands each command's outcome to the caller, who counts, measures or
// records it. Values begin with their key and, when the Spec numbers its
// sets, carry their version ("<key>:<version>:" then padding), so a reply
// meant for another key is caught and a read tells which write it saw. The
// steady state does not allocate.
package loadgen
