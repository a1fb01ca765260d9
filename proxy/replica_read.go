package proxy

import "github.com/mcproxy/mcproxy/protocol"

// Reads on a replicated pool (replica.go). A read of one key (get, gets,
// gat, gats of one key, mg) goes to one copy with a replicaRead hook: an
// error, a timeout or a miss there sends the same request to the next
// copy, each with a backend timeout of its own, until one hits or none is
// left. A multi-get asks the first copies at once and the misses and
// failures of the first round are asked of each key's next copy in one
// more round, the way a warm-up route asks its old pool (warm.go,
// askWarm).
//
// get and gat read the copy in the proxy's zone first; gets, gats and an
// mg that asks for the CAS (c) read in placement order, so that the CAS
// is the deciding copy's, which a cas is sent to (replica_write.go).

// replicaRead is the hook of a one-key read on a replicated pool.
type replicaRead struct{}

// afterReply implements requestHook.
func (replicaRead) afterReply(r *request) bool {
	st := &r.replica
	if r.readHit() {
		if st.next > 1 {
			st.t.pool.counters.laterReads.Add(1)
			st.t.copyStats[st.idx[st.next-1]].laterReads.Add(1)
		}
		return false
	}
	if st.next >= st.n || r.sess == nil {
		return false
	}
	b := st.member(st.next)
	st.next++
	r.err = nil
	r.reply.Reset()
	r.hook = replicaRead{}
	r.sess.resend(b, r)
	return true
}

// readHit reports whether r, a one-key read, found its key.
func (r *request) readHit() bool {
	if !r.ok() {
		return false
	}
	if r.op.IsMeta() {
		return r.metaCode() != protocol.MetaEN
	}
	return len(r.reply.Values) > 0
}

// resend sends r again, to b, with a deadline of its own: a frozen copy
// costs one backend timeout, then the next copy has a full one.
func (s *session) resend(b *backend, r *request) {
	r.backend = b
	if b.capped.Load() || !s.p.opts.AutoEject && !s.p.health.IsUp(b.name) {
		b.countFailed(errBackendDown, 1)
		r.fail(errBackendDown)
		return
	}
	r.deadline = requestDeadline(s.l.now, b.p.opts.Timeout)
	b.connOf(s).send(r)
}

// readCopies chooses the copies r, a one-key read of key on t, will try
// and returns the first; r gets the replicaRead hook when there is more
// than one and no other hook. byCAS keeps placement order (gets, gats, mg
// with c), so the CAS read is the deciding copy's.
func readCopies(t *poolTable, r *request, key []byte, byCAS bool) *backend {
	var buf [MaxReplicas]int
	idx := t.copyIndexes(buf[:0], key, r.sess.copyScratch[:0])
	if len(idx) == 0 {
		return t.locate(key) // every copy is held down: it fails fast
	}
	if !byCAS {
		idx = t.readOrder(idx)
	}
	r.replica.set(t, idx)
	if len(idx) > 1 && r.hook == nil {
		r.hook = replicaRead{}
	}
	return t.members[idx[0]]
}

// firstCopy returns the slot (routeTable.slots) of the copy a read of key
// on pt goes to first and the slot of the next copy, -1 when there is
// none.
//
// scratch is pickCopies'.
func firstCopy(pt *poolTable, key []byte, op protocol.Op, scratch []int) (int, int) {
	var buf [MaxReplicas]int
	idx := pt.copyIndexes(buf[:0], key, scratch)
	if len(idx) == 0 {
		return pt.base + pt.place.Locate(key), -1
	}
	if op != protocol.OpGets && op != protocol.OpGats {
		idx = pt.readOrder(idx)
	}
	if len(idx) == 1 {
		return pt.base + idx[0], -1
	}
	return pt.base + idx[0], pt.base + idx[1]
}

// routeMetaCopies routes a meta command on the replicated pool t: a
// change to every copy (routeCopies), an mg to one copy at a time.
func (s *session) routeMetaCopies(t *poolTable, r *request, req *protocol.Request, key []byte) {
	switch req.Op {
	case protocol.OpMetaSet, protocol.OpMetaDelete, protocol.OpMetaArithmetic:
		s.routeCopies(t, r, req, key)
		return
	case protocol.OpMetaGet:
		if r.meta.fenced {
			break // the backend hides its miss: there is nothing to retry on
		}
		b := readCopies(t, r, key, req.Meta.Flags.Has('c'))
		if t.fo.active(s.now) {
			var cbuf [MaxReplicas]*backend
			if err := s.capCopies(t, t.locations(cbuf[:0], key), r, req, key); err != nil {
				r.fail(err)
				return
			}
		}
		s.sendTo(b, r)
		return
	}
	// me, and an mg that cannot be retried: the first live copy.
	var buf [MaxReplicas]*backend
	b := t.locations(buf[:0], key)[0]
	if t.fo.active(s.now) && req.Op == protocol.OpMetaGet {
		if err := s.capMeta(t, b, r, req, key); err != nil {
			r.fail(err)
			return
		}
	}
	s.sendTo(b, r)
}
