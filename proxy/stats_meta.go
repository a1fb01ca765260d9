package proxy

import "github.com/mcproxy/mcproxy/protocol"

// Meta commands in stats and metrics. Each is counted by command and result
// in mcproxy_commands_total (command="mg", "ms", ...), and in memcached's
// own stats as memcached 1.6 counts it: every meta command in cmd_meta; mg
// in cmd_get and get_hits/get_misses, or, with T, in cmd_touch and
// touch_hits/touch_misses; ms in cmd_set; md in delete_hits/delete_misses;
// ma in incr_* or decr_* by its mode.
//
// Results: mg and ma found (VA, HD) is hit, EN is miss; ms HD is stored, NS
// not_stored; md HD is deleted; EX is exists and NF not_found for any of
// them; mn and me's ME are ok, me's EN a miss; an error line, or a backend
// that failed, is error.

// countMetaCommand counts a meta command as it is dispatched; touch is set
// for an mg with T.
func (c *counters) countMetaCommand(op protocol.Op, touch bool) {
	c.cmdMeta.Add(1)
	switch {
	case op == protocol.OpMetaGet && touch:
		c.cmdTouch.Add(1)
	case op == protocol.OpMetaGet:
		c.cmdGet.Add(1)
	case op == protocol.OpMetaSet:
		c.cmdSet.Add(1)
	}
}

// countMetaFailure counts a meta command whose backend failed: an error to
// metrics and, for an mg, a miss to memcached's counters, as for a get.
func (c *counters) countMetaFailure(r *request) {
	c.countResult(r.op, resError, 1)
	if r.op == protocol.OpMetaGet {
		c.countMetaGet(r, false)
	}
}

// countMetaReply classifies the backend's reply to the meta command r.
func (c *counters) countMetaReply(r *request) {
	if r.reply.IsError {
		c.countResult(r.op, resError, 1)
		return
	}
	res := metaResult(r.op, r.metaCode())
	c.countResult(r.op, res, 1)
	switch r.op {
	case protocol.OpMetaGet:
		c.countMetaGet(r, res == resHit)
	case protocol.OpMetaDelete:
		countHitMiss(res, resDeleted, &c.deleteHits, &c.deleteMisses)
	case protocol.OpMetaArithmetic:
		m := r.meta.mode
		hits, misses := c.arithCounters(m == 'D' || m == '-')
		countHitMiss(res, resHit, hits, misses)
	}
}

// metaCode returns the code of the backend's reply to the meta request r,
// with the MN that stands for a fenced ma's hidden reply read as the HD it
// hides: memcached hides only a success.
func (r *request) metaCode() protocol.MetaCode {
	c := r.reply.Meta.Code
	if c == protocol.MetaMN && r.meta.fenced && !r.reply.IsError {
		return protocol.MetaHD
	}
	return c
}

// countMetaGet counts an mg's hit or miss where memcached does.
func (c *counters) countMetaGet(r *request, hit bool) {
	hits, misses := &c.getHits, &c.getMisses
	if r.meta.touch {
		hits, misses = &c.touchHits, &c.touchMisses
	}
	if hit {
		hits.Add(1)
	} else {
		misses.Add(1)
	}
}

// metaResult maps a meta reply code to the result of op.
func metaResult(op protocol.Op, code protocol.MetaCode) result {
	switch code {
	case protocol.MetaVA:
		return resHit
	case protocol.MetaHD:
		switch op {
		case protocol.OpMetaSet:
			return resStored
		case protocol.OpMetaDelete:
			return resDeleted
		}
		return resHit
	case protocol.MetaEN:
		return resMiss
	case protocol.MetaNS:
		return resNotStored
	case protocol.MetaEX:
		return resExists
	case protocol.MetaNF:
		return resNotFound
	case protocol.MetaMN, protocol.MetaME:
		return resOK
	}
	return resError
}
