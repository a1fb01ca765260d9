package proxy

import (
	"github.com/mcproxy/mcproxy/protocol"
)

// dispatch routes one parsed command. It returns false when the session
// must stop reading (quit, or a data block cut short).
func (s *session) dispatch(req *protocol.Request) bool {
	switch op := req.Op; {
	case op.IsRetrieval():
		s.dispatchRetrieval(req)
	case op.IsStorage():
		return s.dispatchStorage(req)
	case op == protocol.OpIncr || op == protocol.OpDecr || op == protocol.OpTouch || op == protocol.OpDelete:
		r := newRequest(s, op)
		r.noreply = req.NoReply
		r.out = protocol.AppendKeyCommand(r.out, req)
		s.p.stats.countCommand(op, 1)
		s.routeByKey(r, req)
	case op == protocol.OpFlushAll:
		s.p.stats.cmdFlush.Add(1) // memcached -F counts refused flushes too
		if s.p.opts.DisableFlushAll {
			s.p.stats.countResult(op, resError, 1)
			if !req.NoReply {
				s.enqueueLocal(flushAllNotAllowed)
			}
			return true
		}
		s.dispatchToAll(req, protocol.AppendFlushAll(nil, req))
	case op == protocol.OpStats:
		s.dispatchStats(req)
	case op == protocol.OpVersion:
		s.p.stats.countResult(op, resOK, 1)
		s.enqueueLocal(s.p.versionLine)
	case op == protocol.OpVerbosity:
		s.p.stats.countResult(op, resOK, 1)
		// The proxy has no per-command log to make more verbose; memcached
		// answers OK, and so do we.
		if !req.NoReply {
			s.enqueueLocal("OK")
		}
	case op == protocol.OpQuit:
		r := newRequest(s, op)
		s.enqueue(r)
		r.finish()
		return false
	case op.IsMeta():
		return s.dispatchMeta(req) // meta_dispatch.go
	case op == protocol.OpLruCrawler:
		s.dispatchLruCrawler(req) // metadump.go
	}
	return true
}

// dispatchParked dispatches the command that waited for room, once there
// is room; it returns false while there still is none.
func (s *session) dispatchParked() bool {
	if !s.hasRoom() {
		return false
	}
	s.parked = false
	s.now = s.l.now // the backend timeout counts from when it is sent
	if !s.dispatch(&s.req) {
		s.stopReading()
	}
	return !s.parked
}

