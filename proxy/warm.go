package proxy

import (
	"bytes"

	"github.com/mcproxy/mcproxy/protocol"
	"go.uber.org/zap"
)

// A warm-up route (Route.WarmFrom) moves keys from an old pool to a new one
// without a cold cache. Its rules, and why no value deleted or overwritten
// through the proxy comes back (docs/pools.md, "Warm-up and stale reads"):
//
//   - A read that misses on the new pool is asked again of the old pool; a
//     hit there is the client's answer, and is copied into the new pool
//     (warm_copy.go) only if the key is still absent there, then undone if
//     the old copy changed meanwhile.
//   - Every change of a key (a storage command, incr/decr, touch, delete,
//     ms, md, ma) first deletes the key on the old pool, and only once that
//     delete is answered goes to the new pool. Until then the session's
//     later commands wait too (session.fence), so a client still reads its
//     own writes in order.
//
// A copy is made from a value read on the old pool before the copy is
// written; a change deletes the old value before it reaches the new pool.
// So a copy that lands after a change was applied was read before that
// change's delete of the old value, and the check after the copy sees the
// old value gone or changed and deletes the copy (by its CAS, so a newer
// write is never deleted).

// requestHook takes over the completion of a request it was set on
// (request.hook). afterReply runs on the request's loop in place of the
// usual completion and reports whether it took the request over; false
// lets the completion go on as usual.
type requestHook interface {
	afterReply(r *request) bool
}

// warmFence is a session seen as the hook of its fence: the delete of a
// key's old copy that the session's commands wait behind.
type warmFence session

// fenceOldCopy sends the delete of key's copy on warm, the old pool of
// its route, and makes the session's commands wait behind it: every send
// after it (session.sendTo) is held until it is answered. A fence sent
// while another stands waits in line behind the first. When the old pool
// puts the key on cur, its backend in the new pool (a migration in place
// onto the same servers), there is no other copy: nothing is deleted.
func (s *session) fenceOldCopy(warm *poolTable, key []byte, cur *backend) {
	if warm == nil || warm.place == nil {
		return // no old copy can be read: nothing to delete
	}
	oldB := warm.locate(key)
	if oldB == cur {
		return
	}
	d := newDeleteOf(nil, key)
	d.hook = (*warmFence)(s)
	d.backend = oldB
	warm.pool.counters.warmDeletes.Add(1)
	if s.fence != nil {
		s.waiting = append(s.waiting, d)
		return
	}
	s.fence = d
	s.send(d.backend, d)
}

// afterReply ends the fence d: the old copy is gone (or its backend
// failed, which leaves nothing to read there while it stays failed), so
// the held commands go out, in order, up to the next fence.
func (f *warmFence) afterReply(d *request) bool {
	s := (*session)(f)
	if !d.ok() {
		s.p.log.Debug("warm-up: delete of the old copy failed", zap.ByteString("command", clip64(commandLine(d.out))))
	}
	if s.fence == d {
		s.fence = nil
	}
	d.release()
	s.releaseHeld()
	return true
}

// releaseHeld sends the held requests in order until one is a fence,
// which then holds the rest.
func (s *session) releaseHeld() {
	held := s.waiting
	s.waiting = nil
	for i, r := range held {
		if s.fence != nil {
			s.waiting = append(s.waiting, held[i:]...)
			return
		}
		if _, isFence := r.hook.(*warmFence); isFence {
			s.fence = r
		}
		s.send(r.backend, r)
	}
}

// warmRetrieval records, on the parent of a split retrieval on a route
// with a warm-up pool, where each key's old copy is (slots in the route
// table, -1 for none) and, once asked, which sub-request asked for it.
type warmRetrieval struct {
	t     *routeTable
	slots []int // slots[i]: key i's old location, -1 when none
	owner []int // owner[i]: the index in subs of the old pool's read of key i, -1 when none
	asked bool  // the old pool was asked for the misses
	// copy, when not nil, marks the keys whose slot is their next copy on
	// a replicated pool rather than a warm-up pool (replica_read.go): a
	// key whose first read failed is asked there too, and a hit there is
	// counted, not copied.
	copy []bool
	// exptime is a gat's or gats's: the copy's expiry. -1 for get and
	// gets, whose copies keep the old copy's remaining time.
	exptime int32
}

// warmSlots returns where each key's old copy is, or nil when no key has
// one.
func warmSlots(t *routeTable, keys [][]byte) []int {
	var slots []int
	for i, k := range keys {
		w := t.route(k).warm
		if w == nil || w.place == nil {
			continue
		}
		if slots == nil {
			slots = make([]int, len(keys))
			for j := range slots {
				slots[j] = -1
			}
		}
		slots[i] = w.base + w.place.Locate(k)
	}
	return slots
}

