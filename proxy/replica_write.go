package proxy

import (
	"errors"

	"github.com/mcproxy/mcproxy/protocol"
)

// errCopyWrite answers a change that a copy besides the first refused
// with an error line: the change was not made everywhere, so the client
// is not told it was (replica.go).
var errCopyWrite = errors.New("a copy of the key failed the write")

// replicaState is what a request on a replicated pool keeps of the key's
// copies: the member indexes in t, in the order they are used (reads:
// the proxy's zone first; writes: placement order), and the next one to
// use. Owned by the request's loop.
type replicaState struct {
	t    *poolTable
	idx  [MaxReplicas]int32
	n    int8
	next int8
}

// set records idx as the copies of a request on t; the first is in use.
func (st *replicaState) set(t *poolTable, idx []int) {
	st.t, st.n, st.next = t, int8(len(idx)), 1
	for i, x := range idx {
		st.idx[i] = int32(x)
	}
}

// member returns the backend of copy i.
func (st *replicaState) member(i int8) *backend { return st.t.members[st.idx[i]] }

// routeCopies sends r, a change of key on the replicated pool t, to every
// live copy of key. A change whose effect depends on what the copy holds
// (decidedByFirst) goes to the first copy alone, and once it changed the
// key the others are deleted (copyDecider). While t's failover is active,
// its rules apply to the copy set: the expiry is capped when a copy is a
// stand-in, and the window's other locations of key are deleted. req is
// nil for an internal delete. r completes when every copy and every
// delete has answered; the client sees the first copy's reply, or an
// error when another copy failed.
func (s *session) routeCopies(t *poolTable, r *request, req *protocol.Request, key []byte) {
	var ibuf [MaxReplicas]int
	idx := t.copyIndexes(ibuf[:0], key, s.copyScratch[:0])
	if len(idx) == 0 {
		s.sendTo(t.locate(key), r) // every copy is held down: it fails fast
		return
	}
	var cbuf [MaxReplicas]*backend
	copies := cbuf[:0]
	for _, i := range idx {
		copies = append(copies, t.members[i])
	}
	decides := req != nil && decidedByFirst(req)
	// writes[k] goes to copies[k]: r to the first, a clone of its
	// uncapped command to each other unless the first decides.
	var wbuf [MaxReplicas]*request
	writes := append(wbuf[:0], r)
	if !decides {
		for k := 1; k < len(idx); k++ {
			writes = append(writes, s.copyOf(r, t, idx[k]))
		}
	}
	var tbuf [8]*backend
	var targets []*backend
	if t.fo.active(s.now) {
		for k, w := range writes {
			if err := s.capCopy(t, copies[k], w, req, key); err != nil {
				for _, c := range writes[1:] {
					c.release()
				}
				r.fail(err)
				return
			}
		}
		targets = t.invalidationTargets(tbuf[:0], key, copies, s.now)
	}
	n := len(targets)
	if decides {
		r.replica.set(t, idx)
		r.hook = copyDecider{}
	} else {
		n += len(copies) - 1
	}
	if n > 0 {
		r.pending.Store(int32(1 + n))
	}
	for _, tb := range targets {
		d := newDeleteOf(s, key) // a meta client's key may be binary
		d.parent, d.invalidation, d.backend = r, true, tb
		r.subs = append(r.subs, d)
	}
	if len(targets) > 0 {
		s.p.stats.failoverInvalidations.Add(uint64(len(targets)))
		t.pool.counters.failoverInvalidations.Add(uint64(len(targets)))
	}
	for _, c := range writes[1:] {
		c.copyPool.copyWrites.Add(1)
		c.copyStats.copyWrites.Add(1)
		r.subs = append(r.subs, c)
	}
	s.sendTo(copies[0], r)
	for _, d := range r.subs {
		s.sendTo(d.backend, d)
	}
}

// copyOf makes the request that writes r's change to member i of t.
func (s *session) copyOf(r *request, t *poolTable, i int) *request {
	c := newRequest(s, r.op)
	c.parent, c.backend = r, t.members[i]
	c.copyStats = t.copyStats[i]
	c.copyPool = &t.pool.counters.copyCounters
	c.routed = r.routed // a set or add left behind a table swap is repaired too
	c.out = append(c.out, r.out...)
	if r.op.IsMeta() {
		buf := append(c.meta.buf[:0], r.meta.buf...)
		c.meta = r.meta
		c.meta.buf = buf
	}
	return c
}