// dispatchRetrieval sends a get/gets/gat/gats. Keys that live on one
// backend go as one command; otherwise the command is split into one
// command per backend and the replies are merged in the client's key order.
// A gat/gats line is also split wherever it would pass protocol.MaxGatLine,
// which memcached cannot be relied on to read.
func (s *session) dispatchRetrieval(req *protocol.Request) {
	if len(req.Keys) > s.window {
		s.dispatchPieces(req)
		return
	}
	keys := req.Keys
	if !s.keysFit(len(keys)) {
		s.parked = true // sent when earlier keys have been answered
		return
	}
	s.p.stats.countCommand(req.Op, len(keys))
	if len(keys) == 0 { // "gat <exptime>" with no key: memcached answers END
		s.enqueueLocal("END")
		return
	}
	t := s.p.table.Load()
	if t.ring == nil {
		s.p.stats.countResult(req.Op, resError, len(keys))
		s.enqueueLocal("SERVER_ERROR " + errNoBackends.Error())
		return
	}
	lineLimit := 0 // no limit for get and gets
	s.lineHead = retrievalHead(s.lineHead[:0], req)
	head := s.lineHead
	if req.Op == protocol.OpGat || req.Op == protocol.OpGats {
		lineLimit = protocol.MaxGatLine - len("\r\n")
	}
	owners := s.owners[:0]
	first := t.ring.Locate(keys[0])
	single := true
	lineLen := len(head)
	for _, k := range keys {
		i := t.ring.Locate(k)
		owners = append(owners, i)
		single = single && i == first
		lineLen += 1 + len(k)
	}
	// A gat on a stand-in has its exptime capped like a write there
	// (failover.go): such keys get sub-requests of their own, owner n+i.
	n := len(t.members)
	standIns := t.fo.standIns && (req.Op == protocol.OpGat || req.Op == protocol.OpGats)
	if standIns {
		owners, single = s.gatStandIns(t, keys, owners)
		first = owners[0]
	}
	s.owners = owners
	if single && (lineLimit == 0 || lineLen <= lineLimit) {
		r := newRequest(s, req.Op)
		r.nkeys = len(keys)
		r.more = s.morePiece
		exptime := req.Exptime
		if first >= n {
			exptime = capExptime(exptime, t.fo.ttl, s.now)
		}
		r.out = protocol.AppendRetrieval(r.out, req.Op, exptime, keys)
		s.enqueue(r)
		s.sendTo(t.members[first%n], r)
		return
	}
	var capHead []byte
	if standIns {
		capHead = gatHead(nil, req, t.fo.ttl, s.now)
	}

	parent := newRequest(s, req.Op)
	parent.nkeys = len(keys)
	parent.more = s.morePiece
	// The keys point into the read buffer, which the next command reuses:
	// keep a copy for the merge.
	for _, k := range keys {
		parent.keyBuf = append(parent.keyBuf, k...)
	}
	off := 0
	subOf := s.subOf[:0] // owner (backend index, +n on a stand-in) -> its current sub-request
	slots := n
	if standIns {
		slots = 2 * n
	}
	for range slots {
		subOf = append(subOf, -1)
	}
	for i, k := range keys {
		parent.keys = append(parent.keys, parent.keyBuf[off:off+len(k)])
		off += len(k)
		b := owners[i]
		j := subOf[b]
		if j < 0 || lineLimit > 0 && len(parent.subs[j].out)+1+len(k) > lineLimit {
			j = len(parent.subs)
			subOf[b] = j
			sub := newRequest(s, req.Op)
			sub.parent = parent
			sub.backend = t.members[b%n]
			if b >= n {
				sub.out = append(sub.out, capHead...)
			} else {
				sub.out = append(sub.out, head...)
			}
			parent.subs = append(parent.subs, sub)
		}
		// Each sub's line is built as its keys come, in the client's order,
		// which is the order the merge expects its values in.
		sub := parent.subs[j]
		sub.out = append(append(sub.out, ' '), k...)
		parent.owner = append(parent.owner, j)
	}
	s.subOf = subOf
	for _, sub := range parent.subs {
		sub.out = append(sub.out, "\r\n"...)
	}
	parent.pending.Store(int32(len(parent.subs)))
	s.enqueue(parent)
	for _, sub := range parent.subs {
		s.sendTo(sub.backend, sub)
	}
}

// retrievalHead appends "get", "gets", "gat <exptime>" or "gats <exptime>",
// the part of a retrieval line before its keys.
func retrievalHead(dst []byte, req *protocol.Request) []byte {
	dst = append(dst, req.Op.String()...)
	if req.Op == protocol.OpGat || req.Op == protocol.OpGats {
		dst = append(dst, ' ')
		dst = protocol.AppendInt32(dst, req.Exptime)
	}
	return dst
}

// dispatchStorage starts a storage command: its line goes into the
// outgoing command and its data block is read straight after it (the
// value's only copy), as it arrives (session.continueData); then
// storageArrived routes it.
func (s *session) dispatchStorage(req *protocol.Request) bool {
	r := newRequest(s, req.Op)
	r.noreply = req.NoReply
	r.out = protocol.AppendStorageLine(r.out, req)
	r.out = growBytes(r.out, req.Bytes+2)
	s.data, s.dataHave = r, 0
	return true
}

// storageArrived routes a storage command or an ms whose data block has
// been read, or refuses it when the block was bad. err is ContinueData's.
func (s *session) storageArrived(r *request, err error) {
	req := &s.req
	meta := r.op == protocol.OpMetaSet
	if err == protocol.ErrBadDataChunk {
		s.p.stats.clientErrors.Add(1)
		if meta {
			s.p.stats.countResult(r.op, resError, 1)
		}
		r.release()
		// memcached answers an ms's bad block even in quiet mode.
		if meta || !req.NoReply {
			s.enqueueLocal(err.Error())
		}
		return
	}
	if err != nil {
		r.release()
		s.readError(err)
		return
	}
	s.now = s.l.now // a large block can take a while to arrive
	if meta {
		s.routeMeta(r, req)
		return
	}
	s.p.stats.countCommand(req.Op, 1)
	s.routeByKey(r, req)
}