// askWarm asks the old pool for the keys of the retrieval p that missed
// on the new pool, one sub-request per old backend. It reports whether it
// sent any; p then finishes when they have answered.
func (p *request) askWarm() bool {
	w := p.warm
	w.asked = true
	hit := p.hitKeys()
	subOf := map[int]int{}
	op := protocol.OpGet
	if p.op == protocol.OpGets || p.op == protocol.OpGats {
		op = protocol.OpGets // a gat's touch applies to the new pool only
	}
	first := len(p.subs)
	w.owner = make([]int, len(p.keys))
	for i, k := range p.keys {
		w.owner[i] = -1
		primary := p.subs[p.owner[i]]
		if w.slots[i] < 0 || hit[i] || !primary.ok() && !w.isCopy(i) || w.t.slots[w.slots[i]] == primary.backend {
			continue // a hit; a failure, unless another copy can answer; or the old copy is where the key was just missed
		}
		j, ok := subOf[w.slots[i]]
		if !ok {
			j = len(p.subs)
			subOf[w.slots[i]] = j
			sub := newRequest(p.sess, op)
			sub.parent = p
			sub.backend = w.t.slots[w.slots[i]]
			sub.out = append(sub.out, op.String()...)
			p.subs = append(p.subs, sub)
		}
		sub := p.subs[j]
		sub.out = append(append(sub.out, ' '), k...)
		w.owner[i] = j
	}
	if len(p.subs) == first {
		return false
	}
	p.pending.Store(int32(len(p.subs) - first))
	// The second round has a backend timeout of its own, counted from
	// now, not from when the client's command was read: after a first
	// round that timed out, that deadline has passed.
	p.sess.now = p.sess.l.now
	for _, sub := range p.subs[first:] {
		sub.out = append(sub.out, "\r\n"...)
		p.sess.sendTo(sub.backend, sub)
	}
	return true
}

// hitKeys reports which of p's keys its sub-requests found, as the merge
// in renderRetrieval finds them: each sub's values in the order asked.
func (p *request) hitKeys() []bool {
	hit := make([]bool, len(p.keys))
	cur := make([]int, len(p.subs))
	for i, key := range p.keys {
		j := p.owner[i]
		sub := p.subs[j]
		if !sub.ok() {
			continue
		}
		if c := cur[j]; c < len(sub.reply.Values) && bytes.Equal(sub.reply.Key(c), key) {
			hit[i] = true
			cur[j]++
		}
	}
	return hit
}

// renderWarmHit appends key i's value from the old pool's reply, if it has
// one, and starts its copy into the new pool. cur holds the merge's
// cursor of each sub-request.
func (s *session) renderWarmHit(dst []byte, r *request, i int, cur []int) ([]byte, bool) {
	w := r.warm
	j := w.owner[i]
	if j < 0 {
		return dst, false
	}
	sub, key := r.subs[j], r.keys[i]
	c := cur[j]
	if !sub.ok() || c >= len(sub.reply.Values) || !bytes.Equal(sub.reply.Key(c), key) {
		return dst, false
	}
	cur[j]++
	dst = append(dst, sub.reply.Block(c)...)
	rt := w.t.route(key)
	if w.isCopy(i) {
		rt.pool.pool.counters.laterReads.Add(1)
		w.t.copyStats[w.slots[i]].laterReads.Add(1)
		return dst, true
	}
	rt.pool.pool.counters.warmHits.Add(1)
	s.startWarmCopy(key, sub.backend, r.subs[r.owner[i]].backend, w.exptime, rt.pool.pool.counters)
	return dst, true
}

// warmMetaRead is the hook of an mg on a route with a warm-up pool: a miss
// on the new pool is asked again of the old one, and a hit there is
// copied into the new pool.
type warmMetaRead struct {
	s        *session
	old, new *backend
	counters *poolCounters
	asked    bool
}

// afterReply implements requestHook.
func (h *warmMetaRead) afterReply(r *request) bool {
	if !h.asked {
		if !r.ok() || r.metaCode() != protocol.MetaEN {
			return false
		}
		h.asked = true
		r.reply.Reset()
		r.hook = h
		h.s.sendTo(h.old, r)
		return true
	}
	if r.ok() && (r.metaCode() == protocol.MetaVA || r.metaCode() == protocol.MetaHD) {
		h.counters.warmHits.Add(1)
		h.s.startWarmCopy(r.meta.key(), h.old, h.new, -1, h.counters)
	}
	return false
}

// warmMeta applies a warm-up route's rules to a meta command: a change
// deletes the old copy first; an mg that misses asks the old pool (not a
// quiet mg fenced by an mn, whose miss the backend hides from the proxy).
func (s *session) warmMeta(rt *tableRoute, b *backend, r *request, key []byte) {
	switch r.op {
	case protocol.OpMetaSet, protocol.OpMetaDelete, protocol.OpMetaArithmetic:
		s.fenceOldCopy(rt.warm, key, b)
	case protocol.OpMetaGet:
		if rt.warm.place != nil && !r.meta.fenced && rt.warm.locate(key) != b {
			r.hook = &warmMetaRead{s: s, old: rt.warm.locate(key), new: b, counters: rt.pool.pool.counters}
		}
	}
}

// isCopy reports whether key i's second read goes to its next copy on a
// replicated pool.
func (w *warmRetrieval) isCopy(i int) bool { return w.copy != nil && w.copy[i] }
