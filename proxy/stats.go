package proxy

import (
	"sync/atomic"

	"github.com/mcproxy/mcproxy/protocol"
)

// counters are the proxy's own statistics, named as memcached names them so
// that existing dashboards and memcstat-style tools read them unchanged.
type counters struct {
	currConnections atomic.Int64

	totalConnections, rejectedConnections statCounter
	cmdGet, cmdSet, cmdFlush, cmdTouch    statCounter
	cmdMeta                               statCounter // meta commands, as memcached's cmd_meta
	getHits, getMisses                    statCounter
	touchHits, touchMisses                statCounter
	deleteHits, deleteMisses              statCounter
	incrHits, incrMisses                  statCounter
	decrHits, decrMisses                  statCounter
	casHits, casMisses, casBadval         statCounter
	bytesRead, bytesWritten               statCounter
	clientErrors                          statCounter
	reloadFailures                        atomic.Uint64
	// Upgrades (handover*.go): clients this process handed to a new one,
	// and clients it took over from an old one. Never reset.
	handedOver, adopted atomic.Uint64

	// listenDisabled counts the episodes of not accepting, at EMFILE or at
	// the descriptor budget's client cap, and listenDisabledMicros the
	// time of those that ended (accept.go); memcached's
	// listen_disabled_num and time_in_listen_disabled_us.
	listenDisabled, listenDisabledMicros statCounter

	// outputLimitDisconnects counts clients disconnected for going over
	// the hard output limit (output_limit.go).
	outputLimitDisconnects statCounter
	// connYields counts client sessions that used up their turn budget
	// and yielded to the other clients of their loop (turn_budget.go), as
	// memcached's conn_yields.
	connYields statCounter

	// Failover (failover.go): commands and gat keys sent to a stand-in
	// with their exptime capped, invalidating deletes sent, those that
	// failed, and sets answered after the ring changed under them.
	failoverCappedWrites, failoverInvalidations, failoverInvalidationErrors statCounter
	failoverLateWrites                                                      statCounter

	// protocolRejects counts connections closed for speaking another
	// protocol, by protocol.Foreign.
	protocolRejects [protocol.NumForeign]statCounter

	// results counts outcomes by command, for metrics.
	results [protocol.NumOps][numResults]atomic.Uint64
}

// statCounter is a counter that "stats reset" can zero for the stats
// command while metrics keep reading the total, which must only grow.
type statCounter struct{ total, base atomic.Uint64 }

func (c *statCounter) Add(n uint64) { c.total.Add(n) }

// Total returns the count since start, for metrics.
func (c *statCounter) Total() uint64 { return c.total.Load() }

// Load returns the count since the last "stats reset", for stats.
func (c *statCounter) Load() uint64 { return c.total.Load() - c.base.Load() }

func (c *statCounter) reset() { c.base.Store(c.total.Load()) }

// reset zeroes what "stats reset" zeroes in memcached: everything but the
// gauges. Metrics are not affected.
func (c *counters) reset() {
	for _, v := range []*statCounter{
		&c.totalConnections, &c.rejectedConnections,
		&c.listenDisabled, &c.listenDisabledMicros,
		&c.cmdGet, &c.cmdSet, &c.cmdFlush, &c.cmdTouch, &c.cmdMeta,
		&c.getHits, &c.getMisses, &c.touchHits, &c.touchMisses,
		&c.deleteHits, &c.deleteMisses, &c.incrHits, &c.incrMisses,
		&c.decrHits, &c.decrMisses, &c.casHits, &c.casMisses, &c.casBadval,
		&c.bytesRead, &c.bytesWritten, &c.clientErrors, &c.outputLimitDisconnects, &c.connYields,
		&c.failoverCappedWrites, &c.failoverInvalidations, &c.failoverInvalidationErrors,
		&c.failoverLateWrites,
	} {
		v.reset()
	}
	for i := range c.protocolRejects {
		c.protocolRejects[i].reset()
	}
}

// countCommand counts a command as it is dispatched; retrievals count once
// per key, as memcached's cmd_get does.
func (c *counters) countCommand(op protocol.Op, keys int) {
	switch {
	case op == protocol.OpGet || op == protocol.OpGets:
		c.cmdGet.Add(uint64(keys))
	case op == protocol.OpGat || op == protocol.OpGats || op == protocol.OpTouch:
		c.cmdTouch.Add(uint64(max(keys, 1)))
	case op.IsStorage():
		c.cmdSet.Add(1)
	}
}

// countRetrieval counts the keys of one retrieval: found, not found, and
// lost to a failed backend (a miss to the client, an error to metrics).
func (c *counters) countRetrieval(op protocol.Op, hits, misses, failed int) {
	c.countResult(op, resHit, hits)
	c.countResult(op, resMiss, misses)
	c.countResult(op, resError, failed)
	misses += failed
	if op == protocol.OpGat || op == protocol.OpGats {
		c.touchHits.Add(uint64(hits))
		c.touchMisses.Add(uint64(misses))
		return
	}
	c.getHits.Add(uint64(hits))
	c.getMisses.Add(uint64(misses))
}

// countReply classifies the reply of a single-key, single-line command.
func (c *counters) countReply(r *request) {
	if r.err != nil {
		c.countResult(r.op, resError, 1)
		return // and counted per backend where it failed
	}
	res := classifyLine(r.reply.Raw)
	c.countResult(r.op, res, 1)
	switch r.op {
	case protocol.OpDelete:
		countHitMiss(res, resDeleted, &c.deleteHits, &c.deleteMisses)
	case protocol.OpIncr, protocol.OpDecr:
		hits, misses := c.arithCounters(r.op == protocol.OpDecr)
		countHitMiss(res, resHit, hits, misses)
	case protocol.OpTouch:
		countHitMiss(res, resTouched, &c.touchHits, &c.touchMisses)
	case protocol.OpCas:
		switch res {
		case resNotFound:
			c.casMisses.Add(1)
		case resExists:
			c.casBadval.Add(1)
		case resStored:
			c.casHits.Add(1)
		}
	}
}

// countHitMiss adds one to hits when res is hit, the command's success,
// and to misses when it is resNotFound; other results count neither.
func countHitMiss(res, hit result, hits, misses *statCounter) {
	switch res {
	case hit:
		hits.Add(1)
	case resNotFound:
		misses.Add(1)
	}
}

// arithCounters returns the hit and miss counters of incr, or of decr.
func (c *counters) arithCounters(decr bool) (hits, misses *statCounter) {
	if decr {
		return &c.decrHits, &c.decrMisses
	}
	return &c.incrHits, &c.incrMisses
}