// enqueueAndLocate queues r for the client and returns the current route
// table, the backend of req's key in it, and the key. When no backend is
// live it fails r instead and returns a nil table.
func (s *session) enqueueAndLocate(r *request, req *protocol.Request) (*routeTable, *backend, []byte) {
	s.enqueue(r)
	t := s.p.table.Load()
	if t.ring == nil {
		r.fail(errNoBackends)
		return nil, nil, nil
	}
	key := req.Key()
	return t, t.members[t.ring.Locate(key)], key
}

// routeByKey queues r, encoded from req, for the client and sends it to
// the key's backend. While a backend is out of the ring or the ring changed
// recently, routeFailover adds what keeps reads fresh (failover.go).
func (s *session) routeByKey(r *request, req *protocol.Request) {
	t, b, key := s.enqueueAndLocate(r, req)
	if t == nil {
		return
	}
	if req.Op == protocol.OpSet || req.Op == protocol.OpAdd {
		r.routed = t // for repairAfterSwap
	}
	if t.fo.active(s.now) {
		s.routeFailover(t, b, r, req, key)
		return
	}
	s.sendTo(b, r)
}

// sendTo sends r to b unless b is known to be down. With auto_eject off a
// down backend stays in the ring, and its keys fail fast here instead of
// moving to another backend.
func (s *session) sendTo(b *backend, r *request) {
	if !s.p.opts.AutoEject && !s.p.health.IsUp(b.name) {
		r.backend = b
		b.countFailed(errBackendDown, 1)
		r.fail(errBackendDown)
		return
	}
	b.send(s, r)
}

// dispatchToAll sends the same command to every live backend (flush_all).
func (s *session) dispatchToAll(req *protocol.Request, cmd []byte) {
	parent := newRequest(s, req.Op)
	parent.noreply = req.NoReply
	s.sendToEveryBackend(parent, cmd, errNoBackends)
}

// sendToEveryBackend queues parent for the client and sends cmd to every
// live backend, one sub-request each (flush_all, stats and its backend
// groups). parent finishes when the last sub-request does, or at once when
// no backend is live, with noLive as its error if that is not nil.
func (s *session) sendToEveryBackend(parent *request, cmd []byte, noLive error) {
	t := s.p.table.Load()
	for _, b := range t.members {
		sub := newRequest(s, parent.op)
		sub.parent = parent
		sub.backend = b
		sub.out = append(sub.out, cmd...)
		parent.subs = append(parent.subs, sub)
	}
	s.enqueue(parent)
	if len(parent.subs) == 0 {
		parent.err = noLive
		parent.finish()
		return
	}
	parent.pending.Store(int32(len(parent.subs)))
	for _, sub := range parent.subs {
		s.sendTo(sub.backend, sub)
	}
}

// flushAllNotAllowed is memcached -F's answer to flush_all, byte for byte.
const flushAllNotAllowed = "CLIENT_ERROR flush_all not allowed"

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

func growBytes(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b[:len(b)+n]
	}
	nb := make([]byte, len(b)+n)
	copy(nb, b)
	return nb
}

// dropStaleValue deletes key on its backend, without a reply to the
// client. memcached unlinks the old item when it refuses a set as too
// large, so that a stale value is not served afterwards; the proxy must do
// the same on the backend's behalf. The delete goes on this session's
// connection, so the client's next command on the key sees it done.
func (s *session) dropStaleValue(key []byte) {
	t := s.p.table.Load()
	if t.ring == nil {
		return
	}
	r := newDeleteOf(nil, key) // an ms's key may be binary
	b := t.members[t.ring.Locate(key)]
	if t.fo.active(s.now) {
		s.routeFailover(t, b, r, nil, key) // a delete like any other
		return
	}
	s.sendTo(b, r)
}
