package proxy

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcproxy/mcproxy/protocol"
)

// request is one command on its way through the proxy. It lives on its
// session's event loop from dispatch to render. A client command
// becomes one request in its session's reply FIFO; a command that spans
// several backends (a multi-get, flush_all, stats) gets one sub-request per
// backend, and the parent completes when the last of them does. Requests are
// pooled: the steady path allocates none.
type request struct {
	sess    *session // nil for internal requests nobody waits for
	op      protocol.Op
	kind    protocol.ReplyKind
	noreply bool
	nkeys   int // keys asked for, for hit/miss counting

	out   []byte         // the canonical command sent to the backend
	reply protocol.Reply // the backend's reply
	err   error          // set instead of reply when the backend failed
	local []byte         // a reply the proxy makes itself

	backend  *backend
	deadline time.Time
	start    time.Time

	// Fan-out: the parent holds the client's keys in order and which
	// sub-request owns each; subs point back at their parent.
	parent  *request
	subs    []*request
	pending atomic.Int32
	keyBuf  []byte
	keys    [][]byte
	owner   []int
	// invalidation marks a delete sent beside a client's command to drop
	// the key's copy on a backend that held it before a ring change
	// (failover.go); its parent is that command.
	invalidation bool
	// routed is the route table a set or add was routed with, so that its
	// completion can tell whether the ring changed while it was in flight
	// (failover.go, repairAfterSwap).
	routed *poolTable

	// replica holds the copies of the key of a request on a replicated
	// pool: the ones a read may try next, the ones a deciding copy's
	// change is deleted from (replica_write.go).
	replica replicaState
	// copyStats and copyPool, on a write or delete sent to a copy besides
	// the first, count it for its backend and its pool; copyErr, on the
	// client's request, is the first such write's failure, which the
	// client is answered with (replica_write.go).
	copyStats, copyPool *copyCounters
	copyErr             error

	// hook, when set, takes over the request's completion (warm.go).
	hook requestHook
	// warm is set on a retrieval on a route with a warm-up pool (warm.go).
	warm *warmRetrieval

	// charged is the reply memory charged to sess for this request (see
	// Charge), released when the reply is rendered.
	charged int
	// more marks a piece of a multi-get that is not its last: it is
	// rendered without the END line (dispatch_pieces.go).
	more bool
	// meta is what a meta command keeps for its reply (dispatch_meta.go).
	meta metaState
	// dump is the stream of an lru_crawler metadump (metadump.go).
	dump *metadump

	done bool     // finished: ready to render
	next *request // session FIFO link
}

var requestPool = sync.Pool{New: func() any { return new(request) }}

// maxRetainedBuffer caps the memory a pooled request keeps, so one huge
// value does not pin a megabyte in the pool forever.
const maxRetainedBuffer = 64 << 10

func newRequest(s *session, op protocol.Op) *request {
	r := requestPool.Get().(*request)
	r.sess, r.op, r.kind = s, op, protocol.KindOf(op)
	r.reply.Budget = r
	if s != nil {
		r.start = s.now
	}
	return r
}

// release returns r and its sub-requests to the pool.
func (r *request) release() {
	for i, sub := range r.subs {
		sub.release()
		r.subs[i] = nil
	}
	out, local, keyBuf := r.out[:0], r.local[:0], r.keyBuf[:0]
	if cap(out) > maxRetainedBuffer {
		out = nil
	}
	if cap(keyBuf) > maxRetainedBuffer {
		keyBuf = nil
	}
	reply := r.reply
	reply.Reset()
	if cap(reply.Raw) > maxRetainedBuffer {
		reply.Raw = nil
	}
	clear(r.keys)
	meta := r.meta
	meta.reset()
	*r = request{meta: meta,
		out: out, local: local, keyBuf: keyBuf, reply: reply,
		subs: r.subs[:0], keys: r.keys[:0], owner: r.owner[:0],
	}
	requestPool.Put(r)
}

// complete is called exactly once per request, on its session's loop, by
// whoever finishes it: the backend connection with a reply or an error, or
// the dispatcher when it could not send it.
func (r *request) complete() {
	if r.reply.Dropped && r.err == nil {
		r.err = errOutputLimit
	}
	if p := r.parent; p != nil {
		if r.invalidation {
			r.countInvalidation()
		}
		if r.copyStats != nil {
			r.countCopyWrite()
		}
		if r.routed != nil {
			r.repairAfterSwap() // a copy's set or add (replica_write.go)
		}
		if p.pending.Add(-1) == 0 && (p.warm == nil || p.warm.asked || !p.askWarm()) {
			p.finish()
		}
		return
	}
	if h := r.hook; h != nil {
		r.hook = nil
		if h.afterReply(r) {
			return
		}
	}
	if r.routed != nil {
		r.repairAfterSwap()
	}
	// A command sent with invalidating deletes (failover.go) counts itself
	// in pending too: the last of it and them finishes it.
	if r.pending.Load() != 0 && r.pending.Add(-1) != 0 {
		return
	}
	r.finish()
}

// fail completes r with a backend error.
func (r *request) fail(err error) {
	r.err = err
	r.complete()
}

// finish marks a top-level request done; its session renders it at the
// end of the loop's turn.
func (r *request) finish() {
	if r.copyErr != nil && r.err == nil {
		r.err = r.copyErr // a copy failed: the change was not made everywhere
	}
	s := r.sess
	if s == nil { // internal request, e.g. the delete after a too-large set
		r.release()
		return
	}
	s.requestDone(r)
}

// ok reports whether the backend answered r with a reply that is not an
// error line.
func (r *request) ok() bool { return r.err == nil && !r.reply.IsError }
