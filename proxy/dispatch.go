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
		return s.dispatchMeta(req) // dispatch_meta.go
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

// dispatchToAll sends the same command to every live backend (flush_all).
func (s *session) dispatchToAll(req *protocol.Request, cmd []byte) {
	parent := newRequest(s, req.Op)
	parent.noreply = req.NoReply
	s.sendToEveryBackend(parent, cmd, errNoBackends)
}

// flushAllNotAllowed is memcached -F's answer to flush_all, byte for byte.
const flushAllNotAllowed = "CLIENT_ERROR flush_all not allowed"

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
	rt := s.p.table.Load().route(key)
	t := rt.pool
	if t.place == nil {
		return
	}
	r := newDeleteOf(nil, key) // an ms's key may be binary
	if t.replicated() {
		s.routeCopies(t, r, nil, key) // every copy, replica_write.go
		return
	}
	b := t.locate(key)
	if rt.warm != nil {
		s.fenceOldCopy(rt.warm, key, b)
	}
	if t.fo.active(s.now) {
		s.routeFailover(t, b, r, nil, key) // a delete like any other
		return
	}
	s.sendTo(b, r)
}