// capCopy caps the expiry of w, req's command to the copy b, when b is a
// stand-in for key (failover.go): not one of its copies on the placement
// of every configured backend. A home copy keeps the client's expiry.
func (s *session) capCopy(t *poolTable, b *backend, w *request, req *protocol.Request, key []byte) error {
	if req == nil || !t.standIn(key, b) {
		return nil
	}
	if req.Meta != nil {
		return s.capMeta(t, b, w, req, key)
	}
	if carriesExptime(req.Op) {
		s.p.stats.failoverCappedWrites.Add(1)
		t.pool.counters.failoverCappedWrites.Add(1)
		if e := capExptime(req.Exptime, t.fo.ttl, s.now); e != req.Exptime {
			rewriteExptime(w, req, e)
		}
	}
	return nil
}

// capCopies caps w, a read with an expiry (an mg with T or N) that may
// be sent to any of copies in turn, when one of them is a stand-in: every
// copy then gets the capped expiry, which only shortens the life of the
// others.
func (s *session) capCopies(t *poolTable, copies []*backend, w *request, req *protocol.Request, key []byte) error {
	for _, b := range copies {
		if t.standIn(key, b) {
			return s.capCopy(t, b, w, req, key)
		}
	}
	return nil
}

// decidedByFirst reports whether req's effect depends on what the copy
// holds, so that copies could end up disagreeing: add, cas, append,
// prepend, incr, decr; ms in any mode but set, or with a CAS to compare;
// md with a CAS; ma.
func decidedByFirst(req *protocol.Request) bool {
	switch req.Op {
	case protocol.OpAdd, protocol.OpCas, protocol.OpAppend, protocol.OpPrepend, protocol.OpIncr, protocol.OpDecr,
		protocol.OpMetaArithmetic:
		return true
	case protocol.OpMetaSet:
		m := req.Meta
		return m.Mode != 0 && m.Mode != 'S' || m.Flags.Has('C')
	case protocol.OpMetaDelete:
		return req.Meta.Flags.Has('C')
	}
	return false
}

// copyDecider is the hook of a change sent to the first copy alone
// (decidedByFirst): when that copy made the change, the key is deleted on
// the other copies before the client is answered, so that no copy keeps
// a value older than the change. A copy that does not answer the delete
// fails the client's command.
type copyDecider struct{}

// afterReply implements requestHook.
func (copyDecider) afterReply(r *request) bool {
	st := &r.replica
	if !r.changedKey() || st.n < 2 {
		return false
	}
	key := r.routedKey()
	n := int32(st.n - 1)
	// r's own share of pending is still counted while it has deletes in
	// flight, so pending cannot reach 0 under us (as in repairAfterSwap).
	if r.pending.Load() == 0 {
		r.pending.Store(1 + n)
	} else {
		r.pending.Add(n)
	}
	for i := int8(1); i < st.n; i++ {
		// Not in r.subs, which the dispatching code may still be reading
		// when r failed fast; nobody releases it to the pool.
		d := newDeleteOf(nil, key)
		d.parent = r
		d.copyStats, d.copyPool = st.t.copyStats[st.idx[i]], &st.t.pool.counters.copyCounters
		d.copyPool.copyWrites.Add(1)
		d.copyStats.copyWrites.Add(1)
		st.member(i).sendLate(r.sess, d)
	}
	return false
}

// changedKey reports whether the deciding copy changed the key: STORED,
// a number for incr and decr, HD or VA for meta.
func (r *request) changedKey() bool {
	if !r.ok() {
		return false
	}
	if r.op.IsMeta() {
		c := r.metaCode()
		return c == protocol.MetaHD || c == protocol.MetaVA
	}
	if r.op == protocol.OpIncr || r.op == protocol.OpDecr {
		raw := r.reply.Raw
		return len(raw) > 0 && raw[0] >= '0' && raw[0] <= '9'
	}
	return r.plantedCopy()
}

// countCopyWrite counts the outcome of a copy's write or delete, and
// fails its parent's answer when it failed: DELETED and NOT_FOUND both
// leave no copy behind, NOT_STORED (a replace or cas that found nothing)
// neither; an error or no reply may leave an old value.
func (r *request) countCopyWrite() {
	if r.err == nil && !r.reply.IsError {
		return
	}
	r.copyStats.copyWriteErrors.Add(1)
	r.copyPool.copyWriteErrors.Add(1)
	if p := r.parent; p.copyErr == nil {
		p.copyErr = r.err
		if p.copyErr == nil {
			p.copyErr = errCopyWrite
		}
	}
}
